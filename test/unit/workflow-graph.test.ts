import { describe, expect, it } from 'vitest';
import { parseWorkflowOrThrow } from '../../src/workflow/definition.ts';
import { start, step } from '../../src/workflow/engine.ts';
import { buildGraph, inboundOf, liveGraph, startTasks } from '../../src/workflow/graph.ts';

const def = parseWorkflowOrThrow({
  tasks: [
    {
      name: 'a',
      action: 'ops.a',
      next: [
        { when: '{{ succeeded() }}', publish: [{ x: 1 }], do: ['b', 'c'] },
        { when: '{{ failed() }}', do: ['fail'] },
      ],
    },
    {
      name: 'b',
      action: 'ops.b',
      with_items: { items: '{{ [1, 2, 3] }}', concurrency: 2 },
      next: [{ do: 'j' }],
    },
    {
      name: 'c',
      action: 'ops.c',
      retry: { count: 2 },
      timeout: 10,
      next: [{ do: 'j' }, { when: '{{ failed() }}', do: 'retry' }],
    },
    { name: 'j', action: 'ops.j', join: 'all', delay: 5 },
  ],
});

describe('workflow graph', () => {
  it('lists nodes and labelled edges, special targets included', () => {
    const g = buildGraph(def);
    expect(
      g.nodes.map((n) => [n.id, n.start, n.join, n.with_items, n.concurrency, n.retry, n.timeout, n.delay]),
    ).toEqual([
      ['a', true, null, false, null, null, null, null],
      ['b', false, null, true, 2, null, null, null],
      ['c', false, null, false, null, 2, 10, null],
      ['j', false, 'all', false, null, null, null, 5],
    ]);
    expect(g.edges).toEqual([
      {
        id: 'a:0:0',
        from: 'a',
        to: 'b',
        special: null,
        transition: 0,
        condition: '{{ succeeded() }}',
        label: 'succeeded()',
        publish: ['x'],
      },
      {
        id: 'a:0:1',
        from: 'a',
        to: 'c',
        special: null,
        transition: 0,
        condition: '{{ succeeded() }}',
        label: 'succeeded()',
        publish: ['x'],
      },
      {
        id: 'a:1:0',
        from: 'a',
        to: null,
        special: 'fail',
        transition: 1,
        condition: '{{ failed() }}',
        label: 'failed()',
        publish: [],
      },
      {
        id: 'b:0:0',
        from: 'b',
        to: 'j',
        special: null,
        transition: 0,
        condition: null,
        label: 'always',
        publish: [],
      },
      {
        id: 'c:0:0',
        from: 'c',
        to: 'j',
        special: null,
        transition: 0,
        condition: null,
        label: 'always',
        publish: [],
      },
      {
        id: 'c:1:0',
        from: 'c',
        to: 'c',
        special: 'retry',
        transition: 1,
        condition: '{{ failed() }}',
        label: 'failed()',
        publish: [],
      },
    ]);
    expect(startTasks(def)).toEqual(['a']);
    expect(inboundOf(def, 'j')).toEqual(['b', 'c']);
  });

  it('overlays the live state of an execution', () => {
    const t = Date.parse('2025-01-01T00:00:00Z');
    let r = start(def, {}, { executionId: 1, now: t });
    r = step(def, r.state, {
      type: 'task_completed',
      runKey: 'a#1',
      status: 'succeeded',
      result: null,
      now: t + 1000,
    });
    r = step(def, r.state, {
      type: 'task_completed',
      runKey: 'b#1.0',
      status: 'succeeded',
      result: null,
      now: t + 2000,
    });
    r = step(def, r.state, {
      type: 'task_completed',
      runKey: 'c#1',
      status: 'succeeded',
      result: null,
      now: t + 2000,
    });
    const g = liveGraph(def, r.state);
    const state = Object.fromEntries(g.nodes.map((n) => [n.id, n.state]));
    expect(g.status).toBe('running');
    expect(state.a).toMatchObject({
      status: 'succeeded',
      entries: 1,
      latest: 'a#1',
      run_key: 'a#1',
      attempt: 1,
    });
    expect(state.b).toMatchObject({
      status: 'running',
      items: { total: 3, succeeded: 1, failed: 0, running: 2, pending: 0 },
    });
    expect(state.c).toMatchObject({ status: 'succeeded' });
    expect(state.j).toMatchObject({ status: 'waiting_join', entries: 0, join_arrived: ['c'] });
    expect(g.edges.filter((e) => e.taken > 0).map((e) => e.id)).toEqual(['a:0:0', 'a:0:1']);
  });
});
