/**
 * Execution statistics for dashboards: `GET /api/v1/executions/stats`. Counts per status over time
 * (in equal buckets of a window), the success rate, the busiest actions and rules, what is running
 * or waiting right now, and the latest failures — computed in the database, so a dashboard does not
 * page through every execution.
 */
import { and, count, desc, eq, gte, inArray, isNotNull, lt, sql } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { validationError } from '../../../domain/errors.ts';
import { executions, inquiries } from '../../../store/schema.ts';
import { Data, iso, parseIsoTime, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';

/** Statuses of executions that are under way (counted over all time, not the window). */
export const ACTIVE_STATUSES = [
  'requested',
  'delayed',
  'scheduled',
  'running',
  'pausing',
  'paused',
  'canceling',
];
/** Ends that count as failures (the success rate is succeeded over these plus succeeded). */
export const FAILED_STATUSES = ['failed', 'timeout', 'abandoned'];
const TOP = 8;
const DAY_MS = 86_400_000;
const MAX_WINDOW_MS = 366 * DAY_MS;

const Counts = Type.Record(Type.String(), Type.Integer());

const Stats = Type.Object({
  since: Timestamp,
  until: Timestamp,
  bucket_seconds: Type.Integer({ description: 'Width of each bucket of the series' }),
  series: Type.Array(
    Type.Object(
      { start: Timestamp, counts: Counts },
      { description: 'Executions created in the bucket, by status now' },
    ),
  ),
  totals: Counts,
  success_rate: Type.Union([Type.Number(), Type.Null()], {
    description: 'succeeded / (succeeded + failed + timeout + abandoned) in the window; null when none ended',
  }),
  active: { ...Counts, description: `Executions now in ${ACTIVE_STATUSES.join(', ')} (any age)` },
  waiting_for_input: Type.Integer({ description: 'Pending inquiries' }),
  busiest_actions: Type.Array(
    Type.Object({ action_ref: Type.String(), count: Type.Integer(), failed: Type.Integer() }),
  ),
  busiest_rules: Type.Array(Type.Object({ rule_ref: Type.String(), count: Type.Integer() })),
  recent_failures: Type.Array(
    Type.Object({
      id: Type.Integer(),
      action_ref: Type.String(),
      status: Type.String(),
      finished_at: Type.Union([Timestamp, Type.Null()]),
      error: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    }),
  ),
});

const StatsQuery = Type.Object(
  {
    since: Type.Optional(
      Type.String({
        maxLength: 64,
        description: 'Start of the window (ISO 8601; default 24 hours before `until`)',
      }),
    ),
    until: Type.Optional(
      Type.String({ maxLength: 64, description: 'End of the window (ISO 8601; default now)' }),
    ),
    buckets: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 500, default: 48, description: 'Number of buckets of the series' }),
    ),
  },
  { additionalProperties: false },
);

function time(name: 'since' | 'until', raw: string | undefined): Date | undefined {
  if (raw === undefined) return undefined;
  const d = parseIsoTime(raw);
  if (!d)
    throw validationError(`querystring.${name} is not an ISO 8601 date or date-time: '${raw}'`, {
      in: 'querystring',
      path: `/${name}`,
    });
  return d;
}

