/**
 * The sweeper: its lease, and every deadline of docs/architecture.md — lost messages, dead workers,
 * overdue executions, follow-ups that never happened.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/index.ts';
import { SWEEPER_LEASE, Sweeper } from '../../src/services/scheduler/sweeper.ts';
import { leaseHolder } from '../../src/store/repositories/leases.ts';
import { executions, workers } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { FAST, Runtime, sleep, TERMINAL } from './runtime-fixture.ts';

describeBackend('the sweeper', () => {
  let rt: Runtime;
  let tmp: string;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-sweep-'));
    rt = await Runtime.start({ sweeper: true });
    await rt.action({ ref: 'sw.noop', runner: 'noop' });
    await rt.action({ ref: 'sw.shell', runner: 'local-shell-cmd' });
    await rt.action({ ref: 'sw.retried', runner: 'noop', retryPolicy: { count: 1, on: ['abandoned'] } });
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('lease', () => {
    it('lets exactly one of several sweepers sweep, and hands over when the holder stops', async () => {
      const bus = new MemoryBus();
      const a = new Sweeper({ store: rt.store, bus, owner: 'sweeper-a', leaseSeconds: 1 });
      const b = new Sweeper({ store: rt.store, bus, owner: 'sweeper-b', leaseSeconds: 1 });
      // The fixture's own sweeper holds the lease now.
      await rt.until('the fixture sweeper leads', async () => rt.sweeper!.isLeader || undefined);
      expect(await a.tick()).toBeNull();
      expect(await b.tick()).toBeNull();
      await rt.sweeper!.stop();
      const [ra, rb] = await Promise.all([a.tick(), b.tick()]);
      expect([ra, rb].filter((r) => r !== null)).toHaveLength(1);
      const leader = ra ? a : b;
      const other = ra ? b : a;
      expect(await leaseHolder(rt.store.db, SWEEPER_LEASE)).toBe(leader.owner);
      // The leader goes silent (no stop, no renewal): its lease expires and the other takes over.
      await sleep(1200);
      expect(await other.tick()).not.toBeNull();
      expect(await leader.tick()).toBeNull();
      await a.stop();
      await b.stop();
      await bus.close();
      rt.sweeper!.start();
      await rt.until('the fixture sweeper leads again', async () => rt.sweeper!.isLeader || undefined, 5000);
    });
  });

  it('re-publishes a requested execution whose message was lost; it runs once', async () => {
    const [id] = await rt.request('sw.noop', 1, { silent: true });
    await sleep(300);
    expect((await rt.get(id!)).status).toBe('requested');
    const [row] = await rt.waitFor([id!], ['succeeded'], 10_000);
    expect(row!.status).toBe('succeeded');
    expect(rt.statuses.filter((s) => s.id === id && s.status === 'running')).toHaveLength(1);
  });

  it('requeues a scheduled execution whose message was lost; it still runs exactly once', async () => {
    const marker = path.join(tmp, 'lost-scheduled');
    const [id] = await rt.request('sw.shell', 1, {
      parameters: { cmd: `echo ran >> ${marker}` },
      status: 'scheduled',
      silent: true,
    });
    await rt.store.db
      .update(executions)
      .set({
        leaseExpiresAt: sql`now() + interval '300 milliseconds'`,
        scheduledAt: sql`now()`,
        timeoutSeconds: 60,
      })
      .where(eq(executions.id, id!));
    const [row] = await rt.waitFor([id!], TERMINAL, 10_000);
    expect(row!.status).toBe('succeeded');
    await sleep(500);
    expect(fs.readFileSync(marker, 'utf8')).toBe('ran\n');
    expect(rt.statuses.filter((s) => s.id === id).map((s) => s.status)).toEqual([
      'requested',
      'scheduled',
      'running',
      'succeeded',
    ]);
  });

  it('wakes a delayed execution whose run_after passed', async () => {
    const [id] = await rt.request('sw.noop', 1, { status: 'delayed', silent: true });
    await rt.store.db
      .update(executions)
      .set({ runAfter: sql`now() + interval '200 milliseconds'` })
      .where(eq(executions.id, id!));
    await rt.waitFor([id!], ['succeeded'], 10_000);
  });

  it('abandons the executions of a dead worker and marks the worker lost; a retry policy may retry them', async () => {
    await rt.store.db.insert(workers).values({
      id: 'ghost:1:dead',
      hostname: 'ghost',
      pid: 1,
      capacity: 4,
      heartbeatAt: sql`now() - interval '1 minute'`,
    });
    const [plain] = await rt.request('sw.noop', 1, { status: 'running', silent: true });
    const [retried] = await rt.request('sw.retried', 1, { status: 'running', silent: true });
    await rt.store.db
      .update(executions)
      .set({
        workerId: 'ghost:1:dead',
        startedAt: sql`now()`,
        leaseExpiresAt: sql`now() + interval '200 milliseconds'`,
      })
      .where(sql`${executions.id} in (${plain}, ${retried})`);
    const rows = await rt.waitFor([plain!, retried!], ['abandoned'], 10_000);
    expect(rows[0]!.error).toMatchObject({ type: 'abandoned', worker_id: 'ghost:1:dead' });
    const [w] = await rt.store.db.select().from(workers).where(eq(workers.id, 'ghost:1:dead'));
    expect(w!.status).toBe('lost');
    const retry = await rt.until('the retry', async () => {
      const [r] = await rt.store.db.select().from(executions).where(eq(executions.retryOf, retried!));
      return r?.status === 'succeeded' ? r : undefined;
    });
    expect(retry.attempt).toBe(2);
    await rt.until('follow-up of the plain one', async () =>
      (await rt.get(plain!)).completionHandledAt ? true : undefined,
    );
    const [none] = await rt.store.db.select().from(executions).where(eq(executions.retryOf, plain!));
    expect(none).toBeUndefined();
  });

  it('times out an execution running far past its timeout that its worker does not stop', async () => {
    const [id] = await rt.request('sw.noop', 1, { status: 'running', silent: true, timeoutSeconds: 5 });
    await rt.store.db
      .update(executions)
      .set({
        workerId: 'ghost:2:hung',
        startedAt: sql`now() - interval '10 seconds'`,
        leaseExpiresAt: sql`now() + interval '1 hour'`,
      })
      .where(eq(executions.id, id!));
    const [row] = await rt.waitFor([id!], ['timeout'], 10_000);
    expect(row!.error).toMatchObject({ type: 'timeout' });
    expect(String(row!.error?.message)).toContain('timeout of 5 s');
  });

  it('re-publishes the completion of a terminal execution that was never followed up', async () => {
    const [id] = await rt.request('sw.noop', 1, { status: 'failed', silent: true });
    await rt.store.db
      .update(executions)
      .set({ finishedAt: sql`now()`, updatedAt: sql`now() - interval '1 minute'` })
      .where(eq(executions.id, id!));
    await rt.until(
      'followed up',
      async () => ((await rt.get(id!)).completionHandledAt ? true : undefined),
      10_000,
    );
  });
});

describeBackend('the sweeper without live workers', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await Runtime.start({ workers: 0 });
    await rt.action({ ref: 'sw.idle', runner: 'noop' });
  });
  afterAll(async () => rt?.stop());

  it('extends the lease of a scheduled execution instead of requeueing it when no worker has room', async () => {
    const sweeper = new Sweeper({ store: rt.store, bus: rt.bus, deadlines: FAST, owner: 'lonely' });
    const [id] = await rt.request('sw.idle', 1, { status: 'scheduled', silent: true });
    await rt.store.db
      .update(executions)
      .set({ leaseExpiresAt: sql`now() - interval '1 second'` })
      .where(eq(executions.id, id!));
    const stats = await sweeper.sweep();
    expect(stats).toMatchObject({ requeued: 0, extended: 1 });
    const row = await rt.get(id!);
    expect(row.status).toBe('scheduled');
    expect(row.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now());
    // A worker arrives: it takes the message… here there is none (lost): the lease passes again and
    // now a worker has room, so the execution is requested again and runs.
    await rt.addWorker();
    await rt.store.db
      .update(executions)
      .set({ leaseExpiresAt: sql`now() - interval '1 second'` })
      .where(eq(executions.id, id!));
    expect(await sweeper.sweep()).toMatchObject({ requeued: 1 });
    await rt.waitFor([id!], ['succeeded']);
    await sweeper.stop();
  });
});
