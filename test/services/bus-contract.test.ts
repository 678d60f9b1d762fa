/**
 * The bus contract (src/bus/bus.ts): one set of cases run against both drivers — the in-process bus
 * and RabbitMQ (the broker of this machine; skipped loudly when unreachable, failing under CI=true).
 * Then what only a broker connection can do wrong: a consumer process killed mid-message, the
 * connection cut mid-stream, the broker unreachable.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AmqpBus } from '../../src/bus/amqp-bus.ts';
import type { Bus, BusMessage, BusState } from '../../src/bus/bus.ts';
import { BusError } from '../../src/bus/bus.ts';
import { createBus } from '../../src/bus/index.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import {
  amqpDown,
  amqpTestUrl,
  deleteAmqpObjects,
  describeAmqp,
  runPrefix,
  TcpProxy,
} from '../support/amqp.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

// ───────────────────────────── per-driver harness ─────────────────────────────

let seq = 0;
const createdQueues = new Set<string>();
const createdExchanges = new Set<string>();

interface Harness {
  /** A bus on a namespace of its own (for RabbitMQ: a fresh exchange). */
  open(opts?: { closeGraceMs?: number }): Promise<Bus>;
  /** Another bus on the namespace of `bus`, as another process would have (the same bus in memory). */
  peer(bus: Bus): Promise<Bus>;
  /** A queue name for this test (deleted at the end of the run). */
  queue(): string;
}

const openBuses: Bus[] = [];

function harness(kind: 'memory' | 'amqp'): Harness {
  const track = <T extends Bus>(b: T): T => {
    openBuses.push(b);
    return b;
  };
  const queue = () => {
    const q = `${runPrefix}.q${++seq}`;
    for (const s of ['', '.retry', '.dead', '.dead.retry', '.dead.dead']) createdQueues.add(q + s);
    return q;
  };
  if (kind === 'memory') {
    return { open: async (opts) => track(new MemoryBus(opts)), peer: async (b) => b, queue };
  }
  return {
    open: async (opts) => {
      const exchange = `${runPrefix}.x${++seq}`;
      createdExchanges.add(exchange).add(`${exchange}.dead`);
      return track(await AmqpBus.connect({ ...opts, url: amqpTestUrl(), exchange }));
    },
    peer: async (b) =>
      track(await AmqpBus.connect({ url: amqpTestUrl(), exchange: (b as AmqpBus).exchange })),
    queue,
  };
}

