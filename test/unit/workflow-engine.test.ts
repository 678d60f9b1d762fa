import { describe, expect, it } from 'vitest';
import { parseWorkflowOrThrow, type WorkflowDefinition } from '../../src/workflow/definition.ts';
import { retryDelay, start, step } from '../../src/workflow/engine.ts';
import {
  parseRunKey,
  type StepResult,
  type WorkflowCommand,
  type WorkflowEvent,
  type WorkflowState,
} from '../../src/workflow/state.ts';

const T0 = Date.parse('2025-03-01T10:00:00Z');
const at = (s: number) => T0 + s * 1000;
const iso = (s: number) => new Date(at(s)).toISOString();

/** Applies an event to a JSON copy of the state (the engine only ever sees plain data). */
function apply(def: WorkflowDefinition, state: WorkflowState, event: WorkflowEvent): StepResult {
  return step(def, JSON.parse(JSON.stringify(state)) as WorkflowState, event);
}
const done = (
  runKey: string,
  s: number,
  result: unknown = null,
  status: 'succeeded' | 'failed' | 'timeout' | 'canceled' = 'succeeded',
): WorkflowEvent => ({
  type: 'task_completed',
  runKey,
  status,
  result,
  now: at(s),
});
const types = (cs: WorkflowCommand[]) => cs.map((c) => c.type);
const started = (cs: WorkflowCommand[]) =>
  cs.flatMap((c) => (c.type === 'start_task' || c.type === 'create_inquiry' ? [c.runKey] : []));

function noNegativeCounts(s: WorkflowState) {
  for (const v of Object.values(s.counts)) expect(v).toBeGreaterThanOrEqual(0);
  for (const i of Object.values(s.instances))
    for (const v of Object.values(i.counts)) expect(v).toBeGreaterThanOrEqual(0);
}

const chain = parseWorkflowOrThrow({
  tasks: [
    {
      name: 'a',
      action: 'ops.a',
      input: { v: '{{ parameters.v }}' },
      next: [{ when: '{{ succeeded() }}', publish: [{ got: '{{ result() }}' }], do: 'b' }],
    },
    {
      name: 'b',
      action: 'ops.b',
      input: { got: '{{ vars.got }}', env: '{{ keys.env }}', who: '{{ execution.user }}' },
    },
  ],
  output_map: { got: '{{ vars.got }}' },
});

describe('engine: start and step', () => {
  it('lets the first tasks read keys and pack config supplied at start', () => {
    const def = parseWorkflowOrThrow({
      tasks: [
        { name: 'a', action: 'ops.a', input: { token: '{{ keys.token }}', region: '{{ config.region }}' } },
      ],
    });
    const r = start(
      def,
      {},
      { executionId: 1, now: iso(0), env: { keys: { token: 't0k' }, config: { region: 'eu' } } },
    );
    expect(r.commands).toEqual([
      expect.objectContaining({ type: 'start_task', input: { token: 't0k', region: 'eu' } }),
    ]);
  });

  it('starts the start tasks with rendered inputs and deterministic run keys', () => {
    const r = start(chain, { v: 3 }, { executionId: 42, now: iso(0), user: 'ann' });
    expect(r.outcome).toBe('applied');
    expect(r.commands).toEqual([
      { type: 'start_task', runKey: 'a#1', task: 'a', action: 'ops.a', input: { v: 3 }, attempt: 1 },
    ]);
    expect(r.state.status).toBe('running');
    expect(r.state.execution).toEqual({ id: '42', started: iso(0), user: 'ann' });
    expect(r.changed).toEqual({ instances: ['a#1'], runs: ['a#1'] });
  });

  it('advances on completion, reads keys from the environment and completes with the output', () => {
    let r = start(chain, { v: 3 }, { executionId: 1, now: at(0), user: 'ann' });
    r = step(chain, r.state, done('a#1', 1, { n: 1 }), { keys: { env: 'prod' } });
    expect(r.commands).toEqual([
      {
        type: 'start_task',
        runKey: 'b#1',
        task: 'b',
        action: 'ops.b',
        input: { got: { n: 1 }, env: 'prod', who: 'ann' },
        attempt: 1,
      },
    ]);
    r = apply(chain, r.state, done('b#1', 2));
    expect(r.commands).toEqual([
      { type: 'complete_workflow', status: 'succeeded', output: { got: { n: 1 } }, error: null },
    ]);
    expect(r.state.finishedAt).toBe(iso(2));
  });

  it('is deterministic: the same events give the same states and commands', () => {
    const runOnce = () => {
      const out: unknown[] = [];
      let r = start(chain, { v: 1 }, { executionId: 7, now: at(0) });
      out.push(r.commands);
      r = step(chain, r.state, done('a#1', 5, 'x'));
      out.push(r.commands);
      r = step(chain, r.state, done('b#1', 9));
      out.push(r.commands, r.state);
      return JSON.stringify(out);
    };
    expect(runOnce()).toBe(runOnce());
  });

  it('keeps the state plain JSON', () => {
    let r = start(chain, { v: 1 }, { executionId: 7, now: at(0) });
    r = step(chain, r.state, done('a#1', 5, { deep: [1, { x: null }] }));
    expect(JSON.parse(JSON.stringify(r.state))).toEqual(r.state);
  });
});

