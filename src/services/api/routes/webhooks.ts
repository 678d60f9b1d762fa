/**
 * Webhooks: `POST /api/v1/webhooks/{name}` receives a call and turns it into an event (of
 * `core.webhook`, or of the webhook's own trigger) — public, since callers authenticate with an HMAC
 * signature when the webhook has a secret. The management routes (`/api/v1/webhooks`, resource
 * `webhooks`) define webhooks, their secrets and limits, and read their call log.
 *
 * Receiving, in order (every outcome is logged in `webhook_calls`):
 * 1. unknown or disabled webhook → 404 (both say "not found");
 * 2. over the webhook's rate limit → 429 with `Retry-After`;
 * 3. body larger than the webhook's limit (declared or read) → 413;
 * 4. HMAC signature missing or wrong, when the webhook has a secret → 401;
 * 5. body unreadable (invalid JSON for a JSON content type, NUL characters) → 400;
 * 6. the trigger refuses the event (disabled: 422, payload_schema: 400) → that error;
 * 7. otherwise the event is created with its outbox message and the call log row, in one
 *    transaction → 202 `{data: {event_id}}`.
 * The body is read raw (any content type) in an encapsulated scope, so the signature is checked over
 * the exact bytes sent and the per-webhook size limit applies while reading.
 */
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { and, count, desc, eq, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import type { JsonValue } from '../../../bus/bus.ts';
import {
  AppError,
  conflict,
  type ErrorCode,
  STATUS_OF,
  unprocessable,
  validationError,
} from '../../../domain/errors.ts';
import { triggers, webhookCalls, webhooks } from '../../../store/schema.ts';
import { createEvents } from '../../events/create-event.ts';
import { checkSignature, HMAC_ALGORITHMS, type HmacAlgorithm } from '../../webhooks/signature.ts';
import { buildWebhookPayload } from '../../webhooks/webhook-payload.ts';
import {
  type CallRecord,
  configOf,
  DEFAULT_MAX_PAYLOAD_BYTES,
  findWebhook,
  listWebhooks,
  MAX_PAYLOAD_LIMIT,
  rulesUsing,
  WEBHOOK_NAME_PATTERN,
  WEBHOOK_TRIGGER,
  WebhookCallLog,
  type WebhookConfig,
  WebhookRateLimits,
} from '../../webhooks/webhook-registry.ts';
import { missingRefs } from '../definitions.ts';
import { Data, iso, List, listBody, PageQuery, pageOf, Ref, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';

const Algorithm = Type.Union([Type.Literal('sha256'), Type.Literal('sha512')], {
  description: `HMAC hash function: ${HMAC_ALGORITHMS.join(' or ')}`,
});
const HeaderName = Type.String({
  pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$",
  description: 'Request header carrying the signature (case-insensitive); default x-attune-signature',
});
const Secret = Type.String({
  minLength: 8,
  maxLength: 1024,
  description: 'The shared secret (stored encrypted; never returned)',
});
const PayloadLimit = Type.Integer({
  minimum: 1,
  maximum: MAX_PAYLOAD_LIMIT,
  description: `Largest request body accepted, in bytes (default ${DEFAULT_MAX_PAYLOAD_BYTES}, at most ${MAX_PAYLOAD_LIMIT})`,
});
const RateLimit = Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Calls accepted per minute' });
const WebhookName = Type.String({
  pattern: WEBHOOK_NAME_PATTERN,
  description: 'Lower-case letters, digits, _ and - (1–100)',
});

const Webhook = Type.Object({
  name: Type.String(),
  url: Type.String({ description: 'Path to POST calls to' }),
  trigger_ref: Type.String(),
  description: Type.String(),
  enabled: Type.Boolean(),
  implicit: Type.Boolean({
    description:
      'true when not defined here but used by an enabled core.webhook rule (no signature, default limits)',
  }),
  hmac: Type.Union([Type.Object({ algorithm: Algorithm, header: Type.String() }), Type.Null()], {
    description: 'Signature settings; null when calls need no signature',
  }),
  max_payload_bytes: Type.Integer(),
  rate_limit_per_minute: Type.Union([Type.Integer(), Type.Null()]),
  rule_refs: Type.Array(Type.String(), { description: 'Enabled rules selecting this webhook by name' }),
  created_at: Type.Union([Timestamp, Type.Null()]),
  updated_at: Type.Union([Timestamp, Type.Null()]),
});
type WebhookBody = Static<typeof Webhook>;

const CreateWebhook = Type.Object(
  {
    name: WebhookName,
    trigger: Type.Optional({ ...Ref, description: `Trigger of the events (default ${WEBHOOK_TRIGGER})` }),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    enabled: Type.Optional(Type.Boolean()),
    hmac: Type.Optional(
      Type.Union([
        Type.Object(
          { secret: Secret, algorithm: Type.Optional(Algorithm), header: Type.Optional(HeaderName) },
          { additionalProperties: false },
        ),
        Type.Null(),
      ]),
    ),
    max_payload_bytes: Type.Optional(PayloadLimit),
    rate_limit_per_minute: Type.Optional(Type.Union([RateLimit, Type.Null()])),
  },
  { additionalProperties: false },
);
const UpdateWebhook = Type.Object(
  {
    trigger: Type.Optional(Ref),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    enabled: Type.Optional(Type.Boolean()),
    hmac: Type.Optional(
      Type.Union([
        Type.Object(
          {
            secret: Type.Optional(Secret),
            algorithm: Type.Optional(Algorithm),
            header: Type.Optional(HeaderName),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        Type.Null(),
      ]),
    ),
    max_payload_bytes: Type.Optional(PayloadLimit),
    rate_limit_per_minute: Type.Optional(Type.Union([RateLimit, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);

const NameParams = Type.Object({ name: Type.String({ maxLength: 300 }) });
const ListQuery = Type.Object(
  {
    ...PageQuery,
    enabled: Type.Optional(Type.Boolean()),
    implicit: Type.Optional(
      Type.Boolean({ description: 'only implicit (true) or only defined (false) webhooks' }),
    ),
  },
  { additionalProperties: false },
);
const CallsQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(
      Type.Integer({ minimum: 100, maximum: 599, description: 'only calls answered with this status' }),
    ),
  },
  { additionalProperties: false },
);
const Call = Type.Object({
  id: Type.Integer(),
  webhook_name: Type.String(),
  received_at: Timestamp,
  remote_ip: Type.Union([Type.String(), Type.Null()]),
  status_code: Type.Integer(),
  signature_valid: Type.Union([Type.Boolean(), Type.Null()], {
    description: 'null when no signature was checked',
  }),
  event_id: Type.Union([Type.Integer(), Type.Null()]),
  duration_ms: Type.Union([Type.Integer(), Type.Null()]),
  body_bytes: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});

const tags = ['webhooks'];
const E = { $ref: 'ErrorBody#' };

const webhookPath = (name: string) => `/api/v1/webhooks/${name}`;

function toApi(w: WebhookConfig, ruleRefs: string[]): WebhookBody {
  return {
    name: w.name,
    url: webhookPath(w.name),
    trigger_ref: w.triggerRef,
    description: w.description,
    enabled: w.enabled,
    implicit: w.implicit,
    hmac: w.hmac ? { algorithm: w.hmac.algorithm, header: w.hmac.header } : null,
    max_payload_bytes: w.maxPayloadBytes,
    rate_limit_per_minute: w.rateLimitPerMinute,
    rule_refs: ruleRefs,
    created_at: iso(w.createdAt),
    updated_at: iso(w.updatedAt),
  };
}

type ReadResult =
  | { kind: 'ok'; body: Buffer }
  | { kind: 'too_large'; received: number }
  | { kind: 'error'; message: string };

/** Reads a request body up to `limit` bytes; beyond, stops keeping it (the rest is discarded). */
function readBody(stream: Readable | undefined, limit: number): Promise<ReadResult> {
  if (!stream || typeof stream.on !== 'function')
    return Promise.resolve({ kind: 'ok', body: Buffer.alloc(0) });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (c: Buffer | string) => {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      size += b.length;
      if (size > limit) {
        cleanup();
        stream.resume();
        resolve({ kind: 'too_large', received: size });
        return;
      }
      chunks.push(b);
    };
    const onEnd = () => {
      cleanup();
      resolve({ kind: 'ok', body: Buffer.concat(chunks, size) });
    };
    const onError = (e: Error) => {
      cleanup();
      resolve({ kind: 'error', message: e.message });
    };
    const onClose = () => {
      cleanup();
      resolve({ kind: 'error', message: 'the client closed the connection before the body was complete' });
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

export function registerWebhookRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  const callLog = new WebhookCallLog(app.ctx.store);
  const limits = new WebhookRateLimits();

  const requireWebhook = async (name: string): Promise<WebhookConfig> => {
    const w = await findWebhook(db(), name);
    if (!w) throw new AppError('NOT_FOUND', `webhook '${name}' not found`, { resource: 'webhook', id: name });
    return w;
  };
  const withRules = async (w: WebhookConfig): Promise<WebhookBody> =>
    toApi(w, (await rulesUsing(db(), [w])).get(w.name) ?? []);
  const assertTrigger = async (ref: string) => {
    if ((await missingRefs(db(), triggers, [ref])).length)
      throw unprocessable(`unknown trigger type '${ref}'`, { field: 'trigger', missing: [ref] });
  };
  const audit = (req: FastifyRequest, action: string, name: string, details: Record<string, unknown> = {}) =>
    app.ctx.audit({
      action,
      actor: req.principal?.login,
      resourceType: 'webhooks',
      resourceRef: name,
      requestId: req.id,
      ip: req.ip,
      details,
    });

  // ───────────────────────────── management ─────────────────────────────

  app.get(
    '/api/v1/webhooks',
    {
      config: { permission: ['webhooks', 'read'] },
      schema: {
        tags,
        summary: 'List webhooks',
        description:
          'Defined webhooks and implicit ones (names used by enabled core.webhook rules but not defined ' +
          'here), by name. Secrets are never returned. Filters: `enabled`, `implicit`.',
        querystring: ListQuery,
        response: { 200: List(Webhook), 400: E },
      },
    },
    async (req) => {
      const q = req.query;
      let all = await listWebhooks(db());
      if (q.enabled !== undefined) all = all.filter((w) => w.enabled === q.enabled);
      if (q.implicit !== undefined) all = all.filter((w) => w.implicit === q.implicit);
      const page = pageOf(q);
      const slice = all.slice(page.offset, page.offset + page.limit);
      const used = await rulesUsing(db(), slice);
      return listBody(
        slice.map((w) => toApi(w, used.get(w.name) ?? [])),
        page,
        all.length,
      );
    },
  );

  app.get(
    '/api/v1/webhooks/:name',
    {
      config: { permission: ['webhooks', 'read'] },
      schema: {
        tags,
        summary: 'Get a webhook',
        params: NameParams,
        response: { 200: Data(Webhook), 400: E, 404: E },
      },
    },
    async (req) => ({ data: await withRules(await requireWebhook(req.params.name)) }),
  );

  app.post(
    '/api/v1/webhooks',
    {
      config: { permission: ['webhooks', 'create'] },
      schema: {
        tags,
        summary: 'Define a webhook',
        description:
          '`hmac: {secret, algorithm (sha256|sha512), header}` makes calls require a signature: the hex ' +
          'HMAC of the raw body, bare or as `sha256=<hex>`. The secret is stored encrypted and never ' +
          'returned. `trigger` (default core.webhook) must exist (422). A name used only implicitly by ' +
          'rules may be defined to configure it; 409 when it is already defined.',
        body: CreateWebhook,
        response: { 201: Data(Webhook), 400: E, 409: E, 422: E },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const triggerRef = b.trigger ?? WEBHOOK_TRIGGER;
      await assertTrigger(triggerRef);
      const [row] = await db()
        .insert(webhooks)
        .values({
          name: b.name,
          triggerRef,
          description: b.description ?? '',
          enabled: b.enabled ?? true,
          hmacSecret: b.hmac ? app.ctx.cipher.encrypt(b.hmac.secret) : null,
          hmacAlgorithm: b.hmac?.algorithm ?? 'sha256',
          hmacHeader: (b.hmac?.header ?? 'x-attune-signature').toLowerCase(),
          maxPayloadBytes: b.max_payload_bytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
          rateLimitPerMinute: b.rate_limit_per_minute ?? null,
        })
        .onConflictDoNothing()
        .returning();
      if (!row) throw conflict(`webhook '${b.name}' already exists`, { name: b.name });
      await audit(req, 'webhook.create', row.name, { hmac: !!row.hmacSecret, trigger_ref: triggerRef });
      return reply.code(201).send({ data: await withRules(configOf(row)) });
    },
  );

  app.put(
    '/api/v1/webhooks/:name',
    {
      config: { permission: ['webhooks', 'update'] },
      schema: {
        tags,
        summary: 'Update a webhook (partial)',
        description:
          'Changes only the fields given. `hmac: null` removes the signature requirement; `hmac: ' +
          '{algorithm}` or `{header}` alone keeps the secret. An implicit webhook is defined with POST first.',
        params: NameParams,
        body: UpdateWebhook,
        response: { 200: Data(Webhook), 400: E, 404: E, 422: E },
      },
    },
    async (req) => {
      const b = req.body;
      const name = req.params.name;
      const [cur] = await db().select().from(webhooks).where(eq(webhooks.name, name));
      if (!cur) {
        const implicit = await findWebhook(db(), name);
        throw new AppError(
          'NOT_FOUND',
          implicit
            ? `webhook '${name}' is only used implicitly by rules; define it with POST /api/v1/webhooks to configure it`
            : `webhook '${name}' not found`,
          { resource: 'webhook', id: name },
        );
      }
      if (b.trigger !== undefined) await assertTrigger(b.trigger);
      let hmac: { hmacSecret?: string | null; hmacAlgorithm?: HmacAlgorithm; hmacHeader?: string } = {};
      if (b.hmac === null) hmac = { hmacSecret: null };
      else if (b.hmac) {
        if (b.hmac.secret === undefined && !cur.hmacSecret)
          throw validationError('hmac.secret is required: this webhook has no secret yet', {
            field: 'hmac.secret',
          });
        hmac = {
          ...(b.hmac.secret !== undefined && { hmacSecret: app.ctx.cipher.encrypt(b.hmac.secret) }),
          ...(b.hmac.algorithm !== undefined && { hmacAlgorithm: b.hmac.algorithm }),
          ...(b.hmac.header !== undefined && { hmacHeader: b.hmac.header.toLowerCase() }),
        };
      }
      const [row] = await db()
        .update(webhooks)
        .set({
          ...(b.trigger !== undefined && { triggerRef: b.trigger }),
          ...(b.description !== undefined && { description: b.description }),
          ...(b.enabled !== undefined && { enabled: b.enabled }),
          ...hmac,
          ...(b.max_payload_bytes !== undefined && { maxPayloadBytes: b.max_payload_bytes }),
          ...(b.rate_limit_per_minute !== undefined && { rateLimitPerMinute: b.rate_limit_per_minute }),
          updatedAt: sql`now()`,
        })
        .where(eq(webhooks.id, cur.id))
        .returning();
      if (!row)
        throw new AppError('NOT_FOUND', `webhook '${name}' not found`, { resource: 'webhook', id: name });
      if (b.rate_limit_per_minute !== undefined) limits.forget(name);
      await audit(req, 'webhook.update', name, {
        fields: Object.keys(b).sort(),
        ...(b.hmac !== undefined && { secret_changed: b.hmac === null || b.hmac.secret !== undefined }),
      });
      return { data: await withRules(configOf(row)) };
    },
  );

  app.delete(
    '/api/v1/webhooks/:name',
    {
      config: { permission: ['webhooks', 'delete'] },
      schema: {
        tags,
        summary: 'Delete a webhook',
        description:
          'Removes the definition (and its secret). If enabled core.webhook rules still use the name, it ' +
          'stays reachable as an implicit webhook (no signature, default limits). Its call log is kept.',
        params: NameParams,
        response: { 204: Type.Null(), 400: E, 404: E },
      },
    },
    async (req, reply) => {
      const name = req.params.name;
      const gone = await db().delete(webhooks).where(eq(webhooks.name, name)).returning({ id: webhooks.id });
      if (!gone.length) {
        const implicit = await findWebhook(db(), name);
        throw new AppError(
          'NOT_FOUND',
          implicit
            ? `webhook '${name}' is not defined (rules use it implicitly); disable or change those rules to remove it`
            : `webhook '${name}' not found`,
          { resource: 'webhook', id: name },
        );
      }
      limits.forget(name);
      await audit(req, 'webhook.delete', name);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/webhooks/:name/calls',
    {
      config: { permission: ['webhooks', 'read'] },
      schema: {
        tags,
        summary: "A webhook's call log",
        description:
          'Every call, newest first: status answered, signature validity, client address, duration, body ' +
          `size, the event created, the error. The newest calls of each name are kept (bounded), also for ` +
          'names that do not exist (calls that got a 404). Filter: `status`.',
        params: NameParams,
        querystring: CallsQuery,
        response: { 200: List(Call), 400: E, 404: E },
      },
    },
    async (req) => {
      const name = req.params.name;
      const q = req.query;
      const where = and(
        eq(webhookCalls.webhookName, name),
        q.status !== undefined ? eq(webhookCalls.statusCode, q.status) : undefined,
      );
      const page = pageOf(q);
      const [rows, [total]] = await Promise.all([
        db()
          .select()
          .from(webhookCalls)
          .where(where)
          .orderBy(desc(webhookCalls.id))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(webhookCalls).where(where),
      ]);
      if (!total?.n && !(await findWebhook(db(), name)))
        throw new AppError('NOT_FOUND', `webhook '${name}' not found`, { resource: 'webhook', id: name });
      return listBody(
        rows.map((r) => ({
          id: r.id,
          webhook_name: r.webhookName,
          received_at: iso(r.receivedAt)!,
          remote_ip: r.remoteIp,
          status_code: r.statusCode,
          signature_valid: r.signatureValid,
          event_id: r.eventId,
          duration_ms: r.durationMs,
          body_bytes: r.bodyBytes,
          error: r.error,
        })),
        page,
        total?.n ?? 0,
      );
    },
  );

  // ───────────────────────────── receiving ─────────────────────────────

  /** Requests whose call was logged by the handler; the others are logged when answered. */
  const logged = new WeakSet<FastifyRequest>();
  const failures = new WeakMap<FastifyRequest, string>();

  void app.register(async (plugin) => {
    const scope = plugin as unknown as ApiApp;
    // Any content type, read raw by the handler (with the webhook's own size limit).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

    // Calls answered before the handler ran (starting up, malformed request …) are logged too.
    scope.addHook('onError', async (req, _reply, err) => {
      failures.set(req, err.message);
    });
    scope.addHook('onResponse', async (req, reply) => {
      if (logged.has(req)) return;
      const params = req.params as { name?: unknown } | undefined;
      await callLog
        .record({
          name: typeof params?.name === 'string' ? params.name : '',
          remoteIp: req.ip ?? null,
          statusCode: reply.statusCode,
          signatureValid: null,
          eventId: null,
          durationMs: reply.elapsedTime,
          bodyBytes: null,
          error: failures.get(req) ?? (reply.statusCode >= 400 ? `answered ${reply.statusCode}` : null),
        })
        .catch((err: unknown) => req.log.error({ err }, 'could not log a webhook call'));
    });

    scope.post(
      '/api/v1/webhooks/:name',
      {
        config: { public: true },
        schema: {
          tags,
          summary: 'Call a webhook',
          description:
            'Creates an event of the webhook’s trigger (core.webhook by default) with payload `{body, ' +
            'headers, query, method, remote_ip}` and trigger parameters `{name}`. Any content type: JSON is ' +
            'parsed, a form becomes an object, other text stays text, binary is base64 (`body_encoding`). ' +
            'Credentials (authorization, cookies, API keys, signature and token headers or query fields) ' +
            'are removed. When the webhook has an HMAC secret, the signature header must carry the hex ' +
            'HMAC of the raw body (`sha256=<hex>` or bare hex), else 401. 404 unknown or disabled webhook, ' +
            '413 body over the webhook’s limit, 429 over its rate limit (with Retry-After). Every call is ' +
            'logged (GET …/{name}/calls). No authentication: the URL (and the signature) is the credential.',
          params: NameParams,
          response: {
            202: Data(Type.Object({ event_id: Type.Integer() })),
            400: E,
            401: E,
            404: E,
            413: E,
            422: E,
            429: E,
          },
        },
      },
      async (req, reply) => {
        const t0 = performance.now();
        const name = req.params.name;
        const rec: CallRecord = {
          name,
          remoteIp: req.ip ?? null,
          statusCode: 0,
          signatureValid: null,
          eventId: null,
          durationMs: 0,
          bodyBytes: null,
          error: null,
        };
        logged.add(req);
        const write = async (statusCode: number, error: string | null) => {
          rec.statusCode = statusCode;
          rec.error = error;
          rec.durationMs = performance.now() - t0;
          await callLog
            .record(rec)
            .catch((err: unknown) => req.log.error({ err }, 'could not log a webhook call'));
        };
        /** Logs the refusal and returns the error to throw. */
        const refuse = async (code: ErrorCode, message: string, details?: unknown, logText?: string) => {
          await write(STATUS_OF[code], logText ?? message);
          return new AppError(code, message, details);
        };
        const notFoundError = { resource: 'webhook', id: name };

        let hook: WebhookConfig | undefined;
        try {
          hook = await findWebhook(app.ctx.store.db, name);
        } catch (e) {
          await write(500, 'internal error while looking the webhook up');
          throw e;
        }
        if (!hook) throw await refuse('NOT_FOUND', `webhook '${name}' not found`, notFoundError);
        if (!hook.enabled)
          throw await refuse(
            'NOT_FOUND',
            `webhook '${name}' not found`,
            notFoundError,
            'the webhook is disabled',
          );

        if (hook.rateLimitPerMinute !== null) {
          const d = limits.hit(name, hook.rateLimitPerMinute);
          if (!d.allowed)
            throw await refuse(
              'TOO_MANY_REQUESTS',
              `webhook '${name}' accepts ${hook.rateLimitPerMinute} calls a minute; retry in ${d.retryAfterS} s`,
              { retry_after: d.retryAfterS, limit_per_minute: hook.rateLimitPerMinute },
            );
        }

        const limit = hook.maxPayloadBytes;
        const tooLarge = async (size: number, declared: boolean) => {
          rec.bodyBytes = size;
          // The client may still be sending: the connection is closed after the answer.
          reply.header('connection', 'close');
          return refuse(
            'PAYLOAD_TOO_LARGE',
            declared
              ? `the body (${size} bytes) exceeds this webhook's limit of ${limit} bytes`
              : `the body exceeds this webhook's limit of ${limit} bytes`,
            { limit_bytes: limit },
          );
        };
        const declared = Number(req.headers['content-length']);
        if (Number.isFinite(declared) && declared > limit) throw await tooLarge(declared, true);
        const read = await readBody(req.body as Readable | undefined, limit);
        if (read.kind === 'too_large') throw await tooLarge(read.received, false);
        if (read.kind === 'error')
          throw await refuse('BAD_REQUEST', `the request body could not be read: ${read.message}`);
        const raw = read.body;
        rec.bodyBytes = raw.length;

        if (hook.hmac) {
          let secret: string;
          try {
            secret = app.ctx.cipher.decrypt(hook.hmac.secret);
          } catch {
            req.log.error(
              { webhook: name },
              'the HMAC secret of a webhook cannot be decrypted (encryption key changed?)',
            );
            throw await refuse(
              'SERVICE_UNAVAILABLE',
              `webhook '${name}' cannot check signatures right now; its secret must be set again`,
            );
          }
          const check = checkSignature(raw, secret, hook.hmac.algorithm, req.headers[hook.hmac.header]);
          rec.signatureValid = check === 'valid';
          if (check !== 'valid')
            throw await refuse(
              'UNAUTHORIZED',
              check === 'missing'
                ? `signature header '${hook.hmac.header}' is missing`
                : `the signature in '${hook.hmac.header}' does not match the body`,
              { header: hook.hmac.header, algorithm: hook.hmac.algorithm },
            );
        }

        const built = buildWebhookPayload({
          body: raw,
          contentType: req.headers['content-type'],
          headers: req.headers,
          query: req.query,
          method: req.method,
          remoteIp: req.ip,
          signatureHeader: hook.hmac?.header,
        });
        if (!built.ok) throw await refuse('BAD_REQUEST', built.message);

        const triggerRef = hook.triggerRef;
        let eventId: number;
        try {
          eventId = await app.ctx.store.transaction(async (tx) => {
            const [ev] = await createEvents(tx, [
              {
                triggerRef,
                payload: built.payload,
                triggerParams: { name } satisfies Record<string, JsonValue>,
                source: `webhook:${name}`,
              },
            ]);
            rec.eventId = ev!.id;
            rec.statusCode = 202;
            rec.durationMs = performance.now() - t0;
            await callLog.record(rec, tx);
            return ev!.id;
          });
        } catch (e) {
          rec.eventId = null;
          if (e instanceof AppError) throw await refuse(e.code, e.message, e.details);
          await write(500, 'internal error while creating the event');
          throw e;
        }
        app.ctx.outbox?.kick();
        return reply.code(202).send({ data: { event_id: eventId } });
      },
    );
  });
}
