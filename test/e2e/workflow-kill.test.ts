/**
 * Durability of workflows (DESIGN §4.4): the embedded platform runs as a real process
 * (`node --import tsx src/main.ts`) on a data directory; while a workflow of short shell tasks runs,
 * the process is killed with SIGKILL at random moments, again and again, and started again on the
 * same directory. The workflow must finish `succeeded`, and no run key may ever have been started
 * twice (one child execution per run key; a run cut short by a kill is abandoned by the sweeper and
 * retried by the task's retry policy under a new run key).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asc, eq } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/database.ts';
import { executions, workflowRuns, workflowTaskRuns } from '../../src/store/schema.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const PASSWORD = 'kill-test-password-1';
const KILLS = 6;

interface Proc {
  child: ChildProcess;
  url: string;
  /** Everything the process printed (for diagnosing a death). */
  output: () => string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startPlatform(dataDir: string): Promise<Proc> {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      ATTUNE_DATA_DIR: dataDir,
      ATTUNE_ADMIN_PASSWORD: PASSWORD,
      ATTUNE_PORT: '0',
      ATTUNE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    out += String(d);
  });
  child.stderr!.on('data', (d) => {
    out += String(d);
  });
  const end = Date.now() + 60_000;
  for (;;) {
    const m = /Attune is ready at (http:\/\/\S+)/.exec(out);
    if (m) return { child, url: m[1]!, output: () => out };
    if (child.exitCode !== null) throw new Error(`the platform exited (${child.exitCode}):\n${out}`);
    if (Date.now() > end) throw new Error(`the platform did not start:\n${out}`);
    await sleep(50);
  }
}

function kill(p: Proc): Promise<void> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
    p.child.once('exit', () => resolve());
    p.child.kill('SIGKILL');
  });
}

async function api<T>(
  p: Proc,
  token: string | null,
  method: string,
  url: string,
  body?: unknown,
): Promise<T> {
  const r = await fetch(`${p.url}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch((e: unknown) => {
    const state = p.child.exitCode !== null ? `exited ${p.child.exitCode}` : `signal ${p.child.signalCode}`;
    throw new Error(
      `${method} ${url}: ${(e as Error).message}; the platform ${state}; it printed:\n${p.output().slice(-4000)}`,
    );
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${text}`);
  return JSON.parse(text) as T;
}

async function login(p: Proc): Promise<string> {
  const r = await api<{ data: { access_token: string } }>(p, null, 'POST', '/auth/login', {
    login: 'admin',
    password: PASSWORD,
  });
  return r.data.access_token;
}

/**
 * Runs workflow `ref` (created by `define`) while killing the platform `KILLS` times at random
 * moments; returns the data directory's store contents about the run once it has finished.
 */
async function runWithKills(dataDir: string, define: (p: Proc, token: string) => Promise<string>) {
  let p = await startPlatform(dataDir);
  let token = await login(p);
  const ref = await define(p, token);
  const started = await api<{ data: { id: number } }>(p, token, 'POST', '/api/v1/executions', {
    action: ref,
  });
  const id = started.data.id;
  const kills: number[] = [];
  let status = 'requested';
  for (let i = 0; i < KILLS; i++) {
    const wait = 150 + Math.floor(Math.random() * 1500);
    await sleep(wait);
    kills.push(wait);
    await kill(p);
    p = await startPlatform(dataDir);
    token = await login(p);
  }
  const end = Date.now() + 240_000;
  for (;;) {
    const r = await api<{ data: { status: string } }>(p, token, 'GET', `/api/v1/executions/${id}`);
    status = r.data.status;
    if (['succeeded', 'failed', 'canceled', 'timeout', 'abandoned'].includes(status)) break;
    if (Date.now() > end)
      throw new Error(`workflow ${id} still ${status} after the kills ${kills.join(', ')}`);
    await sleep(250);
  }
  p.child.kill('SIGTERM');
  await new Promise((r) => p.child.once('exit', r));
  const store = await openStore({ pgliteDir: path.join(dataDir, 'db') });
  try {
    const [wf] = await store.db.select().from(executions).where(eq(executions.id, id));
    const kids = await store.db
      .select()
      .from(executions)
      .where(eq(executions.parentId, id))
      .orderBy(asc(executions.id));
    const runs = await store.db
      .select()
      .from(workflowTaskRuns)
      .where(eq(workflowTaskRuns.workflowExecutionId, id))
      .orderBy(asc(workflowTaskRuns.id));
    const [run] = await store.db.select().from(workflowRuns).where(eq(workflowRuns.executionId, id));
    const cut = kids.filter((k) => k.status !== 'succeeded').length;
    console.log(
      `[kill] workflow ${id} (${wf!.status}): ${KILLS} kills after ${kills.join(', ')} ms; ` +
        `${kids.length} child executions, ${cut} cut short by a kill and retried; ` +
        `${Math.round((wf!.finishedAt!.getTime() - wf!.createdAt.getTime()) / 1000)} s in all`,
    );
    return { wf: wf!, kids, runs, run: run!, kills };
  } finally {
    await store.close();
  }
}

