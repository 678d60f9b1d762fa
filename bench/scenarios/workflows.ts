/**
 * Workflow scenarios, each a workflow created through the API and run with
 * POST /api/v1/executions; figures from the workflow execution's own timestamps (created → finished).
 *  - `wf-chain`: 40 sequential core.noop tasks, each step persisted;
 *  - `wf-items`: with_items over 10,000 items, concurrency 200, core.noop;
 *  - `wf-branches`: 100 parallel branches joined by one task.
 */
import { createPack, createWorkflow, executionSpan, executionStatus } from '../lib/fixtures.ts';
import type { BenchPlatform } from '../lib/platform.ts';
import { branches } from '../lib/shapes.ts';
import { median, round } from '../lib/stats.ts';
import { metric, type Scenario } from './scenario.ts';

export interface WorkflowOptions {
  chainLength: number;
  items: number;
  itemsConcurrency: number;
  branches: number;
  /** Measured runs of the short workflows (chain, branches) per scenario run; the median is reported. */
  repeats: number;
}

export const DEFAULT_WORKFLOWS: WorkflowOptions = {
  chainLength: 40,
  items: 10_000,
  itemsConcurrency: 200,
  branches: 100,
  repeats: 5,
};

const chain = (n: number) => ({
  tasks: Array.from({ length: n }, (_, i) => ({
    name: `t${i}`,
    action: 'core.noop',
    ...(i < n - 1 ? { next: [{ when: '{{ succeeded() }}', do: `t${i + 1}` }] } : {}),
  })),
});

const fanOut = (items: number, concurrency: number) => ({
  tasks: [
    {
      name: 'each',
      action: 'core.noop',
      with_items: { items: `{{ range(${items}) | list }}`, concurrency },
      next: [{ when: '{{ succeeded() }}', do: 'done' }],
    },
    { name: 'done', action: 'core.noop' },
  ],
});

/** Runs workflow `ref` once; returns created → finished in ms (database time). */
async function runOnce(p: BenchPlatform, ref: string, timeoutMs = 300_000): Promise<number> {
  const db = p.platform.store.db;
  const { data } = await p.api.post<{ data: { id: number } }>('/api/v1/executions', {
    action: ref,
    parameters: {},
  });
  const status = await p.watch.terminal(data.id, () => executionStatus(db, data.id), timeoutMs);
  const span = await executionSpan(db, data.id);
  if (status !== 'succeeded') throw new Error(`workflow ${ref} (execution ${data.id}) ended ${status}`);
  return span.total;
}

/** One warm-up run, then `repeats` measured runs; the median. */
async function medianOf(p: BenchPlatform, ref: string, repeats: number): Promise<number> {
  await runOnce(p, ref);
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) ms.push(await runOnce(p, ref));
  return median(ms);
}

export function workflowScenarios(o: WorkflowOptions): Scenario[] {
  return [
    {
      name: 'wf-chain',
      aliases: [],
      title: `workflow: ${o.chainLength} sequential core.noop tasks`,
      pure: false,
      async run(bp) {
        const p = bp!;
        await createPack(p.api);
        const ref = await createWorkflow(p.api, 'chain', chain(o.chainLength));
        const ms = await medianOf(p, ref, o.repeats);
        return [
          metric('total', `${o.chainLength} sequential tasks, total`, 'ms', round(ms), {
            kind: 'max',
            value: 100,
          }),
          metric('per_step', 'per step', 'ms', round(ms / o.chainLength, 2), { kind: 'max', value: 2.5 }),
        ];
      },
    },
    {
      name: 'wf-items',
      aliases: [],
      title: `workflow: with_items over ${o.items.toLocaleString('en-US')} items, concurrency ${o.itemsConcurrency}`,
      pure: false,
      async run(bp) {
        const p = bp!;
        await createPack(p.api);
        const warm = await createWorkflow(
          p.api,
          'items_warm',
          fanOut(Math.min(500, o.items), o.itemsConcurrency),
        );
        await runOnce(p, warm);
        const ref = await createWorkflow(p.api, 'items', fanOut(o.items, o.itemsConcurrency));
        const ms = await runOnce(p, ref, 600_000);
        return [
          metric('total', 'total', 's', round(ms / 1000, 2), { kind: 'max', value: 10 }),
          metric('per_item', 'per item', 'ms', round(ms / o.items, 3)),
        ];
      },
    },
    {
      name: 'wf-branches',
      aliases: [],
      title: `workflow: ${o.branches} parallel branches joined`,
      pure: false,
      async run(bp) {
        const p = bp!;
        await createPack(p.api);
        const ref = await createWorkflow(p.api, 'branches', branches(o.branches));
        const ms = await medianOf(p, ref, o.repeats);
        return [metric('total', 'total', 'ms', round(ms), { kind: 'max', value: 500 })];
      },
    },
  ];
}
