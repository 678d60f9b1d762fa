/**
 * Executions: `/api/v1/executions`. One run of an action, with its status lifecycle, parameters,
 * result and place in a workflow. Read-only here; running, cancelling and re-running come with the
 * scheduler.
 */
import { and, count, desc, eq, inArray, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { type Static, Type } from 'typebox';
import { notFound, validationError } from '../../../domain/errors.ts';
import { executions } from '../../../store/schema.ts';
import {
  Data,
  IdParams,
  iso,
  JsonObject,
  List,
  listBody,
  PageQuery,
  pageOf,
  TimeRangeQuery,
  Timestamp,
  timeRangeFilters,
} from '../http.ts';
import type { ApiApp } from '../server.ts';

/** Every status an execution can have (the filter accepts only these). */
export const EXECUTION_STATUSES = [
  'requested',
  'delayed',
  'scheduled',
  'running',
  'canceling',
  'succeeded',
  'failed',
  'timeout',
  'canceled',
  'abandoned',
] as const;

/**
 * The condition `col IN (…)` for a comma-separated list of statuses, each of which must be one of
 * `allowed` (400 naming the unknown ones otherwise).
 */
export function statusFilter(raw: string, allowed: readonly string[], col: PgColumn): SQL {
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
  return inArray(col, wanted);
}

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

const tags = ['executions'];
const err = { $ref: 'ErrorBody#' };

export function registerExecutionRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

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
}
