/**
 * Workflows running for real on the backend under test: the scheduler, completion handler, sweeper,
 * workers and the workflow host over the in-process bus, with the core pack's actions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.ts';
import { requestExecution } from '../../src/services/executions/request-execution.ts';
import { KeyStore } from '../../src/services/keys/key-store.ts';
import { cancelExecution } from '../../src/services/scheduler/cancel.ts';
import {
  cancelWorkflow,
  isSealedState,
  pauseWorkflow,
  rerunWorkflow,
  respondInquiry,
  resumeWorkflow,
} from '../../src/services/workflows/index.ts';
import {
  executions,
  inquiries,
  keys,
  packs,
  workflows,
  workflowTaskRuns,
  workflowTimers,
} from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { cipher, sleep } from './runtime-fixture.ts';
import { WorkflowRuntime } from './workflow-runtime-support.ts';

async function refusal(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describeBackend('workflows at run time', () => {
  let w: WorkflowRuntime;
  let tmp: string;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-wf-'));
    w = await WorkflowRuntime.start();
  });
  afterAll(async () => {
    await w?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const ops = () => w.host.operations;

  it('runs a sequential workflow of echo and shell tasks, publishing variables, to its output_map', async () => {
    await w.workflow('wt.seq', {
      parameters: {
        name: { type: 'string', required: true },
        greeting: { type: 'string', default: 'hello' },
      },
      vars: { count: 0 },
      tasks: [
        {
          name: 'greet',
          action: 'core.echo',
          input: { message: '{{ parameters.greeting }} {{ parameters.name }}' },
          next: [{ when: '{{ succeeded() }}', publish: [{ said: '{{ result().message }}' }], do: 'shout' }],
        },
        {
          name: 'shout',
          action: 'core.local',
          input: { cmd: 'printf \'{"upper": "%s"}\' "$(echo \'{{ vars.said }}\' | tr a-z A-Z)"' },
          next: [
            {
              when: '{{ succeeded() }}',
              publish: [{ upper: '{{ result().upper }}' }, { count: '{{ vars.count + 1 }}' }],
              do: 'done',
            },
          ],
        },
        { name: 'done', action: 'core.echo', input: { message: 'done: {{ vars.upper }}' } },
      ],
      output_map: {
        said: '{{ vars.said }}',
        upper: '{{ vars.upper }}',
        count: '{{ vars.count }}',
        last: '{{ task.done.result.message }}',
      },
    });
    const id = await w.run('wt.seq', { name: 'ann' });
    const row = await w.finish(id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ said: 'hello ann', upper: 'HELLO ANN', count: 1, last: 'done: HELLO ANN' });
    const kids = await w.children(id);
    expect(kids.map((k) => [k.taskName, k.actionRef, k.status])).toEqual([
      ['greet', 'core.echo', 'succeeded'],
      ['shout', 'core.local', 'succeeded'],
      ['done', 'core.echo', 'succeeded'],
    ]);
    expect(kids.every((k) => k.rootId === id && k.createdBy === 'tester')).toBe(true);
    expect(kids.map((k) => k.context.workflow_run_key)).toEqual(['greet#1', 'shout#1', 'done#1']);
    const runs = await w.taskRuns(id);
    expect(runs.map((r) => [r.runKey, r.status, r.executionId])).toEqual(
      kids.map((k) => [k.context.workflow_run_key, 'succeeded', k.id]),
    );
    expect(runs[0]!.input).toEqual({ message: 'hello ann' });
    expect(runs[2]!.result).toEqual({ message: 'done: HELLO ANN' });
    const run = await w.runRow(id);
    expect(run!.status).toBe('succeeded');
    expect(run!.version).toBeGreaterThanOrEqual(3);
    expect(run!.definition.ref).toBe('wt.seq');
  });

  it('runs parallel branches and a join once all of them arrived', async () => {
    await w.workflow('wt.join', {
      tasks: [
        { name: 'split', action: 'core.noop', next: [{ do: ['a', 'b', 'c'] }] },
        ...['a', 'b', 'c'].map((n) => ({
          name: n,
          action: 'core.echo',
          input: { message: n },
          next: [{ when: '{{ succeeded() }}', publish: [{ [n]: '{{ result().message }}' }], do: 'verify' }],
        })),
        {
          name: 'verify',
          action: 'core.echo',
          join: 'all',
          input: { message: '{{ vars.a }}{{ vars.b }}{{ vars.c }}' },
        },
      ],
      output_map: { joined: '{{ task.verify.result.message }}' },
    });
    const id = await w.run('wt.join');
    const row = await w.finish(id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ joined: 'abc' });
    const kids = await w.children(id);
    expect(kids.map((k) => k.taskName).sort()).toEqual(['a', 'b', 'c', 'split', 'verify']);
    const verify = kids.find((k) => k.taskName === 'verify')!;
    for (const k of kids.filter((x) => ['a', 'b', 'c'].includes(x.taskName ?? '')))
      expect(k.finishedAt!.getTime()).toBeLessThanOrEqual(verify.createdAt.getTime());
  });

  it('fans out over 50 items with at most 5 at once and gathers the results in item order', async () => {
    await w.workflow('wt.items', {
      parameters: { n: { type: 'integer', default: 50 } },
      tasks: [
        {
          name: 'each',
          action: 'core.echo',
          with_items: '{{ range(parameters.n) | list }}',
          concurrency: 5,
          input: { message: 'item {{ item }} at {{ index }}' },
        },
      ],
      output_map: { messages: "{{ task.each.result | map(attribute='message') | list }}" },
    });
    const id = await w.run('wt.items');
    const row = await w.finish(id, 60_000);
    expect(row.status).toBe('succeeded');
    const expected = Array.from({ length: 50 }, (_, i) => `item ${i} at ${i}`);
    expect((row.result as { messages: string[] }).messages).toEqual(expected);
    const kids = await w.children(id);
    expect(kids).toHaveLength(50);
    expect(kids.map((k) => k.context.item_index).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
    // Never more than 5 children alive (created, not finished) at once.
    const marks = kids.flatMap((k) => [
      { t: k.createdAt.getTime(), d: 1 },
      { t: k.finishedAt!.getTime(), d: -1 },
    ]);
    marks.sort((a, b) => a.t - b.t || a.d - b.d);
    let alive = 0;
    let most = 0;
    for (const m of marks) {
      alive += m.d;
      most = Math.max(most, alive);
    }
    expect(most).toBeLessThanOrEqual(5);
    expect(new Set(kids.map((k) => k.context.workflow_run_key)).size).toBe(50);
  });

  it('retries a failing task with its retry policy, each attempt a run of its own', async () => {
    const counter = path.join(tmp, 'retry-count');
    await w.workflow('wt.retry', {
      tasks: [
        {
          name: 'flaky',
          action: 'core.local',
          input: {
            cmd: `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; [ $n -ge 3 ]`,
          },
          retry: { count: 3, delay: 0.2 },
        },
      ],
    });
    const id = await w.run('wt.retry');
    expect((await w.finish(id)).status).toBe('succeeded');
    const runs = await w.taskRuns(id);
    expect(runs.map((r) => [r.runKey, r.attempt, r.status])).toEqual([
      ['flaky#1', 1, 'failed'],
      ['flaky#1@2', 2, 'failed'],
      ['flaky#1@3', 3, 'succeeded'],
    ]);
    const kids = await w.children(id);
    expect(kids.map((k) => k.status)).toEqual(['failed', 'failed', 'succeeded']);
    expect(runs.map((r) => r.executionId)).toEqual(kids.map((k) => k.id));
    // The back-off was waited for, through a durable timer that is gone with the run.
    expect(kids[1]!.createdAt.getTime() - kids[0]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(150);
    const timers = await w.store.db
      .select()
      .from(workflowTimers)
      .where(eq(workflowTimers.workflowExecutionId, id));
    expect(timers).toEqual([]);
  });

  it('runs a sub-workflow as a task: its output is the task result', async () => {
    await w.workflow('wt.child', {
      parameters: { x: { type: 'integer', required: true } },
      tasks: [
        { name: 'double', action: 'core.echo', input: { message: '{{ (parameters.x * 2) | string }}' } },
      ],
      output_map: { doubled: '{{ task.double.result.message | int }}' },
    });
    await w.workflow('wt.parent', {
      tasks: [
        {
          name: 'sub',
          action: 'wt.child',
          input: { x: 21 },
          next: [{ when: '{{ succeeded() }}', publish: [{ got: '{{ result().doubled }}' }], do: 'after' }],
        },
        { name: 'after', action: 'core.echo', input: { message: 'got {{ vars.got }}' } },
      ],
      output_map: { got: '{{ vars.got }}' },
    });
    const id = await w.run('wt.parent');
    const row = await w.finish(id);
    expect(row.error).toBeNull();
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ got: 42 });
    const [sub] = await w.childrenOf(id, 'sub');
    expect(sub!.runner).toBe('workflow');
    expect(sub!.result).toEqual({ doubled: 42 });
    const [grandchild] = await w.children(sub!.id);
    expect(grandchild!.rootId).toBe(id);
    expect(grandchild!.parentId).toBe(sub!.id);
  });

  it('waits for an inquiry, refuses wrong answers and answerers, then continues with the response', async () => {
    await w.workflow('wt.ask', {
      tasks: [
        {
          name: 'approve',
          action: 'core.ask',
          input: {
            prompt: 'Deploy {{ execution.user }}?',
            response_schema: {
              approved: { type: 'boolean', required: true },
              comment: { type: 'string', default: 'none' },
            },
            roles: ['release'],
          },
          next: [
            { when: '{{ succeeded() and result().response.approved }}', do: 'deploy' },
            { when: '{{ succeeded() and not result().response.approved }}', do: 'abort' },
          ],
        },
        {
          name: 'deploy',
          action: 'core.echo',
          input: { message: 'deployed ({{ task.approve.result.response.comment }})' },
        },
        { name: 'abort', action: 'core.echo', input: { message: 'aborted' } },
      ],
      output_map: { outcome: "{{ task.deploy.result.message if task.deploy else 'aborted' }}" },
    });
    const id = await w.run('wt.ask');
    const q = await w.rt.until('the inquiry', async () => {
      const [row] = await w.store.db.select().from(inquiries).where(eq(inquiries.workflowExecutionId, id));
      return row;
    });
    expect(q.prompt).toBe('Deploy tester?');
    expect(q.taskName).toBe('approve');
    expect(q.assignedRoles).toEqual(['release']);
    expect(q.status).toBe('pending');
    expect((await w.rt.get(q.executionId)).status).toBe('running');
    expect((await w.rt.get(id)).status).toBe('running');

    const forbidden = await refusal(
      respondInquiry(ops(), q.id, { approved: true }, { login: 'bob', roles: ['dev'] }),
    );
    expect(forbidden.code).toBe('FORBIDDEN');
    const invalid = await refusal(
      respondInquiry(ops(), q.id, { approved: 'yes' }, { login: 'ann', roles: ['release'] }),
    );
    expect(invalid.code).toBe('VALIDATION_ERROR');
    expect(invalid.message).toMatch(/approved/);
    expect((invalid.details as { problems: unknown[] }).problems.length).toBeGreaterThan(0);
    const missing = await refusal(
      respondInquiry(ops(), 999_999, { approved: true }, { login: 'ann', roles: [] }),
    );
    expect(missing.code).toBe('NOT_FOUND');

    const answered = await respondInquiry(
      ops(),
      q.id,
      { approved: true },
      { login: 'ann', roles: ['release'] },
    );
    expect(answered.status).toBe('responded');
    expect(answered.response).toEqual({ approved: true, comment: 'none' });
    expect(answered.respondedBy).toBe('ann');
    const again = await refusal(
      respondInquiry(ops(), q.id, { approved: false }, { login: 'ann', roles: ['release'] }),
    );
    expect(again.code).toBe('CONFLICT');

    const row = await w.finish(id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ outcome: 'deployed (none)' });
    expect((await w.rt.get(q.executionId)).result).toEqual({ response: { approved: true, comment: 'none' } });
  });

  it('times out an unanswered inquiry: the timed_out() branch runs', async () => {
    await w.workflow('wt.ask_timeout', {
      tasks: [
        {
          name: 'approve',
          action: 'core.ask',
          timeout: 1,
          input: { prompt: 'Anyone?' },
          next: [{ when: '{{ timed_out() }}', do: 'escalate' }],
        },
        { name: 'escalate', action: 'core.echo', input: { message: 'nobody answered' } },
      ],
      output_map: { said: '{{ task.escalate.result.message }}' },
    });
    const id = await w.run('wt.ask_timeout');
    const row = await w.finish(id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ said: 'nobody answered' });
    const [q] = await w.store.db.select().from(inquiries).where(eq(inquiries.workflowExecutionId, id));
    expect(q!.status).toBe('timeout');
    expect((await w.rt.get(q!.executionId)).status).toBe('timeout');
  });

  it('runs a standalone core.ask execution until it is answered', async () => {
    const id = await w.run('core.ask', { prompt: 'Coffee?', assignees: { users: ['ann'] } });
    const q = await w.rt.until('the inquiry', async () => {
      const [row] = await w.store.db.select().from(inquiries).where(eq(inquiries.executionId, id));
      return row;
    });
    expect(q.workflowExecutionId).toBeNull();
    expect(q.assignedUsers).toEqual(['ann']);
    expect(q.timeoutAt!.getTime()).toBeGreaterThan(Date.now() + 86_000_000);
    await w.waitStatus(id, ['running']);
    expect(
      (await refusal(respondInquiry(ops(), q.id, { approved: true }, { login: 'bob', roles: [] }))).code,
    ).toBe('FORBIDDEN');
    await respondInquiry(ops(), q.id, { approved: false }, { login: 'ann', roles: [] });
    const row = await w.finish(id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ response: { approved: false } });
  });

  it('advances once for a completion delivered many times', async () => {
    await w.workflow('wt.dup', {
      tasks: [
        { name: 'first', action: 'core.echo', input: { message: 'one' }, next: [{ do: 'second' }] },
        { name: 'second', action: 'core.local', input: { cmd: 'sleep 1' } },
      ],
    });
    const id = await w.run('wt.dup');
    const [second] = await w.rt.until('second started', async () => {
      const k = await w.childrenOf(id, 'second');
      return k.length ? k : undefined;
    });
    const [first] = await w.childrenOf(id, 'first');
    const before = (await w.runRow(id))!.version;
    // The same completion, again and again: by the hook, on the bus, and by recovery.
    for (let i = 0; i < 5; i++) w.host.onChildCompleted(first!);
    await Promise.all([
      w.rt.bus.publish('execution.completed', { execution_id: first!.id, status: 'succeeded' }),
      w.rt.completion.handle([first!.id, first!.id]),
      w.host.recover(),
    ]);
    await w.host.drain();
    expect((await w.runRow(id))!.version).toBe(before);
    expect(await w.childrenOf(id, 'second')).toHaveLength(1);
    expect((await w.finish(id)).status).toBe('succeeded');
    expect(await w.childrenOf(id, 'first')).toHaveLength(1);
    expect((await w.childrenOf(id, 'second')).map((k) => k.id)).toEqual([second!.id]);
  });

  it('never starts a task run whose run key is already stored; its stored run carries the task', async () => {
    await w.workflow('wt.twice', {
      tasks: [
        {
          name: 'first',
          action: 'core.local',
          input: { cmd: 'sleep 0.4' },
          next: [{ do: ['second', 'third'] }],
        },
        { name: 'second', action: 'core.echo', input: { message: 'two' } },
        { name: 'third', action: 'core.noop', next: [{ do: 'fourth' }] },
        { name: 'fourth', action: 'core.noop' },
      ],
    });
    const id = await w.run('wt.twice');
    await w.rt.until('first started', async () => (await w.childrenOf(id, 'first')).length > 0 || undefined);
    // A run of `second` already stored with its execution, as if an earlier advance had started it.
    const earlier = await w.store.transaction(async (tx) => {
      const row = await requestExecution(tx, cipher, {
        actionRef: 'core.echo',
        parameters: { message: 'earlier' },
        parentId: id,
        taskName: 'second',
        context: { workflow_run_key: 'second#1', workflow_task: 'second' },
      });
      await tx.insert(workflowTaskRuns).values({
        workflowExecutionId: id,
        taskName: 'second',
        runKey: 'second#1',
        attempt: 1,
        status: 'running',
        executionId: row.id,
      });
      return row;
    });
    w.rt.relay.kick();
    const row = await w.finish(id);
    expect(row.status).toBe('succeeded');
    // The advance that asked for `second` created nothing for it; the stored run's execution ended it.
    expect((await w.childrenOf(id, 'second')).map((k) => k.id)).toEqual([earlier.id]);
    expect(await w.childrenOf(id, 'fourth')).toHaveLength(1);
    const second = (await w.taskRuns(id)).filter((r) => r.taskName === 'second');
    expect(second).toEqual([expect.objectContaining({ executionId: earlier.id, status: 'succeeded' })]);
  });

  it('recovers a completion that never reached its workflow', async () => {
    await w.workflow('wt.lost', {
      tasks: [
        { name: 'first', action: 'core.local', input: { cmd: 'sleep 0.3' }, next: [{ do: 'second' }] },
        { name: 'second', action: 'core.echo', input: { message: 'two' } },
      ],
    });
    WorkflowRuntime.dropCompletions = true;
    let first: Awaited<ReturnType<typeof w.childrenOf>>[number];
    try {
      const id = await w.run('wt.lost');
      first = await w.rt.until('first followed up', async () => {
        const [k] = await w.childrenOf(id, 'first');
        return k?.completionHandledAt ? k : undefined;
      });
      await sleep(100);
      expect(await w.childrenOf(id, 'second')).toHaveLength(0);
    } finally {
      WorkflowRuntime.dropCompletions = false;
    }
    const row = await w.finish(first.parentId!);
    expect(row.status).toBe('succeeded');
    expect(await w.childrenOf(row.id, 'second')).toHaveLength(1);
  });

  it('pauses (running tasks finish, no new one starts) and resumes', async () => {
    await w.workflow('wt.pause', {
      tasks: [
        { name: 'slow', action: 'core.local', input: { cmd: 'sleep 0.6' }, next: [{ do: 'after' }] },
        { name: 'after', action: 'core.echo', input: { message: 'after' } },
      ],
    });
    const id = await w.run('wt.pause');
    await w.rt.until('slow running', async () =>
      (await w.childrenOf(id, 'slow')).find((k) => k.status === 'running'),
    );
    const p = await pauseWorkflow(ops(), id, 'ann');
    expect(p.outcome).toBe('applied');
    expect(p.execution.status).toBe('pausing');
    expect((await pauseWorkflow(ops(), id, 'ann')).outcome).toBe('ignored');
    await w.waitStatus(id, ['paused']);
    expect((await w.childrenOf(id, 'slow'))[0]!.status).toBe('succeeded');
    await sleep(300);
    expect(await w.childrenOf(id, 'after')).toHaveLength(0);
    const r = await resumeWorkflow(ops(), id, 'ann');
    expect(r.execution.status).toBe('running');
    expect((await w.finish(id)).status).toBe('succeeded');
    expect(await w.childrenOf(id, 'after')).toHaveLength(1);
    const finished = await refusal(pauseWorkflow(ops(), id, 'ann'));
    expect(finished.code).toBe('CONFLICT');
    const notWf = await refusal(pauseWorkflow(ops(), (await w.childrenOf(id, 'after'))[0]!.id, 'ann'));
    expect(notWf.code).toBe('CONFLICT');
    expect(notWf.message).toMatch(/not a workflow/);
  });

  it('cancels a workflow with everything under it, sub-workflows included', async () => {
    await w.workflow('wt.sleeper', {
      tasks: [{ name: 'nap', action: 'core.local', input: { cmd: 'sleep 30' } }],
    });
    await w.workflow('wt.cancel', {
      tasks: [
        { name: 'start', action: 'core.noop', next: [{ do: ['sub', 'own'] }] },
        { name: 'sub', action: 'wt.sleeper' },
        { name: 'own', action: 'core.local', input: { cmd: 'sleep 30' } },
      ],
    });
    const id = await w.run('wt.cancel');
    const sub = await w.rt.until('sub-workflow started', async () => (await w.childrenOf(id, 'sub'))[0]);
    const nap = await w.rt.until('nap running', async () =>
      (await w.childrenOf(sub.id, 'nap')).find((k) => k.status === 'running'),
    );
    await w.rt.until('own running', async () =>
      (await w.childrenOf(id, 'own')).find((k) => k.status === 'running'),
    );
    const t0 = Date.now();
    const c = await cancelWorkflow(ops(), id, 'ann');
    expect(c.execution.status).toBe('canceling');
    const row = await w.finish(id, 15_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(row.status).toBe('canceled');
    expect(row.error).toMatchObject({ type: 'canceled', canceled_by: 'ann' });
    expect((await w.rt.get(sub.id)).status).toBe('canceled');
    expect((await w.rt.get(nap.id)).status).toBe('canceled');
    expect((await w.childrenOf(id, 'own'))[0]!.status).toBe('canceled');
    expect((await refusal(cancelWorkflow(ops(), id, 'ann'))).code).toBe('CONFLICT');
  });

  it('pauses and resumes sub-workflows with their parent', async () => {
    await w.workflow('wt.sub_two', {
      tasks: [
        { name: 'one', action: 'core.local', input: { cmd: 'sleep 0.6' }, next: [{ do: 'two' }] },
        { name: 'two', action: 'core.echo', input: { message: 'two' } },
      ],
      output_map: { two: '{{ task.two.result.message }}' },
    });
    await w.workflow('wt.pause_parent', {
      tasks: [{ name: 'sub', action: 'wt.sub_two' }],
      output_map: { sub: '{{ task.sub.result }}' },
    });
    const id = await w.run('wt.pause_parent');
    const sub = await w.rt.until('sub-workflow started', async () => (await w.childrenOf(id, 'sub'))[0]);
    await w.rt.until('one running', async () =>
      (await w.childrenOf(sub.id, 'one')).find((k) => k.status === 'running'),
    );
    expect((await pauseWorkflow(ops(), id, 'ann')).execution.status).toBe('pausing');
    expect((await w.rt.get(sub.id)).status).toBe('pausing');
    // the sub-workflow's running task finishes, then it pauses, and tells its parent, which pauses
    await w.waitStatus(sub.id, ['paused']);
    await w.waitStatus(id, ['paused']);
    expect(await w.childrenOf(sub.id, 'two')).toHaveLength(0);
    await resumeWorkflow(ops(), id, 'ann');
    const row = await w.finish(id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ sub: { two: 'two' } });
    expect((await w.rt.get(sub.id)).status).toBe('succeeded');
  });

  it('follows a cancel made through the plain execution cancel (the API route) and inquiry cancels', async () => {
    await w.workflow('wt.cancel_plain', {
      tasks: [{ name: 'nap', action: 'core.local', input: { cmd: 'sleep 30' } }],
    });
    const id = await w.run('wt.cancel_plain');
    const nap = await w.rt.until('nap running', async () =>
      (await w.childrenOf(id, 'nap')).find((k) => k.status === 'running'),
    );
    const c = await cancelExecution(w.store, w.rt.bus, id, 'bob');
    expect(c.outcome).toBe('canceling');
    const row = await w.finish(id, 15_000);
    expect(row.status).toBe('canceled');
    expect(row.error).toMatchObject({ type: 'canceled', canceled_by: 'bob' });
    expect((await w.rt.get(nap.id)).status).toBe('canceled');

    const ask = await w.run('core.ask', { prompt: 'Still there?' });
    await w.waitStatus(ask, ['running']);
    await cancelExecution(w.store, w.rt.bus, ask, 'bob');
    expect((await w.finish(ask)).status).toBe('canceled');
    const [q] = await w.store.db.select().from(inquiries).where(eq(inquiries.executionId, ask));
    expect(q!.status).toBe('canceled');
    expect(
      (await refusal(respondInquiry(ops(), q!.id, { approved: true }, { login: 'bob', roles: [] }))).code,
    ).toBe('CONFLICT');
  });

  it('reruns a failed workflow from the failed task, reusing what succeeded', async () => {
    const flag = path.join(tmp, 'rerun-ok');
    await w.workflow('wt.rerun', {
      tasks: [
        {
          name: 'prepare',
          action: 'core.echo',
          input: { message: 'prepared' },
          next: [{ when: '{{ succeeded() }}', publish: [{ prep: '{{ result().message }}' }], do: 'risky' }],
        },
        {
          name: 'risky',
          action: 'core.local',
          input: { cmd: `test -f ${flag}` },
          next: [{ when: '{{ succeeded() }}', do: 'finish' }],
        },
        { name: 'finish', action: 'core.echo', input: { message: '{{ vars.prep }} and finished' } },
      ],
      output_map: { said: '{{ task.finish.result.message }}' },
    });
    const id = await w.run('wt.rerun');
    const failed = await w.finish(id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ type: 'workflow_failed' });
    expect(String(failed.error!.message)).toMatch(/risky/);

    const unknown = await refusal(rerunWorkflow(ops(), id, { tasks: ['nope'] }));
    expect(unknown.code).toBe('VALIDATION_ERROR');
    const succeededTask = await refusal(rerunWorkflow(ops(), id, { tasks: ['prepare'] }));
    expect(succeededTask.code).toBe('CONFLICT');

    fs.writeFileSync(flag, '');
    const rerun = await rerunWorkflow(ops(), id, { tasks: ['risky'], by: 'ann' });
    expect(rerun.rerunOf).toBe(id);
    expect(rerun.status).toBe('running');
    const row = await w.finish(rerun.id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ said: 'prepared and finished' });
    const kids = await w.children(rerun.id);
    expect(kids.map((k) => k.taskName)).toEqual(['risky', 'finish']);
    const runs = await w.taskRuns(rerun.id);
    expect(runs.map((r) => [r.runKey, r.status])).toEqual([
      ['prepare#1', 'succeeded'],
      ['risky#1', 'failed'],
      ['risky#2', 'succeeded'],
      ['finish#1', 'succeeded'],
    ]);
    expect((await refusal(rerunWorkflow(ops(), rerun.id))).code).toBe('CONFLICT');
  });

  it('reruns only the failed items of a with-items task', async () => {
    const flag = path.join(tmp, 'items-ok');
    await w.workflow('wt.rerun_items', {
      tasks: [
        {
          name: 'each',
          action: 'core.local',
          with_items: '{{ range(5) | list }}',
          input: { cmd: `([ {{ item }} -ne 3 ] || test -f ${flag}) && echo '{"n": {{ item }}}'` },
        },
      ],
      output_map: { ns: "{{ task.each.result | map(attribute='n') | list }}" },
    });
    const id = await w.run('wt.rerun_items');
    expect((await w.finish(id)).status).toBe('failed');
    fs.writeFileSync(flag, '');
    const rerun = await rerunWorkflow(ops(), id, { by: 'ann' });
    const row = await w.finish(rerun.id);
    expect(row.status).toBe('succeeded');
    expect(row.result).toEqual({ ns: [0, 1, 2, 3, 4] });
    const kids = await w.children(rerun.id);
    expect(kids.map((k) => k.context.item_index)).toEqual([3]);
  });

  it('times out a task that runs too long: the child is stopped, timed_out() holds', async () => {
    await w.workflow('wt.task_timeout', {
      tasks: [
        {
          name: 'slow',
          action: 'core.local',
          timeout: 1,
          input: { cmd: 'sleep 30' },
          next: [{ when: '{{ timed_out() }}', publish: [{ why: '{{ result().error }}' }], do: 'after' }],
        },
        { name: 'after', action: 'core.echo', input: { message: '{{ vars.why }}' } },
      ],
      output_map: { why: '{{ vars.why }}' },
    });
    const t0 = Date.now();
    const id = await w.run('wt.task_timeout');
    const row = await w.finish(id, 15_000);
    expect(row.status, JSON.stringify({ error: row.error, runs: await w.taskRuns(id) })).toBe('succeeded');
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect(row.result).toEqual({ why: 'timed out after 1 seconds' });
    const [slow] = await w.childrenOf(id, 'slow');
    expect(['canceled', 'timeout']).toContain((await w.finish(slow!.id)).status);
    const [run] = await w.taskRuns(id);
    expect(run!.status).toBe('timeout');
  });

  it('fails with a clear error: unknown action, parameters and output that do not fit', async () => {
    await w.workflow('wt.bad_action', {
      tasks: [{ name: 'ghost', action: 'core.echo', input: { message: 'x', extra: 1 } }],
    });
    const a = await w.finish(await w.run('wt.bad_action'));
    expect(a.status).toBe('failed');
    expect(String(a.error!.message)).toMatch(/ghost/);
    const [run] = await w.taskRuns(a.id);
    expect(run!.status).toBe('failed');
    expect(JSON.stringify(run!.result)).toMatch(/input does not fit action 'core.echo'/);

    await w.workflow('wt.bad_output', {
      output_schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
      tasks: [{ name: 'only', action: 'core.noop' }],
      output_map: { n: 'not a number' },
    });
    const b = await w.finish(await w.run('wt.bad_output'));
    expect(b.status).toBe('failed');
    expect(b.error).toMatchObject({ type: 'output_invalid' });
    expect(String(b.error!.message)).toMatch(/output does not match/);

    await w.workflow('wt.missing_action', { tasks: [{ name: 'call', action: 'wt.nothing_here' }] });
    const c = await w.finish(await w.run('wt.missing_action'));
    expect(c.status).toBe('failed');
    const [callRun] = await w.taskRuns(c.id);
    expect(callRun!.result).toEqual({ error: "action 'wt.nothing_here' does not exist" });
    expect(await w.children(c.id)).toEqual([]);

    // The workflow was deleted after its execution was requested.
    await w.workflow('wt.gone', { tasks: [{ name: 'x', action: 'core.noop' }] });
    const gone = await w.store.transaction(async (tx) => {
      const r = await requestExecution(tx, cipher, { actionRef: 'wt.gone' });
      await tx.delete(workflows).where(eq(workflows.ref, 'wt.gone'));
      return r.id;
    });
    w.rt.relay.kick();
    const d = await w.finish(gone);
    expect(d.status).toBe('failed');
    expect(d.error).toMatchObject({ type: 'workflow_not_found' });
    expect(String(d.error!.message)).toMatch(/workflow 'wt.gone' does not exist/);
  });

  it('keeps secret parameters sealed in the stored state, the task runs and the child parameters', async () => {
    await w.workflow('wt.secret', {
      parameters: {
        token: { type: 'string', secret: true, required: true },
        who: { type: 'string', default: 'ann' },
      },
      tasks: [
        {
          name: 'use',
          action: 'core.echo',
          input: { message: 'token={{ parameters.token }}' },
          next: [{ do: 'say' }],
        },
        { name: 'say', action: 'core.echo', input: { message: 'hi {{ parameters.who }}' } },
      ],
      output_map: { said: '{{ task.say.result.message }}' },
    });
    const id = await w.run('wt.secret', { token: 's3cr3t-value' });
    const row = await w.finish(id);
    expect(row.error).toBeNull();
    expect(row.result).toEqual({ said: 'hi ann' });
    expect(row.parameters.token).toEqual({ $secret: true });
    const run = await w.runRow(id);
    expect(isSealedState(run!.state)).toBe(true);
    expect(JSON.stringify(run!.state)).not.toContain('s3cr3t');
    const runs = await w.taskRuns(id);
    expect(runs[0]!.input).toEqual({ message: { $secret: true } });
    // the child echoed its secret input: the worker stored it redacted
    expect(runs[0]!.result).toEqual({ message: '********' });
    expect(runs[1]!.input).toEqual({ message: 'hi ann' });
    const [use] = await w.childrenOf(id, 'use');
    expect(use!.parameters.message).toEqual({ $secret: true });
    // The child ran with the real value (the worker unsealed it; scheduler-flow.test.ts proves it),
    // and what it echoed back is stored redacted.
    expect(use!.result).toEqual({ message: '********' });
    const [say] = await w.childrenOf(id, 'say');
    expect(say!.parameters).toEqual({ message: 'hi ann' });
  });

  it('reads datastore keys and the pack configuration; encrypted key values stay sealed', async () => {
    const ks = new KeyStore(w.store, cipher);
    await w.store.db.insert(keys).values([
      { name: 'wt_region', value: ks.encode('eu-west', false), encrypted: false },
      { name: 'wt_password', value: ks.encode('pa55-word', true), encrypted: true },
    ]);
    await w.store.db
      .update(packs)
      .set({ config: { greeting: 'howdy' } })
      .where(eq(packs.id, w.rt.pack));
    await w.workflow('wt.env', {
      vars: { region: '{{ keys.wt_region }}' },
      tasks: [
        {
          name: 'hello',
          action: 'core.echo',
          input: { message: '{{ config.greeting }} from {{ vars.region }}' },
          next: [{ do: 'login' }],
        },
        { name: 'login', action: 'core.echo', input: { message: 'pw={{ keys.wt_password }}' } },
      ],
      output_map: { hello: '{{ task.hello.result.message }}' },
    });
    const id = await w.run('wt.env');
    const row = await w.finish(id);
    expect(row.error).toBeNull();
    expect(row.result).toEqual({ hello: 'howdy from eu-west' });
    const [login] = await w.childrenOf(id, 'login');
    expect(login!.parameters.message).toEqual({ $secret: true });
    expect(login!.result).toEqual({ message: '********' }); // echoed back, stored redacted
    const run = await w.runRow(id);
    expect(isSealedState(run!.state)).toBe(true);
    expect(JSON.stringify(await w.taskRuns(id))).not.toContain('pa55');
  });

  it('runs 40 sequential core.noop tasks, every step persisted', async () => {
    const tasks = Array.from({ length: 40 }, (_, i) => ({
      name: `t${i}`,
      action: 'core.noop',
      ...(i < 39 ? { next: [{ do: `t${i + 1}` }] } : {}),
    }));
    await w.workflow('wt.chain40', { tasks });
    const t0 = performance.now();
    const t0wall = Date.now();
    const id = await w.run('wt.chain40');
    const row = await w.finish(id, 60_000);
    const ms = performance.now() - t0;
    expect(row.status).toBe('succeeded');
    const kids = await w.children(id);
    expect(kids).toHaveLength(40);
    expect((await w.runRow(id))!.version).toBeGreaterThanOrEqual(40);
    for (const k of kids.slice(0, 5))
      console.log(
        k.taskName,
        k.createdAt.getTime() - t0wall,
        k.scheduledAt!.getTime() - t0wall,
        k.startedAt!.getTime() - t0wall,
        k.finishedAt!.getTime() - t0wall,
        k.completionHandledAt!.getTime() - t0wall,
      );
    console.log(
      `[bench] ${w.store.kind}: 40 sequential core.noop tasks end to end in ${ms.toFixed(0)} ms (${(ms / 40).toFixed(1)} ms per task)`,
    );
    const statuses = await w.store.db
      .select({ status: executions.status })
      .from(executions)
      .where(
        inArray(
          executions.id,
          kids.map((k) => k.id),
        ),
      );
    expect(statuses.every((s) => s.status === 'succeeded')).toBe(true);
  });
});
