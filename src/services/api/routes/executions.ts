/**
 * Executions: `/api/v1/executions`. One run of an action, with its status lifecycle, parameters,
 * result, output and place in a workflow.
 *
 * - reads: list, get, stored output (`/output`, by sequence number or as text);
 * - writes: run an action (`POST`), cancel, re-run — each a transaction with its outbox message;
 * - live: server-sent events of one execution (`/{id}/stream`: status, output, end) and of the
 *   status changes of all executions (`/stream`, with filters). EventSource cannot send headers,
 *   so these two routes also accept the access token as `?access_token=`.
 */

import { Readable } from 'node:stream';
import { and, asc, count, desc, eq, gt, inArray, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { AppError, notFound, validationError } from '../../../domain/errors.ts';
import { EXECUTION_STATUSES as DOMAIN_STATUSES } from '../../../domain/status.ts';
import type { ExecutionRow } from '../../../store/repositories/executions.ts';
import { executionOutput, executions } from '../../../store/schema.ts';
import { MAX_TIMEOUT_SECONDS, requestExecution } from '../../executions/request-execution.ts';
import { rerunExecution } from '../../executions/rerun-execution.ts';
import {
  ExecutionStream,
  listenStatusChanges,
  type StatusFilter,
  StatusPoller,
} from '../../notifier/execution-stream.ts';
import { NotificationHub } from '../../notifier/hub.ts';
import { SseStream } from '../../notifier/sse.ts';
import type { StatusNotification } from '../../runtime/messages.ts';
import { cancelExecution } from '../../scheduler/cancel.ts';
import { notifyStatuses } from '../../scheduler/runtime.ts';
import {
  Data,
  IdParams,
  iso,
  JsonObject,
  List,
  listBody,
  PageQuery,
  pageOf,
  Ref,
  TimeRangeQuery,
  Timestamp,
  timeRangeFilters,
} from '../http.ts';
import type { ApiApp } from '../server.ts';
import { checkRerunBody, rerunWorkflowTasks } from './workflow-runs.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The live notifications of this process (one bus subscription, fanned out to streams). */
    notifier: NotificationHub;
  }
}

/** Every status an execution can have (the filters accept only these). */
export const EXECUTION_STATUSES: readonly string[] = DOMAIN_STATUSES;

/**
 * The statuses of a comma-separated list, each of which must be one of `allowed` (400 naming the
 * unknown ones otherwise).
 */
export function parseStatuses(raw: string, allowed: readonly string[]): string[] {
  const wanted = [
    ...new Set(
      raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  const unknown = wanted.filter((s) => !allowed.includes(s));
  if (!wanted.length || unknown.length)
    throw validationError(
      wanted.length
        ? `querystring.status has unknown value(s) ${unknown.map((s) => `'${s}'`).join(', ')}; expected any of ${allowed.join(', ')}`
        : `querystring.status is empty; expected any of ${allowed.join(', ')}`,
      { in: 'querystring', path: '/status', unknown, allowed },
    );
  return wanted;
}

/** The condition `col IN (…)` for a comma-separated list of statuses (see `parseStatuses`). */
export const statusFilter = (raw: string, allowed: readonly string[], col: PgColumn): SQL =>
  inArray(col, parseStatuses(raw, allowed));

const NullableTime = Type.Union([Timestamp, Type.Null()]);
const NullableId = Type.Union([Type.Integer(), Type.Null()]);
const NullableText = Type.Union([Type.String(), Type.Null()]);

export const Execution = Type.Object({
  id: Type.Integer(),
  action_ref: Type.String(),
  runner: Type.String(),
  status: Type.String(),
  parameters: JsonObject,
  result: Type.Unknown({ description: 'The JSON result; null until there is one' }),
  error: Type.Union([JsonObject, Type.Null()], {
    description: '`{message, type, …}` when the execution did not succeed',
  }),
  parent_id: NullableId,
  root_id: NullableId,
  task_name: NullableText,
  enforcement_id: NullableId,
  rule_ref: NullableText,
  trigger_ref: NullableText,
  event_id: NullableId,
  created_by: NullableText,
  rerun_of: NullableId,
  worker_id: NullableText,
  attempt: Type.Integer(),
  timeout_seconds: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Timestamp,
  scheduled_at: NullableTime,
  started_at: NullableTime,
  finished_at: NullableTime,
  updated_at: Timestamp,
  duration_ms: Type.Union([Type.Integer(), Type.Null()], {
    description: 'From start (or creation, when it never started) to finish; null until finished',
  }),
});

const IdFilter = (what: string) =>
  Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: what }));
