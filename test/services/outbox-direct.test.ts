/**
 * The outbox's direct path: rows written in a transaction are published as soon as it commits (no
 * claiming pass, no poll), marked published shortly after, and republished by a restarted relay if
 * the process died before the mark. Rows written outside a followed transaction, and rows whose
 * direct publish failed, still go the claiming way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isNull } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/bus.ts';
import { BusError } from '../../src/bus/bus.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { OutboxRelay, writeOutbox, writeOutboxMany } from '../../src/bus/outbox.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { outbox } from '../../src/store/schema.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A bus that counts publishes and can be made to refuse them. */
function flaky(bus: Bus): Bus & { refusing: boolean; published: number } {
  const b = {
    refusing: false,
    published: 0,
    kind: bus.kind,
    get state() {
      return bus.state;
    },
    get healthy() {
      return bus.healthy;
    },
    onStateChange: (l: Parameters<Bus['onStateChange']>[0]) => bus.onStateChange(l),
    publish: async (...a: Parameters<Bus['publish']>) => {
      if (b.refusing) throw new BusError('BUS_UNAVAILABLE', 'refused for the test');
      b.published++;
      await bus.publish(...a);
    },
    consume: (...a: Parameters<Bus['consume']>) => bus.consume(...a),
    subscribe: (...a: Parameters<Bus['subscribe']>) => bus.subscribe(...a),
    queueDepth: (q: string) => bus.queueDepth(q),
    close: () => bus.close(),
  };
  return b;
}

describe('outbox: publishing on commit', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-outbox-direct-'));
  let store: Store;
  let bus: MemoryBus;
  let got: BusMessage[];
  let seq = 0;
  const relays: OutboxRelay[] = [];
  const relay = (b: Bus, opts: ConstructorParameters<typeof OutboxRelay>[2] = {}) => {
    // A poll far away: whatever arrives quickly came by the direct path.
    const r = new OutboxRelay(store, b, { pollIntervalMs: 60_000, ...opts });
    relays.push(r);
    return r;
  };
  const unpublished = async () =>
    (await store.db.select({ id: outbox.id }).from(outbox).where(isNull(outbox.publishedAt))).length;

  beforeAll(async () => {
    store = await openStore({ pgliteDir: path.join(dir, 'db') });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    bus = new MemoryBus();
    got = [];
    await store.db.delete(outbox);
    await bus.consume(`direct${++seq}`, { topics: ['od.#'] }, async (m) => {
      got.push(m);
    });
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await bus.close();
  });

  it('publishes what a transaction wrote when it commits, then marks it published', async () => {
    const r = relay(bus, { markDelayMs: 30 });
    r.start();
    await sleep(50); // the first pass (leftovers from before the start) is over
    await store.transaction(async (tx) => {
      await writeOutboxMany(tx, 'od.item', [{ i: 1 }, { i: 2 }, { i: 3 }]);
    });
    await waitFor(() => got.length === 3, 'three messages');
    expect(got.map((m) => m.payload)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
    await waitFor(async () => (await unpublished()) === 0, 'the rows to be marked');
    expect(r.stats).toMatchObject({ published: 3, failed: 0 });
    await sleep(100);
    expect(got).toHaveLength(3);
  });

  it('never publishes what a rolled-back transaction wrote', async () => {
    relay(bus).start();
    await expect(
      store.transaction(async (tx) => {
        await writeOutbox(tx, 'od.never', { n: 1 });
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    await store.transaction(async (tx) => writeOutbox(tx, 'od.yes', { n: 2 }));
    await waitFor(() => got.length === 1, 'the committed message');
    await sleep(100);
    expect(got.map((m) => m.topic)).toEqual(['od.yes']);
  });

  it('rows written outside a transaction are found by the pass a kick starts', async () => {
    const r = relay(bus);
    r.start();
    await sleep(50);
    await writeOutbox(store.db, 'od.loose', { loose: true });
    r.kick();
    await waitFor(() => got.length === 1, 'the loose message');
    expect(got[0]!.payload).toEqual({ loose: true });
  });

  it('a direct publish that fails leaves the row to the claiming pass, which publishes it once the bus is back', async () => {
    const b = flaky(bus);
    const r = relay(b, { pollIntervalMs: 50 });
    r.start();
    await sleep(50);
    b.refusing = true;
    await store.transaction(async (tx) => writeOutbox(tx, 'od.retry', { n: 1 }));
    await sleep(120);
    expect(got).toHaveLength(0);
    expect(await unpublished()).toBe(1);
    b.refusing = false;
    await waitFor(() => got.length === 1, 'the message after the failure');
    await waitFor(async () => (await unpublished()) === 0, 'the row to be marked');
    await sleep(150);
    expect(got).toHaveLength(1);
  });

  it('a relay stopped before marking leaves nothing behind; one that never marked has its rows published again', async () => {
    const first = relay(bus, { markDelayMs: 10_000 });
    first.start();
    await sleep(50);
    await store.transaction(async (tx) => writeOutboxMany(tx, 'od.mark', [{ i: 1 }, { i: 2 }]));
    await waitFor(() => got.length === 2, 'two messages');
    expect(await unpublished()).toBe(2); // not marked yet
    await first.stop(); // marks on the way out
    expect(await unpublished()).toBe(0);

    // A process that died after publishing and before marking: the rows are published again (at least once).
    await store.transaction(async (tx) => writeOutbox(tx, 'od.again', { i: 3 }));
    expect(await unpublished()).toBe(1);
    const next = relay(bus);
    next.start();
    await waitFor(() => got.filter((m) => m.topic === 'od.again').length === 1, 'the unmarked row');
    await waitFor(async () => (await unpublished()) === 0, 'the row to be marked');
  });

  it('a kick with nothing written outside a followed transaction runs no claiming pass', async () => {
    const b = flaky(bus);
    const r = relay(b);
    r.start();
    await sleep(50);
    const before = r.stats.published;
    for (let i = 0; i < 20; i++) {
      await store.transaction(async (tx) => writeOutbox(tx, 'od.many', { i }));
      r.kick();
    }
    await waitFor(() => got.length === 20, '20 messages');
    // Each row was published once, by the direct path.
    expect(b.published).toBe(20);
    expect(r.stats.published - before).toBe(20);
  });
});
