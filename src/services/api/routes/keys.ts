/**
 * The key datastore: `/api/v1/keys`. Keys are addressed by name within a scope:
 * - `system` (the default): shared by the whole instance;
 * - `user`: owned by one identity and visible to it alone. A caller's own user-scope keys are its
 *   default `owner`; naming another `owner` needs the `identities:update` permission as well (whoever
 *   may manage an identity may manage its keys — admins, among the built-in roles).
 *
 * Access follows the `keys` grants in both scopes: `read` to list and get, `create`/`update`/`delete`
 * to change, and `decrypt` to see the plaintext of an encrypted value (`?decrypt=true` on a single
 * key; listings never show it). Every disclosure of a plaintext is audited as `key.decrypt`, and
 * every change as `key.create`/`key.update`/`key.delete`; audit entries never hold values.
 */

import { eq } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { AppError, conflict, forbidden, notFound, validationError } from '../../../domain/errors.ts';
import type { Db } from '../../../store/database.ts';
import { identities } from '../../../store/schema.ts';
import { emitInternalEvent } from '../../events/create-event.ts';
import {
  KEY_NAME_PATTERN,
  type KeyId,
  type KeyRow,
  type KeyScope,
  KeyStore,
  MAX_KEY_TTL_SECONDS,
} from '../../keys/key-store.ts';
import { RuleIndex } from '../../rules-engine/rule-index.ts';
import { hasPermission, requirePermission } from '../auth.ts';
import { Data, iso, List, listBody, PageQuery, pageOf, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';

const Scope = Type.Union([Type.Literal('system'), Type.Literal('user')], {
  description: "'system' (shared) or 'user' (the owner's own)",
});
const Owner = Type.String({
  minLength: 1,
  maxLength: 255,
  description: "Login of a user-scope key's owner; defaults to the caller. Implies scope 'user'.",
});
const KeyName = Type.String({ pattern: KEY_NAME_PATTERN, description: 'Letters, digits, _ . : - (1–255)' });
const Ttl = Type.Integer({
  minimum: 1,
  maximum: MAX_KEY_TTL_SECONDS,
  description: 'Seconds until the key vanishes',
});
const Description = Type.String({ maxLength: 10_000 });

const Key = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  scope: Scope,
  owner: Type.Union([Type.String(), Type.Null()], { description: 'null for system-scope keys' }),
  value: Type.Unknown({
    description: 'The JSON value; null when it is withheld (see `masked`)',
  }),
  encrypted: Type.Boolean(),
  masked: Type.Boolean({
    description: 'true when the value is encrypted and was not decrypted for this response',
  }),
  description: Type.String(),
  expires_at: Type.Union([Timestamp, Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
});
type KeyBody = Static<typeof Key>;

const NameParams = Type.Object({ name: KeyName });
const WhichQuery = Type.Object(
  { scope: Type.Optional(Scope), owner: Type.Optional(Owner) },
  { additionalProperties: false },
);
const GetQuery = Type.Object(
  {
    scope: Type.Optional(Scope),
    owner: Type.Optional(Owner),
    decrypt: Type.Optional(
      Type.Boolean({ description: 'Return the plaintext of an encrypted value (needs keys:decrypt)' }),
    ),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  {
    ...PageQuery,
    scope: Type.Optional(Scope),
    owner: Type.Optional(Owner),
    prefix: Type.Optional(Type.String({ maxLength: 255, description: 'Names starting with this text' })),
    search: Type.Optional(
      Type.String({ maxLength: 200, description: 'Text in the name or description (case-insensitive)' }),
    ),
  },
  { additionalProperties: false },
);
const CreateKey = Type.Object(
  {
    name: KeyName,
    value: Type.Unknown({ description: 'Any JSON value' }),
    encrypted: Type.Optional(Type.Boolean({ default: false })),
    description: Type.Optional(Description),
    ttl: Type.Optional(Ttl),
    scope: Type.Optional(Scope),
    owner: Type.Optional(Owner),
  },
  { additionalProperties: false },
);
const UpdateKey = Type.Object(
  {
    value: Type.Optional(Type.Unknown({ description: 'Any JSON value' })),
    encrypted: Type.Optional(Type.Boolean()),
    description: Type.Optional(Description),
    ttl: Type.Optional(Type.Union([Ttl, Type.Null()], { description: 'Seconds from now; null = never' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

const tags = ['keys'];
const err = { $ref: 'ErrorBody#' };
const errors = { 400: err, 404: err };

const keyDetails = (id: KeyId) => ({
  name: id.name,
  scope: id.scope,
  ...(id.scope === 'user' && { owner: id.owner }),
});

/**
 * The (scope, owner) a request addresses. `owner` implies the user scope; another identity's keys
 * need `identities:update`.
 */
function addressOf(req: FastifyRequest, scope: KeyScope | undefined, owner: string | undefined) {
  const s: KeyScope = scope ?? (owner !== undefined ? 'user' : 'system');
  if (s === 'system') {
    if (owner !== undefined)
      throw validationError("'owner' applies only to user-scope keys", { scope: s, owner });
    return { scope: s, owner: '' };
  }
  const me = req.principal!.login;
  if (owner === undefined || owner === me) return { scope: s, owner: me };
  if (!hasPermission(req, 'identities', 'update'))
    throw forbidden(`'${me}' may not access the user-scope keys of another identity`);
  return { scope: s, owner };
}

/** The internal trigger fired when a key is created, updated or deleted through the API. */
export const KEY_CHANGED_TRIGGER = 'core.key_changed';

export function registerKeyRoutes(app: ApiApp): void {
  const keyStore = new KeyStore(app.ctx.store, app.ctx.cipher);

  // Which rules listen to key changes: cached per trigger, dropped on definition changes once the
  // process has a bus (the platform sets it after the API starts), within 5 s otherwise.
  const ruleIndex = new RuleIndex(app.ctx.store.db);
  let following = false;
  const listeners = (): RuleIndex => {
    const bus = app.ctx.bus;
    if (!following && bus) {
      following = true;
      ruleIndex.attach(bus).catch((err: unknown) => {
        following = false;
        app.log.warn({ err }, 'key routes: cannot follow definition changes');
      });
    }
    return ruleIndex;
  };
  app.addHook('onClose', async () => ruleIndex.detach());

  /**
   * `core.key_changed`, in the transaction of the change, when a rule listens: `{name, scope, owner
   * (user scope), action: created|updated|deleted, operation: set|deleted, encrypted}` — never the value.
   */
  const keyChanged = async (
    tx: Db,
    req: FastifyRequest,
    id: KeyId,
    action: 'created' | 'updated' | 'deleted',
    encrypted: boolean,
  ): Promise<boolean> => {
    const ev = await emitInternalEvent(
      tx,
      KEY_CHANGED_TRIGGER,
      {
        name: id.name,
        scope: id.scope,
        ...(id.scope === 'user' && { owner: id.owner }),
        action,
        operation: action === 'deleted' ? 'deleted' : 'set',
        encrypted,
      },
      { rules: listeners(), createdBy: req.principal?.login ?? null, log: req.log },
    );
    return ev !== undefined;
  };

  const toApi = (r: KeyRow, reveal: boolean): KeyBody => {
    const shown = !r.encrypted || reveal;
    return {
      id: r.id,
      name: r.name,
      scope: r.scope === 'user' ? 'user' : 'system',
      owner: r.scope === 'user' ? r.owner : null,
      value: shown ? keyStore.reveal(r) : null,
      encrypted: r.encrypted,
      masked: !shown,
      description: r.description,
      expires_at: iso(r.expiresAt),
      created_at: iso(r.createdAt)!,
      updated_at: iso(r.updatedAt)!,
    };
  };

  const audit = (req: FastifyRequest, action: string, id: KeyId, details: Record<string, unknown> = {}) =>
    app.ctx.audit({
      action,
      actor: req.principal?.login,
      resourceType: 'keys',
      resourceRef: id.name,
      requestId: req.id,
      ip: req.ip,
      details: { ...keyDetails(id), ...details },
    });

  /** Housekeeping after a write; a failure here must not fail the write. */
  const sweep = () => keyStore.sweepExpired().catch(() => 0);

  const notFoundKey = (id: KeyId) =>
    new AppError(
      'NOT_FOUND',
      id.scope === 'user' ? `key '${id.name}' of user '${id.owner}' not found` : `key '${id.name}' not found`,
      { resource: 'key', ...keyDetails(id) },
    );

  /** A user-scope key may only be created for an identity that exists. */
  const assertOwnerExists = async (req: FastifyRequest, id: KeyId, db: Db = app.ctx.store.db) => {
    if (id.scope !== 'user' || id.owner === req.principal!.login) return;
    const [who] = await db
      .select({ id: identities.id })
      .from(identities)
      .where(eq(identities.login, id.owner));
    if (!who) throw notFound('identity', id.owner);
  };

  app.get(
    '/api/v1/keys',
    {
      config: { permission: ['keys', 'read'] },
      schema: {
        tags,
        summary: 'List keys',
        description:
          'Without `scope`: the system keys and the caller’s own user keys. `scope=user` lists the ' +
          'caller’s user keys; `owner=<login>` lists that identity’s user keys (needs identities:update ' +
          'for someone else). Encrypted values are never shown here: `value` is null and `masked` true. ' +
          'Expired keys are never listed. Needs keys:read.',
        querystring: ListQuery,
        response: { 200: List(Key), 400: err, 403: err },
      },
    },
    async (req) => {
      const q = req.query;
      const me = req.principal!.login;
      let within: { scope: KeyScope; owner: string }[];
      if (q.owner !== undefined || q.scope !== undefined) within = [addressOf(req, q.scope, q.owner)];
      else
        within = [
          { scope: 'system', owner: '' },
          { scope: 'user', owner: me },
        ];
      const page = pageOf(q);
      const { rows, total } = await keyStore.list({
        within,
        prefix: q.prefix,
        search: q.search,
        limit: page.limit,
        offset: page.offset,
      });
      return listBody(
        rows.map((r) => toApi(r, false)),
        page,
        total,
      );
    },
  );

  app.get(
    '/api/v1/keys/:name',
    {
      config: { permission: ['keys', 'read'] },
      schema: {
        tags,
        summary: 'Get a key',
        description:
          'Scope `system` unless `scope=user` or `owner` is given. An encrypted value is withheld ' +
          '(`value` null, `masked` true) unless `decrypt=true`, which needs keys:decrypt and is audited. ' +
          'Needs keys:read.',
        params: NameParams,
        querystring: GetQuery,
        response: { 200: Data(Key), ...errors, 403: err, 422: err },
      },
    },
    async (req) => {
      const q = req.query;
      // Checked before the lookup, so a refusal says nothing about the key.
      if (q.decrypt) requirePermission(req, 'keys', 'decrypt');
      const id = { ...addressOf(req, q.scope, q.owner), name: req.params.name };
      const row = await keyStore.find(id);
      if (!row) throw notFoundKey(id);
      const reveal = !!q.decrypt && row.encrypted;
      const body = toApi(row, reveal);
      if (reveal) await audit(req, 'key.decrypt', id);
      return { data: body };
    },
  );

  app.post(
    '/api/v1/keys',
    {
      config: { permission: ['keys', 'create'] },
      schema: {
        tags,
        summary: 'Create a key',
        description:
          '`value` is any JSON value; with `encrypted: true` it is stored encrypted (AES-256-GCM) and ' +
          'the response withholds it. `ttl` (seconds) makes the key vanish after that time. ' +
          'Scope `system` unless `scope: "user"` or `owner` is given. Needs keys:create. 409 when ' +
          'the name is taken in that scope.',
        body: CreateKey,
        response: { 201: Data(Key), ...errors, 403: err, 409: err, 413: err },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const id = { ...addressOf(req, b.scope, b.owner), name: b.name };
      await assertOwnerExists(req, id);
      let fired = false;
      const row = await app.ctx.store.transaction(async (tx) => {
        const created = await keyStore.create(
          id,
          {
            value: b.value,
            encrypted: b.encrypted ?? false,
            ...(b.description !== undefined && { description: b.description }),
            ...(b.ttl !== undefined && { ttlSeconds: b.ttl }),
          },
          tx,
        );
        if (created) fired = await keyChanged(tx, req, id, 'created', created.encrypted);
        return created;
      });
      if (fired) app.ctx.outbox?.kick();
      if (!row)
        throw conflict(
          id.scope === 'user'
            ? `key '${id.name}' already exists for user '${id.owner}'`
            : `key '${id.name}' already exists`,
          keyDetails(id),
        );
      await audit(req, 'key.create', id, { encrypted: row.encrypted });
      await sweep();
      return reply.code(201).send({ data: toApi(row, false) });
    },
  );

  app.put(
    '/api/v1/keys/:name',
    {
      config: { permission: ['keys', 'update'] },
      schema: {
        tags,
        summary: 'Update a key (partial), or create it',
        description:
          'Changes only the fields given. Changing `encrypted` alone re-encodes the stored value; ' +
          'turning encryption off without giving a new value discloses it to every reader and so ' +
          'needs keys:decrypt (audited). `ttl: null` removes the expiry. When no such key exists and ' +
          '`value` is given, the key is created (201, needs keys:create too); otherwise 404. ' +
          'Needs keys:update.',
        params: NameParams,
        querystring: WhichQuery,
        body: UpdateKey,
        response: { 200: Data(Key), 201: Data(Key), ...errors, 403: err, 413: err, 422: err },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const id = { ...addressOf(req, req.query.scope, req.query.owner), name: req.params.name };
      const outcome = await app.ctx.store.transaction(async (tx) => {
        const cur = await keyStore.find(id, tx);
        if (cur?.encrypted && b.encrypted === false && b.value === undefined)
          requirePermission(req, 'keys', 'decrypt');
        const updated = await keyStore.update(
          id,
          {
            ...(b.value !== undefined && { value: b.value }),
            ...(b.encrypted !== undefined && { encrypted: b.encrypted }),
            ...(b.description !== undefined && { description: b.description }),
            ...(b.ttl !== undefined && { ttlSeconds: b.ttl }),
          },
          tx,
        );
        if (updated) {
          const fired = await keyChanged(tx, req, id, 'updated', updated.encrypted);
          return { row: updated, created: false, decrypted: !!cur?.encrypted && !updated.encrypted, fired };
        }
        if (b.value === undefined) throw notFoundKey(id);
        requirePermission(req, 'keys', 'create');
        await assertOwnerExists(req, id, tx);
        const created = await keyStore.create(
          id,
          {
            value: b.value,
            encrypted: b.encrypted ?? false,
            ...(b.description !== undefined && { description: b.description }),
            ...(b.ttl !== undefined && b.ttl !== null && { ttlSeconds: b.ttl }),
          },
          tx,
        );
        if (!created) throw conflict(`key '${id.name}' was created concurrently; try again`, keyDetails(id));
        const fired = await keyChanged(tx, req, id, 'created', created.encrypted);
        return { row: created, created: true, decrypted: false, fired };
      });
      if (outcome.fired) app.ctx.outbox?.kick();
      if (outcome.decrypted && b.value === undefined)
        await audit(req, 'key.decrypt', id, { reason: 'encryption turned off' });
      await audit(req, outcome.created ? 'key.create' : 'key.update', id, {
        fields: Object.keys(b).sort(),
        encrypted: outcome.row.encrypted,
      });
      await sweep();
      return reply.code(outcome.created ? 201 : 200).send({ data: toApi(outcome.row, false) });
    },
  );

  app.delete(
    '/api/v1/keys/:name',
    {
      config: { permission: ['keys', 'delete'] },
      schema: {
        tags,
        summary: 'Delete a key',
        description: 'Scope `system` unless `scope=user` or `owner` is given. Needs keys:delete.',
        params: NameParams,
        querystring: WhichQuery,
        response: { 204: Type.Null(), ...errors, 403: err },
      },
    },
    async (req, reply) => {
      const id = { ...addressOf(req, req.query.scope, req.query.owner), name: req.params.name };
      const fired = await app.ctx.store.transaction(async (tx) => {
        const cur = await keyStore.find(id, tx);
        if (!cur || !(await keyStore.delete(id, tx))) throw notFoundKey(id);
        return keyChanged(tx, req, id, 'deleted', cur.encrypted);
      });
      if (fired) app.ctx.outbox?.kick();
      await audit(req, 'key.delete', id);
      await sweep();
      return reply.code(204).send(null);
    },
  );
}