const RefFilter = (what: string) =>
  Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: what }));

const ExecutionListQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(
      Type.String({
        maxLength: 500,
        description: `Comma-separated; matches any of ${EXECUTION_STATUSES.join(', ')}`,
      }),
    ),
    action: RefFilter('Action ref'),
    rule: RefFilter('Rule ref'),
    trigger: RefFilter('Trigger ref'),
    parent: IdFilter('Id of the parent execution (children of a workflow)'),
    root: IdFilter('Id of the root execution (everything under a top-level workflow)'),
    enforcement: IdFilter('Id of the enforcement that created it'),
    event: IdFilter('Id of the event behind it'),
    ...TimeRangeQuery,
  },
  { additionalProperties: false },
);

type Row = typeof executions.$inferSelect;
export const executionToApi = (r: Row): Static<typeof Execution> => ({
  id: r.id,
  action_ref: r.actionRef,
  runner: r.runner,
  status: r.status,
  parameters: r.parameters,
  result: r.result ?? null,
  error: r.error ?? null,
  parent_id: r.parentId,
  root_id: r.rootId,
  task_name: r.taskName,
  enforcement_id: r.enforcementId,
  rule_ref: r.ruleRef,
  trigger_ref: r.triggerRef,
  event_id: r.eventId,
  created_by: r.createdBy,
  rerun_of: r.rerunOf,
  worker_id: r.workerId,
  attempt: r.attempt,
  timeout_seconds: r.timeoutSeconds,
  created_at: iso(r.createdAt)!,
  scheduled_at: iso(r.scheduledAt),
  started_at: iso(r.startedAt),
  finished_at: iso(r.finishedAt),
  updated_at: iso(r.updatedAt)!,
  duration_ms: r.finishedAt
    ? Math.max(0, r.finishedAt.getTime() - (r.startedAt ?? r.createdAt).getTime())
    : null,
});

const MAX_ID = Number.MAX_SAFE_INTEGER;
const TimeoutOverride = Type.Integer({
  minimum: 1,
  maximum: MAX_TIMEOUT_SECONDS,
  description: "Seconds before the execution is stopped (overrides the action's default; at most 7 days)",
});

const RunExecution = Type.Object(
  {
    action: { ...Ref, description: 'Ref of the action to run' },
    parameters: Type.Optional({
      ...JsonObject,
      description:
        "Validated against the action's param_schema (defaults applied). Parameters the schema marks " +
        '`secret: true` are stored encrypted and shown as `{"$secret": true}`.',
    }),
    timeout_seconds: Type.Optional(TimeoutOverride),
  },
  { additionalProperties: false },
);

const RerunExecution = Type.Union(
  [
    Type.Object(
      {
        parameters: Type.Optional({
          ...JsonObject,
          description: 'Top-level parameters replacing the original ones of the same name',
        }),
        timeout_seconds: Type.Optional(TimeoutOverride),
        tasks: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
            maxItems: 5000,
            uniqueItems: true,
            description:
              'A failed or canceled workflow: run these tasks again (`[]`: the failed ones), reusing what succeeded',
          }),
        ),
        reset_items: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
            maxItems: 5000,
            uniqueItems: true,
            description:
              'With `tasks`: with-items tasks whose items all run again (default: only the failed ones)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'Optional; without a body the execution re-runs with its original parameters' },
);

const NoBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()], {
  description: 'No body (or `{}`)',
});

const OutputChunk = Type.Object({
  seq: Type.Integer({ description: 'Sequence number: pass it as `after` to continue after this chunk' }),
  stream: Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]),
  data: Type.String(),
  created_at: Timestamp,
  truncated: Type.Boolean({
    description: 'Marks where the stream was cut at the output size limit (its data is empty)',
  }),
});

const OutputQuery = Type.Object(
  {
    stream: Type.Optional(Type.Union([Type.Literal('stdout'), Type.Literal('stderr')])),
    after: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_ID, description: 'Only chunks with a greater seq' }),
    ),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'Chunks per page (default 500; with `format=text`, default all)',
      }),
    ),
    format: Type.Optional(
      Type.Union([Type.Literal('json'), Type.Literal('text')], {
        description: '`text`: the chunks concatenated, as text/plain',
      }),
    ),
  },
  { additionalProperties: false },
);

const OutputPage = Type.Object({
  data: Type.Array(OutputChunk),
  next_after: Type.Integer({
    description: 'Pass as `after` to get what follows (the last seq returned, or `after` when none)',
  }),
  has_more: Type.Boolean({ description: 'Whether more chunks are stored beyond this page right now' }),
});

