/**
 * The transactional outbox on both stores (PGlite in a data directory, and the PostgreSQL server of
 * this machine — skipped loudly when unreachable, failing under CI=true): only committed messages
 * are relayed, each once, in id order, after restarts and broker outages; several relays on one
 * PostgreSQL share the work without double publishing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq, isNull, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AmqpBus } from '../../src/bus/amqp-bus.ts';
import type { Bus, BusMessage } from '../../src/bus/bus.ts';
import { BusError } from '../../src/bus/bus.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { OutboxRelay, writeOutbox } from '../../src/bus/outbox.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { outbox } from '../../src/store/schema.ts';
import { amqpDown, amqpTestUrl, deleteAmqpObjects, runPrefix, TcpProxy } from '../support/amqp.ts';
import { createTestDatabase, probePostgres } from '../support/postgres.ts';

const pgDown = await probePostgres();
if (pgDown && process.env.CI === 'true') throw new Error(`PostgreSQL unreachable under CI=true: ${pgDown}`);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A bus whose publishes take a little while, as over a network: makes concurrent relays overlap. */
function withLatency(bus: Bus, ms: number): Bus {
  return {
    kind: bus.kind,
    get state() {
      return bus.state;
    },
    get healthy() {
      return bus.healthy;
    },
    onStateChange: (l) => bus.onStateChange(l),
    publish: async (topic, payload, opts) => {
      await sleep(ms);
      await bus.publish(topic, payload, opts);
    },
    consume: (q, o, h) => bus.consume(q, o, h),
    subscribe: (t, h) => bus.subscribe(t, h),
    queueDepth: (q) => bus.queueDepth(q),
    close: () => bus.close(),
  };
}

/** Collects what reaches a queue bound to `ob.#`. */
async function collector(bus: Bus, queue: string) {
  const got: BusMessage[] = [];
  await bus.consume(queue, { topics: ['ob.#'], prefetch: 1 }, async (m) => {
    got.push(m);
  });
  return {
    got,
    ids: () => got.map((m) => m.id),
    payloads: () => got.map((m) => m.payload),
  };
}

const unpublished = async (store: Store) =>
  (await store.db.select({ id: outbox.id }).from(outbox).where(isNull(outbox.publishedAt))).length;

interface Backend {
  open(): Promise<Store>;
  /** Opens the same database again, as a restarted (or second) process would. */
  reopen(): Promise<Store>;
  dispose(): Promise<void>;
}

function pgliteBackend(): Backend {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-outbox-'));
  return {
    open: () => openStore({ pgliteDir: path.join(dir, 'db') }),
    reopen: () => openStore({ pgliteDir: path.join(dir, 'db') }),
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
    reopen: () => openStore({ databaseUrl: db!.url, poolSize: 4 }),
    dispose: async () => db?.drop(),
  };
}

