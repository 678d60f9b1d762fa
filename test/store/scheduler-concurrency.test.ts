/**
 * Concurrency policies: never more than `limit` active executions per group, FIFO starts, 'cancel'
 * mode, grouping by parameters, and two schedulers racing on one database.
 */
import { and, count, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/index.ts';
import { ACTIVE_EXECUTION_STATUSES } from '../../src/domain/status.ts';
import { Scheduler } from '../../src/services/scheduler/scheduler.ts';
import type { Store } from '../../src/store/database.ts';
import { actions, executions, outbox, packs } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { openTestStore } from '../support/store.ts';
import { Runtime, sleep, TERMINAL } from './runtime-fixture.ts';

/** Samples the number of active executions of `ref` (per group when grouped) until stopped. */
function sampler(rt: Runtime, ref: string) {
  let max = 0;
  const perGroup = new Map<string, number>();
  let on = true;
  const loop = (async () => {
    while (on) {
      const rows = await rt.store.db
        .select({ group: executions.policyGroup, n: count() })
        .from(executions)
        .where(and(eq(executions.actionRef, ref), inArray(executions.status, [...ACTIVE_EXECUTION_STATUSES])))
        .groupBy(executions.policyGroup);
      let total = 0;
      for (const r of rows) {
        total += Number(r.n);
        const k = r.group ?? '';
        perGroup.set(k, Math.max(perGroup.get(k) ?? 0, Number(r.n)));
      }
      max = Math.max(max, total);
      await sleep(5);
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return { max, perGroup };
    },
  };
}

/** Largest number of [started, finished] intervals that overlap. */
function maxOverlap(rows: { startedAt: Date | null; finishedAt: Date | null }[]): number {
  const ev: [number, number][] = [];
  for (const r of rows) {
    if (!r.startedAt || !r.finishedAt) continue;
    ev.push([r.startedAt.getTime(), 1], [r.finishedAt.getTime(), -1]);
  }
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) {
    cur += d;
    max = Math.max(max, cur);
  }
  return max;
}

describeBackend('concurrency policies', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await Runtime.start({ workers: 2 });
    await rt.action({ ref: 'cc.delay', runner: 'sleep', concurrencyPolicy: { limit: 2, action: 'delay' } });
    await rt.action({ ref: 'cc.cancel', runner: 'sleep', concurrencyPolicy: { limit: 2, action: 'cancel' } });
    await rt.action({ ref: 'cc.one', runner: 'sleep', concurrencyPolicy: { limit: 1 } });
    await rt.action({
      ref: 'cc.grouped',
      runner: 'sleep',
      paramSchema: { type: 'object', properties: { seconds: { type: 'number' }, host: { type: 'string' } } },
      concurrencyPolicy: { limit: 1, action: 'delay', group_by: ['host'] },
    });
  });
  afterAll(async () => rt?.stop());

  it('delay mode: never more than the limit active, every execution runs, in FIFO order', async () => {
    const s = sampler(rt, 'cc.delay');
    const ids = await rt.request('cc.delay', 6, { parameters: { seconds: 0.25 } });
    const rows = await rt.waitFor(ids, TERMINAL, 20_000);
    const { max } = await s.stop();
    expect(rows.map((r) => r.status)).toEqual(Array(6).fill('succeeded'));
    expect(max).toBeLessThanOrEqual(2);
    expect(max).toBe(2);
    expect(maxOverlap(rows)).toBeLessThanOrEqual(2);
    // FIFO admission: scheduled in creation order, and nothing started before an older one was admitted.
    // (Two executions admitted together may be claimed by two workers in either order.)
    const byAdmission = [...rows].sort(
      (a, b) => a.scheduledAt!.getTime() - b.scheduledAt!.getTime() || a.id - b.id,
    );
    expect(byAdmission.map((r) => r.id)).toEqual(ids);
    for (let j = 1; j < rows.length; j++) {
      for (let i = 0; i < j; i++)
        expect(rows[j]!.startedAt!.getTime()).toBeGreaterThanOrEqual(rows[i]!.scheduledAt!.getTime());
    }
    expect(rows.every((r) => r.policyGroup === 'cc.delay')).toBe(true);
  });

  it('delay mode: executions waiting in the group go before newer ones', async () => {
    const [a, b, c] = await rt.request('cc.one', 3, { parameters: { seconds: 0.6 } });
    await rt.waitFor([b!, c!], ['delayed']);
    const [d] = await rt.request('cc.one', 1, { parameters: { seconds: 0.05 } });
    await rt.waitFor([d!], ['delayed']);
    const rows = await rt.waitFor([a!, b!, c!, d!], TERMINAL, 20_000);
    expect(rows.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    const order = [...rows].sort((x, y) => x.startedAt!.getTime() - y.startedAt!.getTime()).map((r) => r.id);
    expect(order).toEqual([a, b, c, d]);
    expect(maxOverlap(rows)).toBe(1);
  });

  it('cancel mode: executions beyond the limit are canceled with the reason', async () => {
    const ids = await rt.request('cc.cancel', 6, { parameters: { seconds: 0.3 } });
    const rows = await rt.waitFor(ids, TERMINAL, 20_000);
    expect(rows.map((r) => r.status)).toEqual([
      'succeeded',
      'succeeded',
      'canceled',
      'canceled',
      'canceled',
      'canceled',
    ]);
    for (const r of rows.slice(2)) {
      expect(r.error).toMatchObject({ type: 'concurrency_limit' });
      expect(String(r.error?.message)).toContain("concurrency policy of 'cc.cancel'");
      expect(r.startedAt).toBeNull();
    }
    // Once the slots are free again, new executions run.
    const [later] = await rt.request('cc.cancel', 1, { parameters: { seconds: 0 } });
    expect((await rt.waitFor([later!], TERMINAL))[0]!.status).toBe('succeeded');
  });

  it('group_by: the limit applies per distinct parameter values', async () => {
    const s = sampler(rt, 'cc.grouped');
    const a = await rt.request('cc.grouped', 3, { parameters: { seconds: 0.3, host: 'a' } });
    const b = await rt.request('cc.grouped', 3, { parameters: { seconds: 0.3, host: 'b' } });
    const rows = await rt.waitFor([...a, ...b], TERMINAL, 20_000);
    const { max, perGroup } = await s.stop();
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
    expect([...perGroup.values()].every((n) => n <= 1)).toBe(true);
    expect(max).toBe(2);
    expect(new Set(rows.map((r) => r.policyGroup))).toEqual(
      new Set(['cc.grouped|["a"]', 'cc.grouped|["b"]']),
    );
    expect(maxOverlap(rows.filter((r) => a.includes(r.id)))).toBe(1);
  });
});