describe('engine: idempotency and bad events', () => {
  it('ignores a duplicate completion, an unknown run key and events after the end', () => {
    let r = start(chain, {}, { executionId: 1, now: at(0) });
    r = apply(chain, r.state, done('a#1', 1));
    const snapshot = JSON.stringify(r.state);
    const dup = apply(chain, r.state, done('a#1', 2));
    expect(dup.outcome).toBe('ignored');
    expect(dup.commands).toEqual([]);
    expect(JSON.stringify(dup.state)).toBe(snapshot);
    expect(apply(chain, r.state, done('zzz#1', 2)).outcome).toBe('ignored');
    expect(apply(chain, r.state, done('not a key', 2)).outcome).toBe('ignored');
    expect(apply(chain, r.state, done('b#1@2', 2)).outcome).toBe('ignored');
    r = apply(chain, r.state, done('b#1', 3));
    expect(r.state.status).toBe('succeeded');
    expect(apply(chain, r.state, done('b#1', 4)).reason).toBe('the workflow already succeeded');
    expect(apply(chain, r.state, { type: 'cancel', now: at(5) }).outcome).toBe('ignored');
  });

  it('rejects events without a time, of an unknown type, or with an unknown status', () => {
    const r = start(chain, {}, { executionId: 1, now: at(0) });
    expect(apply(chain, r.state, { type: 'pause', now: 'yesterday' }).outcome).toBe('rejected');
    expect(apply(chain, r.state, { type: 'explode', now: at(1) } as unknown as WorkflowEvent)).toMatchObject({
      outcome: 'rejected',
      reason: "unknown event type 'explode'",
    });
    expect(
      apply(chain, r.state, { ...done('a#1', 1), status: 'great' } as unknown as WorkflowEvent).reason,
    ).toBe("unknown completion status 'great'");
    expect(apply(chain, r.state, { type: 'resume', now: at(1) }).outcome).toBe('ignored');
    expect(apply(chain, r.state, { type: 'rerun', now: at(1) })).toMatchObject({
      outcome: 'rejected',
      reason: 'only a failed or canceled workflow can be rerun (this one is running)',
    });
  });

  it('throws on a start time that is not a time (a caller bug)', () => {
    expect(() => start(chain, {}, { executionId: 1, now: 'soon' })).toThrow(/now/);
  });
});