const AccessToken = Type.Optional(
  Type.String({
    maxLength: 8192,
    description:
      'Access token or API key, for clients that cannot send an Authorization header (EventSource)',
  }),
);

const StreamQuery = Type.Object(
  {
    after: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_ID,
        description: 'Resume after this output seq (the `Last-Event-ID` header takes precedence)',
      }),
    ),
    access_token: AccessToken,
  },
  { additionalProperties: false },
);

const GlobalStreamQuery = Type.Object(
  {
    status: ExecutionListQuery.properties.status,
    action: Type.Optional({ ...Ref, description: 'Only executions of this action' }),
    parent: IdFilter('Only children of this execution'),
    access_token: AccessToken,
  },
  { additionalProperties: false },
);

const SSE_DESCRIPTION =
  'A `text/event-stream`. EventSource cannot send headers: the token may be given as `?access_token=`. ' +
  'Comment lines (`: ping`) are sent every 15 s.';

/** `Last-Event-ID` (what a reconnecting browser sends) or `?after=`; 400 for a malformed header. */
function resumePoint(req: FastifyRequest, after: number | undefined): number {
  const raw = req.headers['last-event-id'];
  const header = Array.isArray(raw) ? raw[0] : raw;
  if (header === undefined || header.trim() === '') return after ?? 0;
  const v = header.trim();
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw validationError(
      `the Last-Event-ID header must be an output sequence number, got '${v.slice(0, 40)}'`,
      {
        in: 'headers',
        path: '/last-event-id',
      },
    );
  return Number(v);
}

const isOutputStream = (s: string): s is 'stdout' | 'stderr' => s === 'stdout' || s === 'stderr';

const tags = ['executions'];
const err = { $ref: 'ErrorBody#' };