describeBackend('concurrency policies: two schedulers racing', () => {
  let store: Store;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, close } = await openTestStore());
    const [p] = await store.db
      .insert(packs)
      .values({ ref: 'race', label: 'R', version: '1.0.0' })
      .returning();
    await store.db.insert(actions).values({
      ref: 'race.noop',
      packId: p!.id,
      packRef: 'race',
      name: 'noop',
      label: 'noop',
      runner: 'noop',
      concurrencyPolicy: { limit: 3, group_by: ['k'] },
    });
  });
  afterAll(async () => close?.());

  it('never schedules more than the limit of a group, whatever the interleaving', async () => {
    // Two schedulers that do not consume: their batches are driven directly, at the same moment.
    const bus = new MemoryBus();
    const s1 = new Scheduler({ store, bus });
    const s2 = new Scheduler({ store, bus });
    try {
      for (let round = 0; round < 15; round++) {
        const rows = await store.db
          .insert(executions)
          .values(
            Array.from({ length: 10 }, () => ({
              actionRef: 'race.noop',
              runner: 'noop',
              parameters: { k: `r${round}` },
            })),
          )
          .returning({ id: executions.id });
        const ids = rows.map((r) => r.id).sort((a, b) => a - b);
        const odd = ids.filter((_, i) => i % 2 === 1);
        const even = ids.filter((_, i) => i % 2 === 0);
        await Promise.all([
          s1.scheduleBatch(odd),
          s2.scheduleBatch(even),
          s1.scheduleBatch(even.slice(0, 2)),
          s2.scheduleBatch(odd.slice(3)),
        ]);
        const after = await store.db.select().from(executions).where(inArray(executions.id, ids));
        expect(
          after.filter((r) => r.status === 'scheduled'),
          `round ${round}`,
        ).toHaveLength(3);
        expect(
          after.filter((r) => r.status === 'delayed'),
          `round ${round}`,
        ).toHaveLength(7);
        expect(after.every((r) => r.policyGroup === `race.noop|["r${round}"]`)).toBe(true);
      }
      // Each schedule wrote exactly one execution.scheduled message.
      const msgs = await store.db.select().from(outbox).where(eq(outbox.topic, 'execution.scheduled'));
      expect(msgs).toHaveLength(45);
      expect(new Set(msgs.map((m) => (m.payload as { execution_id: number }).execution_id)).size).toBe(45);
    } finally {
      await s1.stop();
      await s2.stop();
      await bus.close();
    }
  });
});