afterEach(async () => {
  await Promise.all(openBuses.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  if (!amqpDown && (createdQueues.size || createdExchanges.size)) {
    await deleteAmqpObjects({ queues: createdQueues, exchanges: createdExchanges });
  }
});

const measured: Record<string, string> = {};
afterAll(() => {
  for (const [k, v] of Object.entries(measured)) console.log(`[bus throughput] ${k}: ${v}`);
});

// ───────────────────────────── the contract ─────────────────────────────

for (const kind of ['memory', 'amqp'] as const) {
  const skip = kind === 'amqp' && amqpDown !== undefined;
  describe.skipIf(skip)(`Bus contract: ${kind}`, () => {
    const h = harness(kind);

    it('reports its kind and a healthy connected state', async () => {
      const bus = await h.open();
      expect(bus.kind).toBe(kind);
      expect(bus.state).toBe('connected');
      expect(bus.healthy).toBe(true);
    });

    it('round trip: id, topic, payload, headers and a first delivery; handlers never run inside publish', async () => {
      const bus = await h.open();
      const q = h.queue();
      const got: BusMessage[] = [];
      let publishing = false;
      let calledDuringPublish = false;
      await bus.consume(q, { topics: ['job.created'] }, async (m) => {
        if (publishing) calledDuringPublish = true;
        got.push(m);
      });
      const payload = { a: 1, nested: { b: [1, 'x', null, true], c: 'é✓' } };
      publishing = true;
      const p = bus.publish('job.created', payload, { messageId: 'm-1', headers: { trace: 't-1' } });
      publishing = false;
      payload.a = 2; // the message is a copy: the publisher may reuse its object
      await p;
      await bus.publish('job.created', [1, 2, 3]);
      await bus.publish('job.created', 'plain');
      await bus.publish('job.created', null);
      await waitFor(() => got.length === 4, '4 messages');
      expect(calledDuringPublish).toBe(false);
      expect(got[0]).toEqual({
        id: 'm-1',
        topic: 'job.created',
        payload: { a: 1, nested: { b: [1, 'x', null, true], c: 'é✓' } },
        deliveries: 1,
        headers: { trace: 't-1' },
      });
      expect(got.slice(1).map((m) => m.payload)).toEqual([[1, 2, 3], 'plain', null]);
      expect(got[1]?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(new Set(got.map((m) => m.id)).size).toBe(4);
    });

    it('rejects malformed topics, patterns, queue names, headers, options and payloads with clear errors', async () => {
      const bus = await h.open();
      const code = async (p: Promise<unknown>) => {
        const e = await p.then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(e).toBeInstanceOf(BusError);
        return (e as BusError).code;
      };
      const ok = async () => {};
      for (const t of ['', 'a..b', 'a.*', 'a.#', '.a', 'a b', 'x'.repeat(300)]) {
        expect(await code(bus.publish(t, 1))).toBe('INVALID_ARGUMENT');
      }
      expect(await code(bus.publish('a.b', 1, { headers: { 'x-attune-deliveries': '9' } }))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await code(bus.publish('a.b', 1, { headers: { n: 5 as unknown as string } }))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await code(bus.publish('a.b', 1, { messageId: '' }))).toBe('INVALID_ARGUMENT');
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(await code(bus.publish('a.b', cyclic as never))).toBe('INVALID_PAYLOAD');
      expect(await code(bus.publish('a.b', { n: 10n } as never))).toBe('INVALID_PAYLOAD');
      expect(await code(bus.publish('a.b', undefined as never))).toBe('INVALID_PAYLOAD');
      for (const q of ['', 'q.retry', 'amq.q', 'q/x', 'q'.repeat(201)]) {
        expect(await code(bus.consume(q, { topics: ['a'] }, ok))).toBe('INVALID_ARGUMENT');
      }
      const q = h.queue();
      expect(await code(bus.consume(q, { topics: ['a.b*'] }, ok))).toBe('INVALID_ARGUMENT');
      expect(await code(bus.consume(q, { topics: 'a' as unknown as string[] }, ok))).toBe('INVALID_ARGUMENT');
      expect(await code(bus.consume(q, { topics: ['a'], prefetch: 0 }, ok))).toBe('INVALID_ARGUMENT');
      expect(await code(bus.consume(q, { topics: ['a'], maxDeliveries: 1.5 }, ok))).toBe('INVALID_ARGUMENT');
      expect(await code(bus.consume(q, { topics: ['a'], retryDelayMs: -1 }, ok))).toBe('INVALID_ARGUMENT');
      expect(await code(bus.subscribe([], ok))).toBe('INVALID_ARGUMENT');
      expect(await code(bus.subscribe(['a..b'], ok))).toBe('INVALID_ARGUMENT');
    });

    it('competing consumers: each message goes to exactly one consumer of the queue', async () => {
      const bus = await h.open();
      const other = await h.peer(bus);
      const q = h.queue();
      const seen: Record<string, string[]> = { a: [], b: [] };
      const handler = (who: 'a' | 'b') => async (m: BusMessage) => {
        seen[who]?.push(m.id);
        await sleep(1);
      };
      await bus.consume(q, { topics: ['work.*'], prefetch: 4 }, handler('a'));
      await other.consume(q, { topics: ['work.*'], prefetch: 4 }, handler('b'));
      const n = 200;
      await Promise.all(
        Array.from({ length: n }, (_, i) => bus.publish('work.item', { i }, { messageId: `w${i}` })),
      );
      await waitFor(() => seen.a!.length + seen.b!.length >= n, `${n} deliveries`);
      await sleep(200);
      const all = [...seen.a!, ...seen.b!];
      expect(all).toHaveLength(n);
      expect(new Set(all).size).toBe(n);
      expect(seen.a!.length).toBeGreaterThan(0);
      expect(seen.b!.length).toBeGreaterThan(0);
    });

    it('routes by AMQP topic patterns: * is one word, # is any number of words', async () => {
      const bus = await h.open();
      const patterns: Record<string, string[]> = {
        star: ['execution.*'],
        hash: ['execution.#'],
        all: ['#'],
        lead: ['*.created'],
        mid: ['a.#.z'],
        exact: ['rule.created', 'execution'],
      };
      const got: Record<string, string[]> = {};
      for (const [name, topics] of Object.entries(patterns)) {
        got[name] = [];
        await bus.consume(h.queue(), { topics, prefetch: 1 }, async (m) => {
          got[name]?.push(m.topic);
        });
      }
      const topics = [
        'execution.created',
        'execution.a.b',
        'execution',
        'rule.created',
        'a.z',
        'a.b.c.z',
        'a.b',
      ];
      for (const t of topics) await bus.publish(t, {});
      const expected: Record<string, string[]> = {
        star: ['execution.created'],
        hash: ['execution.created', 'execution.a.b', 'execution'],
        all: topics,
        lead: ['execution.created', 'rule.created'],
        mid: ['a.z', 'a.b.c.z'],
        exact: ['execution', 'rule.created'],
      };
      const total = Object.values(expected).reduce((n, l) => n + l.length, 0);
      await waitFor(() => Object.values(got).reduce((n, l) => n + l.length, 0) >= total, 'routed messages');
      await sleep(150);
      for (const name of Object.keys(expected))
        expect(got[name]?.sort(), name).toEqual(expected[name]?.sort());
    });

    it('a failing handler gets the message again after retryDelayMs, then it is dead-lettered to <queue>.dead', async () => {
      const bus = await h.open();
      const q = h.queue();
      const attempts: { id: string; deliveries: number; at: number }[] = [];
      await bus.consume(q, { topics: ['flaky.#'], maxDeliveries: 3, retryDelayMs: 150 }, async (m) => {
        attempts.push({ id: m.id, deliveries: m.deliveries, at: Date.now() });
        if (m.id === 'heals' && m.deliveries === 2) return;
        throw new Error(`boom ${m.deliveries}`);
      });
      await bus.publish('flaky.one', { keep: 'me' }, { messageId: 'dies', headers: { origin: 'test' } });
      await bus.publish('flaky.two', {}, { messageId: 'heals' });
      const dead: BusMessage[] = [];
      await bus.consume(`${q}.dead`, { topics: [] }, async (m) => {
        dead.push(m);
      });
      await waitFor(() => dead.length === 1, 'the dead letter');
      const dies = attempts.filter((a) => a.id === 'dies');
      expect(dies.map((a) => a.deliveries)).toEqual([1, 2, 3]);
      for (let i = 1; i < dies.length; i++) expect(dies[i]!.at - dies[i - 1]!.at).toBeGreaterThanOrEqual(120);
      expect(dead[0]).toEqual({
        id: 'dies',
        topic: 'flaky.one',
        payload: { keep: 'me' },
        deliveries: 1,
        headers: { origin: 'test', 'x-attune-error': 'boom 3' },
      });
      await sleep(300);
      expect(attempts.filter((a) => a.id === 'heals').map((a) => a.deliveries)).toEqual([1, 2]);
      expect(dead).toHaveLength(1);
      expect(attempts.filter((a) => a.id === 'dies')).toHaveLength(3);
    });

    it('prefetch bounds the handlers running at once on a consumer', async () => {
      const bus = await h.open();
      const q = h.queue();
      const gate = deferred();
      let running = 0;
      let peak = 0;
      let done = 0;
      await bus.consume(q, { topics: ['slow'], prefetch: 3 }, async () => {
        running++;
        peak = Math.max(peak, running);
        await gate.promise;
        running--;
        done++;
      });
      for (let i = 0; i < 12; i++) await bus.publish('slow', { i });
      await waitFor(() => running === 3, '3 handlers running');
      await sleep(250);
      expect(running).toBe(3);
      expect(await bus.queueDepth(q)).toBe(9);
      gate.resolve();
      await waitFor(() => done === 12, 'all 12 handled');
      expect(peak).toBe(3);
    });

    it('one consumer with prefetch 1 sees the messages of its queue in publish order', async () => {
      const bus = await h.open();
      const q = h.queue();
      const order: number[] = [];
      await bus.consume(q, { topics: ['seq.#'], prefetch: 1 }, async (m) => {
        order.push((m.payload as { i: number }).i);
      });
      const n = 200;
      for (let i = 0; i < n; i++) await bus.publish(i % 2 ? 'seq.odd' : 'seq.even', { i });
      await waitFor(() => order.length === n, `${n} messages`);
      expect(order).toEqual(Array.from({ length: n }, (_, i) => i));
    });

    it('a queue outlives its consumers: messages published meanwhile wait for the next one', async () => {
      const bus = await h.open();
      const q = h.queue();
      const first = await bus.consume(q, { topics: ['later'] }, async () => {});
      await first.close();
      await first.close(); // idempotent
      for (let i = 0; i < 3; i++) await bus.publish('later', { i });
      await waitFor(() => false, 'nothing', 150).catch(() => {});
      expect(await bus.queueDepth(q)).toBe(3);
      const got: number[] = [];
      await bus.consume(q, { topics: ['later'] }, async (m) => {
        got.push((m.payload as { i: number }).i);
      });
      await waitFor(() => got.length === 3, '3 waiting messages');
      expect(got.sort()).toEqual([0, 1, 2]);
      expect(await bus.queueDepth(`${runPrefix}.never-declared`)).toBeUndefined();
    });

    it('closing a subscription waits for its handlers in flight, and they still settle their message', async () => {
      const bus = await h.open();
      const q = h.queue();
      const gate = deferred();
      let started = 0;
      let finished = 0;
      const sub = await bus.consume(q, { topics: ['hold'], prefetch: 2 }, async () => {
        started++;
        await gate.promise;
        finished++;
      });
      await bus.publish('hold', 1);
      await bus.publish('hold', 2);
      await waitFor(() => started === 2, '2 handlers');
      let closed = false;
      const closing = sub.close().then(() => {
        closed = true;
      });
      await sleep(100);
      expect(closed).toBe(false);
      gate.resolve();
      await closing;
      expect(finished).toBe(2);
      // Both were acknowledged: a new consumer gets nothing.
      let again = 0;
      await bus.consume(q, { topics: ['hold'] }, async () => {
        again++;
      });
      await sleep(200);
      expect(again).toBe(0);
    });

    it('closing gives up on a handler that never finishes after closeGraceMs', async () => {
      const bus = await h.open({ closeGraceMs: 300 });
      const q = h.queue();
      let started = false;
      const sub = await bus.consume(q, { topics: ['stuck'] }, () => {
        started = true;
        return new Promise(() => {});
      });
      await bus.publish('stuck', {});
      await waitFor(() => started, 'the stuck handler');
      const t0 = Date.now();
      await sub.close();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      expect(Date.now() - t0).toBeLessThan(1500);
    });

    it('subscribe broadcasts to every matching subscriber (and alongside work queues), not after close', async () => {
      const bus = await h.open();
      const other = await h.peer(bus);
      const got = { a: [] as string[], b: [] as string[], c: [] as string[], queue: [] as string[] };
      const subA = await bus.subscribe(['note.#'], async (m) => {
        got.a.push(m.id);
      });
      await other.subscribe(['note.*'], async (m) => {
        got.b.push(m.id);
      });
      await bus.subscribe(['other.thing'], async (m) => {
        got.c.push(m.id);
      });
      await bus.subscribe(['note.#'], async () => {
        throw new Error('a failing subscriber harms nobody');
      });
      await bus.consume(h.queue(), { topics: ['note.#'] }, async (m) => {
        got.queue.push(m.id);
      });
      for (let i = 0; i < 5; i++) await bus.publish('note.x', { i }, { messageId: `n${i}` });
      await waitFor(() => got.a.length === 5 && got.b.length === 5 && got.queue.length === 5, 'broadcasts');
      expect(got.a.sort()).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
      expect(got.b.sort()).toEqual(got.a);
      expect(got.c).toEqual([]);
      await subA.close();
      await bus.publish('note.x', {}, { messageId: 'after' });
      await waitFor(() => got.b.length === 6, 'the last broadcast');
      await sleep(100);
      expect(got.a).not.toContain('after');
    });

    it('after close, publish and consume fail with BUS_CLOSED; close is idempotent', async () => {
      const bus = await h.open();
      await bus.close();
      await bus.close();
      expect(bus.state).toBe('closed');
      expect(bus.healthy).toBe(false);
      await expect(bus.publish('a', 1)).rejects.toMatchObject({ code: 'BUS_CLOSED' });
      await expect(bus.consume(h.queue(), { topics: ['a'] }, async () => {})).rejects.toMatchObject({
        code: 'BUS_CLOSED',
      });
    });

    it('throughput sanity: confirmed publishes and consumption', async () => {
      const bus = await h.open();
      const q = h.queue();
      const n = kind === 'memory' ? 50_000 : 5_000;
      let received = 0;
      await bus.consume(q, { topics: ['perf.#'], prefetch: 200 }, async () => {
        received++;
      });
      const payload = { execution: 12345, status: 'succeeded', worker: 'w-1' };
      const t0 = performance.now();
      const window = 500;
      for (let i = 0; i < n; i += window) {
        const batch: Promise<void>[] = [];
        for (let j = i; j < Math.min(n, i + window); j++) batch.push(bus.publish('perf.item', payload));
        await Promise.all(batch);
      }
      const published = performance.now();
      await waitFor(() => received === n, `${n} messages`, 60_000);
      const total = performance.now() - t0;
      const pubRate = Math.round(n / (published / 1000 - t0 / 1000));
      const rate = Math.round(n / (total / 1000));
      measured[kind] = `${n} messages: publish (confirmed) ${pubRate}/s, publish+consume ${rate}/s`;
      expect(rate).toBeGreaterThan(kind === 'memory' ? 10_000 : 500);
    });
  });
}

// ───────────────────────────── what only a broker connection can do ─────────────────────────────

describeAmqp('AmqpBus: failures of consumers and of the connection', () => {
  const h = harness('amqp');

  it('a message whose consumer process is killed before acking goes to another consumer, counted', async () => {
    const bus = (await h.open()) as AmqpBus;
    const q = h.queue();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { AmqpBus } = await import(${JSON.stringify(path.join(ROOT, 'src/bus/amqp-bus.ts'))});
         const bus = await AmqpBus.connect({ url: process.env.T_URL, exchange: process.env.T_EXCHANGE });
         await bus.consume(process.env.T_QUEUE, { topics: ['job.run'] }, (m) => {
           console.log('got ' + m.id + ' ' + m.deliveries);
           return new Promise(() => {});
         });
         console.log('ready');`,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, T_URL: amqpTestUrl(), T_EXCHANGE: bus.exchange, T_QUEUE: q },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    try {
      await waitFor(() => out.includes('ready'), 'the consumer process', 20_000);
      await bus.publish('job.run', { n: 1 }, { messageId: 'job-1' });
      await waitFor(() => out.includes('got job-1 1'), 'the delivery to the child');
      const got: BusMessage[] = [];
      await bus.consume(q, { topics: ['job.run'] }, async (m) => {
        got.push(m);
      });
      await sleep(200);
      expect(got).toEqual([]); // the child holds it
      child.kill('SIGKILL');
      await exited;
      await waitFor(() => got.length === 1, 'the redelivery');
      expect(got[0]).toMatchObject({ id: 'job-1', topic: 'job.run', payload: { n: 1 }, deliveries: 2 });
      await sleep(200);
      expect(got).toHaveLength(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('a message that keeps killing its consumers is dead-lettered after maxDeliveries', async () => {
    const bus = (await h.open()) as AmqpBus;
    const q = h.queue();
    // Each "crash" is a consumer connection dropped while it holds the message.
    for (let round = 1; round <= 2; round++) {
      const proxy = await TcpProxy.start();
      const victim = await AmqpBus.connect({
        url: proxy.url,
        exchange: bus.exchange,
        reconnectInitialDelayMs: 60_000,
      });
      let held = 0;
      await victim.consume(q, { topics: ['poison'], maxDeliveries: 2 }, () => {
        held++;
        return new Promise(() => {});
      });
      if (round === 1) await bus.publish('poison', { p: 1 }, { messageId: 'poison-1' });
      await waitFor(() => held === 1, `delivery ${round}`);
      // Let the re-enqueue of round 2 be confirmed and its original acked first; cut earlier, both
      // copies come back (legitimately: at least once) and the count forks.
      await sleep(300);
      proxy.refuse(true);
      proxy.sever();
      await proxy.close();
      await victim.close();
    }
    const dead: BusMessage[] = [];
    await bus.consume(`${q}.dead`, { topics: [] }, async (m) => {
      dead.push(m);
    });
    let third = 0;
    await bus.consume(q, { topics: ['poison'], maxDeliveries: 2 }, async () => {
      third++;
    });
    await waitFor(() => dead.length >= 1, 'the dead letter');
    await sleep(200);
    expect(third).toBe(0);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.id).toBe('poison-1');
    expect(dead[0]?.headers['x-attune-error']).toMatch(/delivered 2 times without being settled/);
  });

  it('the connection cut mid-stream: reconnects with backoff, re-consumes, loses no confirmed message', async () => {
    const proxy = await TcpProxy.start();
    try {
      const exchange = `${runPrefix}.x${++seq}`;
      createdExchanges.add(exchange).add(`${exchange}.dead`);
      const bus = await AmqpBus.connect({
        url: proxy.url,
        exchange,
        reconnectInitialDelayMs: 50,
        reconnectMaxDelayMs: 400,
      });
      openBuses.push(bus);
      const states: BusState[] = [];
      bus.onStateChange((s) => states.push(s));
      const q = h.queue();
      const received = new Set<string>();
      let deliveries = 0;
      await bus.consume(q, { topics: ['load.#'], prefetch: 50 }, async (m) => {
        deliveries++;
        received.add(m.id);
      });
      const n = 1500;
      const confirmed: string[] = [];
      let next = 0;
      const publisher = async () => {
        while (next < n) {
          const id = `m${next++}`;
          await bus.publish('load.item', { id }, { messageId: id });
          confirmed.push(id);
        }
      };
      const publishing = Promise.all(Array.from({ length: 8 }, publisher));
      await waitFor(() => confirmed.length >= 300, '300 confirmed publishes');
      proxy.refuse(true);
      proxy.sever();
      await waitFor(() => bus.state === 'disconnected', 'the disconnected state');
      expect(bus.healthy).toBe(false);
      const stalled = confirmed.length;
      await sleep(500);
      expect(confirmed.length).toBe(stalled); // nothing is confirmed without a broker
      proxy.refuse(false);
      await publishing; // every publish waited and went through
      expect(bus.state).toBe('connected');
      await waitFor(() => received.size === n, `all ${n} messages`, 30_000);
      expect(confirmed).toHaveLength(n);
      for (const id of confirmed) expect(received.has(id)).toBe(true);
      expect(states).toEqual(expect.arrayContaining(['disconnected', 'connected']));
      expect(deliveries).toBeGreaterThanOrEqual(n); // duplicates are allowed (at least once)
    } finally {
      await proxy.close();
    }
  });

  it('while the broker is unreachable a publish waits at most publishTimeoutMs, then fails clearly', async () => {
    const proxy = await TcpProxy.start();
    try {
      const exchange = `${runPrefix}.x${++seq}`;
      createdExchanges.add(exchange).add(`${exchange}.dead`);
      const bus = await AmqpBus.connect({
        url: proxy.url,
        exchange,
        publishTimeoutMs: 400,
        reconnectInitialDelayMs: 50,
        reconnectMaxDelayMs: 200,
      });
      openBuses.push(bus);
      const q = h.queue();
      const got: string[] = [];
      await bus.consume(q, { topics: ['t'] }, async (m) => {
        got.push(m.id);
      });
      const reasons: (string | undefined)[] = [];
      bus.onStateChange((s, reason) => {
        if (s === 'disconnected') reasons.push(reason);
      });
      proxy.refuse(true);
      proxy.sever();
      await waitFor(() => bus.state === 'disconnected', 'the disconnected state');
      const t0 = Date.now();
      const err = await bus.publish('t', 1).then(
        () => undefined,
        (e: unknown) => e as BusError,
      );
      const waited = Date.now() - t0;
      expect(err).toBeInstanceOf(BusError);
      expect(err?.code).toBe('BUS_UNAVAILABLE');
      expect(err?.transient).toBe(true);
      expect(err?.message).toMatch(/unreachable/);
      expect(err?.message).not.toContain('guest:guest');
      expect(waited).toBeGreaterThanOrEqual(350);
      expect(waited).toBeLessThan(2000);
      expect(reasons.length).toBeGreaterThan(0);
      proxy.refuse(false);
      await waitFor(() => bus.healthy, 'the reconnection');
      await bus.publish('t', 2, { messageId: 'after' });
      await waitFor(() => got.includes('after'), 'delivery after the reconnection');
    } finally {
      await proxy.close();
    }
  });

  it('a queue that exists with other arguments is refused clearly (BROKER_REJECTED), the bus stays usable', async () => {
    const bus = (await h.open()) as AmqpBus;
    const q = h.queue();
    const raw = await amqp.connect(amqpTestUrl());
    try {
      const ch = await raw.createChannel();
      await ch.assertQueue(q, { durable: false });
    } finally {
      await raw.close();
    }
    const err = await bus
      .consume(q, { topics: ['x'] }, async () => {})
      .then(
        () => undefined,
        (e: unknown) => e as BusError,
      );
    expect(err?.code).toBe('BROKER_REJECTED');
    expect(err?.message).toMatch(/PRECONDITION/);
    expect(bus.healthy).toBe(true);
    const got: string[] = [];
    await bus.consume(h.queue(), { topics: ['x'] }, async (m) => {
      got.push(m.id);
    });
    await bus.publish('x', 1, { messageId: 'still-fine' });
    await waitFor(() => got.includes('still-fine'), 'a delivery on another queue');
  });

  it('a deleted queue is declared again and consumption resumes', async () => {
    const bus = (await h.open()) as AmqpBus;
    const q = h.queue();
    const got: string[] = [];
    await bus.consume(q, { topics: ['re'] }, async (m) => {
      got.push(m.id);
    });
    await deleteAmqpObjects({ queues: [q] });
    await waitFor(() => false, 'nothing', 800).catch(() => {});
    await bus.publish('re', 1, { messageId: 'back' });
    await waitFor(() => got.includes('back'), 'the delivery to the re-declared queue');
  });
});

describe('createBus', () => {
  it('without a URL gives the in-process bus', async () => {
    const bus = await createBus();
    expect(bus.kind).toBe('memory');
    await bus.close();
    expect((await createBus('')).kind).toBe('memory');
  });

  it('rejects malformed URLs', async () => {
    await expect(createBus('http://localhost:5672')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(createBus('not a url')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('fails with BUS_UNAVAILABLE, password masked, when nothing listens', async () => {
    const t0 = Date.now();
    const err = await createBus('amqp://guest:s3cret@127.0.0.1:1', { connectTimeoutMs: 600 }).then(
      () => undefined,
      (e: unknown) => e as BusError,
    );
    expect(err?.code).toBe('BUS_UNAVAILABLE');
    expect(err?.message).toContain('127.0.0.1:1');
    expect(err?.message).not.toContain('s3cret');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it.skipIf(amqpDown !== undefined)(
    "keeps namespaces apart: two deployments on one broker never take each other's messages",
    async () => {
      const ns = [`${runPrefix}-a${++seq}`, `${runPrefix}-b${++seq}`];
      for (const n of ns) {
        createdExchanges.add(n).add(`${n}.dead`);
        for (const q of ['', '.retry', '.dead']) createdQueues.add(`${n}.work${q}`);
      }
      const [a, b] = await Promise.all(ns.map((namespace) => createBus(amqpTestUrl(), { namespace })));
      const got: Record<string, unknown[]> = { a: [], b: [] };
      await a!.consume('work', { topics: ['job.*'] }, async (m) => void got.a!.push(m.payload));
      await b!.consume('work', { topics: ['job.*'] }, async (m) => void got.b!.push(m.payload));
      await a!.publish('job.x', 'for a');
      await b!.publish('job.x', 'for b');
      const end = Date.now() + 5000;
      while ((got.a!.length < 1 || got.b!.length < 1) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toEqual({ a: ['for a'], b: ['for b'] });
      expect(await a!.queueDepth('work')).toBe(0);
      await Promise.all([a!.close(), b!.close()]);
    },
  );

  it.skipIf(amqpDown !== undefined)(
    'with a URL connects to RabbitMQ; wrong credentials fail at once',
    async () => {
      const exchange = `${runPrefix}.x${++seq}`;
      createdExchanges.add(exchange).add(`${exchange}.dead`);
      const bus = await createBus(amqpTestUrl(), { exchange });
      expect(bus.kind).toBe('amqp');
      expect(bus.healthy).toBe(true);
      await bus.close();
      const bad = new URL(amqpTestUrl());
      bad.password = 'definitely-wrong';
      const t0 = Date.now();
      const err = await createBus(bad.toString(), { connectTimeoutMs: 10_000 }).then(
        () => undefined,
        (e: unknown) => e as BusError,
      );
      expect(err?.code).toBe('BUS_UNAVAILABLE');
      expect(err?.message).toMatch(/ACCESS[-_]REFUSED/);
      expect(err?.message).not.toContain('definitely-wrong');
      expect(Date.now() - t0).toBeLessThan(5000);
    },
  );
});
