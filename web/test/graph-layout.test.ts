/**
 * The workflow graph: a definition read into nodes and edges, laid out by dagre (dependencies top to
 * bottom, no two nodes overlapping), and each task status drawn in its colour.
 */
import { describe, expect, it } from 'vitest';
import { conditionLabel, graphOfDefinition } from '../src/graph/definition.ts';
import {
  endNodeId,
  LABEL_MAX_CHARS,
  type Layout,
  layoutGraph,
  NODE_HEIGHT,
  NODE_WIDTH,
  smoothPath,
} from '../src/graph/layout.ts';
import { nodeLook } from '../src/graph/look.ts';

const DEF = {
  tasks: [
    {
      name: 'build',
      action: 'ci.build',
      retry: { count: 2 },
      next: [
        { when: '{{ succeeded() }}', do: 'test_a, test_b' },
        { when: '{{ failed() }}', do: ['notify', 'fail'] },
      ],
    },
    {
      name: 'test_a',
      action: 'ci.test',
      next: [{ when: '{{ succeeded() }}', publish: [{ a: 1 }], do: 'deploy' }],
    },
    {
      name: 'test_b',
      action: 'ci.test',
      with_items: '{{ parameters.shards }}',
      concurrency: 4,
      next: [{ do: 'deploy' }, { when: '{{ failed() }}', do: 'retry' }],
    },
    { name: 'deploy', action: 'ops.deploy', join: 'all', next: [{ when: '{{ failed() }}', do: 'noop' }] },
    { name: 'notify', action: 'chat.post' },
  ],
};

function overlaps(l: Layout): string[] {
  const out: string[] = [];
  for (let i = 0; i < l.nodes.length; i++)
    for (let j = i + 1; j < l.nodes.length; j++) {
      const a = l.nodes[i]!;
      const b = l.nodes[j]!;
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height)
        out.push(`${a.id} × ${b.id}`);
    }
  return out;
}