describe('engine: retries, timers and timeouts', () => {
  const def = parseWorkflowOrThrow({
    tasks: [
      { name: 'x', action: 'ops.x', timeout: 30, retry: { count: 2, delay: 10, backoff: 'exponential' } },
    ],
  });

  it('schedules a timeout timer per attempt, cancels it on completion and retries after the back-off', () => {
    let r = start(def, {}, { executionId: 1, now: at(0) });
    expect(r.commands).toEqual([
      {
        type: 'start_task',
        runKey: 'x#1',
        task: 'x',
        action: 'ops.x',
        input: {},
        attempt: 1,
        timeoutSeconds: 30,
      },
      { type: 'schedule_timer', key: 'timeout:x#1', at: iso(30) },
    ]);
    r = apply(def, r.state, done('x#1', 5, null, 'failed'));
    expect(r.commands).toEqual([
      { type: 'cancel_timer', key: 'timeout:x#1' },
      { type: 'schedule_timer', key: 'retry:x#1@2', at: iso(15) },
    ]);
    expect(apply(def, r.state, { type: 'timer_fired', key: 'retry:x#1@3', now: at(15) }).outcome).toBe(
      'ignored',
    );
    r = apply(def, r.state, { type: 'timer_fired', key: 'retry:x#1@2', now: at(15) });
    expect(started(r.commands)).toEqual(['x#1@2']);
    expect(r.commands[1]).toEqual({ type: 'schedule_timer', key: 'timeout:x#1@2', at: iso(45) });
    // the timeout fires first: the run is canceled as timed out, and the late completion is ignored
    r = apply(def, r.state, { type: 'timer_fired', key: 'timeout:x#1@2', now: at(45) });
    expect(r.commands).toEqual([
      { type: 'cancel_task', runKey: 'x#1@2', reason: 'timeout' },
      { type: 'schedule_timer', key: 'retry:x#1@3', at: iso(65) },
    ]);
    expect(apply(def, r.state, done('x#1@2', 46)).outcome).toBe('ignored');
    r = apply(def, r.state, { type: 'timer_fired', key: 'retry:x#1@3', now: at(65) });
    r = apply(def, r.state, done('x#1@3', 70, 'ok'));
    expect(r.state.status).toBe('succeeded');
    expect(r.state.runs['x#1']).toMatchObject({ attempt: 3, status: 'succeeded', result: 'ok' });
  });

  it('gives a run the worker timed out the same result().error as one the timer timed out', () => {
    const once = parseWorkflowOrThrow({
      tasks: [
        {
          name: 'x',
          action: 'ops.x',
          timeout: 30,
          next: [{ when: '{{ timed_out() }}', publish: [{ why: '{{ result().error }}' }] }],
        },
      ],
      output_map: { why: '{{ vars.why }}' },
    });
    const byTimer = apply(once, start(once, {}, { executionId: 1, now: at(0) }).state, {
      type: 'timer_fired',
      key: 'timeout:x#1',
      now: at(30),
    });
    const byWorker = apply(
      once,
      start(once, {}, { executionId: 1, now: at(0) }).state,
      done('x#1', 30, { stdout: '', exit_code: null }, 'timeout'),
    );
    for (const r of [byTimer, byWorker]) expect(r.state.vars).toEqual({ why: 'timed out after 30 seconds' });
    expect(byWorker.state.runs['x#1']?.result).toEqual({
      stdout: '',
      exit_code: null,
      error: 'timed out after 30 seconds',
    });
    // an error the worker gave is kept
    const own = apply(
      once,
      start(once, {}, { executionId: 1, now: at(0) }).state,
      done('x#1', 30, { error: 'killed' }, 'timeout'),
    );
    expect(own.state.vars).toEqual({ why: 'killed' });
  });

  it('computes back-off delays', () => {
    expect([1, 2, 3, 4].map((n) => retryDelay({ delay: 5, backoff: 'constant' }, n))).toEqual([5, 5, 5, 5]);
    expect([1, 2, 3, 4].map((n) => retryDelay({ delay: 5, backoff: 'linear' }, n))).toEqual([5, 10, 15, 20]);
    expect(
      [1, 2, 3, 4].map((n) => retryDelay({ delay: 5, backoff: 'exponential', maxDelay: 30 }, n)),
    ).toEqual([5, 10, 20, 30]);
  });

  it('parses run keys', () => {
    expect(parseRunKey('deploy#3.17@2')).toEqual({
      task: 'deploy',
      seq: 3,
      item: 17,
      attempt: 2,
      instance: 'deploy#3',
      slot: 'deploy#3.17',
    });
    expect(parseRunKey('a#1')).toEqual({ task: 'a', seq: 1, attempt: 1, instance: 'a#1', slot: 'a#1' });
    expect(parseRunKey('a#x')).toBeUndefined();
  });
});

describe('engine: with-items', () => {
  const def = parseWorkflowOrThrow({
    tasks: [
      {
        name: 'w',
        action: 'ops.w',
        with_items: { items: '{{ parameters.xs }}', concurrency: 2 },
        input: { x: '{{ item }}', i: '{{ index }}' },
      },
    ],
    output_map: { r: '{{ task.w.result }}' },
  });

  it('starts items up to the concurrency, one more per completion, and gathers results in order', () => {
    let r = start(def, { xs: ['p', 'q', 'r'] }, { executionId: 1, now: at(0) });
    expect(r.commands).toEqual([
      {
        type: 'start_task',
        runKey: 'w#1.0',
        task: 'w',
        action: 'ops.w',
        input: { x: 'p', i: 0 },
        attempt: 1,
        itemIndex: 0,
      },
      {
        type: 'start_task',
        runKey: 'w#1.1',
        task: 'w',
        action: 'ops.w',
        input: { x: 'q', i: 1 },
        attempt: 1,
        itemIndex: 1,
      },
    ]);
    r = apply(def, r.state, done('w#1.1', 1, 'Q'));
    expect(started(r.commands)).toEqual(['w#1.2']);
    expect(r.changed.runs).toEqual(['w#1.1', 'w#1.2']);
    r = apply(def, r.state, done('w#1.2', 2, 'R'));
    expect(r.commands).toEqual([]);
    r = apply(def, r.state, done('w#1.0', 3, 'P'));
    expect(r.commands).toEqual([
      { type: 'complete_workflow', status: 'succeeded', output: { r: ['P', 'Q', 'R'] }, error: null },
    ]);
    noNegativeCounts(r.state);
  });
});

