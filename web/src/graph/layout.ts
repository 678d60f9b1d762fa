/**
 * Lays out a task graph with dagre (top to bottom, ranks by dependency). Pure: no DOM, so it is
 * tested as is.
 */
import { graphlib, layout } from '@dagrejs/dagre';
import type { GraphEdge, GraphNode } from '../api/types.ts';

export const NODE_WIDTH = 210;
export const NODE_HEIGHT = 72;
const END_SIZE = 44;
/** Edge labels longer than this are cut (with an ellipsis) when drawn. */
export const LABEL_MAX_CHARS = 40;

export interface LayoutNode {
  id: string;
  /** `task`, or `end` for the `fail`/`noop` targets (drawn as small terminal nodes). */
  kind: 'task' | 'end';
  label: string;
  x: number;
  y: number;
  width: number;
  height: number;
}
export interface Point {
  x: number;
  y: number;
}
export interface LayoutEdge {
  id: string;
  source: string;
  target: string;
  label: string;
  /** The route dagre chose, from the source's border to the target's. */
  points: Point[];
  /** Where the label goes (its centre), when there is a label. */
  labelAt: Point | null;
}
export interface Layout {
  nodes: LayoutNode[];
  edges: LayoutEdge[];
  width: number;
  height: number;
}

/** The id of the terminal node an edge to `fail`/`noop` ends at (one per source, so lines stay short). */
export const endNodeId = (from: string, special: string): string => `${from}→${special}`;

export function layoutGraph(
  nodes: Pick<GraphNode, 'id'>[],
  edges: Pick<GraphEdge, 'id' | 'from' | 'to' | 'special' | 'label'>[],
  opts: { direction?: 'TB' | 'LR' } = {},
): Layout {
  const g = new graphlib.Graph({ multigraph: true });
  g.setGraph({
    rankdir: opts.direction ?? 'TB',
    nodesep: 36,
    ranksep: 56,
    edgesep: 16,
    marginx: 16,
    marginy: 16,
  });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Set<string>();
  const out: LayoutNode[] = [];
  for (const n of nodes) {
    if (known.has(n.id)) continue;
    known.add(n.id);
    g.setNode(n.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
    out.push({ id: n.id, kind: 'task', label: n.id, x: 0, y: 0, width: NODE_WIDTH, height: NODE_HEIGHT });
  }
  const laidEdges: LayoutEdge[] = [];
  for (const e of edges) {
    if (e.special === 'retry' || !known.has(e.from)) continue; // drawn as a badge on the node
    let target = e.to;
    if (e.special === 'fail' || e.special === 'noop') {
      target = endNodeId(e.from, e.special);
      if (!known.has(target)) {
        known.add(target);
        g.setNode(target, { width: END_SIZE, height: END_SIZE });
        out.push({
          id: target,
          kind: 'end',
          label: e.special,
          x: 0,
          y: 0,
          width: END_SIZE,
          height: END_SIZE,
        });
      }
    }
    if (!target || !known.has(target)) continue;
    const label = e.label === 'always' ? '' : e.label;
    // A labelled edge reserves room for its label, so labels of neighbouring edges do not collide.
    const shown = Math.min(label.length, LABEL_MAX_CHARS);
    g.setEdge(e.from, target, label ? { width: shown * 6.2 + 14, height: 16, labelpos: 'c' } : {}, e.id);
    laidEdges.push({ id: e.id, source: e.from, target, label, points: [], labelAt: null });
  }
  layout(g);
  for (const n of out) {
    const p = g.node(n.id);
    // dagre gives centres; the drawing wants top-left corners.
    n.x = Math.round(p.x - n.width / 2);
    n.y = Math.round(p.y - n.height / 2);
  }
  for (const e of laidEdges) {
    const d = g.edge({ v: e.source, w: e.target, name: e.id }) as
      | { points?: Point[]; x?: number; y?: number }
      | undefined;
    e.points = (d?.points ?? []).map((p) => ({ x: Math.round(p.x), y: Math.round(p.y) }));
    if (e.label && typeof d?.x === 'number' && typeof d.y === 'number')
      e.labelAt = { x: Math.round(d.x), y: Math.round(d.y) };
  }
  const gg = g.graph();
  return { nodes: out, edges: laidEdges, width: gg.width ?? 0, height: gg.height ?? 0 };
}

/** An SVG path through `points`, smoothed (Catmull-Rom turned into cubic Bézier curves). */
export function smoothPath(points: Point[]): string {
  if (points.length === 0) return '';
  const [first, ...rest] = points;
  if (!rest.length) return `M${first!.x},${first!.y}`;
  if (rest.length === 1) return `M${first!.x},${first!.y}L${rest[0]!.x},${rest[0]!.y}`;
  let d = `M${first!.x},${first!.y}`;
  for (let i = 0; i < points.length - 1; i++) {
    const p0 = points[i - 1] ?? points[i]!;
    const p1 = points[i]!;
    const p2 = points[i + 1]!;
    const p3 = points[i + 2] ?? p2;
    const c1 = { x: p1.x + (p2.x - p0.x) / 6, y: p1.y + (p2.y - p0.y) / 6 };
    const c2 = { x: p2.x - (p3.x - p1.x) / 6, y: p2.y - (p3.y - p1.y) / 6 };
    d += `C${c1.x.toFixed(1)},${c1.y.toFixed(1)} ${c2.x.toFixed(1)},${c2.y.toFixed(1)} ${p2.x},${p2.y}`;
  }
  return d;
}
