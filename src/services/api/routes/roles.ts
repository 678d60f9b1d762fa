/**
 * Roles: `/api/v1/roles`. A role is a named set of `{resource, actions}` grants. The built-in roles
 * (admin, editor, operator, viewer) are seeded at start and cannot be changed or deleted; custom
 * roles can. Nobody can create or change a role so that it grants more than they hold themselves.
 */
import { and, asc, count, eq, inArray, type SQL, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { AppError, conflict, forbidden, notFound } from '../../../domain/errors.ts';
import { ACTIONS, type Action, type Grant, RESOURCES, type Resource } from '../../../domain/permissions.ts';
import { NAME_PATTERN } from '../../../domain/refs.ts';
import type { Db } from '../../../store/database.ts';
import { identities, identityRoles, roles } from '../../../store/schema.ts';
import { grantsNotCovered } from '../auth.ts';
import { Data, iso, List, likeEscape, listBody, PageQuery, pageOf, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';

export const GrantSchema = Type.Object(
  {
    resource: Type.Enum([...RESOURCES, '*'], { description: "a resource, or '*' for every resource" }),
    actions: Type.Array(Type.Enum([...ACTIONS, '*']), {
      minItems: 1,
      maxItems: ACTIONS.length + 1,
      uniqueItems: true,
      description: "actions allowed on the resource, or ['*'] for all of them",
    }),
  },
  { additionalProperties: false },
);
const Grants = Type.Array(GrantSchema, { maxItems: 200 });

const Role = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  builtin: Type.Boolean({ description: 'built-in roles cannot be changed or deleted' }),
  grants: Type.Array(GrantSchema),
  member_count: Type.Integer({ description: 'identities holding the role' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});
type RoleView = Static<typeof Role>;

const RoleName = Type.String({ pattern: NAME_PATTERN, maxLength: 100 });
const CreateRole = Type.Object(
  {
    name: RoleName,
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    grants: Grants,
  },
  { additionalProperties: false },
);
const UpdateRole = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    grants: Type.Optional(Grants),
  },
  { additionalProperties: false, minProperties: 1 },
);
const NameParams = Type.Object({ name: RoleName });
const ListQuery = Type.Object(
  {
    ...PageQuery,
    search: Type.Optional(Type.String({ maxLength: 200, description: 'matches name or description' })),
    builtin: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const DeleteQuery = Type.Object(
  {
    force: Type.Optional(
      Type.Boolean({ description: 'delete even when identities hold the role (they lose it)' }),
    ),
  },
  { additionalProperties: false },
);

/** Merges grants per resource and removes duplicate actions; `*` swallows the other actions. */
export function normalizeGrants(grants: readonly Grant[]): Grant[] {
  const by = new Map<Resource | '*', Set<Action | '*'>>();
  for (const g of grants) {
    const set = by.get(g.resource) ?? new Set();
    for (const a of g.actions) set.add(a);
    by.set(g.resource, set);
  }
  return [...by].map(([resource, set]) => ({
    resource,
    actions: set.has('*') ? ['*'] : ACTIONS.filter((a) => set.has(a)),
  }));
}

/** Throws 403 unless the caller holds every permission the grants give. */
export function assertCanGrant(req: FastifyRequest, grants: readonly Grant[], what: string): void {
  const missing = grantsNotCovered(req.principal?.grants ?? [], grants);
  if (missing.length) {
    const e = forbidden(
      `${what} would grant permissions you do not hold: ${missing.slice(0, 10).join(', ')}`,
    );
    throw new AppError(e.code, e.message, { missing });
  }
}

/** The roles with these names, or a 404 naming every unknown one. */
export async function resolveRoles(
  db: Db,
  names: readonly string[],
): Promise<{ id: number; name: string; grants: Grant[] }[]> {
  const unique = [...new Set(names)];
  if (!unique.length) return [];
  const rows = await db
    .select({ id: roles.id, name: roles.name, grants: roles.grants })
    .from(roles)
    .where(inArray(roles.name, unique));
  const missing = unique.filter((n) => !rows.some((r) => r.name === n));
  if (missing.length)
    throw new AppError(
      'NOT_FOUND',
      `role${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} not found`,
      { resource: 'role', missing },
    );
  return rows.map((r) => ({ id: r.id, name: r.name, grants: r.grants as Grant[] }));
}

type Row = typeof roles.$inferSelect;
const toApi = (r: Row, members: number): RoleView => ({
  id: r.id,
  name: r.name,
  description: r.description,
  builtin: r.builtin,
  grants: r.grants as RoleView['grants'],
  member_count: members,
  created_at: iso(r.createdAt)!,
  updated_at: iso(r.updatedAt)!,
});

async function memberCounts(db: Db, ids: number[]): Promise<Map<number, number>> {
  if (!ids.length) return new Map();
  const rows = await db
    .select({ roleId: identityRoles.roleId, n: count() })
    .from(identityRoles)
    .where(inArray(identityRoles.roleId, ids))
    .groupBy(identityRoles.roleId);
  return new Map(rows.map((r) => [r.roleId, r.n]));
}

const tags = ['roles'];
const E = { $ref: 'ErrorBody#' };
const builtinConflict = (name: string) =>
  conflict(`'${name}' is a built-in role and cannot be changed or deleted`, { role: name, builtin: true });

export function registerRoleRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  async function getRole(name: string): Promise<Row> {
    const [r] = await db().select().from(roles).where(eq(roles.name, name));
    if (!r) throw notFound('role', name);
    return r;
  }

  app.get(
    '/api/v1/roles',
    {
      config: { permission: ['roles', 'read'] },
      schema: {
        tags,
        summary: 'List roles',
        description:
          'Built-in and custom roles by name, with their grants and how many identities hold them.',
        querystring: ListQuery,
        response: { 200: List(Role), 400: E },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageOf(q);
      const where: SQL[] = [];
      if (q.builtin !== undefined) where.push(eq(roles.builtin, q.builtin));
      if (q.search) {
        const pat = `%${likeEscape(q.search)}%`;
        where.push(sql`(${roles.name} ILIKE ${pat} OR ${roles.description} ILIKE ${pat})`);
      }
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        db().select().from(roles).where(cond).orderBy(asc(roles.name)).limit(page.limit).offset(page.offset),
        db().select({ n: count() }).from(roles).where(cond),
      ]);
      const counts = await memberCounts(
        db(),
        rows.map((r) => r.id),
      );
      return listBody(
        rows.map((r) => toApi(r, counts.get(r.id) ?? 0)),
        page,
        total?.n ?? 0,
      );
    },
  );

  app.get(
    '/api/v1/roles/:name',
    {
      config: { permission: ['roles', 'read'] },
      schema: {
        tags,
        summary: 'Get a role',
        params: NameParams,
        response: { 200: Data(Role), 404: E },
      },
    },
    async (req) => {
      const r = await getRole(req.params.name);
      return { data: toApi(r, (await memberCounts(db(), [r.id])).get(r.id) ?? 0) };
    },
  );

  app.post(
    '/api/v1/roles',
    {
      config: { permission: ['roles', 'create'] },
      schema: {
        tags,
        summary: 'Create a custom role',
        description:
          "Grants name resources and actions of the permission model ('*' for all). A role cannot " +
          'grant anything the caller does not hold (403).',
        body: CreateRole,
        response: { 201: Data(Role), 400: E, 403: E, 409: E },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const grants = normalizeGrants(b.grants);
      assertCanGrant(req, grants, `role '${b.name}'`);
      const [r] = await db()
        .insert(roles)
        .values({ name: b.name, description: b.description ?? '', grants, builtin: false })
        .onConflictDoNothing()
        .returning();
      if (!r) throw conflict(`role '${b.name}' already exists`, { name: b.name });
      await app.ctx.audit({
        action: 'role.create',
        actor: req.principal?.login,
        resourceType: 'roles',
        resourceRef: r.name,
        requestId: req.id,
        ip: req.ip,
        details: { grants },
      });
      return reply.code(201).send({ data: toApi(r, 0) });
    },
  );

  app.put(
    '/api/v1/roles/:name',
    {
      config: { permission: ['roles', 'update'] },
      schema: {
        tags,
        summary: 'Update a custom role (partial)',
        description:
          '`grants` replaces the whole set. Built-in roles answer 409. Identities holding the role get ' +
          'the new grants at once.',
        params: NameParams,
        body: UpdateRole,
        response: { 200: Data(Role), 400: E, 403: E, 404: E, 409: E },
      },
    },
    async (req) => {
      const b = req.body;
      const cur = await getRole(req.params.name);
      if (cur.builtin) throw builtinConflict(cur.name);
      const grants = b.grants === undefined ? undefined : normalizeGrants(b.grants);
      assertCanGrant(req, cur.grants as Grant[], `changing role '${cur.name}'`);
      if (grants) assertCanGrant(req, grants, `role '${cur.name}'`);
      const [r] = await db()
        .update(roles)
        .set({
          ...(b.description !== undefined && { description: b.description }),
          ...(grants !== undefined && { grants }),
          updatedAt: sql`now()`,
        })
        .where(and(eq(roles.id, cur.id), eq(roles.builtin, false)))
        .returning();
      if (!r) throw notFound('role', req.params.name);
      app.ctx.principals.invalidate();
      await app.ctx.audit({
        action: 'role.update',
        actor: req.principal?.login,
        resourceType: 'roles',
        resourceRef: r.name,
        requestId: req.id,
        ip: req.ip,
        details: grants ? { before: cur.grants, grants } : { description: true },
      });
      return { data: toApi(r, (await memberCounts(db(), [r.id])).get(r.id) ?? 0) };
    },
  );

  app.delete(
    '/api/v1/roles/:name',
    {
      config: { permission: ['roles', 'delete'] },
      schema: {
        tags,
        summary: 'Delete a custom role',
        description:
          'Built-in roles answer 409. A role that identities hold answers 409 listing them, unless ' +
          '`?force=true`: then they lose the role.',
        params: NameParams,
        querystring: DeleteQuery,
        response: { 204: Type.Null(), 400: E, 403: E, 404: E, 409: E },
      },
    },
    async (req, reply) => {
      const cur = await getRole(req.params.name);
      if (cur.builtin) throw builtinConflict(cur.name);
      assertCanGrant(req, cur.grants as Grant[], `deleting role '${cur.name}'`);
      const members = await app.ctx.store.transaction(async (tx) => {
        const held = await tx
          .select({ login: identities.login })
          .from(identityRoles)
          .innerJoin(identities, eq(identities.id, identityRoles.identityId))
          .where(eq(identityRoles.roleId, cur.id))
          .orderBy(asc(identities.login));
        if (held.length && !req.query.force)
          throw conflict(
            `role '${cur.name}' is held by ${held.length} identit${held.length === 1 ? 'y' : 'ies'}; ` +
              'remove it from them first or delete with ?force=true',
            { role: cur.name, members: held.slice(0, 100).map((h) => h.login), member_count: held.length },
          );
        await tx.delete(roles).where(and(eq(roles.id, cur.id), eq(roles.builtin, false)));
        return held.map((h) => h.login);
      });
      app.ctx.principals.invalidate();
      await app.ctx.audit({
        action: 'role.delete',
        actor: req.principal?.login,
        resourceType: 'roles',
        resourceRef: cur.name,
        requestId: req.id,
        ip: req.ip,
        details: { grants: cur.grants, removed_from: members },
      });
      return reply.code(204).send(null);
    },
  );
}
