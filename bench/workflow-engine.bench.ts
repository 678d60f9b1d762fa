/**
 * Pure workflow engine figures (no database, no bus): how long the engine itself takes to drive
 *   - a chain of 40 sequential tasks,
 *   - a with_items fan-out over 10,000 items with concurrency 200,
 *   - 100 parallel branches joined by one task.
 * Every completion goes through `step` exactly as a scheduler would feed it.
 * Run alone: npx tsx bench/workflow-engine.bench.ts — or as the `engine` scenario of `npm run bench`.
 */
import { pathToFileURL } from 'node:url';
import { parseWorkflowOrThrow, type WorkflowDefinition } from '../src/workflow/definition.ts';
import { start, step } from '../src/workflow/engine.ts';
import type { StepResult, WorkflowCommand, WorkflowState } from '../src/workflow/state.ts';
import { branches as branchShape } from './lib/shapes.ts';

export interface EngineFigures {
  steps: number;
  commands: number;
  ms: number;
  status: string;
}

/** Drives a workflow to its end, completing every started task at once (FIFO), with `core.noop` results. */
function drive(def: WorkflowDefinition, opts: { json?: boolean } = {}): EngineFigures {
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

const branches = (n: number): WorkflowDefinition => parseWorkflowOrThrow(branchShape(n));

function best(def: WorkflowDefinition, runs: number, opts: { json?: boolean } = {}): EngineFigures {
  let top: EngineFigures | undefined;
  for (let i = 0; i < runs; i++) {
    const f = drive(def, opts);
    if (f.status !== 'succeeded') throw new Error(`workflow ended ${f.status}`);
    if (!top || f.ms < top.ms) top = f;
  }
  return top!;
}

/** The cases: label → the best of several drives. */
export function runEngineBench(): Record<string, EngineFigures & { label: string }> {
  drive(chain(40)); // warm up the template cache and the JIT
  const cases: [string, string, WorkflowDefinition, number, { json?: boolean }?][] = [
    ['chain40', '40 sequential tasks', chain(40), 20],
    ['chain40_json', '40 sequential tasks, state through JSON each step', chain(40), 20, { json: true }],
    ['items10k_c200', 'with_items 10,000 items, concurrency 200', fanOut(10_000, 200), 3],
    ['items10k', 'with_items 10,000 items, no concurrency limit', fanOut(10_000, 10_000), 3],
    ['branches100', '100 parallel branches joined', branches(100), 10],
  ];
  const out: Record<string, EngineFigures & { label: string }> = {};
  for (const [key, label, def, runs, opts] of cases) out[key] = { label, ...best(def, runs, opts) };
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const f of Object.values(runEngineBench())) {
    console.log(
      `${f.label.padEnd(52)} ${f.ms.toFixed(1).padStart(8)} ms  ${String(f.steps).padStart(6)} steps  ${(
        (f.ms * 1000) /
        f.steps
      )
        .toFixed(1)
        .padStart(6)} µs/step`,
    );
  }
}
