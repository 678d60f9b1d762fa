/**
 * Pack sensors, with real processes: the fixture pack `sensing` is installed through the API and its
 * Python and shell sensors run under the sensor manager. A sensor runs while a rule uses its trigger,
 * gets its configuration on stdin and emits events as JSON lines; invalid lines are logged, not
 * fatal; a crash is followed by restarts with exponential back-off; it stops (whole process group)
 * when its rule is disabled and at shutdown (SIGTERM, then SIGKILL); the lease keeps it on one node;
 * its log is bounded and readable through the API (/logs, /status).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { and, asc, eq, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { activeDir } from '../../src/packs/installed-files.ts';
import { SensorManager, type SensorManagerOptions } from '../../src/services/sensors/sensor-manager.ts';
import { LineSplitter } from '../../src/services/sensors/sensor-process.ts';
import { events, sensorLogs, sensorProcesses } from '../../src/store/schema.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/packs/sensing');
const TICKER = 'sensing.ticker';
const STUBBORN = 'sensing.stubborn';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // a zombie is not alive
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('line splitting', () => {
  it('cuts lines across chunks, drops \\r, and cuts over-long lines once', () => {
    const got: [string, boolean][] = [];
    const s = new LineSplitter(8, (l, t) => got.push([l, t]));
    s.push(Buffer.from('ab'));
    s.push(Buffer.from('c\r\ndef\n\n0123456789abc'));
    s.push(Buffer.from('def\nlast'));
    s.end();
    expect(got).toEqual([
      ['abc', false],
      ['def', false],
      ['01234567', true],
      ['last', false],
    ]);
  });
});

describe('sensor manager', () => {
  let s: TestServer;
  const managers: SensorManager[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-sensors-'));

  const api = <T = AnyBody>(method: string, url: string, body?: unknown) =>
    s.request<T>(method, url, { token: s.adminToken, ...(body !== undefined && { body }) });
  const manager = (opts: Partial<SensorManagerOptions> = {}) => {
    const m = new SensorManager({
      store: s.platform.store,
      packDir: (ref) => activeDir(s.platform.ctx.packsDir, ref) ?? null,
      tickMs: 100,
      evaluateIntervalMs: 200,
      leaseSeconds: 2,
      killGraceMs: 500,
      backoffInitialMs: 200,
      backoffMaxMs: 2000,
      ...opts,
    });
    managers.push(m);
    return m;
  };
  const sensorEvents = (ref = TICKER) =>
    s.platform.store.db
      .select()
      .from(events)
      .where(eq(events.source, `sensor:${ref}`))
      .orderBy(asc(events.id));
  const logLines = async (ref: string, stream?: string) =>
    (
      await s.platform.store.db
        .select()
        .from(sensorLogs)
        .where(and(eq(sensorLogs.sensorRef, ref), stream ? eq(sensorLogs.stream, stream) : undefined))
        .orderBy(asc(sensorLogs.id))
    ).map((l) => l.line);
  const status = async (ref = TICKER) =>
    (await api(`GET`, `/api/v1/sensors/${ref}/status`)).body.data as AnyBody;
  const setRule = async (ref: string, enabled: boolean) =>
    expect((await api('PUT', `/api/v1/rules/${ref}`, { enabled })).status).toBe(200);
  const setConfig = async (config: Record<string, unknown>, ref = TICKER) =>
    expect((await api('PUT', `/api/v1/sensors/${ref}`, { config })).status).toBe(200);

  beforeAll(async () => {
    s = await startTestServer();
    // The tests drive their own managers: the platform's must not compete for the sensors' leases.
    await s.platform.sensors?.stop();
    const r = await api('POST', '/api/v1/packs/install', { source: 'path', path: FIXTURE });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const rule = await api('POST', '/api/v1/rules', {
      ref: 'sensing.on_rang',
      trigger_ref: 'sensing.rang',
      action_ref: 'core.noop',
      enabled: false,
    });
    expect(rule.status, JSON.stringify(rule.body)).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await s?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await setConfig({ interval: 0.1 });
    await setRule('sensing.on_tick', false);
    await setRule('sensing.on_rang', false);
    await s.platform.store.db.delete(events);
    await s.platform.store.db.delete(sensorLogs);
    await s.platform.store.db.delete(sensorProcesses);
  });
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.stop()));
  });

  it('runs a sensor while a rule uses its trigger: config on stdin, events from stdout, stderr kept', async () => {
    const m = manager();
    await m.start();
    await sleep(500);
    expect(m.running).toEqual([]);
    expect(await status()).toMatchObject({ status: 'stopped', needed: false, owner: null, pid: null });

    await setRule('sensing.on_tick', true);
    const evs = await waitFor('three events', async () => {
      const e = await sensorEvents();
      return e.length >= 3 ? e : undefined;
    });
    expect(evs[0]!.triggerRef).toBe('sensing.ticked');
    expect(evs.slice(0, 3).map((e) => (e.payload as AnyBody).n)).toEqual([1, 2, 3]);
    expect((evs[0]!.payload as AnyBody).greeting).toBe('hello from the pack');
    expect(evs[0]!.triggerParams).toEqual({});
    expect(m.running).toEqual([TICKER]); // the stubborn sensor's trigger has no rule
    const pid = m.pidOf(TICKER)!;
    expect(alive(pid)).toBe(true);
    expect((evs[0]!.payload as AnyBody).pid).toBe(pid);

    const st = await status();
    expect(st).toMatchObject({
      status: 'running',
      needed: true,
      owner: m.owner,
      pid,
      lease_active: true,
      restarts: 0,
    });
    expect((await status(STUBBORN)).needed).toBe(false);

    await m.logs.flush();
    const logs = await api('GET', `/api/v1/sensors/${TICKER}/logs`);
    expect(logs.status).toBe(200);
    const lines = (logs.body.data as AnyBody[]).map((l) => `${l.stream}: ${l.line}`);
    expect(lines).toContain(`system: started sensors/ticker.py (pid ${pid})`);
    expect(lines).toContain(
      'stderr: ticker sensing.ticker starting with triggers sensing.ticked,sensing.rang',
    );
  });

  it('logs lines that are not valid events, with the reason, and goes on', async () => {
    await setConfig({ interval: 0.1, noise: true });
    await setRule('sensing.on_tick', true);
    const m = manager();
    await m.start();
    await waitFor('two valid events', async () => ((await sensorEvents()).length >= 2 ? true : undefined));
    await m.logs.flush();
    const invalid = await logLines(TICKER, 'invalid');
    expect(invalid).toEqual([
      'not JSON (expected {"trigger": …, "payload": {…}}): this is not json',
      'not a JSON object (expected {"trigger": …, "payload": {…}}): [1, 2, 3]',
      `trigger 'otherpack.thing' is not one of this sensor's triggers (sensing.ticked, sensing.rang): {"trigger": "otherpack.thing", "payload": {}}`,
      '"trigger" is missing or not a string: {"payload": {"n": 1}}',
      expect.stringMatching(/^event refused: payload does not fit trigger 'sensing\.ticked'.*"not a number"/),
    ]);
    expect((await status()).status).toBe('running');
    // events of valid lines are all there, in order
    const ns = (await sensorEvents()).map((e) => (e.payload as AnyBody).n);
    expect(ns.slice(0, 2)).toEqual([1, 2]);
  });

  it('accepts a trigger given by its name alone', async () => {
    await setConfig({ interval: 0.1, short_names: true });
    await setRule('sensing.on_tick', true);
    const m = manager();
    await m.start();
    const [e] = await waitFor('an event', async () => {
      const evs = await sensorEvents();
      return evs.length ? evs : undefined;
    });
    expect(e!.triggerRef).toBe('sensing.rang');
  });

  it('restarts a crashed sensor with exponential back-off', async () => {
    await setConfig({ interval: 0.05, crash_after: 1 });
    await setRule('sensing.on_tick', true);
    const m = manager();
    await m.start();
    const st = await waitFor('three restarts', async () => {
      const x = await status();
      return x.restarts >= 3 ? x : undefined;
    });
    expect(st.last_exit_code).toBe(3);
    expect(st.last_error).toBe('exited with code 3: boom: giving up');
    await m.logs.flush();
    const restarts = (await logLines(TICKER, 'system')).filter((l) => l.includes('restarting in'));
    expect(restarts.slice(0, 3)).toEqual([
      'exited with code 3: boom: giving up; restarting in 0.2 s',
      'exited with code 3: boom: giving up; restarting in 0.4 s',
      'exited with code 3: boom: giving up; restarting in 0.8 s',
    ]);
    // one event per run, each run a new process
    const evs = await sensorEvents();
    expect(evs.length).toBeGreaterThanOrEqual(3);
    expect(new Set(evs.map((e) => (e.payload as AnyBody).pid)).size).toBe(evs.length);
    // the waits grew: the starts are spaced at least by the back-off
    const starts = (
      await s.platform.store.db
        .select()
        .from(sensorLogs)
        .where(and(eq(sensorLogs.sensorRef, TICKER), sql`${sensorLogs.line} like 'started %'`))
        .orderBy(asc(sensorLogs.id))
    ).map((l) => l.createdAt.getTime());
    expect(starts.length).toBeGreaterThanOrEqual(3);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(200);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(400);
  });

  it('stops the sensor and its whole process group when its rule is disabled', async () => {
    const pidFile = path.join(tmp, 'grandchild.pid');
    await setConfig({ interval: 0.1, spawn_child: pidFile });
    await setRule('sensing.on_tick', true);
    const m = manager();
    await m.start();
    const pid = await waitFor('the sensor', () => m.pidOf(TICKER));
    const grandchild = await waitFor('the grandchild', () =>
      fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8')
        ? Number(fs.readFileSync(pidFile, 'utf8'))
        : undefined,
    );
    expect(alive(grandchild)).toBe(true);
    await setRule('sensing.on_tick', false);
    await waitFor('the sensor to stop', async () =>
      (await status()).status === 'stopped' ? true : undefined,
    );
    expect(m.running).toEqual([]);
    await waitFor('both processes to be gone', () => !alive(pid) && !alive(grandchild), 5000);
    expect(await status()).toMatchObject({ status: 'stopped', owner: null, pid: null, lease_active: false });
    await m.logs.flush();
    expect((await logLines(TICKER, 'system')).at(-1)).toMatch(/^stopped: no enabled rule uses its triggers/);
  });

  it('runs a sensor on one node only; a node that lost its lease stops it, and a released sensor moves at once', async () => {
    await setRule('sensing.on_tick', true);
    const m1 = manager({ owner: 'node-1' });
    const m2 = manager({ owner: 'node-2' });
    await m1.start();
    const pid1 = await waitFor('node-1 to run it', () => m1.pidOf(TICKER));
    await m2.start();
    await sleep(1000);
    expect(m2.running).toEqual([]);
    expect((await status()).owner).toBe('node-1');

    // node-1 loses its lease (another node took it, and that node died): node-1 stops its process,
    // and one of the live nodes takes the free lease — whichever ticks first.
    await s.platform.store.db
      .update(sensorProcesses)
      .set({ owner: 'node-gone', leaseExpiresAt: sql`now() - interval '1 second'` })
      .where(eq(sensorProcesses.sensorRef, TICKER));
    await waitFor('node-1 to stop its process', () => !alive(pid1), 5000);
    const [holder, other] = await waitFor('a node to take over', () => {
      const p1 = m1.pidOf(TICKER);
      if (p1 !== undefined && p1 !== pid1) return [m1, m2] as const;
      if (p1 === pid1) return undefined;
      return m2.pidOf(TICKER) !== undefined ? ([m2, m1] as const) : undefined;
    });
    const pid2 = holder.pidOf(TICKER)!;
    // never two at once: the other node runs nothing (node-1 may still be clearing its dead process)
    await waitFor('the other node to let go', () => other.running.length === 0, 5000);
    expect(holder.pidOf(TICKER)).toBe(pid2);
    const holderName = holder === m1 ? 'node-1' : 'node-2';
    expect(await status()).toMatchObject({ owner: holderName, pid: pid2, status: 'running' });

    // the holder stops (shutdown): it releases the lease and the other node takes it at its next tick
    const t0 = Date.now();
    await holder.stop();
    const pid3 = await waitFor('the other node to take it', () => other.pidOf(TICKER));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(alive(pid2)).toBe(false);
    expect(pid3).not.toBe(pid2);
    expect((await status()).owner).toBe(holder === m1 ? 'node-2' : 'node-1');
  });

  it('stops sensors at shutdown: SIGTERM, then SIGKILL for one that ignores it', async () => {
    await setRule('sensing.on_rang', true); // used by both sensors
    const m = manager({ killGraceMs: 700 });
    await m.start();
    const stubborn = await waitFor('the stubborn sensor', () => m.pidOf(STUBBORN));
    const ticker = await waitFor('the ticker', () => m.pidOf(TICKER));
    await m.logs.flush();
    await waitFor('the stubborn sensor to be up', async () =>
      (await logLines(STUBBORN, 'stderr')).includes('stubborn sensor up') ? true : undefined,
    );
    const t0 = Date.now();
    await m.stop();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(5000);
    expect(alive(stubborn)).toBe(false);
    expect(alive(ticker)).toBe(false);
    expect(await status(STUBBORN)).toMatchObject({ status: 'stopped', owner: null });
    expect(await status(TICKER)).toMatchObject({ status: 'stopped', owner: null });
  });

  it('keeps a bounded log, readable by tail and stream through the API', async () => {
    await setConfig({ interval: 0.2, stderr_lines: 300 });
    await setRule('sensing.on_tick', true);
    const m = manager({ maxLogLines: 50 });
    await m.start();
    await waitFor('the stderr lines', async () => {
      await m.logs.flush();
      return (await logLines(TICKER, 'stderr')).includes('stderr line 299') ? true : undefined;
    });
    await m.stop();
    const all = await logLines(TICKER);
    expect(all.length).toBeLessThanOrEqual(50);
    expect(all.at(-1)).toMatch(/^stopped: /);

    const tail = await api('GET', `/api/v1/sensors/${TICKER}/logs?tail=5&stream=stderr`);
    expect(tail.status).toBe(200);
    expect((tail.body.data as AnyBody[]).map((l) => l.line)).toEqual([
      'stderr line 295',
      'stderr line 296',
      'stderr line 297',
      'stderr line 298',
      'stderr line 299',
    ]);
    const ids = (tail.body.data as AnyBody[]).map((l) => l.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect((await api('GET', `/api/v1/sensors/${TICKER}/logs?tail=0`)).status).toBe(400);
    expect((await api('GET', `/api/v1/sensors/${TICKER}/logs?tail=5000`)).status).toBe(400);
    expect((await api('GET', `/api/v1/sensors/${TICKER}/logs?stream=stdout`)).status).toBe(400);
    expect((await api('GET', '/api/v1/sensors/sensing.nope/logs')).status).toBe(404);
    expect((await api('GET', '/api/v1/sensors/sensing.nope/status')).status).toBe(404);
    expect((await s.request('GET', `/api/v1/sensors/${TICKER}/logs`)).status).toBe(401);
  });

  it('reports a sensor that cannot start as failed, with the reason', async () => {
    expect((await api('PUT', `/api/v1/sensors/${TICKER}`, { entry_point: 'missing.py' })).status).toBe(200);
    try {
      await setRule('sensing.on_tick', true);
      const m = manager();
      await m.start();
      const st = await waitFor('the failure', async () => {
        const x = await status();
        return x.status === 'failed' ? x : undefined;
      });
      expect(st.last_error).toBe("entry point 'sensors/missing.py' does not exist in the pack");
      expect(st.next_restart_at).not.toBeNull();
    } finally {
      expect((await api('PUT', `/api/v1/sensors/${TICKER}`, { entry_point: 'ticker.py' })).status).toBe(200);
    }
  });
});
