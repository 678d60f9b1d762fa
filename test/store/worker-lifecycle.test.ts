/**
 * The worker with real processes: timeouts and cancels kill the process, a lost lease stops the
 * run, output limits, graceful shutdown; and the cancel semantics offered to the API.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.ts';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import { cancelExecution } from '../../src/services/scheduler/cancel.ts';
import { transitionExecution } from '../../src/store/repositories/executions.ts';
import { executions, workers } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { alive, Runtime, sleep, TERMINAL } from './runtime-fixture.ts';

let tmp: string;
const pidFile = (name: string) => path.join(tmp, `${name}.pid`);
/** A command that records its process id, then sleeps. */
const sleeper = (name: string, seconds = 30) => `echo $$ > ${pidFile(name)}; exec sleep ${seconds}`;

async function pidOf(rt: Runtime, name: string): Promise<number> {
  return rt.until(`pid of ${name}`, async () => {
    const text = fs.existsSync(pidFile(name)) ? fs.readFileSync(pidFile(name), 'utf8').trim() : '';
    return text ? Number(text) : undefined;
  });
}

describeBackend('worker: processes, cancel and timeouts', () => {
  let rt: Runtime;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-worker-'));
    rt = await Runtime.start({ worker: { maxOutputBytes: 1000 } });
    await rt.action({ ref: 'wk.shell', runner: 'local-shell-cmd' });
    await rt.action({ ref: 'wk.limited', runner: 'sleep', concurrencyPolicy: { limit: 1 } });
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('kills an execution that runs past its timeout and records timeout', async () => {
    const [id] = await rt.request('wk.shell', 1, {
      parameters: { cmd: sleeper('timeout') },
      timeoutSeconds: 1,
    });
    const pid = await pidOf(rt, 'timeout');
    expect(alive(pid)).toBe(true);
    const [row] = await rt.waitFor([id!], TERMINAL, 10_000);
    expect(row!.status).toBe('timeout');
    expect(row!.error).toMatchObject({ type: 'timeout' });
    await rt.until('the process is gone', async () => !alive(pid) || undefined, 5000);
  });

  it('cancels a running shell execution: the process is killed and it ends canceled', async () => {
    const [id] = await rt.request('wk.shell', 1, { parameters: { cmd: sleeper('cancel') } });
    const pid = await pidOf(rt, 'cancel');
    const r = await cancelExecution(rt.store, rt.bus, id!, 'alice');
    expect(r.outcome).toBe('canceling');
    expect(r.execution.status).toBe('canceling');
    // Asking again is harmless.
    expect((await cancelExecution(rt.store, rt.bus, id!, 'alice')).outcome).toBe('canceling');
    const [row] = await rt.waitFor([id!], TERMINAL, 10_000);
    expect(row!.status).toBe('canceled');
    expect(row!.context).toMatchObject({ canceled_by: 'alice' });
    await rt.until('the process is gone', async () => !alive(pid) || undefined, 5000);
    await expect(cancelExecution(rt.store, rt.bus, id!, 'alice')).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('already finished (canceled)'),
    });
  });

  it('cancels executions that have not started at once, and they never run', async () => {
    const [requested] = await rt.request('wk.shell', 1, { parameters: { cmd: 'true' }, silent: true });
    const [scheduled] = await rt.request('wk.shell', 1, {
      parameters: { cmd: 'true' },
      status: 'scheduled',
      silent: true,
    });
    const [delayed] = await rt.request('wk.shell', 1, {
      parameters: { cmd: 'true' },
      status: 'delayed',
      silent: true,
    });
    for (const id of [requested!, scheduled!, delayed!]) {
      const r = await cancelExecution(rt.store, rt.bus, id, 'bob');
      expect(r.outcome).toBe('canceled');
      expect(r.execution.error).toMatchObject({ type: 'canceled', canceled_by: 'bob' });
    }
    // A late scheduled message finds nothing to claim.
    await rt.bus.publish(TOPICS.executionScheduled, { execution_id: scheduled!, runner: 'local-shell-cmd' });
    await rt.until('followed up', async () => {
      const rows = await rt.all([requested!, scheduled!, delayed!]);
      return rows.every((x) => x.completionHandledAt) || undefined;
    });
    const rows = await rt.all([requested!, scheduled!, delayed!]);
    expect(rows.map((x) => [x.status, x.startedAt])).toEqual([
      ['canceled', null],
      ['canceled', null],
      ['canceled', null],
    ]);
  });

  it('answers 404 for an unknown execution', async () => {
    const err = await cancelExecution(rt.store, rt.bus, 987654321, 'bob').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('releases the concurrency slot of a canceled execution', async () => {
    const [a] = await rt.request('wk.limited', 1, { parameters: { seconds: 30 } });
    const [b] = await rt.request('wk.limited', 1, { parameters: { seconds: 0 } });
    await rt.waitFor([a!], ['running']);
    await rt.waitFor([b!], ['delayed']);
    await cancelExecution(rt.store, rt.bus, a!, 'carol');
    const [ra, rb] = await rt.waitFor([a!, b!], TERMINAL);
    expect(ra!.status).toBe('canceled');
    expect(rb!.status).toBe('succeeded');
  });

  it('stops a run whose lease it lost (the sweeper gave up on it)', async () => {
    const [id] = await rt.request('wk.shell', 1, { parameters: { cmd: sleeper('lost') } });
    const pid = await pidOf(rt, 'lost');
    await rt.waitFor([id!], ['running']);
    // As if the sweeper had abandoned it while this worker could not reach the database.
    await transitionExecution(rt.store.db, id!, ['running'], 'abandoned', {
      error: { type: 'abandoned', message: 'test' },
    });
    await rt.until('the process is gone', async () => !alive(pid) || undefined, 5000);
    await sleep(200);
    const row = await rt.get(id!);
    expect(row.status).toBe('abandoned');
    expect(row.error).toMatchObject({ message: 'test' });
  });

  it('caps output per stream and marks it truncated; NUL characters are stored safely', async () => {
    const [id] = await rt.request('wk.shell', 1, {
      parameters: { cmd: "printf 'a\\000b\\n'; head -c 5000 /dev/zero | tr '\\000' x" },
    });
    const [row] = await rt.waitFor([id!], TERMINAL);
    expect(row!.status).toBe('succeeded');
    const out = await rt.output(id!);
    const text = out.map((o) => o.data).join('');
    expect(text.startsWith('a\uFFFDb\n')).toBe(true);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1002);
    expect(out[out.length - 1]).toMatchObject({ stream: 'stdout', data: '', truncated: true });
  });
});

