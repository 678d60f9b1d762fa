/**
 * Pure workflow engine figures (no database, no bus): how long the engine itself takes to drive
 *   - a chain of 40 sequential tasks,
 *   - a with_items fan-out over 10,000 items with concurrency 200,
 *   - 100 parallel branches joined by one task.
 * Every completion goes through `step` exactly as a scheduler would feed it. Run: npx tsx bench/workflow-engine.bench.ts
 */
import { parseWorkflowOrThrow, type WorkflowDefinition } from '../src/workflow/definition.ts';
import { start, step } from '../src/workflow/engine.ts';
import type { StepResult, WorkflowCommand, WorkflowState } from '../src/workflow/state.ts';

interface Figures {
  steps: number;
  commands: number;
  ms: number;
  status: string;
}

/** Drives a workflow to its end, completing every started task at once (FIFO), with `core.noop` results. */
function drive(def: WorkflowDefinition, opts: { json?: boolean } = {}): Figures {
  let now = Date.parse('2025-01-01T00:00:00Z');
  const t0 = performance.now();
  let r: StepResult = start(def, {}, { executionId: 'bench', now, maxTaskRuns: 100_000 });
  let state: WorkflowState = r.state;
  const queue: WorkflowCommand[] = [...r.commands];
  let steps = 1;
  let commands = r.commands.length;
  for (let i = 0; i < queue.length; i++) {
    const c = queue[i]!;
    if (c.type !== 'start_task') continue;
    now += 1;
    if (opts.json) state = JSON.parse(JSON.stringify(state)) as WorkflowState;
    r = step(def, state, {
      type: 'task_completed',
      runKey: c.runKey,
      status: 'succeeded',
      result: null,
      now,
    });
    state = r.state;
    steps++;
    commands += r.commands.length;
    for (const x of r.commands) queue.push(x);
  }
  return { steps, commands, ms: performance.now() - t0, status: state.status };
}

const chain = (n: number): WorkflowDefinition =>
  parseWorkflowOrThrow({
    tasks: Array.from({ length: n }, (_, i) => ({
      name: `t${i}`,
      action: 'core.noop',
      input: { step: '{{ vars.step }}' },
      ...(i < n - 1
        ? { next: [{ when: '{{ succeeded() }}', publish: [{ step: i + 1 }], do: `t${i + 1}` }] }
        : {}),
    })),
    vars: { step: 0 },
  });

const fanOut = (items: number, concurrency: number): WorkflowDefinition =>
  parseWorkflowOrThrow({
    parameters: { n: { type: 'integer' } },
    tasks: [
      {
        name: 'each',
        action: 'core.noop',
        with_items: { items: `{{ range(${items}) | list }}`, concurrency },
        input: { n: '{{ item }}', i: '{{ index }}' },
        next: [{ when: '{{ succeeded() }}', do: 'done' }],
      },
      { name: 'done', action: 'core.noop' },
    ],
  });

const branches = (n: number): WorkflowDefinition =>
  parseWorkflowOrThrow({
    tasks: [
      { name: 'split', action: 'core.noop', next: [{ do: Array.from({ length: n }, (_, i) => `b${i}`) }] },
      ...Array.from({ length: n }, (_, i) => ({
        name: `b${i}`,
        action: 'core.noop',
        next: [{ when: '{{ succeeded() }}', do: 'join' }],
      })),
      { name: 'join', action: 'core.noop', join: 'all' },
    ],
  });

function best(label: string, def: WorkflowDefinition, runs: number, opts: { json?: boolean } = {}): void {
  let top: Figures | undefined;
  for (let i = 0; i < runs; i++) {
    const f = drive(def, opts);
    if (f.status !== 'succeeded') throw new Error(`${label}: ended ${f.status}`);
    if (!top || f.ms < top.ms) top = f;
  }
  const f = top!;
  console.log(
    `${label.padEnd(52)} ${f.ms.toFixed(1).padStart(8)} ms  ${String(f.steps).padStart(6)} steps  ${(
      (f.ms * 1000) /
      f.steps
    )
      .toFixed(1)
      .padStart(6)} µs/step`,
  );
}

drive(chain(40)); // warm up the template cache and the JIT
best('40 sequential tasks', chain(40), 20);
best('40 sequential tasks, state through JSON each step', chain(40), 20, { json: true });
best('with_items 10,000 items, concurrency 200', fanOut(10_000, 200), 3);
best('with_items 10,000 items, no concurrency limit', fanOut(10_000, 10_000), 3);
best('100 parallel branches joined', branches(100), 10);