describe('reading a definition', () => {
  const g = graphOfDefinition(DEF);

  it('makes a node per task with what matters to draw it', () => {
    expect(g.nodes.map((n) => n.id)).toEqual(['build', 'test_a', 'test_b', 'deploy', 'notify']);
    const by = Object.fromEntries(g.nodes.map((n) => [n.id, n]));
    expect(by.build).toMatchObject({ start: true, retry: 2, action: 'ci.build' });
    expect(by.test_a!.start).toBe(false);
    expect(by.test_b).toMatchObject({ with_items: true, concurrency: 4 });
    expect(by.deploy!.join).toBe('all');
  });

  it('makes an edge per target: lists, comma lists, and the special targets', () => {
    const e = g.edges.map((x) => `${x.from}>${x.to ?? x.special}:${x.label}`);
    expect(e).toEqual([
      'build>test_a:succeeded()',
      'build>test_b:succeeded()',
      'build>notify:failed()',
      'build>fail:failed()',
      'test_a>deploy:succeeded()',
      'test_b>deploy:always',
      'test_b>test_b:failed()',
      'deploy>noop:failed()',
    ]);
    expect(g.edges.find((x) => x.from === 'test_a')!.publish).toEqual(['a']);
    expect(g.edges.find((x) => x.to === 'test_b' && x.from === 'test_b')!.special).toBe('retry');
  });

  it('reads tasks given as a mapping, and a loop with no start', () => {
    const m = graphOfDefinition({
      tasks: { a: { action: 'x', next: [{ do: 'b' }] }, b: { action: 'y', next: [{ do: 'a' }] } },
    });
    expect(m.nodes.map((n) => [n.id, n.start])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    expect(conditionLabel('{{ result().ok }}')).toBe('result().ok');
    expect(conditionLabel(undefined)).toBe('always');
    expect(graphOfDefinition({}).nodes).toEqual([]);
  });
});

describe('layout', () => {
  const g = graphOfDefinition(DEF);
  const l = layoutGraph(g.nodes, g.edges);
  const pos = Object.fromEntries(l.nodes.map((n) => [n.id, n]));

  it('places every task, plus one end node per fail/noop, with no overlaps', () => {
    expect(l.nodes.filter((n) => n.kind === 'task')).toHaveLength(5);
    expect(pos[endNodeId('build', 'fail')]).toMatchObject({ kind: 'end', label: 'fail' });
    expect(pos[endNodeId('deploy', 'noop')]).toMatchObject({ kind: 'end', label: 'noop' });
    expect(overlaps(l)).toEqual([]);
    expect(pos.build!.width).toBe(NODE_WIDTH);
    expect(pos.build!.height).toBe(NODE_HEIGHT);
  });

  it('ranks each task below the tasks leading to it', () => {
    for (const e of l.edges)
      expect(pos[e.target]!.y, `${e.source} → ${e.target}`).toBeGreaterThan(pos[e.source]!.y);
    expect(pos.test_a!.y).toBe(pos.test_b!.y);
    // a retry is drawn on its node, not as an edge
    expect(l.edges.some((e) => e.source === e.target)).toBe(false);
    expect(l.edges.find((e) => e.source === 'test_b' && e.target === 'deploy')!.label).toBe('');
  });

  it('routes each edge from its source to its target, with room for its label', () => {
    const boxes = l.nodes.map((n) => ({ id: n.id, x: n.x, y: n.y, w: n.width, h: n.height }));
    for (const e of l.edges) {
      expect(e.points.length, e.id).toBeGreaterThanOrEqual(2);
      const src = pos[e.source]!;
      const dst = pos[e.target]!;
      expect(e.points[0]!.y).toBeGreaterThanOrEqual(src.y);
      expect(e.points.at(-1)!.y).toBeLessThanOrEqual(dst.y + dst.height);
      if (!e.label) continue;
      const lw = Math.min(e.label.length, LABEL_MAX_CHARS) * 6.2 + 14;
      const lb = { id: `label ${e.id}`, x: e.labelAt!.x - lw / 2, y: e.labelAt!.y - 8, w: lw, h: 16 };
      for (const b of boxes)
        expect(
          lb.x < b.x + b.w && b.x < lb.x + lb.w && lb.y < b.y + b.h && b.y < lb.y + lb.h,
          `${lb.id} overlaps ${b.id}`,
        ).toBe(false);
      boxes.push(lb);
    }
    expect(
      smoothPath([
        { x: 0, y: 0 },
        { x: 10, y: 10 },
      ]),
    ).toBe('M0,0L10,10');
    expect(
      smoothPath([
        { x: 0, y: 0 },
        { x: 0, y: 10 },
        { x: 10, y: 20 },
      ]),
    ).toMatch(/^M0,0C.* 0,10C.* 10,20$/);
  });

  it('lays out a wide fan-out without overlaps and keeps the drawing bounds', () => {
    const nodes = [
      { id: 'split' },
      ...Array.from({ length: 40 }, (_, i) => ({ id: `b${i}` })),
      { id: 'join' },
    ];
    const edges = nodes.slice(1, -1).flatMap((n) => [
      { id: `s${n.id}`, from: 'split', to: n.id, special: null, label: 'always' },
      { id: `j${n.id}`, from: n.id, to: 'join', special: null, label: 'always' },
    ]);
    const wide = layoutGraph(nodes, edges);
    expect(overlaps(wide)).toEqual([]);
    for (const n of wide.nodes) {
      expect(n.x).toBeGreaterThanOrEqual(0);
      expect(n.x + n.width).toBeLessThanOrEqual(wide.width + 1);
    }
  });

  it('ignores edges to tasks that do not exist (a definition being edited)', () => {
    const r = layoutGraph(
      [{ id: 'a' }],
      [{ id: 'x', from: 'a', to: 'ghost', special: null, label: 'always' }],
    );
    expect(r.nodes).toHaveLength(1);
    expect(r.edges).toEqual([]);
  });
});

describe('node colours by state', () => {
  it('colours each state with its theme colour', () => {
    expect(nodeLook('succeeded').color).toBe('var(--st-ok)');
    expect(nodeLook('failed').color).toBe('var(--st-fail)');
    expect(nodeLook('timeout').color).toBe('var(--st-fail)');
    expect(nodeLook('running').color).toBe('var(--st-run)');
    expect(nodeLook('asking').color).toBe('var(--st-ask)');
    expect(nodeLook('paused').color).toBe('var(--st-pause)');
    expect(nodeLook('canceled').color).toBe('var(--st-cancel)');
    expect(nodeLook('not_run').color).toBe('var(--st-idle)');
    expect(nodeLook(undefined).label).toBe('not run');
  });

  it('marks what is under way as active, and shows unknown states as they are', () => {
    expect(nodeLook('running').active).toBe(true);
    expect(nodeLook('succeeded').active).toBe(false);
    expect(nodeLook('waiting_join').label).toBe('waiting for branches');
    expect(nodeLook('mystery')).toEqual({ color: 'var(--st-idle)', label: 'mystery', active: false });
  });
});
