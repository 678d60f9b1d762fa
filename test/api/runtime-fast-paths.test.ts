/**
 * The short paths of the runtime, on the real platform (both backends): they take fewer hops but
 * keep every guarded transition, outbox message and follow-up the long paths have.
 *  - the rules engine schedules an execution of a plain action in the transaction that creates it;
 *  - the worker follows up an end that needs nothing (no retry, group, parent or rule on
 *    `core.execution_completed`) in the transaction that records it — and leaves it to the
 *    completion handler as soon as a rule listens;
 *  - a workflow's `noop` tasks run in the transaction that starts them;
 *  - an action with a concurrency policy still goes through the scheduler.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { events, executions, outbox, packs, workflowTaskRuns } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeBackend('runtime fast paths', () => {
  let s: TestServer;
  const db = () => s.platform.store.db;
  const req = async (method: string, path: string, body?: unknown) => {
    const r = await s.request<AnyBody>(method, path, { token: s.adminToken, body });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body?.data;
  };
  const finished = async (id: number, ms = 15_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const [row] = await db().select().from(executions).where(eq(executions.id, id));
      if (row && ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'].includes(row.status)) return row;
      if (Date.now() > end) throw new Error(`execution ${id} did not finish: ${row?.status}`);
      await sleep(20);
    }
  };
  /** The outbox messages of these topics about execution `id`. */
  const messagesAbout = async (id: number) =>
    (
      await db()
        .select({ topic: outbox.topic, payload: outbox.payload })
        .from(outbox)
        .where(sql`(${outbox.payload}->>'execution_id')::bigint = ${id}`)
    ).map((m) => m.topic);

  beforeAll(async () => {
    s = await startTestServer();
    await db()
      .insert(packs)
      .values({ ref: 'fpt', label: 'fpt', version: '1.0.0', source: { type: 'api' } });
    await req('POST', '/api/v1/triggers', { ref: 'fpt.tick' });
    await req('POST', '/api/v1/actions', { ref: 'fpt.target', runner: 'noop' });
    await req('POST', '/api/v1/actions', {
      ref: 'fpt.limited',
      runner: 'noop',
      concurrency_policy: { limit: 2 },
    });
    await req('POST', '/api/v1/triggers', { ref: 'fpt.limit_tick' });
    await req('POST', '/api/v1/rules', {
      ref: 'fpt.on_tick',
      trigger_ref: 'fpt.tick',
      action_ref: 'core.noop',
    });
    await req('POST', '/api/v1/rules', {
      ref: 'fpt.on_limit_tick',
      trigger_ref: 'fpt.limit_tick',
      action_ref: 'fpt.limited',
    });
    await sleep(300); // the rule index follows the definitions-changed broadcast
  });
  afterAll(async () => s?.stop());

  it('a rule schedules a plain execution as it creates it; its worker follows its end up at once', async () => {
    const e = await req('POST', '/api/v1/events', { trigger: 'fpt.tick', payload: {} });
    let ex: typeof executions.$inferSelect | undefined;
    for (let i = 0; i < 300 && !ex; i++) {
      [ex] = await db().select().from(executions).where(eq(executions.eventId, e.id));
      if (!ex) await sleep(20);
    }
    const row = await finished(ex!.id);
    expect(row).toMatchObject({ status: 'succeeded', ruleRef: 'fpt.on_tick', rootId: row.id });
    expect(row.scheduledAt).toBeInstanceOf(Date);
    expect(row.workerId).not.toBeNull();
    expect(row.completionHandledAt).toBeInstanceOf(Date);
    // Straight to `scheduled` (no `execution.requested`), and nothing for the completion handler.
    expect(await messagesAbout(row.id)).toEqual(['execution.scheduled']);
  });

  it('with a rule on core.execution_completed, the completion handler follows the end up: the event is made', async () => {
    await req('POST', '/api/v1/rules', {
      ref: 'fpt.on_done',
      trigger_ref: 'core.execution_completed',
      criteria: { 'trigger.action_ref': { type: 'equals', pattern: 'fpt.target' } },
      action_ref: 'core.noop',
    });
    await sleep(300);
    try {
      const ex = await req('POST', '/api/v1/executions', { action: 'fpt.target', parameters: {} });
      const row = await finished(ex.id);
      expect(row.status).toBe('succeeded');
      expect(await messagesAbout(row.id)).toContain('execution.completed');
      let made: (typeof events.$inferSelect)[] = [];
      for (let i = 0; i < 300 && !made.length; i++) {
        made = await db()
          .select()
          .from(events)
          .where(
            and(
              eq(events.triggerRef, 'core.execution_completed'),
              sql`(${events.payload}->>'execution_id')::bigint = ${row.id}`,
            ),
          );
        if (!made.length) await sleep(20);
      }
      expect(made).toHaveLength(1);
      expect(made[0]!.payload).toMatchObject({ action_ref: 'fpt.target', status: 'succeeded' });
    } finally {
      await req('DELETE', '/api/v1/rules/fpt.on_done');
      await sleep(300);
    }
  });

  it("a workflow's noop tasks run in the transaction that starts them; other tasks on a worker", async () => {
    await req('POST', '/api/v1/workflows', {
      ref: 'fpt.mixed',
      label: 'mixed',
      definition: {
        tasks: [
          { name: 'a', action: 'core.noop', next: [{ do: 'b' }] },
          { name: 'b', action: 'core.noop', next: [{ do: 'c' }] },
          { name: 'c', action: 'core.echo', input: { message: 'hi' }, next: [{ do: 'd' }] },
          { name: 'd', action: 'core.noop' },
        ],
      },
    });
    await req('POST', '/api/v1/rules', {
      ref: 'fpt.on_child_done',
      trigger_ref: 'core.execution_completed',
      criteria: { 'trigger.parent_id': { type: 'exists' } },
      action_ref: 'fpt.target',
    });
    await sleep(300);
    try {
      const wf = await req('POST', '/api/v1/executions', { action: 'fpt.mixed', parameters: {} });
      const row = await finished(wf.id);
      expect(row.status).toBe('succeeded');
      const kids = await db().select().from(executions).where(eq(executions.parentId, wf.id));
      expect(kids.map((k) => k.taskName).sort()).toEqual(['a', 'b', 'c', 'd']);
      for (const k of kids) {
        expect(k).toMatchObject({ status: 'succeeded', rootId: wf.id });
        expect(k.scheduledAt).toBeInstanceOf(Date);
        expect(k.startedAt).toBeInstanceOf(Date);
        expect(k.finishedAt).toBeInstanceOf(Date);
        expect(k.completionHandledAt).toBeInstanceOf(Date);
        // noop tasks ran where they started; the echo task on a worker
        if (k.taskName === 'c') expect(k.workerId).not.toBeNull();
        else expect(k.workerId).toBeNull();
      }
      // Each task run knows its execution (written with the run's other columns, in one statement).
      const runs = await db()
        .select()
        .from(workflowTaskRuns)
        .where(eq(workflowTaskRuns.workflowExecutionId, wf.id));
      const seen = (xs: [string | null, string, number | null][]) =>
        xs.sort((x, y) => String(x[0]).localeCompare(String(y[0])));
      expect(seen(runs.map((r) => [r.taskName, r.status, r.executionId]))).toEqual(
        seen(kids.map((k) => [k.taskName, 'succeeded', k.id])),
      );
      for (const r of runs) expect(r.finishedAt).toBeInstanceOf(Date);
      const noops = kids.filter((k) => k.taskName !== 'c').map((k) => k.id);
      for (const id of noops) expect(await messagesAbout(id)).toEqual([]);
      // Their follow-up was done in that transaction: an internal event for each (the rule listens).
      let made: unknown[] = [];
      for (let i = 0; i < 300 && made.length < 4; i++) {
        made = await db()
          .select({ id: events.id })
          .from(events)
          .where(
            and(
              eq(events.triggerRef, 'core.execution_completed'),
              inArray(
                sql`(${events.payload}->>'execution_id')::bigint`,
                kids.map((k) => k.id),
              ),
            ),
          );
        if (made.length < 4) await sleep(20);
      }
      expect(made).toHaveLength(4);
    } finally {
      await req('DELETE', '/api/v1/rules/fpt.on_child_done');
    }
  });

  it('an action with a concurrency policy still goes through the scheduler', async () => {
    const posted = await req('POST', '/api/v1/events', {
      events: Array.from({ length: 5 }, (_, i) => ({ trigger: 'fpt.limit_tick', payload: { i } })),
    });
    const ids = (posted as { id: number }[]).map((e) => e.id);
    let rows: (typeof executions.$inferSelect)[] = [];
    for (let i = 0; i < 500; i++) {
      rows = await db().select().from(executions).where(inArray(executions.eventId, ids));
      if (rows.length === 5 && rows.every((r) => r.status === 'succeeded')) break;
      await sleep(20);
    }
    expect(rows.map((r) => r.status)).toEqual(Array(5).fill('succeeded'));
    for (const r of rows) {
      expect(r.policyGroup).toBe('fpt.limited');
      const topics = await messagesAbout(r.id);
      expect(topics).toContain('execution.requested');
      expect(topics).toContain('execution.completed'); // its group's slot is released by the follow-up
    }
  });
});