function checkOncePerRunKey(
  r: Awaited<ReturnType<typeof runWithKills>>,
  tasks: string[],
  itemsPerTask: (task: string) => number,
) {
  // No run key was ever started twice.
  const byKey = new Map<string, number>();
  for (const k of r.kids) {
    const key = String(k.context.workflow_run_key);
    byKey.set(key, (byKey.get(key) ?? 0) + 1);
  }
  expect([...byKey].filter(([, n]) => n !== 1)).toEqual([]);
  // Every child is a task run, and every started task run has its child.
  expect(
    r.runs
      .filter((t) => t.executionId !== null)
      .map((t) => t.runKey)
      .sort(),
  ).toEqual([...byKey.keys()].sort());
  expect(r.runs.every((t) => ['succeeded', 'failed'].includes(t.status))).toBe(true);
  // Each task (each item) succeeded exactly once; the others are attempts cut short by a kill.
  for (const task of tasks) {
    const kids = r.kids.filter((k) => k.taskName === task);
    const ok = kids.filter((k) => k.status === 'succeeded');
    expect(ok.length, `succeeded runs of ${task}`).toBe(itemsPerTask(task));
    expect(
      kids.filter((k) => k.status !== 'succeeded').every((k) => ['abandoned', 'failed'].includes(k.status)),
    ).toBe(true);
  }
}

describe('workflows survive SIGKILL of the embedded platform', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const newDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-wfkill-'));
    dirs.push(d);
    return d;
  };

  it('a 20-step workflow of shell tasks finishes, each run key run once', { timeout: 600_000 }, async () => {
    const tasks = Array.from({ length: 20 }, (_, i) => `step${i}`);
    const r = await runWithKills(newDir(), async (p, token) => {
      await api(p, token, 'POST', '/api/v1/packs', { ref: 'killtest', label: 'Kill test', version: '1.0.0' });
      await api(p, token, 'POST', '/api/v1/workflows', {
        ref: 'killtest.chain',
        label: 'Chain',
        definition: {
          tasks: tasks.map((name, i) => ({
            name,
            action: 'core.local',
            input: { cmd: `sleep 0.1; echo '{"step": ${i}}'` },
            retry: { count: 10 },
            ...(i < tasks.length - 1
              ? {
                  next: [
                    {
                      when: '{{ succeeded() }}',
                      publish: [{ last: '{{ result().step }}' }],
                      do: tasks[i + 1],
                    },
                  ],
                }
              : {}),
          })),
          output_map: { last: '{{ vars.last }}', final: '{{ task.step19.result.step }}' },
        },
      });
      return 'killtest.chain';
    });
    expect(r.wf.status, `after kills at ${r.kills.join(', ')} ms`).toBe('succeeded');
    expect(r.wf.result).toEqual({ last: 18, final: 19 });
    expect(r.run.status).toBe('succeeded');
    checkOncePerRunKey(r, tasks, () => 1);
  });

  it('a with-items workflow finishes, each item run once per run key', { timeout: 600_000 }, async () => {
    const r = await runWithKills(newDir(), async (p, token) => {
      await api(p, token, 'POST', '/api/v1/packs', {
        ref: 'killitems',
        label: 'Kill items',
        version: '1.0.0',
      });
      await api(p, token, 'POST', '/api/v1/workflows', {
        ref: 'killitems.fan',
        label: 'Fan-out',
        definition: {
          tasks: [
            {
              name: 'each',
              action: 'core.local',
              with_items: '{{ range(40) | list }}',
              concurrency: 4,
              input: { cmd: `sleep 0.1; echo '{"n": {{ item }}}'` },
              retry: { count: 10 },
            },
          ],
          output_map: { ns: "{{ task.each.result | map(attribute='n') | list }}" },
        },
      });
      return 'killitems.fan';
    });
    expect(r.wf.status, `after kills at ${r.kills.join(', ')} ms`).toBe('succeeded');
    expect(r.wf.result).toEqual({ ns: Array.from({ length: 40 }, (_, i) => i) });
    checkOncePerRunKey(r, ['each'], () => 40);
    const items = new Set(r.kids.filter((k) => k.status === 'succeeded').map((k) => k.context.item_index));
    expect(items.size).toBe(40);
  });
});