export function registerStatsRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  app.get(
    '/api/v1/executions/stats',
    {
      config: { permission: ['executions', 'read'] },
      schema: {
        tags: ['executions'],
        summary: 'Execution statistics for a time window (for dashboards)',
        description:
          'Executions created in the window (`since` to `until`, at most 366 days), counted per status in ' +
          '`buckets` equal buckets and in total, the success rate, the busiest actions and rules, the latest ' +
          'failures; plus what is active now and how many inquiries wait for an answer.',
        querystring: StatsQuery,
        response: { 200: Data(Stats), 400: { $ref: 'ErrorBody#' } },
      },
    },
    async (req) => {
      const q = req.query;
      const until = time('until', q.until) ?? new Date();
      const since = time('since', q.since) ?? new Date(until.getTime() - DAY_MS);
      if (since.getTime() >= until.getTime())
        throw validationError('querystring.since must be before querystring.until', {
          since: since.toISOString(),
          until: until.toISOString(),
        });
      if (until.getTime() - since.getTime() > MAX_WINDOW_MS)
        throw validationError('the window is longer than 366 days', { in: 'querystring' });
      const buckets = q.buckets ?? 48;
      const bucketSeconds = Math.max(1, Math.ceil((until.getTime() - since.getTime()) / 1000 / buckets));
      const inWindow = and(
        gte(executions.createdAt, sql`${since.toISOString()}::timestamptz`),
        lt(executions.createdAt, sql`${until.toISOString()}::timestamptz`),
      );
      const bucketExpr = sql<number>`floor(extract(epoch from (${executions.createdAt} - ${since.toISOString()}::timestamptz)) / ${bucketSeconds})::int`;

      const d = db();
      const [perBucket, active, waiting, busiestActions, busiestRules, failures] = await Promise.all([
        d
          .select({ bucket: bucketExpr, status: executions.status, n: count() })
          .from(executions)
          .where(inWindow)
          .groupBy(sql`1`, sql`2`),
        d
          .select({ status: executions.status, n: count() })
          .from(executions)
          .where(inArray(executions.status, ACTIVE_STATUSES))
          .groupBy(executions.status),
        d.select({ n: count() }).from(inquiries).where(eq(inquiries.status, 'pending')),
        d
          .select({
            action_ref: executions.actionRef,
            count: count(),
            failed: sql<number>`(count(*) filter (where ${inArray(executions.status, FAILED_STATUSES)}))::int`,
          })
          .from(executions)
          .where(inWindow)
          .groupBy(executions.actionRef)
          .orderBy(desc(count()), executions.actionRef)
          .limit(TOP),
        d
          .select({ rule_ref: sql<string>`${executions.ruleRef}`, count: count() })
          .from(executions)
          .where(and(inWindow, isNotNull(executions.ruleRef)))
          .groupBy(executions.ruleRef)
          .orderBy(desc(count()), executions.ruleRef)
          .limit(TOP),
        d
          .select({
            id: executions.id,
            action_ref: executions.actionRef,
            status: executions.status,
            finished_at: executions.finishedAt,
            error: executions.error,
          })
          .from(executions)
          .where(and(inWindow, inArray(executions.status, FAILED_STATUSES)))
          .orderBy(desc(executions.createdAt), desc(executions.id))
          .limit(TOP),
      ]);

      const series: Static<typeof Stats>['series'] = Array.from({ length: buckets }, (_, i) => ({
        start: new Date(since.getTime() + i * bucketSeconds * 1000).toISOString(),
        counts: {},
      }));
      const totals: Record<string, number> = {};
      for (const r of perBucket) {
        const slot = series[Math.min(buckets - 1, Math.max(0, Number(r.bucket)))]!;
        slot.counts[r.status] = (slot.counts[r.status] ?? 0) + Number(r.n);
        totals[r.status] = (totals[r.status] ?? 0) + Number(r.n);
      }
      const ok = totals.succeeded ?? 0;
      const bad = FAILED_STATUSES.reduce((s, k) => s + (totals[k] ?? 0), 0);
      return {
        data: {
          since: since.toISOString(),
          until: until.toISOString(),
          bucket_seconds: bucketSeconds,
          series,
          totals,
          success_rate: ok + bad === 0 ? null : ok / (ok + bad),
          active: Object.fromEntries(active.map((r) => [r.status, Number(r.n)])),
          waiting_for_input: Number(waiting[0]?.n ?? 0),
          busiest_actions: busiestActions.map((r) => ({
            ...r,
            count: Number(r.count),
            failed: Number(r.failed),
          })),
          busiest_rules: busiestRules.map((r) => ({ rule_ref: r.rule_ref, count: Number(r.count) })),
          recent_failures: failures.map((f) => ({ ...f, finished_at: iso(f.finished_at) })),
        },
      };
    },
  );
}