for (const kind of ['pglite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && pgDown !== undefined)(`outbox on ${kind}`, () => {
    const backend = kind === 'pglite' ? pgliteBackend() : postgresBackend();
    let store: Store;
    let bus: MemoryBus;
    let seq = 0;
    const relays: OutboxRelay[] = [];
    const extraStores: Store[] = [];
    const relay = (s: Store, b: Bus, opts: ConstructorParameters<typeof OutboxRelay>[2] = {}) => {
      const r = new OutboxRelay(s, b, { pollIntervalMs: 100, ...opts });
      relays.push(r);
      return r;
    };

    beforeAll(async () => {
      store = await backend.open();
    });
    afterAll(async () => {
      await store?.close();
      await backend.dispose();
    });
    beforeEach(async () => {
      bus = new MemoryBus();
      await store.db.delete(outbox);
    });
    afterEach(async () => {
      await Promise.all(relays.splice(0).map((r) => r.stop()));
      await Promise.all(extraStores.splice(0).map((s) => s.close()));
      await bus.close();
    });

    it('relays committed messages once each; rows of a rolled-back transaction never', async () => {
      const c = await collector(bus, `q${++seq}`);
      const r = relay(store, bus);
      r.start();
      await expect(
        store.transaction(async (tx) => {
          await writeOutbox(tx, 'ob.execution.requested', { n: 'rolled back' });
          throw new Error('the state change failed');
        }),
      ).rejects.toThrow('the state change failed');
      await store.transaction(async (tx) => {
        await writeOutbox(tx, 'ob.execution.requested', { n: 'committed', deep: { list: [1, 'two', null] } });
      });
      r.kick();
      await waitFor(() => c.got.length === 1, 'the committed message');
      await sleep(400); // several polls: nothing else comes
      expect(c.payloads()).toEqual([{ n: 'committed', deep: { list: [1, 'two', null] } }]);
      const [row] = await store.db.select().from(outbox);
      expect(c.got[0]).toMatchObject({
        id: `outbox-${row?.id}`,
        topic: 'ob.execution.requested',
        deliveries: 1,
      });
      expect(row?.publishedAt).toBeInstanceOf(Date);
      expect(await store.db.$count(outbox)).toBe(1);
      expect(r.stats).toMatchObject({ published: 1, failed: 0, dropped: 0 });
    });

    it('relays in id order, exactly once, while transactions keep committing', async () => {
      const c = await collector(bus, `q${++seq}`);
      const r = relay(store, bus, { batchSize: 37 });
      r.start();
      const n = 600;
      for (let i = 0; i < n; i += 20) {
        await store.transaction(async (tx) => {
          for (let j = i; j < i + 20; j++) await writeOutbox(tx, 'ob.item', { j });
        });
        r.kick();
      }
      await waitFor(() => c.got.length >= n, `${n} messages`);
      await sleep(300);
      expect(c.got).toHaveLength(n);
      expect(c.payloads()).toEqual(Array.from({ length: n }, (_, j) => ({ j })));
      expect(new Set(c.ids()).size).toBe(n);
      expect(await unpublished(store)).toBe(0);
    });

    it('the poll picks up rows nobody kicked about (another process wrote them)', async () => {
      const c = await collector(bus, `q${++seq}`);
      relay(store, bus, { pollIntervalMs: 150 }).start();
      await sleep(50);
      await writeOutbox(store.db, 'ob.quiet', { quiet: true });
      await waitFor(() => c.got.length === 1, 'the polled message', 3000);
    });

    it('writeOutbox refuses a malformed topic or payload, failing its transaction', async () => {
      await expect(
        store.transaction(async (tx) => {
          await writeOutbox(tx, 'ob.fine', { ok: 1 });
          await writeOutbox(tx, 'not a topic', { ok: 2 });
        }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(writeOutbox(store.db, 'ob.x', { big: 1n } as never)).rejects.toBeInstanceOf(BusError);
      expect(await store.db.$count(outbox)).toBe(0);
    });

    it('a row that can never be published (written behind our back) is dropped, not blocking the rest', async () => {
      const c = await collector(bus, `q${++seq}`);
      await store.db.insert(outbox).values({ topic: 'bad topic', payload: {} });
      await writeOutbox(store.db, 'ob.after', { after: true });
      const r = relay(store, bus);
      expect(await r.flush()).toBe(1);
      await waitFor(() => c.got.length === 1, 'the good message');
      expect(r.stats).toMatchObject({ published: 1, dropped: 1 });
      expect(await unpublished(store)).toBe(0);
    });

    it('resumes after a restart: nothing lost, nothing published twice', async () => {
      const c = await collector(bus, `q${++seq}`);
      const first = relay(store, bus);
      first.start();
      await store.transaction(async (tx) => {
        for (let i = 0; i < 50; i++) await writeOutbox(tx, 'ob.before', { i });
      });
      first.kick();
      await waitFor(() => c.got.length === 50, 'the first 50');
      await first.stop();
      await store.transaction(async (tx) => {
        for (let i = 0; i < 50; i++) await writeOutbox(tx, 'ob.while-down', { i });
      });
      await sleep(300);
      expect(c.got).toHaveLength(50);
      // A restart: the store is closed and opened again (for PGlite, the data directory is reopened).
      await store.close();
      store = await backend.reopen();
      expect(await unpublished(store)).toBe(50);
      relay(store, bus).start();
      await waitFor(() => c.got.length >= 100, 'the 50 written while down');
      await sleep(300);
      expect(c.got).toHaveLength(100);
      expect(new Set(c.ids()).size).toBe(100);
      expect(c.got.slice(50).every((m) => m.topic === 'ob.while-down')).toBe(true);
    });

    it('published rows are deleted after the retention, unpublished ones never', async () => {
      const c = await collector(bus, `q${++seq}`);
      for (let i = 0; i < 30; i++) await writeOutbox(store.db, 'ob.old', { i });
      const r = relay(store, bus, { retentionMs: 1 });
      await r.flush();
      await waitFor(() => c.got.length === 30, '30 messages');
      await writeOutbox(store.db, 'ob.pending', {});
      await sleep(20);
      expect(await r.cleanup()).toBe(30);
      const left = await store.db.select().from(outbox);
      expect(left.map((x) => x.topic)).toEqual(['ob.pending']);
      const keep = relay(store, bus);
      await keep.flush();
      expect(await keep.cleanup()).toBe(0); // default retention: one hour
      expect(await store.db.$count(outbox)).toBe(1);
    });

    it('rejects nonsensical options', () => {
      expect(() => new OutboxRelay(store, bus, { batchSize: 0 })).toThrow(/batchSize/);
      expect(() => new OutboxRelay(store, bus, { pollIntervalMs: Number.NaN })).toThrow(/pollIntervalMs/);
    });

    it.skipIf(amqpDown !== undefined)(
      'through RabbitMQ: while the broker is unreachable rows wait; relayed after reconnect',
      async () => {
        const proxy = await TcpProxy.start();
        const exchange = `${runPrefix}.outbox.${kind}`;
        const queue = `${runPrefix}.outbox.${kind}.q`;
        const amqpBus = await AmqpBus.connect({
          url: proxy.url,
          exchange,
          publishTimeoutMs: 300,
          reconnectInitialDelayMs: 50,
          reconnectMaxDelayMs: 200,
        });
        try {
          const direct = await AmqpBus.connect({ url: amqpTestUrl(), exchange });
          const got: string[] = [];
          await direct.consume(queue, { topics: ['ob.#'] }, async (m) => {
            got.push(m.id);
          });
          const r = relay(store, amqpBus, { pollIntervalMs: 100 });
          for (let i = 0; i < 20; i++) await writeOutbox(store.db, 'ob.first', { i });
          // A publish that fails counts an attempt and leaves the row for later.
          proxy.refuse(true);
          proxy.sever();
          await waitFor(() => amqpBus.state === 'disconnected', 'the disconnection');
          const failed = await r.relayBatch();
          expect(failed).toEqual({ claimed: 20, published: 0, failed: 20 });
          const attempts = await store.db.select({ a: outbox.attempts }).from(outbox);
          expect(attempts.every((x) => x.a === 1)).toBe(true);
          r.start();
          for (let i = 0; i < 20; i++) await writeOutbox(store.db, 'ob.second', { i });
          r.kick();
          await sleep(400);
          expect(await unpublished(store)).toBe(40); // the relay waits for the broker
          proxy.refuse(false);
          await waitFor(async () => (await unpublished(store)) === 0, 'relaying after the reconnection');
          await waitFor(() => got.length >= 40, '40 messages through RabbitMQ');
          await sleep(200);
          expect(new Set(got).size).toBe(40);
          expect(got).toHaveLength(40);
          await direct.close();
        } finally {
          await amqpBus.close();
          await proxy.close();
          await deleteAmqpObjects({
            queues: [queue, `${queue}.retry`, `${queue}.dead`],
            exchanges: [exchange, `${exchange}.dead`],
          });
        }
      },
    );

    if (kind === 'postgres') {
      it('two relays (two processes) on one database: 1000 rows, each published once, both working', async () => {
        const c = await collector(bus, `q${++seq}`);
        const other = await backend.reopen();
        extraStores.push(other);
        const slow = withLatency(bus, 2);
        const a = relay(store, slow, { batchSize: 25 });
        const b = relay(other, slow, { batchSize: 25 });
        await store.transaction(async (tx) => {
          await tx
            .insert(outbox)
            .values(Array.from({ length: 1000 }, (_, i) => ({ topic: 'ob.pair', payload: { i } })));
        });
        a.start();
        b.start();
        a.kick();
        b.kick();
        await waitFor(() => c.got.length >= 1000, '1000 messages');
        await sleep(500);
        expect(c.got).toHaveLength(1000);
        expect(new Set(c.ids()).size).toBe(1000);
        expect(a.stats.published + b.stats.published).toBe(1000);
        expect(a.stats.published).toBeGreaterThan(0);
        expect(b.stats.published).toBeGreaterThan(0);
        const [{ n }] = (await store.db
          .select({ n: sql<number>`count(*)::int` })
          .from(outbox)
          .where(eq(outbox.topic, 'ob.pair'))) as [{ n: number }];
        expect(n).toBe(1000);
        expect(await unpublished(store)).toBe(0);
      });
    }
  });
}
