/**
 * The timer service on both stores (PGlite in a data directory, and the PostgreSQL server of this
 * machine — skipped loudly when unreachable, failing under CI=true): interval, cron (seconds field,
 * time zones) and one-shot timers fire on time with the rule's trigger parameters; identical timers
 * share one firing; invalid ones are logged and skipped; missed firings follow the misfire policy
 * (with a faked clock); and two services racing on one database fire each firing exactly once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { BusLogger } from '../../src/bus/bus.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import { TimerService } from '../../src/services/timers/timer-service.ts';
import {
  parseTimerSpec,
  parseZonedDateTime,
  timerKey,
  timerSpecProblem,
} from '../../src/services/timers/timer-spec.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { rawRows } from '../../src/store/repositories/bulk.ts';
import { actions, events, outbox, packs, rules, timers, triggers } from '../../src/store/schema.ts';
import { createTestDatabase, probePostgres } from '../support/postgres.ts';

const pgDown = await probePostgres();
if (pgDown && process.env.CI === 'true') throw new Error(`PostgreSQL unreachable under CI=true: ${pgDown}`);
if (pgDown) console.warn(`\n  !! timers: PostgreSQL unreachable (${pgDown}); its suite is SKIPPED\n`);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const CORE_DIR = path.resolve(import.meta.dirname, '../../packs/core/triggers');

/** The payload schema the core pack declares for a trigger (so events are checked as in production). */
const payloadSchemaOf = (name: string): Record<string, unknown> | null =>
  (
    parseYaml(fs.readFileSync(path.join(CORE_DIR, `${name}.yaml`), 'utf8')) as {
      payload_schema?: Record<string, unknown>;
    }
  ).payload_schema ?? null;

