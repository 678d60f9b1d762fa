/**
 * The execution runtime end to end on the backend under test with the in-process bus:
 * requested → scheduled → running → terminal, output, duplicates, missing actions, hooks, secrets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import type { ExecutionRow } from '../../src/store/repositories/executions.ts';
import { events, executions, packs, rules, triggers, workers } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { Runtime, sleep, TERMINAL } from './runtime-fixture.ts';

describeBackend('execution runtime: the happy path and duplicates', () => {
  let rt: Runtime;
  const workflowHook: ExecutionRow[] = [];
  const children: ExecutionRow[] = [];
  const completed: ExecutionRow[] = [];
  let tmp: string;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-flow-'));
    rt = await Runtime.start({
      ruleIndex: true,
      schedulerHooks: { onWorkflow: async (e) => void workflowHook.push(e) },
      completionHooks: {
        onChildCompleted: async (e) => void children.push(e),
        onExecutionCompleted: async (e) => void completed.push(e),
      },
    });
    await rt.action({ ref: 'flow.noop', runner: 'noop' });
    await rt.action({ ref: 'flow.shell', runner: 'local-shell-cmd', timeoutSeconds: 45 });
    await rt.action({ ref: 'flow.wf', runner: 'workflow' });
    await rt.action({ ref: 'flow.off', runner: 'noop', enabled: false });
    await rt.action({
      ref: 'flow.secret',
      runner: 'local-shell-cmd',
      paramSchema: {
        type: 'object',
        properties: {
          cmd: { type: 'string' },
          token: { type: 'string', secret: true },
          greeting: { type: 'string', default: 'hi' },
        },
      },
    });
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('runs a noop execution through requested → scheduled → running → succeeded', async () => {
    const [id] = await rt.request('flow.noop');
    const [row] = await rt.waitFor([id!], ['succeeded']);
    expect(row!.workerId).toBe(rt.workers[0]!.id);
    expect(row!.scheduledAt).toBeInstanceOf(Date);
    expect(row!.startedAt).toBeInstanceOf(Date);
    expect(row!.finishedAt).toBeInstanceOf(Date);
    expect(row!.leaseExpiresAt).toBeNull();
    expect(row!.timeoutSeconds).toBe(600);
    await rt.until('the status notifications', async () =>
      rt.statuses.filter((s) => s.id === id).length >= 3 ? true : undefined,
    );
    expect(rt.statuses.filter((s) => s.id === id).map((s) => s.status)).toEqual([
      'scheduled',
      'running',
      'succeeded',
    ]);
    await rt.until('the follow-up', async () => ((await rt.get(id!)).completionHandledAt ? true : undefined));
    expect(completed.filter((e) => e.id === id)).toHaveLength(1);
  });

  it('runs a shell execution and stores its output as rows, broadcast with their row id', async () => {
    const [id] = await rt.request('flow.shell', 1, {
      parameters: { cmd: 'echo hello; echo oops >&2; echo world' },
    });
    const [row] = await rt.waitFor([id!], TERMINAL);
    expect(row!.status).toBe('succeeded');
    expect(row!.timeoutSeconds).toBe(45);
    const out = await rt.output(id!);
    expect(
      out
        .filter((o) => o.stream === 'stdout')
        .map((o) => o.data)
        .join(''),
    ).toBe('hello\nworld\n');
    expect(
      out
        .filter((o) => o.stream === 'stderr')
        .map((o) => o.data)
        .join(''),
    ).toBe('oops\n');
    await rt.until('output notifications', async () =>
      rt.outputs.some((o) => o.id === id) ? true : undefined,
    );
    const seqs = rt.outputs.filter((o) => o.id === id).map((o) => o.seq);
    expect(seqs.every((s) => out.some((o) => o.id === s))).toBe(true);
  });

  it('honours a per-execution timeout override', async () => {
    const [id] = await rt.request('flow.shell', 1, { parameters: { cmd: 'true' }, timeoutSeconds: 7 });
    const [row] = await rt.waitFor([id!], TERMINAL);
    expect(row!.timeoutSeconds).toBe(7);
  });

  it('runs an execution exactly once however often its messages are duplicated', async () => {
    const marker = path.join(tmp, 'dup-runs');
    const [id] = await rt.request('flow.shell', 1, {
      parameters: { cmd: `echo run >> ${marker}; sleep 0.3` },
    });
    // Duplicate execution.requested while it is requested, execution.scheduled while it is scheduled/running.
    for (let i = 0; i < 5; i++) await rt.bus.publish(TOPICS.executionRequested, { execution_id: id! });
    await rt.until('running', async () => ((await rt.get(id!)).status === 'running' ? true : undefined));
    for (let i = 0; i < 5; i++) {
      await rt.bus.publish(TOPICS.executionRequested, { execution_id: id! });
      await rt.bus.publish(TOPICS.executionScheduled, { execution_id: id!, runner: 'local-shell-cmd' });
    }
    await rt.waitFor([id!], ['succeeded']);
    for (let i = 0; i < 5; i++) {
      await rt.bus.publish(TOPICS.executionScheduled, { execution_id: id!, runner: 'local-shell-cmd' });
      await rt.bus.publish(TOPICS.executionCompleted, { execution_id: id!, status: 'succeeded' });
    }
    await sleep(300);
    expect(fs.readFileSync(marker, 'utf8')).toBe('run\n');
    expect(rt.statuses.filter((s) => s.id === id && s.status === 'running')).toHaveLength(1);
    expect(completed.filter((e) => e.id === id)).toHaveLength(1);
    expect((await rt.get(id!)).status).toBe('succeeded');
  });

  it('fails an execution whose action is missing or disabled, with a clear error', async () => {
    const [gone] = await rt.request('flow.vanished');
    const [off] = await rt.request('flow.off');
    const [a, b] = await rt.waitFor([gone!, off!], TERMINAL);
    expect(a!.status).toBe('failed');
    expect(a!.error).toMatchObject({ type: 'action_not_found' });
    expect(String(a!.error?.message)).toContain("action 'flow.vanished' does not exist");
    expect(b!.status).toBe('failed');
    expect(b!.error).toMatchObject({ type: 'action_disabled', message: "action 'flow.off' is disabled" });
  });

  it('leaves workflow executions requested and hands them to the workflow hook', async () => {
    const [id] = await rt.request('flow.wf');
    await rt.until('the hook', async () => (workflowHook.some((e) => e.id === id) ? true : undefined));
    expect((await rt.get(id!)).status).toBe('requested');
  });

  it('decrypts secret parameters for the action only, and fills in defaults', async () => {
    const [id] = await rt.request('flow.secret', 1, {
      parameters: { cmd: 'rev' },
      secrets: { token: 's3cr3t-value' },
    });
    const [row] = await rt.waitFor([id!], TERMINAL);
    expect(row!.status).toBe('succeeded');
    // Parameters arrive as JSON on stdin: the secret is there (printed reversed, since printing it
    // as is would be redacted), the stored parameters never had it.
    const reversed = (await rt.output(id!))
      .map((o) => o.data)
      .join('')
      .trim();
    const stdin = JSON.parse([...reversed].reverse().join('')) as Record<string, unknown>;
    expect(stdin).toMatchObject({ token: 's3cr3t-value', greeting: 'hi', cmd: 'rev' });
    expect(JSON.stringify(row!.parameters)).not.toContain('s3cr3t');
  });

  it('tells the parent hook about a child and the completion hook about every execution', async () => {
    const [parent] = await rt.request('flow.wf', 1, { silent: true });
    const [child] = await rt.request('flow.noop', 1, { parentId: parent! });
    await rt.waitFor([child!], ['succeeded']);
    await rt.until('parent hook', async () => (children.some((e) => e.id === child) ? true : undefined));
    expect(children.filter((e) => e.id === child)).toHaveLength(1);
  });

  it('creates a core.execution_completed event when a rule uses that trigger', async () => {
    const [core] = await rt.store.db
      .insert(packs)
      .values({ ref: 'core', label: 'Core', version: '1.0.0' })
      .returning();
    await rt.store.db.insert(triggers).values({
      ref: 'core.execution_completed',
      packId: core!.id,
      packRef: 'core',
      name: 'execution_completed',
      label: 'Execution completed',
      payloadSchema: {
        type: 'object',
        properties: { execution_id: { type: 'integer' }, status: { type: 'string' } },
        required: ['execution_id', 'status'],
      },
    });
    // No rule yet: no event.
    const [quiet] = await rt.request('flow.noop');
    await rt.until('followed up', async () =>
      (await rt.get(quiet!)).completionHandledAt ? true : undefined,
    );
    await rt.store.db.insert(rules).values({
      ref: 'core.on_done',
      packId: core!.id,
      packRef: 'core',
      name: 'on_done',
      label: 'on done',
      triggerRef: 'core.execution_completed',
      criteria: { 'trigger.action_ref': { type: 'equals', pattern: 'nothing.matches' } },
      actionRef: 'flow.noop',
    });
    rt.ruleIndex!.invalidate();
    const [id] = await rt.request('flow.shell', 1, { parameters: { cmd: 'echo \'{"x": 1}\'' } });
    await rt.waitFor([id!], ['succeeded']);
    const found = await rt.until('the event', async () => {
      const rows = await rt.store.db
        .select()
        .from(events)
        .where(eq(events.triggerRef, 'core.execution_completed'));
      return rows.length ? rows : undefined;
    });
    expect(found).toHaveLength(1);
    expect(found[0]!.payload).toMatchObject({
      execution_id: id,
      action_ref: 'flow.shell',
      status: 'succeeded',
      result: { x: 1 },
      parent_id: null,
    });
    expect(found[0]!.source).toBe('internal');
  });

  it('registers its worker with a heartbeat', async () => {
    const [w] = await rt.store.db.select().from(workers).where(eq(workers.id, rt.workers[0]!.id));
    expect(w).toMatchObject({ status: 'active', capacity: 8 });
    const before = w!.heartbeatAt.getTime();
    await rt.until('a heartbeat', async () => {
      const [x] = await rt.store.db.select().from(workers).where(eq(workers.id, rt.workers[0]!.id));
      return x!.heartbeatAt.getTime() > before ? true : undefined;
    });
  });

  it('stores no stray rows: every execution it touched is in a final or expected state', async () => {
    const rows = await rt.store.db.select().from(executions);
    const odd = rows.filter((r) => !TERMINAL.includes(r.status) && r.runner !== 'workflow');
    expect(odd).toEqual([]);
  });
});
