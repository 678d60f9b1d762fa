import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runAction } from '../../src/services/worker/runners/runner.ts';
import { groupMembers, isAlive, makeRequest, until } from './runners-helpers.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-kill-'));
const stray: number[] = [];
afterAll(() => {
  for (const pid of stray) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * The leader ignores TERM, and so do its children (an ignored signal is inherited across exec):
 * only the SIGKILL after the grace period can stop them. It reports its pid (= the group id), the
 * grandchild's pid, and records the TERM it received.
 */
const stubborn = (marker: string) =>
  `trap 'echo TERM >> ${marker}' TERM; ` +
  `(trap '' TERM; sleep 1000) & ` +
  `sleep 1000 & ` +
  `echo "group=$$ grandchild=$!"; ` +
  `while :; do sleep 0.05; done`;

async function started(r: ReturnType<typeof makeRequest>): Promise<{ pgid: number; grandchild: number }> {
  const text = await r.waitFor('stdout', /group=\d+ grandchild=\d+/);
  const m = /group=(\d+) grandchild=(\d+)/.exec(text)!;
  const pgid = Number(m[1]);
  const grandchild = Number(m[2]);
  stray.push(pgid, grandchild);
  return { pgid, grandchild };
}

describe('stopping the whole process group', () => {
  it('a timeout sends TERM to the group, then KILL after the grace period; nothing survives', async () => {
    const marker = path.join(tmp, 'timeout-term');
    const r = makeRequest({
      runner: 'local-shell-cmd',
      parameters: { cmd: stubborn(marker) },
      timeoutSeconds: 1,
    });
    const t = performance.now();
    const running = runAction(r.req, { killGraceMs: 400 });
    const { pgid, grandchild } = await started(r);
    expect(groupMembers(pgid).length).toBeGreaterThanOrEqual(3);
    const out = await running;
    const took = performance.now() - t;

    expect(out.status).toBe('timeout');
    expect(out.error).toMatchObject({ type: 'timeout' });
    expect(out.error?.message).toMatch(/timed out after 1 s/);
    // TERM was delivered first (the trap recorded it) and the group outlived it until KILL
    expect(fs.readFileSync(marker, 'utf8')).toContain('TERM');
    expect(took).toBeGreaterThanOrEqual(1000 + 400 - 50);
    expect(took).toBeLessThan(4000);
    expect(isAlive(grandchild)).toBe(false);
    // (members killed after their parent died may stay zombies until init reaps them: not running)
    expect(groupMembers(pgid)).toEqual([]);
  });

  it('a cancel stops the whole group the same way', async () => {
    const marker = path.join(tmp, 'cancel-term');
    const r = makeRequest({
      runner: 'local-shell-cmd',
      parameters: { cmd: stubborn(marker) },
      timeoutSeconds: 60,
    });
    const running = runAction(r.req, { killGraceMs: 300 });
    const { pgid, grandchild } = await started(r);
    const t = performance.now();
    r.controller.abort();
    const out = await running;
    expect(out).toMatchObject({ status: 'canceled', error: { type: 'canceled' } });
    expect(performance.now() - t).toBeGreaterThanOrEqual(250);
    expect(performance.now() - t).toBeLessThan(3000);
    expect(fs.readFileSync(marker, 'utf8')).toContain('TERM');
    expect(isAlive(grandchild)).toBe(false);
    expect(groupMembers(pgid)).toEqual([]);
  });

  it('a group that obeys TERM stops at once, without waiting for the grace period', async () => {
    const r = makeRequest({
      runner: 'local-shell-cmd',
      parameters: { cmd: 'sleep 1000 & echo "group=$$ grandchild=$!"; wait' },
      timeoutSeconds: 0.5,
    });
    const t = performance.now();
    const running = runAction(r.req, { killGraceMs: 10_000 });
    const { pgid, grandchild } = await started(r);
    const out = await running;
    expect(out.status).toBe('timeout');
    expect(performance.now() - t).toBeLessThan(3000);
    expect(isAlive(grandchild)).toBe(false);
    expect(groupMembers(pgid)).toEqual([]);
  });

  it('processes left behind by a command that exits are stopped too', async () => {
    const r = makeRequest({
      runner: 'local-shell-cmd',
      parameters: { cmd: 'sleep 1000 & echo "group=$$ grandchild=$!"' },
    });
    const t = performance.now();
    const out = await runAction(r.req);
    expect(out.status).toBe('succeeded');
    expect(performance.now() - t).toBeLessThan(3000);
    const { pgid, grandchild } = await started(r);
    await until(() => !isAlive(grandchild), 2000, 'the left-behind process to stop');
    expect(groupMembers(pgid)).toEqual([]);
  });

  it('a left-behind process that ignores TERM gets KILL after the grace period', async () => {
    const r = makeRequest({
      runner: 'local-shell-cmd',
      parameters: {
        cmd: `(trap '' TERM; exec sleep 1000) >/dev/null 2>&1 & echo "group=$$ grandchild=$!"; sleep 0.2`,
      },
    });
    const t = performance.now();
    const out = await runAction(r.req, { killGraceMs: 300 });
    expect(out.status).toBe('succeeded');
    // the outcome does not wait for the straggler…
    expect(performance.now() - t).toBeLessThan(200 + 250);
    const { pgid, grandchild } = await started(r);
    expect(isAlive(grandchild)).toBe(true);
    // …but it does not survive either
    await until(() => !isAlive(grandchild), 2000, 'the straggler to be killed');
    expect(groupMembers(pgid)).toEqual([]);
  });

  it('a process that left the group and holds the output open does not keep the execution running', async () => {
    const r = makeRequest({
      runner: 'local-shell-cmd',
      parameters: { cmd: 'setsid sleep 30 & echo "escaped=$!"; echo done' },
    });
    const t = performance.now();
    const out = await runAction(r.req);
    const escaped = Number(/escaped=(\d+)/.exec(r.text('stdout'))![1]);
    stray.push(escaped);
    expect(out).toMatchObject({ status: 'succeeded' });
    expect((out.result as { stdout: string }).stdout).toContain('done');
    expect(performance.now() - t).toBeLessThan(3000);
  });

  it('a timeout with a script runner kills the group as well', async () => {
    const pack = path.join(tmp, 'pack');
    fs.mkdirSync(path.join(pack, 'actions'), { recursive: true });
    fs.writeFileSync(
      path.join(pack, 'actions', 'hang.py'),
      [
        'import os, signal, subprocess, sys, time',
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
        "child = subprocess.Popen(['sleep', '1000'], preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))",
        "print(f'group={os.getpgrp()} grandchild={child.pid}', flush=True)",
        'time.sleep(1000)',
      ].join('\n'),
    );
    const r = makeRequest({
      runner: 'python-script',
      packDir: pack,
      entryPoint: 'hang.py',
      timeoutSeconds: 1,
    });
    const running = runAction(r.req, { killGraceMs: 300 });
    const { pgid, grandchild } = await started(r);
    const out = await running;
    expect(out.status).toBe('timeout');
    expect(isAlive(grandchild)).toBe(false);
    expect(groupMembers(pgid)).toEqual([]);
  });
});