interface LogEntry {
  level: string;
  obj: object;
  msg: string;
}
function memoryLog(): BusLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: string) => (obj: object, msg: string) => entries.push({ level, obj, msg });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A settable clock. */
function fakeClock(start: string) {
  let t = Date.parse(start);
  return {
    now: () => t,
    set: (iso: string) => {
      t = Date.parse(iso);
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/**
 * Waits until the database's clock has passed the creation of every timer row. A sync spares rows
 * created from the instant it starts (another replica may have just made them), and the embedded
 * database's clock counts whole milliseconds: a sync started within the millisecond of a row's
 * creation rightly leaves the row to the next sync.
 */
async function afterTimersCreated(store: Store): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const [r] = rawRows(
      await store.db.execute(sql`select coalesce(bool_and(now() > created_at), true) as past from timers`),
    );
    if (r?.past) return;
    await sleep(1);
  }
  throw new Error("the database's clock did not move past the timers' creation");
}

async function seed(store: Store): Promise<void> {
  const db = store.db;
  const [pack] = await db.insert(packs).values({ ref: 'core', label: 'Core', version: '1.0.0' }).returning();
  const packId = pack!.id;
  for (const name of ['intervaltimer', 'crontimer', 'datetimetimer']) {
    await db.insert(triggers).values({
      ref: `core.${name}`,
      packId,
      packRef: 'core',
      name,
      label: name,
      paramSchema: { type: 'object' },
      payloadSchema: payloadSchemaOf(name),
    });
  }
  await db
    .insert(actions)
    .values({ ref: 'core.noop', packId, packRef: 'core', name: 'noop', label: 'noop', runner: 'noop' });
}

let ruleSeq = 0;
async function addRule(
  store: Store,
  triggerRef: string,
  triggerParams: Record<string, unknown>,
  enabled = true,
): Promise<string> {
  const [pack] = await store.db.select().from(packs).where(eq(packs.ref, 'core'));
  const name = `timer_rule_${++ruleSeq}`;
  await store.db.insert(rules).values({
    ref: `core.${name}`,
    packId: pack!.id,
    packRef: 'core',
    name,
    label: name,
    triggerRef,
    triggerParams,
    actionRef: 'core.noop',
    enabled,
  });
  return `core.${name}`;
}

const timerEvents = (store: Store) =>
  store.db.select().from(events).where(sql`${events.source} = 'timer'`).orderBy(asc(events.id));

type Payload = Record<string, unknown>;

describe('timer specifications', () => {
  it('accepts the documented forms and explains what is wrong with the others', () => {
    expect(parseTimerSpec('core.intervaltimer', { delta: 5 }).ok).toBe(true);
    expect(
      parseTimerSpec('core.intervaltimer', { unit: 'days', delta: 1, misfire: 'catch_up_once' }).ok,
    ).toBe(true);
    expect(parseTimerSpec('core.crontimer', { cron: '*/1 * * * * *' }).ok).toBe(true);
    expect(parseTimerSpec('core.crontimer', { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' }).ok).toBe(true);
    expect(
      parseTimerSpec('core.datetimetimer', { date: '2030-01-31T09:00:00', timezone: 'Asia/Tokyo' }).ok,
    ).toBe(true);

    expect(timerSpecProblem('core.intervaltimer', { delta: 0 })).toMatch(/delta must be a whole number/);
    expect(timerSpecProblem('core.intervaltimer', { delta: 1, unit: 'weeks' })).toMatch(
      /unit must be one of/,
    );
    expect(timerSpecProblem('core.crontimer', { cron: '61 * * * * *' })).toMatch(
      /invalid cron expression.*second/,
    );
    expect(timerSpecProblem('core.crontimer', { cron: '* * * * * * *' })).toMatch(/invalid cron expression/);
    expect(timerSpecProblem('core.crontimer', { cron: '0 0 30 2 *' })).toMatch(/never fires/);
    expect(timerSpecProblem('core.crontimer', { cron: '* * * * *', timezone: 'Mars/Olympus' })).toMatch(
      /IANA time zone/,
    );
    expect(timerSpecProblem('core.datetimetimer', { date: '2030-02-30T09:00:00' })).toMatch(/valid ISO 8601/);
    expect(timerSpecProblem('core.intervaltimer', { delta: 1, misfire: 'later' })).toMatch(
      /misfire must be one of/,
    );
    expect(timerSpecProblem('core.webhook', { name: 'x' })).toBeUndefined();
  });

  it('reads a date without offset in its time zone, across daylight-saving time', () => {
    expect(new Date(parseZonedDateTime('2030-01-15T09:00:00', 'Europe/Paris')!).toISOString()).toBe(
      '2030-01-15T08:00:00.000Z',
    );
    expect(new Date(parseZonedDateTime('2030-07-15T09:00:00', 'Europe/Paris')!).toISOString()).toBe(
      '2030-07-15T07:00:00.000Z',
    );
    expect(new Date(parseZonedDateTime('2030-07-15T09:00:00+02:00', 'Asia/Tokyo')!).toISOString()).toBe(
      '2030-07-15T07:00:00.000Z',
    );
    expect(new Date(parseZonedDateTime('2030-07-15 09:00', 'UTC')!).toISOString()).toBe(
      '2030-07-15T09:00:00.000Z',
    );
  });

  it('keys a timer by trigger and parameters, whatever their order', () => {
    expect(timerKey('core.intervaltimer', { unit: 'seconds', delta: 1 })).toBe(
      timerKey('core.intervaltimer', { delta: 1, unit: 'seconds' }),
    );
    expect(timerKey('core.intervaltimer', { delta: 1 })).not.toBe(
      timerKey('core.intervaltimer', { delta: 2 }),
    );
    expect(timerKey('core.intervaltimer', { delta: 1 })).not.toBe(timerKey('core.crontimer', { delta: 1 }));
  });
});

interface Backend {
  open(): Promise<Store>;
  /** A second connection (pool) to the same database, as another replica would have. */
  another(): Promise<Store>;
  dispose(): Promise<void>;
}

function pgliteBackend(): Backend {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-timers-'));
  let store: Store | undefined;
  return {
    open: async () => {
      store = await openStore({ pgliteDir: path.join(dir, 'db') });
      return store;
    },
    // PGlite is one connection in one process: replicas share it.
    another: async () => ({ ...store!, close: async () => {} }),
    dispose: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function postgresBackend(): Backend {
  let db: { url: string; drop: () => Promise<void> } | undefined;
  return {
    open: async () => {
      db = await createTestDatabase();
      return openStore({ databaseUrl: db.url, poolSize: 4 });
    },
    another: () => openStore({ databaseUrl: db!.url, poolSize: 4 }),
    dispose: async () => db?.drop(),
  };
}

for (const kind of ['pglite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && pgDown !== undefined)(`timer service on ${kind}`, () => {
    const backend = kind === 'pglite' ? pgliteBackend() : postgresBackend();
    let store: Store;
    const services: TimerService[] = [];
    const extraStores: Store[] = [];
    const service = (opts: Partial<ConstructorParameters<typeof TimerService>[0]> = {}, s?: Store) => {
      const t = new TimerService({ store: s ?? store, maxIdleMs: 200, ...opts });
      services.push(t);
      return t;
    };

    beforeAll(async () => {
      store = await backend.open();
      await seed(store);
    });
    afterAll(async () => {
      await Promise.all(services.map((s) => s.stop()));
      await Promise.all(extraStores.map((s) => s.close()));
      await store?.close();
      await backend.dispose();
    });
    beforeEach(async () => {
      await Promise.all(services.splice(0).map((s) => s.stop()));
      await store.db.delete(rules);
      await store.db.delete(timers);
      await store.db.delete(events);
      await store.db.delete(outbox);
      await store.db.update(triggers).set({ enabled: true });
    });

    it('an interval timer of 1 s fires about once a second, each event with the rule’s parameters', async () => {
      const params = { unit: 'seconds', delta: 1 };
      await addRule(store, 'core.intervaltimer', params);
      const t = service();
      const t0 = Date.now();
      await t.start();
      await sleep(3600);
      await t.stop();
      const elapsed = Date.now() - t0;
      const evs = await timerEvents(store);
      // first firing one interval after the start, then one a second
      expect(evs.length).toBeGreaterThanOrEqual(Math.floor(elapsed / 1000) - 1);
      expect(evs.length).toBeLessThanOrEqual(Math.floor(elapsed / 1000));
      expect(evs.length).toBeGreaterThanOrEqual(3);
      const scheduled = evs.map((e) => Date.parse((e.payload as Payload).scheduled_at as string));
      for (let i = 1; i < scheduled.length; i++) expect(scheduled[i]! - scheduled[i - 1]!).toBe(1000);
      for (const e of evs) {
        expect(e.triggerRef).toBe('core.intervaltimer');
        expect(e.triggerParams).toEqual(params);
        const p = e.payload as Payload;
        expect(p).toMatchObject({ unit: 'seconds', delta: 1 });
        const late = Date.parse(p.executed_at as string) - Date.parse(p.scheduled_at as string);
        expect(late).toBeGreaterThanOrEqual(0);
        expect(late).toBeLessThan(900);
      }
      // each event has its event.created message, written with it
      const msgs = await store.db.select().from(outbox).where(eq(outbox.topic, TOPICS.eventCreated));
      expect(msgs.map((m) => (m.payload as { event_id: number }).event_id).sort()).toEqual(
        evs.map((e) => e.id).sort(),
      );
    });

    it('a cron timer with a seconds field fires every second, on the second', async () => {
      await addRule(store, 'core.crontimer', { cron: '*/1 * * * * *' });
      const t = service();
      await t.start();
      await sleep(3300);
      await t.stop();
      const evs = await timerEvents(store);
      expect(evs.length).toBeGreaterThanOrEqual(2);
      expect(evs.length).toBeLessThanOrEqual(4);
      const scheduled = evs.map((e) => Date.parse((e.payload as Payload).scheduled_at as string));
      for (const s of scheduled) expect(s % 1000).toBe(0);
      expect(new Set(scheduled).size).toBe(scheduled.length);
      expect(evs[0]!.triggerParams).toEqual({ cron: '*/1 * * * * *' });
    });

    it('rules with identical timer parameters share one timer and one event per firing', async () => {
      await addRule(store, 'core.intervaltimer', { unit: 'minutes', delta: 5 });
      await addRule(store, 'core.intervaltimer', { delta: 5, unit: 'minutes' });
      await addRule(store, 'core.intervaltimer', { unit: 'minutes', delta: 6 });
      await addRule(store, 'core.intervaltimer', { unit: 'minutes', delta: 7 }, false);
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now });
      expect(await t.sync()).toMatchObject({ wanted: 2, created: 2, deleted: 0, invalid: [] });
      expect(await t.sync()).toMatchObject({ wanted: 2, created: 0, deleted: 0 });
      clock.advance(5 * 60_000);
      await t.tick();
      const evs = await timerEvents(store);
      expect(evs).toHaveLength(1);
      expect(evs[0]!.payload).toMatchObject({ scheduled_at: '2030-01-01T00:05:00.000Z', delta: 5 });
    });

    it('a cron timer reads its expression in its time zone', async () => {
      await addRule(store, 'core.crontimer', { cron: '0 0 9 * * *', timezone: 'America/New_York' });
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now });
      await t.sync();
      const [row] = await store.db.select().from(timers);
      expect(row!.nextFireAt!.toISOString()).toBe('2030-01-01T14:00:00.000Z');
      clock.set('2030-01-01T13:59:59.900Z');
      await t.tick();
      expect(await timerEvents(store)).toHaveLength(0);
      clock.set('2030-01-01T14:00:00.250Z');
      await t.tick();
      const evs = await timerEvents(store);
      expect(evs).toHaveLength(1);
      expect(evs[0]!.payload).toMatchObject({
        scheduled_at: '2030-01-01T14:00:00.000Z',
        executed_at: '2030-01-01T14:00:00.250Z',
        cron: '0 0 9 * * *',
        timezone: 'America/New_York',
      });
      const [after] = await store.db.select().from(timers);
      expect(after!.nextFireAt!.toISOString()).toBe('2030-01-02T14:00:00.000Z');
    });

    it('a date-time timer fires once, then is done — also when its rule is disabled and enabled again', async () => {
      const rule = await addRule(store, 'core.datetimetimer', {
        date: '2030-06-01T12:00:00',
        timezone: 'Europe/Paris',
      });
      const clock = fakeClock('2030-06-01T09:00:00Z');
      const t = service({ now: clock.now });
      await t.sync();
      clock.set('2030-06-01T10:00:00.100Z');
      await t.tick();
      clock.advance(3_600_000);
      await t.tick();
      const evs = await timerEvents(store);
      expect(evs).toHaveLength(1);
      expect(evs[0]!.payload).toMatchObject({ scheduled_at: '2030-06-01T10:00:00.000Z' });
      const [row] = await store.db.select().from(timers);
      expect(row!.nextFireAt).toBeNull();
      expect(row!.fireCount).toBe(1);
      await store.db.update(rules).set({ enabled: false }).where(eq(rules.ref, rule));
      await t.sync();
      await store.db.update(rules).set({ enabled: true }).where(eq(rules.ref, rule));
      await t.sync();
      clock.advance(3_600_000);
      await t.tick();
      expect(await timerEvents(store)).toHaveLength(1);
    });

    it('invalid timer parameters are logged once, naming the rule, and skipped; other timers still fire', async () => {
      const bad = await addRule(store, 'core.crontimer', { cron: '99 * * * * *' });
      await addRule(store, 'core.intervaltimer', { delta: 10 });
      const log = memoryLog();
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now, log });
      const r = await t.sync();
      expect(r.wanted).toBe(1);
      expect(r.invalid).toEqual([{ rule: bad, message: expect.stringMatching(/invalid cron expression/) }]);
      await t.sync();
      const errors = log.entries.filter((e) => e.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]!.msg).toContain(bad);
      expect(errors[0]!.msg).toMatch(/invalid timer parameters; its timer is skipped/);
      clock.advance(10_000);
      await t.tick();
      expect(await timerEvents(store)).toHaveLength(1);
    });

    it('a short lag is caught up one firing at a time', async () => {
      await addRule(store, 'core.intervaltimer', { delta: 1 });
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now });
      await t.sync();
      clock.advance(3500);
      await t.tick();
      const evs = await timerEvents(store);
      expect(evs.map((e) => (e.payload as Payload).scheduled_at)).toEqual([
        '2030-01-01T00:00:01.000Z',
        '2030-01-01T00:00:02.000Z',
        '2030-01-01T00:00:03.000Z',
      ]);
      expect(evs.every((e) => (e.payload as Payload).missed_count === undefined)).toBe(true);
    });

    it('misfire skip (the default): firings missed during downtime are dropped, the schedule goes on', async () => {
      await addRule(store, 'core.intervaltimer', { delta: 10 });
      const log = memoryLog();
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now, log });
      await t.sync();
      clock.set('2030-01-01T00:10:05Z'); // down for ten minutes: 60 firings missed (00:00:10 … 00:10:00)
      await t.tick();
      expect(await timerEvents(store)).toHaveLength(0);
      const [row] = await store.db.select().from(timers);
      expect(row!.nextFireAt!.toISOString()).toBe('2030-01-01T00:10:10.000Z');
      const warn = log.entries.find((e) => e.level === 'warn');
      expect(warn?.msg).toMatch(/missed 60 firing\(s\).*skipped/);
      clock.set('2030-01-01T00:10:10.050Z');
      await t.tick();
      const evs = await timerEvents(store);
      expect(evs).toHaveLength(1);
      expect(evs[0]!.payload).toMatchObject({ scheduled_at: '2030-01-01T00:10:10.000Z' });
    });

    it('misfire catch_up_once: one event stands for every missed firing, with missed_count', async () => {
      const params = { cron: '0 * * * * *', misfire: 'catch_up_once' };
      await addRule(store, 'core.crontimer', params);
      const clock = fakeClock('2030-01-01T00:00:30Z');
      const t = service({ now: clock.now });
      await t.sync();
      clock.set('2030-01-01T01:00:40Z'); // missed 00:01:00 … 01:00:00 = 60 firings
      await t.tick();
      let evs = await timerEvents(store);
      expect(evs).toHaveLength(1);
      expect(evs[0]!.triggerParams).toEqual(params);
      expect(evs[0]!.payload).toMatchObject({
        missed_count: 60,
        first_missed_at: '2030-01-01T00:01:00.000Z',
        scheduled_at: '2030-01-01T01:00:00.000Z',
        executed_at: '2030-01-01T01:00:40.000Z',
      });
      clock.set('2030-01-01T01:01:00.010Z');
      await t.tick();
      evs = await timerEvents(store);
      expect(evs).toHaveLength(2);
      expect((evs[1]!.payload as Payload).missed_count).toBeUndefined();
    });

    it('a date-time already past by more than the grace period is a misfire: skipped by default, or fired once', async () => {
      await addRule(store, 'core.datetimetimer', { date: '2029-12-31T23:00:00Z' });
      await addRule(store, 'core.datetimetimer', { date: '2029-12-31T23:00:00Z', misfire: 'catch_up_once' });
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now });
      await t.sync();
      await t.tick();
      const evs = await timerEvents(store);
      expect(evs).toHaveLength(1);
      expect(evs[0]!.payload).toMatchObject({ missed_count: 1, scheduled_at: '2029-12-31T23:00:00.000Z' });
      const rows = await store.db.select().from(timers);
      expect(rows.map((r) => r.nextFireAt)).toEqual([null, null]);
    });

    it('a timer follows its rule: removed when disabled, restarted from the moment it is enabled again', async () => {
      const rule = await addRule(store, 'core.intervaltimer', { delta: 30 });
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now });
      await t.sync();
      await store.db.update(rules).set({ enabled: false }).where(eq(rules.ref, rule));
      await afterTimersCreated(store);
      expect(await t.sync()).toMatchObject({ deleted: 1 });
      clock.advance(45_000);
      await t.tick();
      expect(await timerEvents(store)).toHaveLength(0);
      await store.db.update(rules).set({ enabled: true }).where(eq(rules.ref, rule));
      await t.sync();
      const [row] = await store.db.select().from(timers);
      expect(row!.nextFireAt!.toISOString()).toBe('2030-01-01T00:01:15.000Z');
    });

    it('a disabled trigger fires nothing', async () => {
      await addRule(store, 'core.intervaltimer', { delta: 1 });
      await store.db.update(triggers).set({ enabled: false }).where(eq(triggers.ref, 'core.intervaltimer'));
      const clock = fakeClock('2030-01-01T00:00:00Z');
      const t = service({ now: clock.now });
      expect(await t.sync()).toMatchObject({ wanted: 0 });
      clock.advance(5000);
      await t.tick();
      expect(await timerEvents(store)).toHaveLength(0);
    });

    it('re-syncs at once when rules change (definitions broadcast)', async () => {
      const bus = new MemoryBus();
      try {
        const t = service({ bus, syncIntervalMs: 60_000 });
        await t.start();
        await sleep(300);
        await addRule(store, 'core.intervaltimer', { unit: 'hours', delta: 1 });
        await bus.publish(TOPICS.definitionsChanged, { resource: 'rules' });
        const end = Date.now() + 5000;
        while ((await store.db.select().from(timers)).length === 0 && Date.now() < end) await sleep(20);
        expect(await store.db.select().from(timers)).toHaveLength(1);
      } finally {
        await Promise.all(services.splice(0).map((s) => s.stop()));
        await bus.close();
      }
    });

    it('two services racing on one database fire every firing exactly once (faked clock, forced contention)', async () => {
      await addRule(store, 'core.intervaltimer', { delta: 1 });
      await addRule(store, 'core.crontimer', { cron: '*/1 * * * * *' });
      const other = await backend.another();
      extraStores.push(other);
      const clock = fakeClock('2030-01-01T00:00:00.000Z');
      const a = service({ now: clock.now });
      const b = service({ now: clock.now }, other);
      await Promise.all([a.sync(), b.sync()]);
      for (let i = 0; i < 5; i++) {
        clock.advance(1000);
        await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
      }
      const evs = await timerEvents(store);
      expect(evs).toHaveLength(10);
      expect(a.fired + b.fired).toBe(10);
      const firings = evs.map((e) => `${e.triggerRef} ${(e.payload as Payload).scheduled_at}`);
      expect(new Set(firings).size).toBe(10);
      const rows = await store.db.select().from(timers);
      expect(rows.map((r) => r.fireCount)).toEqual([5, 5]);
    });

    it('two running services on one database, real clock: each firing exactly one event', async () => {
      await addRule(store, 'core.intervaltimer', { delta: 1 });
      await addRule(store, 'core.crontimer', { cron: '*/1 * * * * *' });
      const other = await backend.another();
      extraStores.push(other);
      const a = service();
      const b = service({}, other);
      await Promise.all([a.start(), b.start()]);
      await sleep(4300);
      await Promise.all([a.stop(), b.stop()]);
      const evs = await timerEvents(store);
      const byTimer = new Map<string, string[]>();
      for (const e of evs) {
        const list = byTimer.get(e.triggerRef) ?? [];
        list.push((e.payload as Payload).scheduled_at as string);
        byTimer.set(e.triggerRef, list);
      }
      expect(byTimer.get('core.intervaltimer')!.length).toBeGreaterThanOrEqual(3);
      expect(byTimer.get('core.crontimer')!.length).toBeGreaterThanOrEqual(3);
      for (const list of byTimer.values()) expect(new Set(list).size).toBe(list.length);
      expect(a.fired + b.fired).toBe(evs.length);
      const rows = await store.db.select().from(timers);
      expect(rows.reduce((n, r) => n + r.fireCount, 0)).toBe(evs.length);
    });
  });
}
