/**
 * Enforcements: `/api/v1/enforcements`. The record that a rule matched an event: the parameters it
 * resolved and the execution it led to. Read-only; the rule engine creates them.
 */
import { and, count, desc, eq, type SQL } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { notFound } from '../../../domain/errors.ts';
import { enforcements, executions } from '../../../store/schema.ts';
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
import { statusFilter } from './executions.ts';

/** `created` → `scheduled` (an execution exists) | `failed` (its parameters could not be resolved). */
export const ENFORCEMENT_STATUSES = ['created', 'scheduled', 'failed'] as const;

export const Enforcement = Type.Object({
  id: Type.Integer(),
  rule_id: Type.Union([Type.Integer(), Type.Null()], { description: 'null once the rule is deleted' }),
  rule_ref: Type.String(),
  trigger_ref: Type.String(),
  event_id: Type.Integer(),
  status: Type.String(),
  resolved_params: Type.Union([JsonObject, Type.Null()]),
  failure_reason: Type.Union([Type.String(), Type.Null()]),
  execution_id: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The execution it created, if any',
  }),
  created_at: Timestamp,
});

const EnforcementListQuery = Type.Object(
  {
    ...PageQuery,
    rule: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Rule ref' })),
    trigger: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Trigger ref' })),
    event: Type.Optional(
      Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Event id' }),
    ),
    status: Type.Optional(
      Type.String({
        maxLength: 200,
        description: `Comma-separated; matches any of ${ENFORCEMENT_STATUSES.join(', ')}`,
      }),
    ),
    ...TimeRangeQuery,
  },
  { additionalProperties: false },
);

type Row = typeof enforcements.$inferSelect;
export const enforcementToApi = (r: Row, executionId: number | null): Static<typeof Enforcement> => ({
  id: r.id,
  rule_id: r.ruleId,
  rule_ref: r.ruleRef,
  trigger_ref: r.triggerRef,
  event_id: r.eventId,
  status: r.status,
  resolved_params: r.resolvedParams ?? null,
  failure_reason: r.failureReason,
  execution_id: executionId,
  created_at: iso(r.createdAt)!,
});

const tags = ['enforcements'];
const err = { $ref: 'ErrorBody#' };

export function registerEnforcementRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  /** Enforcements with the id of their execution (at most one: `executions.enforcement_id` is unique). */
  const select = () =>
    db()
      .select({ e: enforcements, executionId: executions.id })
      .from(enforcements)
      .leftJoin(executions, eq(executions.enforcementId, enforcements.id));

  app.get(
    '/api/v1/enforcements',
    {
      config: { permission: ['enforcements', 'read'] },
      schema: {
        tags,
        summary: 'List enforcements',
        description:
          'Newest first. Filters: `rule`, `trigger` (refs), `event` (id), `status` (comma-separated, any ' +
          'of), `since` (inclusive) and `until` (exclusive) on the creation time.',
        querystring: EnforcementListQuery,
        response: { 200: List(Enforcement), 400: err },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageOf(q);
      const where: SQL[] = timeRangeFilters(q, enforcements.createdAt);
      if (q.rule !== undefined) where.push(eq(enforcements.ruleRef, q.rule));
      if (q.trigger !== undefined) where.push(eq(enforcements.triggerRef, q.trigger));
      if (q.event !== undefined) where.push(eq(enforcements.eventId, q.event));
      if (q.status !== undefined)
        where.push(statusFilter(q.status, ENFORCEMENT_STATUSES, enforcements.status));
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        select()
          .where(cond)
          .orderBy(desc(enforcements.createdAt), desc(enforcements.id))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(enforcements).where(cond),
      ]);
      return listBody(
        rows.map((r) => enforcementToApi(r.e, r.executionId)),
        page,
        total?.n ?? 0,
      );
    },
  );

  app.get(
    '/api/v1/enforcements/:id',
    {
      config: { permission: ['enforcements', 'read'] },
      schema: {
        tags,
        summary: 'Get an enforcement',
        params: IdParams,
        response: { 200: Data(Enforcement), 400: err, 404: err },
      },
    },
    async (req) => {
      const [r] = await select().where(eq(enforcements.id, req.params.id));
      if (!r) throw notFound('enforcement', req.params.id);
      return { data: enforcementToApi(r.e, r.executionId) };
    },
  );
}
