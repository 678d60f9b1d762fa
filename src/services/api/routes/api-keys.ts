/**
 * API keys: `/api/v1/api-keys`. A key authenticates as its identity (`X-API-Key: <key>` or
 * `Authorization: Bearer <key>`). It is shown once, in the create response; the store keeps only
 * its sha256 and its prefix.
 *
 * Access (self-service routes: any authenticated caller, limited to their own keys):
 * - everyone may create, list, read, revoke and delete **their own** keys;
 * - `api_keys:create` is needed to create a key for another identity, and the caller must hold
 *   every permission of that identity (a key is as powerful as its identity);
 * - `api_keys:read` lets the caller see every identity's keys;
 * - `api_keys:delete` lets the caller revoke or delete any identity's keys.
 * Keys the caller may not see answer 404, as if they did not exist.
 */
import { and, count, desc, eq, gt, isNotNull, isNull, lte, or, type SQL, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { conflict, forbidden, notFound } from '../../../domain/errors.ts';
import { apiKeys, identities } from '../../../store/schema.ts';
import { hasPermission, newApiKey } from '../auth.ts';
import { Data, IdParams, iso, List, listBody, PageQuery, pageOf, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';
import { assertCanManage, findIdentity, IDENTITY_REF_PATTERN, isIdentityId } from './identities.ts';

export const MAX_ACTIVE_KEYS_PER_IDENTITY = 100;

const Status = Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('expired')]);
const ApiKey = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  prefix: Type.String({ description: 'the first characters of the key, to tell keys apart' }),
  identity: Type.String({ description: 'login of the identity the key authenticates as' }),
  status: Status,
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
  expires_at: Type.Union([Timestamp, Type.Null()]),
  last_used_at: Type.Union([Timestamp, Type.Null()]),
  revoked_at: Type.Union([Timestamp, Type.Null()]),
});
type ApiKeyView = Static<typeof ApiKey>;
const CreatedApiKey = Type.Object({
  ...ApiKey.properties,
  key: Type.String({ description: 'the key itself: shown only in this response' }),
});

const CreateApiKey = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, description: 'what the key is for' }),
    identity: Type.Optional(
      Type.String({
        pattern: IDENTITY_REF_PATTERN,
        maxLength: 100,
        description: 'login (or id) the key authenticates as; default the caller',
      }),
    ),
    expires_in_days: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 3650, description: 'default: the key does not expire' }),
    ),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  {
    ...PageQuery,
    identity: Type.Optional(
      Type.String({
        pattern: IDENTITY_REF_PATTERN,
        maxLength: 100,
        description: "only this identity's keys, by login or id (others' keys need api_keys:read)",
      }),
    ),
    status: Type.Optional(Type.Union([Status, Type.Literal('all')], { default: 'all' })),
  },
  { additionalProperties: false },
);

interface Joined {
  key: typeof apiKeys.$inferSelect;
  login: string;
}

function statusOf(k: typeof apiKeys.$inferSelect, now = Date.now()): ApiKeyView['status'] {
  if (k.revokedAt) return 'revoked';
  if (k.expiresAt && k.expiresAt.getTime() <= now) return 'expired';
  return 'active';
}

const toApi = ({ key: k, login }: Joined): ApiKeyView => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  identity: login,
  status: statusOf(k),
  created_by: k.createdBy ?? null,
  created_at: iso(k.createdAt)!,
  expires_at: iso(k.expiresAt),
  last_used_at: iso(k.lastUsedAt),
  revoked_at: iso(k.revokedAt),
});

const active = () =>
  and(isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, sql`now()`)));

const tags = ['api-keys'];
const E = { $ref: 'ErrorBody#' };
const ACCESS =
  "Self-service: callers manage their own keys; `api_keys:read` shows every identity's keys and " +
  "`api_keys:delete` revokes or deletes anyone's. Keys the caller may not see answer 404.";