describe('engine: pause, resume and cancel', () => {
  const def = parseWorkflowOrThrow({
    tasks: [
      { name: 'a', action: 'ops.a', next: [{ do: ['child', 'ask'] }] },
      { name: 'child', action: 'ops.subflow', next: [{ when: '{{ succeeded() }}', do: 'z' }] },
      { name: 'ask', action: 'core.ask', input: { prompt: 'go?' } },
      { name: 'z', action: 'ops.z' },
    ],
  });

  it('pauses running runs, reaches paused when nothing runs, and resumes them', () => {
    let r = start(def, {}, { executionId: 1, now: at(0) });
    r = apply(def, r.state, done('a#1', 1));
    expect(types(r.commands)).toEqual(['start_task', 'create_inquiry']);
    r = apply(def, r.state, { type: 'pause', now: at(2) });
    expect(r.commands).toEqual([
      { type: 'workflow_status', status: 'pausing' },
      { type: 'pause_task', runKey: 'child#1' },
    ]);
    expect(r.state.status).toBe('pausing');
    r = apply(def, r.state, { type: 'task_paused', runKey: 'child#1', now: at(3) });
    expect(r.commands).toEqual([{ type: 'workflow_status', status: 'paused' }]);
    expect(apply(def, r.state, { type: 'pause', now: at(4) }).outcome).toBe('ignored');
    r = apply(def, r.state, { type: 'resume', now: at(5) });
    expect(r.commands).toEqual([
      { type: 'workflow_status', status: 'running' },
      { type: 'resume_task', runKey: 'child#1' },
    ]);
    expect(r.state.status).toBe('running');
  });

  it('cancels everything and waits for running runs to acknowledge', () => {
    let r = start(def, {}, { executionId: 1, now: at(0) });
    r = apply(def, r.state, done('a#1', 1));
    r = apply(def, r.state, { type: 'cancel', now: at(2) });
    expect(r.commands).toEqual([
      { type: 'workflow_status', status: 'canceling' },
      { type: 'cancel_task', runKey: 'child#1', reason: 'canceled' },
      { type: 'cancel_task', runKey: 'ask#1', reason: 'canceled' },
    ]);
    expect(r.state.status).toBe('canceling');
    expect(apply(def, r.state, { type: 'cancel', now: at(3) }).outcome).toBe('ignored');
    expect(apply(def, r.state, { type: 'pause', now: at(3) }).outcome).toBe('rejected');
    r = apply(def, r.state, done('child#1', 4, null, 'canceled'));
    expect(r.commands).toEqual([
      { type: 'complete_workflow', status: 'canceled', output: null, error: null },
    ]);
  });

  it('a run canceled from outside cancels the workflow', () => {
    let r = start(def, {}, { executionId: 1, now: at(0) });
    r = apply(def, r.state, done('a#1', 1, null, 'canceled'));
    expect(r.state.status).toBe('canceled');
    expect(r.commands.at(-1)).toMatchObject({ type: 'complete_workflow', status: 'canceled' });
  });
});

