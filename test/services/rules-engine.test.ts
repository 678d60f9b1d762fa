/**
 * The rules engine and its rule index over a real PGlite store, the in-process bus and the real
 * outbox relay (no HTTP): lazy per-trigger loading and invalidation, idempotent passes, batching,
 * injected clock for time criteria, internal events, and a throughput measurement.
 */
import { count, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { OutboxRelay } from '../../src/bus/outbox.ts';
import { Cipher } from '../../src/security/crypto.ts';
import { createEvents, emitInternalEvent } from '../../src/services/events/create-event.ts';
import { RecentEvents } from '../../src/services/events/recent-events.ts';
import { RuleIndex } from '../../src/services/rules-engine/rule-index.ts';
import { RulesEngine } from '../../src/services/rules-engine/rules-engine.ts';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import type { Store } from '../../src/store/database.ts';
import {
  actions,
  enforcements,
  events,
  executions,
  outbox,
  packs,
  rules,
  triggers,
} from '../../src/store/schema.ts';
import { openTestStore } from '../support/store.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => Promise<boolean>, what: string, ms = 20_000, every = 10): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

let store: Store;
let close: () => Promise<void>;
let packId: number;
const cipher = new Cipher('rules-engine-test-key');

async function addRule(ref: string, triggerRef: string, extra: Partial<typeof rules.$inferInsert> = {}) {
  await store.db.insert(rules).values({
    ref,
    packId,
    packRef: 're',
    name: ref.slice(3),
    label: ref,
    triggerRef,
    actionRef: 're.noop',
    ...extra,
  });
}
const newEvents = (triggerRef: string, payloads: unknown[]) =>
  store.transaction((tx) =>
    createEvents(
      tx,
      payloads.map((p) => ({ triggerRef, payload: p as never, source: 'test' })),
    ),
  );
const countOf = async (table: typeof executions | typeof enforcements, ids: number[]) =>
  (await store.db.select({ n: count() }).from(table).where(inArray(table.eventId, ids)))[0]!.n;

beforeAll(async () => {
  ({ store, close } = await openTestStore());
  const [p] = await store.db
    .insert(packs)
    .values({ ref: 're', label: 're', version: '1.0.0' })
    .returning({ id: packs.id });
  packId = p!.id;
  for (const ref of ['re.a', 're.b', 're.c', 're.time', 're.internal', 're.bench'])
    await store.db.insert(triggers).values({ ref, packId, packRef: 're', name: ref.slice(3), label: ref });
  await store.db
    .insert(triggers)
    .values({ ref: 're.off', packId, packRef: 're', name: 'off', label: 'off', enabled: false });
  await store.db.insert(actions).values({
    ref: 're.noop',
    packId,
    packRef: 're',
    name: 'noop',
    label: 'noop',
    runner: 'noop',
  });
});
afterAll(async () => close?.());

describe('RuleIndex', () => {
  it('loads the enabled rules of one trigger on first use, then serves them from memory', async () => {
    await addRule('re.a1', 're.a');
    await addRule('re.a2', 're.a');
    await addRule('re.a3_off', 're.a', { enabled: false });
    await addRule('re.b1', 're.b');
    const idx = new RuleIndex(store.db);
    const [x, y] = await Promise.all([idx.rulesFor('re.a'), idx.rulesFor('re.a')]);
    expect(x.map((r) => r.ref)).toEqual(['re.a1', 're.a2']);
    expect(y).toBe(x);
    expect(idx.loads).toBe(1);
    for (let i = 0; i < 10; i++) await idx.rulesFor('re.a');
    expect(idx.loads).toBe(1);
    expect(await idx.hasRules('re.b')).toBe(true);
    expect(await idx.hasRules('re.nothing')).toBe(false);
    expect(idx.loads).toBe(3);
  });

  it('reloads after a change notification for its trigger, and after the TTL', async () => {
    let now = 1_000;
    const idx = new RuleIndex(store.db, { ttlMs: 5_000, now: () => now });
    const bus = new MemoryBus();
    await idx.attach(bus);
    await idx.rulesFor('re.a');
    await idx.rulesFor('re.b');
    const loads = idx.loads;
    await store.db.update(rules).set({ enabled: false }).where(eq(rules.ref, 're.a2'));
    expect((await idx.rulesFor('re.a')).map((r) => r.ref)).toEqual(['re.a1', 're.a2']); // still cached
    await bus.publish(TOPICS.definitionsChanged, {
      resource: 'rules',
      refs: ['re.a2'],
      trigger_refs: ['re.a'],
    });
    await sleep(20);
    expect((await idx.rulesFor('re.a')).map((r) => r.ref)).toEqual(['re.a1']);
    await idx.rulesFor('re.b'); // not named: still cached
    expect(idx.loads).toBe(loads + 1);
    now += 5_001;
    await idx.rulesFor('re.b');
    expect(idx.loads).toBe(loads + 2);
    // a notification without trigger_refs drops everything
    await bus.publish(TOPICS.definitionsChanged, { resource: 'packs' });
    await sleep(20);
    await idx.rulesFor('re.a');
    await idx.rulesFor('re.b');
    expect(idx.loads).toBe(loads + 4);
    await idx.detach();
    await bus.close();
    await store.db.update(rules).set({ enabled: true }).where(eq(rules.ref, 're.a2'));
  });

  it('does not cache a load that raced with an invalidation', async () => {
    const idx = new RuleIndex(store.db);
    const pending = idx.rulesFor('re.a');
    idx.invalidate(['re.a']);
    await pending;
    const loads = idx.loads;
    await idx.rulesFor('re.a');
    expect(idx.loads).toBe(loads + 1);
  });
});

describe('RulesEngine', () => {
  let engine: RulesEngine;
  let bus: MemoryBus;
  let relay: OutboxRelay;

  beforeAll(async () => {
    bus = new MemoryBus();
    relay = new OutboxRelay(store, bus, { pollIntervalMs: 50 });
    engine = await RulesEngine.start(bus, store, { cipher, outbox: relay });
    relay.start();
  });
  afterAll(async () => {
    await engine.stop();
    await relay.stop();
    await bus.close();
  });

  it('is idempotent: the same events twice, or concurrently, make one enforcement and one execution each', async () => {
    await addRule('re.c1', 're.c', { actionParams: { v: '{{ trigger.v }}' } });
    await addRule('re.c2', 're.c', { criteria: { 'trigger.v': { type: 'gt', pattern: 1 } } });
    const evs = await newEvents('re.c', [{ v: 1 }, { v: 2 }, { v: 3 }]);
    const ids = evs.map((e) => e.id);
    // Straight to the engine, bypassing the bus, several times at once.
    const passes = await Promise.all([
      engine.processEvents(ids),
      engine.processEvents(ids),
      engine.processEvents([...ids, ...ids]),
    ]);
    expect(passes.reduce((n, p) => n + p.executions, 0)).toBe(5);
    await waitFor(async () => (await countOf(executions, ids)) === 5, '5 executions');
    // ... and through the bus: the relayed messages plus two more copies of each.
    for (const id of ids) {
      await bus.publish(TOPICS.eventCreated, { event_id: id });
      await bus.publish(TOPICS.eventCreated, { event_id: id });
    }
    await relay.flush();
    await waitFor(async () => (await bus.queueDepth('attune.rules-engine')) === 0, 'the queue to drain');
    await sleep(100);
    expect(await countOf(enforcements, ids)).toBe(5);
    expect(await countOf(executions, ids)).toBe(5);
    const rows = await store.db.select().from(executions).where(inArray(executions.eventId, ids));
    for (const r of rows) {
      expect(r).toMatchObject({ status: 'requested', runner: 'noop', actionRef: 're.noop', rootId: r.id });
      expect(r.createdBy).toBe(`rule:${r.ruleRef}`);
    }
    expect(
      rows
        .filter((r) => r.ruleRef === 're.c1')
        .map((r) => r.parameters.v)
        .sort(),
    ).toEqual([1, 2, 3]);
    const again = await engine.processEvents(ids);
    expect(again).toMatchObject({ events: 3, enforcements: 0, executions: 0, duplicates: 5 });
    // each execution has its own outbox message
    const execIds = (
      await store.db.select({ id: executions.id }).from(executions).where(inArray(executions.eventId, ids))
    ).map((r) => r.id);
    const msgs = await store.db.select().from(outbox).where(eq(outbox.topic, TOPICS.executionRequested));
    const announced = msgs
      .map((m) => (m.payload as { execution_id: number }).execution_id)
      .filter((id) => execIds.includes(id));
    expect(announced.sort()).toEqual([...execIds].sort());
  });

  it('takes events it was handed (RecentEvents) instead of reading them, once; a redelivery is read and found enforced', async () => {
    await store.db
      .insert(triggers)
      .values({ ref: 're.handed', packId, packRef: 're', name: 'handed', label: 'handed' });
    await addRule('re.r1', 're.handed', { criteria: { 'trigger.k': { type: 'equals', pattern: 'yes' } } });
    const recent = new RecentEvents();
    const handed = new RulesEngine(store, { cipher, recentEvents: recent });
    const evs = await newEvents('re.handed', [{ k: 'yes' }, { k: 'no' }, { k: 'yes' }]);
    const ids = evs.map((e) => e.id);
    // The second is handed with another payload than the stored one: matching it shows the engine
    // used the row it was given rather than reading. The third was stored elsewhere: it is read.
    recent.remember([evs[0]!, { ...evs[1]!, payload: { k: 'yes' } }]);
    const first = await handed.processEvents(ids);
    expect(first).toMatchObject({ events: 3, enforcements: 3, executions: 3, duplicates: 0 });
    expect(recent.size).toBe(0); // taken, not kept
    // A redelivery: nothing handed any more; every event is read with the rules that enforced it.
    const again = await handed.processEvents(ids);
    expect(again).toMatchObject({ events: 3, enforcements: 0, executions: 0, duplicates: 3 });
    expect(await countOf(executions, ids)).toBe(3);
  });

  it('ignores unknown event ids and malformed messages', async () => {
    expect(await engine.processEvents([987654321])).toMatchObject({ events: 0, executions: 0 });
    await engine.handleMessage({ nope: 1 });
    await engine.handleMessage({ event_id: -3 });
    await engine.handleMessage(null);
  });

  it('judges time criteria against the injected clock (else the event time)', async () => {
    await addRule('re.fresh', 're.time', {
      criteria: { 'trigger.at': { type: 'timediff_lt', pattern: 60 } },
    });
    const fixed = new RulesEngine(store, { cipher, clock: () => new Date('2030-01-01T00:00:30Z') });
    const [e1, e2] = await newEvents('re.time', [
      { at: '2030-01-01T00:00:00Z' },
      { at: '2029-12-31T23:00:00Z' },
    ]);
    const r = await fixed.processEvents([e1!.id, e2!.id]);
    expect(r.executions).toBe(1);
    const [ex] = await store.db.select().from(executions).where(eq(executions.eventId, e1!.id));
    expect(ex?.ruleRef).toBe('re.fresh');
  });

  it('emitInternalEvent creates an event only when an enabled rule listens', async () => {
    const idx = new RuleIndex(store.db);
    const before = (await store.db.select({ n: count() }).from(events))[0]!.n;
    expect(
      await store.transaction((tx) => emitInternalEvent(tx, 're.internal', { a: 1 }, { rules: idx })),
    ).toBeUndefined();
    expect((await store.db.select({ n: count() }).from(events))[0]!.n).toBe(before);
    await addRule('re.on_internal', 're.internal');
    idx.invalidate(['re.internal']);
    const ev = await store.transaction((tx) =>
      emitInternalEvent(tx, 're.internal', { a: 1 }, { rules: idx }),
    );
    expect(ev).toMatchObject({ triggerRef: 're.internal', source: 'internal', payload: { a: 1 } });
    await waitFor(
      async () => (await countOf(executions, [ev!.id])) === 1,
      'the internal event to be enforced',
    );
    // a disabled trigger: nothing, and no error for the caller
    await addRule('re.on_off', 're.off');
    expect(
      await store.transaction((tx) => emitInternalEvent(tx, 're.off', {}, { rules: idx })),
    ).toBeUndefined();
  });

  it(`throughput: events → executions requested, through outbox, bus and engine (PGlite)`, async () => {
    await addRule('re.bench1', 're.bench', {
      criteria: { 'trigger.n': { type: 'greaterthan', pattern: -1 }, expression: '{{ trigger.n >= 0 }}' },
      actionParams: { n: '{{ trigger.n }}', msg: 'event {{ event.id }} #{{ trigger.n }}' },
    });
    const N = 2000;
    const t0 = performance.now();
    const ids: number[] = [];
    for (let i = 0; i < N; i += 500) {
      const evs = await newEvents(
        're.bench',
        Array.from({ length: 500 }, (_, k) => ({ n: i + k })),
      );
      ids.push(...evs.map((e) => e.id));
      relay.kick();
    }
    await waitFor(async () => (await countOf(executions, ids)) === N, `${N} executions`, 120_000, 100);
    const secs = (performance.now() - t0) / 1000;
    const rate = Math.round(N / secs);
    console.log(
      `[rules-engine throughput] ${N} events → ${N} executions requested in ${secs.toFixed(2)} s = ${rate} events/s ` +
        `(${engine.stats.batches} batches, PGlite)`,
    );
    expect(rate).toBeGreaterThan(100);

    // The engine alone: the same work straight through processEvents, batches of 128.
    const idle = new RulesEngine(store, { cipher });
    await store.db.update(rules).set({ triggerRef: 're.bench_direct' }).where(eq(rules.ref, 're.bench1'));
    await store.db
      .insert(triggers)
      .values({ ref: 're.bench_direct', packId, packRef: 're', name: 'bench_direct', label: 'bench' });
    const direct = (
      await newEvents(
        're.bench_direct',
        Array.from({ length: 1000 }, (_, n) => ({ n })),
      )
    ).map((e) => e.id);
    const t1 = performance.now();
    let made = 0;
    for (let i = 0; i < direct.length; i += 128)
      made += (await idle.processEvents(direct.slice(i, i + 128))).executions;
    const secs1 = (performance.now() - t1) / 1000;
    expect(made).toBe(1000);
    console.log(
      `[rules-engine alone] 1000 events → 1000 executions requested in ${secs1.toFixed(2)} s = ` +
        `${Math.round(1000 / secs1)} events/s (PGlite)`,
    );
  });
});
