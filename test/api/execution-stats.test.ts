/**
 * `GET /api/v1/executions/stats`: the dashboard's figures, computed in the database — counts per
 * status in time buckets, the success rate, the busiest actions and rules, the latest failures, and
 * what is active now — checked against executions written with known times and statuses.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executions } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const H = 3_600_000;
const at = (ms: number) => new Date(T0 + ms);

describeBackend('execution statistics', () => {
  let s: TestServer;
  const ids: Record<string, number> = {};
  const get = (query: string, token = s.adminToken) =>
    s.request<AnyBody>('GET', `/api/v1/executions/stats${query}`, { token });

  beforeAll(async () => {
    s = await startTestServer();
    const rows: [string, string, string, number, string | null, Record<string, unknown> | null][] = [
      ['ok1', 'st.one', 'succeeded', 10 * 60_000, 'st.rule', null],
      ['ok2', 'st.one', 'succeeded', 50 * 60_000, 'st.rule', null],
      ['bad', 'st.one', 'failed', H + 5 * 60_000, null, { message: 'boom' }],
      ['slow', 'st.two', 'timeout', H + 30 * 60_000, null, { message: 'took too long' }],
      ['stop', 'st.two', 'canceled', 3 * H + 60_000, null, null],
      ['before', 'st.one', 'succeeded', -H, null, null],
    ];
    for (const [key, action, status, offset, rule, error] of rows) {
      const [r] = await s.platform.store.db
        .insert(executions)
        .values({
          actionRef: action,
          runner: 'noop',
          status,
          parameters: {},
          ruleRef: rule,
          error,
          createdAt: at(offset),
          startedAt: at(offset),
          finishedAt: at(offset + 1000),
        })
        .returning({ id: executions.id });
      ids[key] = r!.id;
    }
    // under way now (a far lease, so no sweeper moves it while the test runs)
    await s.platform.store.db.insert(executions).values({
      actionRef: 'st.long',
      runner: 'noop',
      status: 'running',
      parameters: {},
      workerId: 'worker-far-away',
      leaseExpiresAt: sql`now() + interval '1 hour'`,
      startedAt: new Date(),
    });
  });
  afterAll(async () => s?.stop());

  it('counts executions per status in equal buckets of the window', async () => {
    const since = at(0).toISOString();
    const until = at(4 * H).toISOString();
    const r = await get(`?since=${since}&until=${until}&buckets=4`);
    expect(r.status).toBe(200);
    const d = r.body.data;
    expect(d.since).toBe(since);
    expect(d.until).toBe(until);
    expect(d.bucket_seconds).toBe(3600);
    expect(d.series.map((b: AnyBody) => b.start)).toEqual([0, 1, 2, 3].map((i) => at(i * H).toISOString()));
    expect(d.series.map((b: AnyBody) => b.counts)).toEqual([
      { succeeded: 2 },
      { failed: 1, timeout: 1 },
      {},
      { canceled: 1 },
    ]);
    expect(d.totals).toEqual({ succeeded: 2, failed: 1, timeout: 1, canceled: 1 });
    expect(d.success_rate).toBe(0.5);
  });

  it('names the busiest actions and rules and the latest failures', async () => {
    const d = (await get(`?since=${at(0).toISOString()}&until=${at(4 * H).toISOString()}`)).body.data;
    expect(d.busiest_actions).toEqual([
      { action_ref: 'st.one', count: 3, failed: 1 },
      { action_ref: 'st.two', count: 2, failed: 1 },
    ]);
    expect(d.busiest_rules).toEqual([{ rule_ref: 'st.rule', count: 2 }]);
    expect(d.recent_failures.map((f: AnyBody) => [f.id, f.status, f.error?.message])).toEqual([
      [ids.slow, 'timeout', 'took too long'],
      [ids.bad, 'failed', 'boom'],
    ]);
    expect(d.recent_failures[0].finished_at).toBe(at(H + 30 * 60_000 + 1000).toISOString());
  });

  it('counts what is active now, whatever the window, and the inquiries waiting', async () => {
    const d = (await get(`?since=${at(0).toISOString()}&until=${at(H).toISOString()}`)).body.data;
    expect(d.active.running).toBeGreaterThanOrEqual(1);
    expect(d.waiting_for_input).toBe(0);
    expect(d.totals).toEqual({ succeeded: 2 });
  });

  it('defaults to the last 24 hours in 48 buckets, and has no success rate when nothing ended', async () => {
    const r = await get('');
    expect(r.status).toBe(200);
    expect(r.body.data.series).toHaveLength(48);
    expect(r.body.data.bucket_seconds).toBe(1800);
    expect(r.body.data.success_rate).toBeNull();
    expect(Date.parse(r.body.data.until) - Date.parse(r.body.data.since)).toBe(24 * H);
  });

  it('refuses a window it cannot read, with the uniform error', async () => {
    const cases: [string, RegExp][] = [
      [`?since=${at(2 * H).toISOString()}&until=${at(H).toISOString()}`, /since must be before/],
      ['?since=yesterday', /not an ISO 8601/],
      ['?until=2026-02-30', /not an ISO 8601/],
      ['?since=2020-01-01&until=2026-01-01', /longer than 366 days/],
      ['?buckets=0', /buckets/],
      ['?buckets=501', /buckets/],
      ['?colour=blue', /colour/],
    ];
    for (const [q, re] of cases) {
      const r = await get(q);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code, q).toBe('VALIDATION_ERROR');
      expect(r.body.error.message, q).toMatch(re);
    }
    expect((await get('', null as unknown as string)).status).toBe(401);
  });
});