describe('engine: inquiries', () => {
  const def = parseWorkflowOrThrow({
    tasks: [
      {
        name: 'ask',
        action: 'core.ask',
        timeout: 600,
        input: {
          prompt: 'Ship {{ parameters.v }}?',
          users: ['ann'],
          roles: ['ops'],
          response_schema: {
            ok: { type: 'boolean', required: true },
            note: { type: 'string', default: '-' },
          },
        },
        next: [
          {
            when: '{{ result().response.ok }}',
            publish: [{ note: '{{ result().response.note }}' }],
            do: 'ship',
          },
        ],
      },
      { name: 'ship', action: 'ops.ship' },
    ],
    output_map: { note: '{{ vars.note }}' },
  });

  it('creates an inquiry with its schema as JSON Schema and an expiry', () => {
    const r = start(def, { v: 2 }, { executionId: 1, now: at(0) });
    expect(r.commands[0]).toEqual({
      type: 'create_inquiry',
      runKey: 'ask#1',
      task: 'ask',
      action: 'core.ask',
      input: {
        prompt: 'Ship 2?',
        users: ['ann'],
        roles: ['ops'],
        response_schema: { ok: { type: 'boolean', required: true }, note: { type: 'string', default: '-' } },
      },
      responseSchema: {
        type: 'object',
        properties: { ok: { type: 'boolean' }, note: { type: 'string', default: '-' } },
        additionalProperties: false,
        required: ['ok'],
      },
      attempt: 1,
      expiresAt: iso(600),
    });
  });

  it('rejects invalid answers and answers from others, and accepts a valid one with defaults', () => {
    let r = start(def, { v: 2 }, { executionId: 1, now: at(0) });
    const bad = apply(def, r.state, {
      type: 'inquiry_responded',
      runKey: 'ask#1',
      response: { ok: 'yes' },
      now: at(1),
    });
    expect(bad.outcome).toBe('rejected');
    expect(bad.reason).toBe("the response does not match the inquiry's response_schema: /ok must be boolean");
    expect(bad.commands).toEqual([]);
    const who = apply(def, r.state, {
      type: 'inquiry_responded',
      runKey: 'ask#1',
      response: { ok: true },
      by: { user: 'eve', roles: ['dev'] },
      now: at(1),
    });
    expect(who).toMatchObject({ outcome: 'rejected', reason: "user 'eve' may not answer this inquiry" });
    r = apply(def, r.state, {
      type: 'inquiry_responded',
      runKey: 'ask#1',
      response: { ok: true },
      by: { user: 'bob', roles: ['ops'] },
      now: at(2),
    });
    expect(r.outcome).toBe('applied');
    expect(r.commands).toEqual([
      { type: 'cancel_timer', key: 'timeout:ask#1' },
      { type: 'start_task', runKey: 'ship#1', task: 'ship', action: 'ops.ship', input: {}, attempt: 1 },
    ]);
    expect(r.state.runs['ask#1']).toMatchObject({
      respondedBy: 'bob',
      result: { response: { ok: true, note: '-' } },
    });
    expect(
      apply(def, r.state, { type: 'inquiry_responded', runKey: 'ask#1', response: { ok: false }, now: at(3) })
        .outcome,
    ).toBe('ignored');
  });

  it('an inquiry timeout fails the branch when nothing handles it', () => {
    let r = start(def, {}, { executionId: 1, now: at(0) });
    r = apply(def, r.state, { type: 'inquiry_timeout', runKey: 'ask#1', now: at(600) });
    expect(r.state.status).toBe('failed');
    expect(r.commands.at(-1)).toMatchObject({
      type: 'complete_workflow',
      status: 'failed',
      error: { message: "task 'ask' timed out and no transition handled it" },
    });
  });
});

describe('engine: limits and rerun', () => {
  it('stops a loop at max task runs', () => {
    const def = parseWorkflowOrThrow({
      tasks: [{ name: 'l', action: 'ops.l', next: [{ when: '{{ true }}', do: 'l' }] }],
    });
    let r = start(def, {}, { executionId: 1, now: at(0), maxTaskRuns: 3 });
    r = apply(def, r.state, done('l#1', 1));
    r = apply(def, r.state, done('l#2', 2));
    r = apply(def, r.state, done('l#3', 3));
    expect(r.state.status).toBe('failed');
    expect(r.state.errors[0]!.message).toContain('limit of 3 task runs');
  });

  it('rejects a rerun of unknown or never-run tasks', () => {
    const def = parseWorkflowOrThrow({
      tasks: [
        { name: 'a', action: 'ops.a', next: [{ when: '{{ succeeded() }}', do: 'b' }] },
        { name: 'b', action: 'ops.b' },
      ],
    });
    let r = start(def, {}, { executionId: 1, now: at(0) });
    r = apply(def, r.state, done('a#1', 1, null, 'failed'));
    expect(r.state.status).toBe('failed');
    expect(apply(def, r.state, { type: 'rerun', tasks: ['nope'], now: at(2) }).reason).toBe(
      "the workflow has no task 'nope'",
    );
    expect(apply(def, r.state, { type: 'rerun', tasks: ['b'], now: at(2) }).reason).toBe(
      "task 'b' never ran, so it cannot be rerun",
    );
    r = apply(def, r.state, { type: 'rerun', now: at(2) });
    expect(r.commands).toEqual([
      { type: 'workflow_status', status: 'running' },
      { type: 'start_task', runKey: 'a#2', task: 'a', action: 'ops.a', input: {}, attempt: 1 },
    ]);
    expect(r.state.instances['a#1']!.rerunAs).toBe('a#2');
  });
});