export function registerExecutionRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  if (!app.hasDecorator('notifier')) {
    app.decorate('notifier', new NotificationHub(() => app.ctx.bus, app.ctx.log));
    // Open streams would keep the server from closing: end them first.
    app.addHook('preClose', async () => app.notifier.close());
  }

  app.get(
    '/api/v1/executions',
    {
      config: { permission: ['executions', 'read'] },
      schema: {
        tags,
        summary: 'List executions',
        description:
          'Newest first. Filters: `status` (comma-separated, any of), `action`, `rule`, `trigger` (refs), ' +
          '`parent`, `root`, `enforcement`, `event` (ids), `since` (inclusive) and `until` (exclusive) on ' +
          'the creation time.',
        querystring: ExecutionListQuery,
        response: { 200: List(Execution), 400: err },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageOf(q);
      const where: SQL[] = timeRangeFilters(q, executions.createdAt);
      if (q.status !== undefined) where.push(statusFilter(q.status, EXECUTION_STATUSES, executions.status));
      if (q.action !== undefined) where.push(eq(executions.actionRef, q.action));
      if (q.rule !== undefined) where.push(eq(executions.ruleRef, q.rule));
      if (q.trigger !== undefined) where.push(eq(executions.triggerRef, q.trigger));
      if (q.parent !== undefined) where.push(eq(executions.parentId, q.parent));
      if (q.root !== undefined) where.push(eq(executions.rootId, q.root));
      if (q.enforcement !== undefined) where.push(eq(executions.enforcementId, q.enforcement));
      if (q.event !== undefined) where.push(eq(executions.eventId, q.event));
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        db()
          .select()
          .from(executions)
          .where(cond)
          .orderBy(desc(executions.createdAt), desc(executions.id))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(executions).where(cond),
      ]);
      return listBody(rows.map(executionToApi), page, total?.n ?? 0);
    },
  );

  app.get(
    '/api/v1/executions/:id',
    {
      config: { permission: ['executions', 'read'] },
      schema: {
        tags,
        summary: 'Get an execution',
        params: IdParams,
        response: { 200: Data(Execution), 400: err, 404: err },
      },
    },
    async (req) => {
      const [r] = await db().select().from(executions).where(eq(executions.id, req.params.id));
      if (!r) throw notFound('execution', req.params.id);
      return { data: executionToApi(r) };
    },
  );

  const hub = () => app.notifier;
  const kick = () => app.ctx.outbox?.kick();
  /** Best-effort broadcast of a new status (live views); never delays or fails the request. */
  const announce = (rows: ExecutionRow[]) => {
    const bus = app.ctx.bus;
    if (bus) notifyStatuses(bus, rows, app.ctx.log);
  };
  const mustExist = async (id: number): Promise<ExecutionRow> => {
    const [r] = await db().select().from(executions).where(eq(executions.id, id));
    if (!r) throw notFound('execution', id);
    return r;
  };

  app.post(
    '/api/v1/executions',
    {
      config: { permission: ['executions', 'execute'] },
      schema: {
        tags,
        summary: 'Run an action',
        description:
          'Creates an execution in `requested`; the scheduler takes it from there. The action must exist ' +
          "(404) and be enabled (409); `parameters` must fit the action's param_schema (400, every problem " +
          'in `details.problems`). Follow it with `GET /api/v1/executions/{id}/stream`.',
        body: RunExecution,
        response: { 201: Data(Execution), 400: err, 404: err, 409: err, 422: err },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const row = await app.ctx.store.transaction((tx) =>
        requestExecution(tx, app.ctx.cipher, {
          actionRef: b.action,
          parameters: b.parameters,
          createdBy: req.principal?.login ?? null,
          timeoutSeconds: b.timeout_seconds,
        }),
      );
      kick();
      announce([row]);
      return reply.code(201).send({ data: executionToApi(row) });
    },
  );

  app.post(
    '/api/v1/executions/:id/cancel',
    {
      config: { permission: ['executions', 'cancel'] },
      schema: {
        tags,
        summary: 'Cancel an execution',
        description:
          'One that has not started yet is `canceled` at once (200). A running one moves to `canceling` ' +
          'and its worker stops its processes (202); it ends `canceled` — or with its own outcome if it ' +
          'finished first. Asking again while it is `canceling` repeats the request (202). An execution ' +
          'that already finished cannot be canceled (409, with its status in `details.status`).',
        params: IdParams,
        body: NoBody,
        response: { 200: Data(Execution), 202: Data(Execution), 400: err, 404: err, 409: err },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const bus = app.ctx.bus;
      if (!bus) {
        await mustExist(id);
        throw new AppError(
          'SERVICE_UNAVAILABLE',
          'executions cannot be canceled: the message bus is not running',
        );
      }
      const by = req.principal?.login ?? 'unknown';
      const r = await cancelExecution(app.ctx.store, bus, id, by, { kickOutbox: kick, log: app.ctx.log });
      return reply.code(r.outcome === 'canceled' ? 200 : 202).send({ data: executionToApi(r.execution) });
    },
  );

  app.post(
    '/api/v1/executions/:id/rerun',
    {
      config: { permission: ['executions', 'execute'] },
      schema: {
        tags,
        summary: 'Re-run an execution',
        description:
          'A new execution of the same action (`rerun_of` = this one) with the original parameters — ' +
          'secret ones included — overridden by the given top-level `parameters`, validated again against ' +
          "the action's current param_schema. Refused like a new run: the action must still exist (404) " +
          'and be enabled (409). For a failed or canceled workflow, `tasks` (and `reset_items`) rerun it ' +
          'from those tasks instead: the new execution reuses what succeeded (see docs/workflows.md).',
        params: IdParams,
        body: RerunExecution,
        response: { 201: Data(Execution), 400: err, 404: err, 409: err, 422: err },
      },
    },
    async (req, reply) => {
      const b = req.body ?? {};
      checkRerunBody(b);
      if (b.tasks !== undefined || b.reset_items !== undefined) {
        const wf = await rerunWorkflowTasks(app, req.params.id, b, req.principal?.login ?? null);
        return reply.code(201).send({ data: executionToApi(wf) });
      }
      const row = await app.ctx.store.transaction((tx) =>
        rerunExecution(tx, app.ctx.cipher, req.params.id, {
          parameters: b.parameters,
          timeoutSeconds: b.timeout_seconds,
          createdBy: req.principal?.login ?? null,
        }),
      );
      kick();
      announce([row]);
      return reply.code(201).send({ data: executionToApi(row) });
    },
  );

  app.get(
    '/api/v1/executions/:id/output',
    {
      config: { permission: ['executions', 'read'] },
      schema: {
        tags,
        summary: 'Get the output of an execution',
        description:
          'The stdout/stderr chunks stored so far, oldest first, paginated by sequence number: pass ' +
          '`next_after` as `after` for the next page (or to poll for new output). `stream` keeps one of ' +
          'the two. `format=text` answers the chunks concatenated as `text/plain`.',
        params: IdParams,
        querystring: OutputQuery,
        response: { 200: OutputPage, 400: err, 404: err },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const q = req.query;
      await mustExist(id);
      const where: SQL[] = [eq(executionOutput.executionId, id)];
      if (q.stream) where.push(eq(executionOutput.stream, q.stream));
      const after = q.after ?? 0;
      const page = (from: number, limit: number) =>
        db()
          .select()
          .from(executionOutput)
          .where(and(...where, gt(executionOutput.id, from)))
          .orderBy(asc(executionOutput.id))
          .limit(limit);

      if (q.format === 'text') {
        const max = q.limit ?? Number.POSITIVE_INFINITY;
        async function* text(): AsyncGenerator<string> {
          let from = after;
          let left = max;
          while (left > 0) {
            const rows = await page(from, Math.min(500, left));
            for (const r of rows) if (r.data) yield r.data;
            if (rows.length < Math.min(500, left)) return;
            from = rows[rows.length - 1]!.id;
            left -= rows.length;
          }
        }
        return reply.type('text/plain; charset=utf-8').send(Readable.from(text()));
      }

      const limit = q.limit ?? 500;
      const rows = await page(after, limit + 1);
      const more = rows.length > limit;
      const data = rows.slice(0, limit).map((r) => ({
        seq: r.id,
        stream: isOutputStream(r.stream) ? r.stream : ('stdout' as const),
        data: r.data,
        created_at: iso(r.createdAt)!,
        truncated: r.truncated,
      }));
      return { data, next_after: data.length ? data[data.length - 1]!.seq : after, has_more: more };
    },
  );

  app.get(
    '/api/v1/executions/:id/stream',
    {
      config: { permission: ['executions', 'read'], stream: true },
      schema: {
        tags,
        summary: 'Follow an execution live (server-sent events)',
        description:
          `${SSE_DESCRIPTION} Events: \`status\` (the execution, first as it is now, then on every change), ` +
          '`output` (`{seq, stream, data, truncated}`, with `id` = seq: the stored output first, then live), ' +
          'and `end` (`{execution_id, status}`) once it has finished, after which the server closes the ' +
          'stream. A reconnecting client (`Last-Event-ID`, or `?after=<seq>`) gets only the output it has ' +
          'not seen.',
        params: IdParams,
        querystring: StreamQuery,
        produces: ['text/event-stream'],
        response: {
          200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: {} } } },
          400: err,
          404: err,
        },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const after = resumePoint(req, req.query.after);
      await mustExist(id);
      const stream = new ExecutionStream(
        { db, hub: hub(), log: app.ctx.log, toApi: executionToApi },
        id,
        after,
      );
      await stream.subscribe();
      try {
        const sse = new SseStream(req, reply, hub().settings);
        sse.onClose(hub().track(sse));
        stream.start(sse);
      } catch (e) {
        stream.stop();
        throw e;
      }
      return reply;
    },
  );

  app.get(
    '/api/v1/executions/stream',
    {
      config: { permission: ['executions', 'read'], stream: true },
      schema: {
        tags,
        summary: 'Follow status changes of all executions (server-sent events)',
        description:
          `${SSE_DESCRIPTION} One \`status\` event (\`{execution_id, status, action_ref, parent_id, at}\`) per ` +
          'status change of an execution matching the filters: `status` (comma-separated, any of), ' +
          '`action` (ref), `parent` (id). Live only: list executions to see what happened before.',
        querystring: GlobalStreamQuery,
        produces: ['text/event-stream'],
        response: {
          200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: {} } } },
          400: err,
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const filter: StatusFilter = {
        statuses: q.status === undefined ? undefined : new Set(parseStatuses(q.status, EXECUTION_STATUSES)),
        actionRef: q.action,
        parentId: q.parent,
      };
      const h = hub();
      let sse: SseStream | undefined;
      const send = (n: StatusNotification) => sse?.send('status', n);
      let stop: () => void;
      if (app.ctx.bus) {
        try {
          stop = await listenStatusChanges(h, filter, send);
        } catch (e) {
          throw new AppError('SERVICE_UNAVAILABLE', `live updates are unavailable: ${(e as Error).message}`);
        }
      } else {
        const poller = new StatusPoller(db, filter, send, h.settings.pollMs, app.ctx.log);
        await poller.start();
        stop = () => poller.stop();
      }
      try {
        sse = new SseStream(req, reply, h.settings);
      } catch (e) {
        stop();
        throw e;
      }
      sse.onClose(stop);
      sse.onClose(h.track(sse));
      sse.comment('connected');
      return reply;
    },
  );
}
