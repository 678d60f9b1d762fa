/**
 * A real worker process killed with SIGKILL while it runs `sleep 30`: the sweeper (in this process,
 * on the same PostgreSQL database) must mark the execution abandoned within the heartbeat deadline,
 * and mark the worker lost. Needs the PostgreSQL server of the test suite; skipped loudly without it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/index.ts';
import { scheduledMessage, writeOutboxMany } from '../../src/services/scheduler/runtime.ts';
import { Sweeper } from '../../src/services/scheduler/sweeper.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { actions, executions, packs, workers } from '../../src/store/schema.ts';
import { createTestDatabase, probePostgres } from '../support/postgres.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const pgDown = await probePostgres();
if (pgDown) console.warn(`!!!!!!!! PostgreSQL unreachable (${pgDown}): the worker kill test is SKIPPED`);

const LEASE = 3;
const SWEEP_MS = 200;

describe.skipIf(Boolean(pgDown))('a worker process killed mid-execution', () => {
  let store: Store;
  let drop: () => Promise<void>;
  let url: string;
  let child: ChildProcess | undefined;
  let tmp: string;
  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    store = await openStore({ databaseUrl: url, poolSize: 3 });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-kill-'));
    const [p] = await store.db
      .insert(packs)
      .values({ ref: 'kill', label: 'K', version: '1.0.0' })
      .returning();
    await store.db.insert(actions).values({
      ref: 'kill.sleep',
      packId: p!.id,
      packRef: 'kill',
      name: 'sleep',
      label: 'sleep',
      runner: 'local-shell-cmd',
    });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    // The action's process outlives its killed worker (its own process group): end it.
    const pidFile = path.join(tmp, 'pid');
    if (fs.existsSync(pidFile)) {
      try {
        process.kill(-Number(fs.readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    await store?.close();
    await drop?.();
  });

  it('ends abandoned within the heartbeat deadline, and the worker is marked lost', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'worker-child-process.ts')], {
      cwd: root,
      env: {
        ...process.env,
        ATTUNE_TEST_WORKER_DB: url,
        ATTUNE_TEST_HEARTBEAT: '0.5',
        ATTUNE_TEST_LEASE: String(LEASE),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const workerId = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error('the worker process did not become ready')), 20_000);
      child!.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /ready (\S+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child!.on('exit', (code) => reject(new Error(`worker process exited early (${code})`)));
    });

    // An execution scheduled for it (the outbox row is relayed by the worker process itself).
    const id = await store.transaction(async (tx) => {
      const [e] = await tx
        .insert(executions)
        .values({
          actionRef: 'kill.sleep',
          runner: 'local-shell-cmd',
          status: 'scheduled',
          parameters: { cmd: `echo $$ > ${path.join(tmp, 'pid')}; exec sleep 30` },
          timeoutSeconds: 120,
          scheduledAt: sql`now()`,
          leaseExpiresAt: sql`now() + interval '30 seconds'`,
        })
        .returning();
      await writeOutboxMany(tx, [scheduledMessage(e!)]);
      return e!.id;
    });
    const running = async () => {
      const [r] = await store.db.select().from(executions).where(eq(executions.id, id));
      return r!;
    };
    for (let i = 0; (await running()).status !== 'running' || !fs.existsSync(path.join(tmp, 'pid')); i++) {
      if (i > 200) throw new Error('the worker did not start the execution');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await running()).workerId).toBe(workerId);
    // Heartbeats renew the lease while it runs.
    const lease1 = (await running()).leaseExpiresAt!.getTime();
    await new Promise((r) => setTimeout(r, 1200));
    expect((await running()).leaseExpiresAt!.getTime()).toBeGreaterThan(lease1);

    const sweeper = new Sweeper({
      store,
      bus: new MemoryBus(),
      intervalMs: SWEEP_MS,
      deadlines: { runLease: LEASE },
      owner: 'kill-test',
    });
    sweeper.start();
    try {
      const killedAt = Date.now();
      child.kill('SIGKILL');
      let row = await running();
      while (row.status === 'running' && Date.now() - killedAt < 15_000) {
        await new Promise((r) => setTimeout(r, 50));
        row = await running();
      }
      const took = Date.now() - killedAt;
      expect(row.status).toBe('abandoned');
      expect(row.error).toMatchObject({ type: 'abandoned', worker_id: workerId });
      // The lease (3 s) was renewed less than a heartbeat before the kill, and one sweep later it is
      // abandoned: within the lease, plus a sweep, plus slack for a loaded machine.
      expect(took).toBeLessThanOrEqual(LEASE * 1000 + SWEEP_MS + 2500);
      expect(took).toBeGreaterThanOrEqual(LEASE * 1000 - 600);
      const [w] = await store.db.select().from(workers).where(eq(workers.id, workerId));
      expect(w!.status).toBe('lost');
    } finally {
      await sweeper.stop();
    }
  }, 60_000);
});
