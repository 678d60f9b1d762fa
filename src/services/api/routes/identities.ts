/**
 * Identities: `/api/v1/identities`. Users log in with a password; service accounts (`kind:
 * 'service'`) have none and authenticate with API keys. Password hashes never leave the store.
 *
 * Guards: nobody deletes or disables themselves; the last enabled admin cannot be deleted,
 * disabled or lose the admin role; and nobody can assign roles, or manage an identity, that
 * holds permissions they do not hold themselves.
 */
import { and, asc, count, eq, inArray, ne, type SQL, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { conflict, notFound, validationError } from '../../../domain/errors.ts';
import type { Grant } from '../../../domain/permissions.ts';
import type { Db, Tx } from '../../../store/database.ts';
import { identities, identityRoles, keys, roles } from '../../../store/schema.ts';
import { hashPassword, revokeRefreshTokens } from '../auth.ts';
import { Data, iso, List, likeEscape, listBody, PageQuery, pageOf, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';
import { assertCanGrant, resolveRoles } from './roles.ts';

/** Letters, digits and `._@+-`; not all digits (so `/identities/{id or login}` is unambiguous). */
export const LOGIN_PATTERN = '^(?![0-9]+$)[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$';
export const MIN_PASSWORD = 8;
export const Password = Type.String({ minLength: MIN_PASSWORD, maxLength: 1000 });

export const Identity = Type.Object({
  id: Type.Integer(),
  login: Type.String(),
  display_name: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  kind: Type.Union([Type.Literal('user'), Type.Literal('service')]),
  disabled: Type.Boolean(),
  roles: Type.Array(Type.String()),
  has_password: Type.Boolean(),
  last_login_at: Type.Union([Timestamp, Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type IdentityView = Static<typeof Identity>;

const Email = Type.String({ format: 'email', maxLength: 320 });
const Roles = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 100, uniqueItems: true });
const CreateIdentity = Type.Object(
  {
    login: Type.String({ pattern: LOGIN_PATTERN, maxLength: 100 }),
    kind: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('service')], { default: 'user' })),
    password: Type.Optional(Password),
    display_name: Type.Optional(Type.String({ maxLength: 200 })),
    email: Type.Optional(Type.Union([Email, Type.Null()])),
    roles: Type.Optional(Roles),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const UpdateIdentity = Type.Object(
  {
    display_name: Type.Optional(Type.String({ maxLength: 200 })),
    email: Type.Optional(Type.Union([Email, Type.Null()])),
    disabled: Type.Optional(Type.Boolean()),
    roles: Type.Optional(Roles),
    password: Type.Optional(Password),
  },
  { additionalProperties: false, minProperties: 1 },
);
/** A numeric id or a login, as a path parameter or a reference in a body. */
export const IDENTITY_REF_PATTERN = '^(?:[0-9]{1,20}|[A-Za-z0-9][A-Za-z0-9._@+-]{0,99})$';
export const isIdentityId = (s: string): boolean => /^[0-9]{1,15}$/.test(s);
const IdentityRef = Type.String({
  pattern: IDENTITY_REF_PATTERN,
  maxLength: 100,
  description: 'numeric id or login',
});
const IdentityParams = Type.Object({ id: IdentityRef });
const ListQuery = Type.Object(
  {
    ...PageQuery,
    search: Type.Optional(
      Type.String({ maxLength: 200, description: 'matches login, display name or email' }),
    ),
    kind: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('service')])),
    role: Type.Optional(Type.String({ maxLength: 100, description: 'only holders of this role' })),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

type Row = typeof identities.$inferSelect;

export async function rolesOf(db: Db | Tx, ids: number[]): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  if (!ids.length) return out;
  const rows = await db
    .select({ identityId: identityRoles.identityId, name: roles.name })
    .from(identityRoles)
    .innerJoin(roles, eq(roles.id, identityRoles.roleId))
    .where(inArray(identityRoles.identityId, ids))
    .orderBy(asc(roles.name));
  for (const r of rows) out.set(r.identityId, [...(out.get(r.identityId) ?? []), r.name]);
  return out;
}

export const identityToApi = (r: Row, roleNames: string[]): IdentityView => ({
  id: r.id,
  login: r.login,
  display_name: r.displayName,
  email: r.email ?? null,
  kind: r.kind === 'service' ? 'service' : 'user',
  disabled: r.disabled,
  roles: roleNames,
  has_password: !!r.passwordHash,
  last_login_at: iso(r.lastLoginAt),
  created_at: iso(r.createdAt)!,
  updated_at: iso(r.updatedAt)!,
});

/** The identity named by a numeric id or a login, or a 404. */
export async function findIdentity(db: Db | Tx, idOrLogin: string): Promise<Row> {
  const cond = isIdentityId(idOrLogin)
    ? eq(identities.id, Number(idOrLogin))
    : eq(identities.login, idOrLogin);
  const [r] = await db.select().from(identities).where(cond);
  if (!r) throw notFound('identity', idOrLogin);
  return r;
}

/** All grants of an identity's roles, whether or not it is disabled. */
export async function grantsOf(db: Db | Tx, identityId: number): Promise<Grant[]> {
  const rs = await db
    .select({ grants: roles.grants })
    .from(identityRoles)
    .innerJoin(roles, eq(roles.id, identityRoles.roleId))
    .where(eq(identityRoles.identityId, identityId));
  return rs.flatMap((r) => r.grants as Grant[]);
}

/** Throws 403 unless the caller holds every permission the target identity holds. */
export async function assertCanManage(req: FastifyRequest, db: Db, target: Row): Promise<void> {
  assertCanGrant(req, await grantsOf(db, target.id), `managing '${target.login}'`);
}

/**
 * Within a transaction: throws 409 when `identityId` is an enabled admin and no other enabled
 * admin would remain. Locks the admin role row so that concurrent changes are serialised.
 */
async function assertNotLastAdmin(tx: Tx, identityId: number, verb: string): Promise<void> {
  const [admin] = await tx.select({ id: roles.id }).from(roles).where(eq(roles.name, 'admin')).for('update');
  if (!admin) return;
  const holders = await tx
    .select({ id: identities.id })
    .from(identityRoles)
    .innerJoin(identities, eq(identities.id, identityRoles.identityId))
    .where(and(eq(identityRoles.roleId, admin.id), eq(identities.disabled, false)));
  if (holders.some((h) => h.id === identityId) && holders.length <= 1)
    throw conflict(`cannot ${verb} the last enabled admin`, { reason: 'last_admin' });
}

const tags = ['identities'];
const E = { $ref: 'ErrorBody#' };

export function registerIdentityRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  const audit = (req: FastifyRequest, action: string, ref: string, details: Record<string, unknown> = {}) =>
    app.ctx.audit({
      action,
      actor: req.principal?.login,
      resourceType: 'identities',
      resourceRef: ref,
      requestId: req.id,
      ip: req.ip,
      details,
    });
  const view = async (r: Row) => identityToApi(r, (await rolesOf(db(), [r.id])).get(r.id) ?? []);

  /** 409 when another identity's login differs from `login` only by letter case. */
  async function assertLoginFree(login: string): Promise<void> {
    const [hit] = await db()
      .select({ login: identities.login })
      .from(identities)
      .where(sql`lower(${identities.login}) = lower(${login})`);
    if (hit)
      throw conflict(
        hit.login === login
          ? `identity '${login}' already exists`
          : `login '${login}' is too similar to the existing '${hit.login}'`,
        { login },
      );
  }

  app.get(
    '/api/v1/identities',
    {
      config: { permission: ['identities', 'read'] },
      schema: {
        tags,
        summary: 'List identities',
        description: 'Users and service accounts by login, with their roles. Never includes password hashes.',
        querystring: ListQuery,
        response: { 200: List(Identity), 400: E },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageOf(q);
      const where: SQL[] = [];
      if (q.kind) where.push(eq(identities.kind, q.kind));
      if (q.disabled !== undefined) where.push(eq(identities.disabled, q.disabled));
      if (q.search) {
        const pat = `%${likeEscape(q.search)}%`;
        where.push(
          sql`(${identities.login} ILIKE ${pat} OR ${identities.displayName} ILIKE ${pat} OR ${identities.email} ILIKE ${pat})`,
        );
      }
      if (q.role)
        where.push(
          sql`${identities.id} IN (SELECT ${identityRoles.identityId} FROM ${identityRoles} JOIN ${roles} ON ${roles.id} = ${identityRoles.roleId} WHERE ${roles.name} = ${q.role})`,
        );
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        db()
          .select()
          .from(identities)
          .where(cond)
          .orderBy(asc(identities.login))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(identities).where(cond),
      ]);
      const rs = await rolesOf(
        db(),
        rows.map((r) => r.id),
      );
      return listBody(
        rows.map((r) => identityToApi(r, rs.get(r.id) ?? [])),
        page,
        total?.n ?? 0,
      );
    },
  );

  app.get(
    '/api/v1/identities/:id',
    {
      config: { permission: ['identities', 'read'] },
      schema: {
        tags,
        summary: 'Get an identity by id or login',
        params: IdentityParams,
        response: { 200: Data(Identity), 404: E },
      },
    },
    async (req) => ({ data: await view(await findIdentity(db(), req.params.id)) }),
  );

  app.post(
    '/api/v1/identities',
    {
      config: { permission: ['identities', 'create'] },
      schema: {
        tags,
        summary: 'Create a user or a service account',
        description:
          `A user (\`kind: 'user'\`, the default) needs a password of at least ${MIN_PASSWORD} characters; ` +
          "a service account (`kind: 'service'`) has none and authenticates with API keys. `roles` are " +
          'role names (404 for unknown ones); assigning a role that grants more than the caller holds ' +
          'is refused (403).',
        body: CreateIdentity,
        response: { 201: Data(Identity), 400: E, 403: E, 404: E, 409: E },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const kind = b.kind ?? 'user';
      if (kind === 'user' && b.password === undefined)
        throw validationError('a user needs a password (service accounts have none)', {
          field: 'password',
        });
      if (kind === 'service' && b.password !== undefined)
        throw validationError('a service account has no password; it authenticates with API keys', {
          field: 'password',
        });
      const rs = await resolveRoles(db(), b.roles ?? []);
      assertCanGrant(
        req,
        rs.flatMap((r) => r.grants),
        `giving roles ${rs.map((r) => `'${r.name}'`).join(', ')}`,
      );
      await assertLoginFree(b.login);
      const passwordHash = b.password === undefined ? null : await hashPassword(b.password);
      const row = await app.ctx.store.transaction(async (tx) => {
        const [r] = await tx
          .insert(identities)
          .values({
            login: b.login,
            kind,
            passwordHash,
            displayName: b.display_name ?? b.login,
            email: b.email ?? null,
            disabled: b.disabled ?? false,
          })
          .onConflictDoNothing()
          .returning();
        if (!r) throw conflict(`identity '${b.login}' already exists`, { login: b.login });
        if (rs.length)
          await tx.insert(identityRoles).values(rs.map((x) => ({ identityId: r.id, roleId: x.id })));
        return r;
      });
      await audit(req, 'identity.create', row.login, { kind, roles: rs.map((r) => r.name) });
      return reply.code(201).send({ data: identityToApi(row, rs.map((r) => r.name).sort()) });
    },
  );

  app.put(
    '/api/v1/identities/:id',
    {
      config: { permission: ['identities', 'update'] },
      schema: {
        tags,
        summary: 'Update an identity (partial)',
        description:
          "`roles` replaces the whole set; `password` resets a user's password and ends their sessions; " +
          '`disabled: true` blocks login and every existing token and key at once. Refused with 409: ' +
          'disabling yourself, or removing the last enabled admin. Refused with 403: changing an ' +
          'identity, or giving roles, with permissions the caller does not hold.',
        params: IdentityParams,
        body: UpdateIdentity,
        response: { 200: Data(Identity), 400: E, 403: E, 404: E, 409: E },
      },
    },
    async (req) => {
      const b = req.body;
      const me = req.principal!;
      const cur = await findIdentity(db(), req.params.id);
      await assertCanManage(req, db(), cur);
      if (b.disabled === true && cur.id === me.identityId)
        throw conflict('you cannot disable yourself', { reason: 'self' });
      if (b.password !== undefined && cur.kind === 'service')
        throw validationError('a service account has no password; it authenticates with API keys', {
          field: 'password',
        });
      const rs = b.roles === undefined ? undefined : await resolveRoles(db(), b.roles);
      if (rs)
        assertCanGrant(
          req,
          rs.flatMap((r) => r.grants),
          `giving roles ${rs.map((r) => `'${r.name}'`).join(', ')}`,
        );
      const passwordHash = b.password === undefined ? undefined : await hashPassword(b.password);
      const losesAdmin = b.disabled === true || (rs !== undefined && !rs.some((r) => r.name === 'admin'));
      const row = await app.ctx.store.transaction(async (tx) => {
        if (losesAdmin && !cur.disabled) await assertNotLastAdmin(tx, cur.id, 'disable or demote');
        const [r] = await tx
          .update(identities)
          .set({
            ...(b.display_name !== undefined && { displayName: b.display_name }),
            ...(b.email !== undefined && { email: b.email }),
            ...(b.disabled !== undefined && { disabled: b.disabled }),
            ...(passwordHash !== undefined && { passwordHash }),
            updatedAt: sql`now()`,
          })
          .where(eq(identities.id, cur.id))
          .returning();
        if (!r) throw notFound('identity', req.params.id);
        if (rs) {
          await tx.delete(identityRoles).where(eq(identityRoles.identityId, r.id));
          if (rs.length)
            await tx.insert(identityRoles).values(rs.map((x) => ({ identityId: r.id, roleId: x.id })));
        }
        if (b.disabled === true || passwordHash !== undefined) await revokeRefreshTokens(tx, r.id);
        return r;
      });
      app.ctx.principals.invalidate();
      await audit(req, 'identity.update', row.login, {
        fields: Object.keys(b).sort(),
        ...(rs && { roles: rs.map((r) => r.name).sort() }),
        ...(b.disabled !== undefined && { disabled: b.disabled }),
      });
      return { data: await view(row) };
    },
  );

  app.delete(
    '/api/v1/identities/:id',
    {
      config: { permission: ['identities', 'delete'] },
      schema: {
        tags,
        summary: 'Delete an identity',
        description:
          'Its API keys and sessions go with it. Refused with 409 for yourself and for the last ' +
          'enabled admin; with 403 for an identity holding permissions the caller does not hold.',
        params: IdentityParams,
        response: { 204: Type.Null(), 403: E, 404: E, 409: E },
      },
    },
    async (req, reply) => {
      const cur = await findIdentity(db(), req.params.id);
      if (cur.id === req.principal!.identityId)
        throw conflict('you cannot delete yourself', { reason: 'self' });
      await assertCanManage(req, db(), cur);
      await app.ctx.store.transaction(async (tx) => {
        if (!cur.disabled) await assertNotLastAdmin(tx, cur.id, 'delete');
        await tx
          .delete(identities)
          .where(and(eq(identities.id, cur.id), ne(identities.id, req.principal!.identityId)));
        // User-scope keys are owned by login: they go with their owner, so a later identity with the
        // same login does not inherit them.
        await tx.delete(keys).where(and(eq(keys.scope, 'user'), eq(keys.owner, cur.login)));
      });
      app.ctx.principals.invalidate();
      await audit(req, 'identity.delete', cur.login, { kind: cur.kind });
      return reply.code(204).send(null);
    },
  );
}