describeBackend('worker: graceful shutdown', () => {
  let rt: Runtime;
  beforeAll(async () => {
    tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'attune-worker-'));
    fs.mkdirSync(tmp, { recursive: true });
    rt = await Runtime.start({ workers: 0 });
    await rt.action({ ref: 'gs.shell', runner: 'local-shell-cmd' });
  });
  afterAll(async () => rt?.stop());

  describe('stop()', () => {
    it('lets a running execution finish within the grace period, then deregisters', async () => {
      const w = await rt.addWorker({ shutdownGraceMs: 5000 });
      const [id] = await rt.request('gs.shell', 1, { parameters: { cmd: 'sleep 0.5; echo done' } });
      await rt.waitFor([id!], ['running']);
      await w.stop();
      const row = await rt.get(id!);
      expect(row.status).toBe('succeeded');
      const [reg] = await rt.store.db.select().from(workers).where(eq(workers.id, w.id));
      expect(reg).toMatchObject({ status: 'stopped', running: 0 });
      expect(reg!.stoppedAt).toBeInstanceOf(Date);
    });

    it('stops what is still running after the grace period; it ends abandoned', async () => {
      const w = await rt.addWorker({ shutdownGraceMs: 300 });
      const [id] = await rt.request('gs.shell', 1, { parameters: { cmd: sleeper('shutdown') } });
      const pid = await pidOf(rt, 'shutdown');
      await w.stop();
      expect(alive(pid)).toBe(false);
      const row = await rt.get(id!);
      expect(row.status).toBe('abandoned');
      expect(row.error).toMatchObject({ type: 'worker_stopped' });
      expect(String(row.error?.message)).toContain('shut down before the execution finished');
      const [out] = await rt.store.db
        .select({ n: sql<number>`count(*)::integer` })
        .from(executions)
        .where(eq(executions.workerId, w.id));
      expect(Number(out!.n)).toBe(1);
    });
  });
});