export function registerApiKeyRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  const select = (where: SQL | undefined) =>
    db()
      .select({ key: apiKeys, login: identities.login })
      .from(apiKeys)
      .innerJoin(identities, eq(identities.id, apiKeys.identityId))
      .where(where);

  /** The key if the caller may see it (own key, or api_keys:read), else 404. */
  async function visibleKey(req: FastifyRequest, id: number): Promise<Joined> {
    const [j] = await select(eq(apiKeys.id, id));
    if (!j || (j.key.identityId !== req.principal!.identityId && !hasPermission(req, 'api_keys', 'read')))
      throw notFound('api key', id);
    return j;
  }

  /** The key if the caller may revoke or delete it (own key, or api_keys:delete). */
  async function ownedOrDeletable(req: FastifyRequest, id: number): Promise<Joined> {
    const [j] = await select(eq(apiKeys.id, id));
    const own = j?.key.identityId === req.principal!.identityId;
    if (!j || (!own && !hasPermission(req, 'api_keys', 'read') && !hasPermission(req, 'api_keys', 'delete')))
      throw notFound('api key', id);
    if (!own && !hasPermission(req, 'api_keys', 'delete'))
      throw forbidden(`'${req.principal!.login}' lacks the 'delete' permission on api_keys`);
    return j;
  }

  const audit = (req: FastifyRequest, action: string, j: Joined) =>
    app.ctx.audit({
      action,
      actor: req.principal?.login,
      resourceType: 'api_keys',
      resourceRef: String(j.key.id),
      requestId: req.id,
      ip: req.ip,
      details: { name: j.key.name, prefix: j.key.prefix, identity: j.login },
    });

  app.post(
    '/api/v1/api-keys',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: 'Create an API key',
        description:
          'Answers the key itself once, in `data.key`; it cannot be shown again. Without `identity` ' +
          "the key is the caller's own. A key for another identity needs `api_keys:create` and every " +
          'permission that identity holds (403 otherwise). At most ' +
          `${MAX_ACTIVE_KEYS_PER_IDENTITY} active keys per identity; names are unique among its active keys (409).`,
        body: CreateApiKey,
        response: { 201: Data(CreatedApiKey), 400: E, 403: E, 404: E, 409: E },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const me = req.principal!;
      const target = await findIdentity(db(), b.identity ?? String(me.identityId));
      if (target.id !== me.identityId) {
        if (!hasPermission(req, 'api_keys', 'create'))
          throw forbidden(
            `'${me.login}' lacks the 'create' permission on api_keys needed to create a key for '${target.login}'`,
          );
        await assertCanManage(req, db(), target);
      }
      if (target.disabled)
        throw conflict(`identity '${target.login}' is disabled`, { identity: target.login });
      const made = newApiKey();
      const row = await app.ctx.store.transaction(async (tx) => {
        const live = await tx
          .select({ name: apiKeys.name })
          .from(apiKeys)
          .where(and(eq(apiKeys.identityId, target.id), active()));
        if (live.some((k) => k.name === b.name))
          throw conflict(`'${target.login}' already has an active API key named '${b.name}'`, {
            name: b.name,
            identity: target.login,
          });
        if (live.length >= MAX_ACTIVE_KEYS_PER_IDENTITY)
          throw conflict(`'${target.login}' already has ${live.length} active API keys; revoke some first`, {
            identity: target.login,
            limit: MAX_ACTIVE_KEYS_PER_IDENTITY,
          });
        const [r] = await tx
          .insert(apiKeys)
          .values({
            identityId: target.id,
            name: b.name,
            prefix: made.prefix,
            hash: made.hash,
            createdBy: me.login,
            expiresAt: b.expires_in_days ? new Date(Date.now() + b.expires_in_days * 86_400_000) : null,
          })
          .returning();
        return r!;
      });
      const j = { key: row, login: target.login };
      await audit(req, 'api_key.create', j);
      return reply.code(201).send({ data: { ...toApi(j), key: made.key } });
    },
  );

  app.get(
    '/api/v1/api-keys',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: 'List API keys (never the keys themselves)',
        description: `${ACCESS} Filter by \`identity\` (login) and \`status\`.`,
        querystring: ListQuery,
        response: { 200: List(ApiKey), 400: E, 403: E },
      },
    },
    async (req) => {
      const q = req.query;
      const me = req.principal!;
      const page = pageOf(q);
      const where: SQL[] = [];
      const all = hasPermission(req, 'api_keys', 'read');
      if (q.identity !== undefined) {
        const byId = isIdentityId(q.identity);
        const self = byId ? Number(q.identity) === me.identityId : q.identity === me.login;
        if (!self && !all)
          throw forbidden(
            `'${me.login}' lacks the 'read' permission on api_keys needed to list others' keys`,
          );
        where.push(byId ? eq(apiKeys.identityId, Number(q.identity)) : eq(identities.login, q.identity));
      }
      if (!all) where.push(eq(apiKeys.identityId, me.identityId));
      if (q.status === 'active') where.push(active()!);
      else if (q.status === 'revoked') where.push(isNotNull(apiKeys.revokedAt));
      else if (q.status === 'expired')
        where.push(and(isNull(apiKeys.revokedAt), lte(apiKeys.expiresAt, sql`now()`))!);
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        select(cond).orderBy(desc(apiKeys.id)).limit(page.limit).offset(page.offset),
        db()
          .select({ n: count() })
          .from(apiKeys)
          .innerJoin(identities, eq(identities.id, apiKeys.identityId))
          .where(cond),
      ]);
      return listBody(rows.map(toApi), page, total?.n ?? 0);
    },
  );

  app.get(
    '/api/v1/api-keys/:id',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: 'Get an API key (never the key itself)',
        description: ACCESS,
        params: IdParams,
        response: { 200: Data(ApiKey), 400: E, 404: E },
      },
    },
    async (req) => ({ data: toApi(await visibleKey(req, req.params.id)) }),
  );

  app.post(
    '/api/v1/api-keys/:id/revoke',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: 'Revoke an API key',
        description: `The key stops working at once and stays listed as revoked. Idempotent. ${ACCESS}`,
        params: IdParams,
        response: { 200: Data(ApiKey), 400: E, 403: E, 404: E },
      },
    },
    async (req) => {
      const j = await ownedOrDeletable(req, req.params.id);
      if (j.key.revokedAt) return { data: toApi(j) };
      const [r] = await db()
        .update(apiKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(apiKeys.id, j.key.id), isNull(apiKeys.revokedAt)))
        .returning();
      const out = { key: r ?? (await select(eq(apiKeys.id, j.key.id)))[0]!.key, login: j.login };
      if (r) await audit(req, 'api_key.revoke', out);
      return { data: toApi(out) };
    },
  );

  app.delete(
    '/api/v1/api-keys/:id',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: 'Delete an API key',
        description: `The key stops working at once and is removed from the list. ${ACCESS}`,
        params: IdParams,
        response: { 204: Type.Null(), 400: E, 403: E, 404: E },
      },
    },
    async (req, reply) => {
      const j = await ownedOrDeletable(req, req.params.id);
      await db().delete(apiKeys).where(eq(apiKeys.id, j.key.id));
      await audit(req, 'api_key.delete', j);
      return reply.code(204).send(null);
    },
  );
}