describe('engine: any order of events', () => {
  const def = parseWorkflowOrThrow({
    tasks: [
      { name: 'split', action: 'ops.split', next: [{ do: ['items', 'side'] }] },
      {
        name: 'items',
        action: 'ops.item',
        with_items: { items: '{{ range(12) | list }}', concurrency: 3 },
        input: { n: '{{ item }}' },
        retry: { count: 3, delay: 2 },
        next: [{ when: '{{ succeeded() }}', publish: [{ got: '{{ result() }}' }], do: 'join' }],
      },
      {
        name: 'side',
        action: 'ops.side',
        retry: { count: 3 },
        timeout: 50,
        next: [{ when: '{{ succeeded() }}', do: 'join' }],
      },
      { name: 'join', action: 'core.noop', join: 'all' },
    ],
    output_map: { got: '{{ vars.got }}' },
  });

  /** A small seeded generator (mulberry32), so a failing seed can be replayed. */
  const rng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`completes consistently with events in a random order (seed ${seed})`, () => {
      const rand = rng(seed);
      let now = at(0);
      let r = start(def, {}, { executionId: 1, now });
      const running = new Map<string, unknown>(); // runKey → item
      const timers = new Map<string, number>();
      const absorb = (cs: WorkflowCommand[]) => {
        for (const c of cs) {
          if (c.type === 'start_task') running.set(c.runKey, c.input);
          if (c.type === 'schedule_timer') timers.set(c.key, Date.parse(c.at));
          if (c.type === 'cancel_timer') timers.delete(c.key);
          if (c.type === 'cancel_task') running.delete(c.runKey);
        }
      };
      absorb(r.commands);
      let state = r.state;
      const failures = new Map<string, number>();
      for (
        let guard = 0;
        guard < 5000 && !['succeeded', 'failed', 'canceled'].includes(state.status);
        guard++
      ) {
        const runKeys = [...running.keys()];
        // a timeout fires only when nothing else is left (its run would have finished first)
        const timerKeys = [...timers.keys()].filter((k) => !k.startsWith('timeout:') || runKeys.length === 0);
        const pickTimer = timerKeys.length > 0 && (runKeys.length === 0 || rand() < 0.3);
        if (pickTimer) {
          const key = timerKeys[Math.floor(rand() * timerKeys.length)]!;
          now = Math.max(now, timers.get(key)!);
          timers.delete(key);
          r = apply(def, state, { type: 'timer_fired', key, now });
        } else {
          const runKey = runKeys[Math.floor(rand() * runKeys.length)]!;
          const input = running.get(runKey) as { n?: number } | undefined;
          running.delete(runKey);
          now += Math.floor(rand() * 3) * 1000;
          const slot = parseRunKey(runKey)!.slot;
          const fails = failures.get(slot) ?? 0;
          const retried = slot.startsWith('items#') || slot.startsWith('side#');
          const fail = retried && fails < 2 && rand() < 0.35;
          if (fail) failures.set(slot, fails + 1);
          r = apply(
            def,
            state,
            done(
              runKey,
              (now - T0) / 1000,
              fail ? 'boom' : (input?.n ?? 'ok'),
              fail ? 'failed' : 'succeeded',
            ),
          );
          // a duplicate delivery changes nothing
          const dup = apply(def, r.state, done(runKey, (now - T0) / 1000));
          expect(dup.outcome).toBe('ignored');
        }
        expect(r.outcome).not.toBe('rejected');
        absorb(r.commands);
        state = r.state;
        noNegativeCounts(state);
      }
      expect(state.errors).toEqual([]);
      expect(state.status).toBe('succeeded');
      expect(state.output).toEqual({ got: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] });
      expect(Object.keys(state.open)).toEqual([]);
      expect(state.counts.running ?? 0).toBe(0);
      expect(state.seq.join).toBe(1);
    });
  }
});
