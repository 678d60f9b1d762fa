/**
 * The drawing of a workflow: tasks laid out by dagre, coloured by their live state, with-items
 * progress on the node, edges labelled with their conditions (taken ones emphasised). Each node is a
 * button: click or Enter selects it. Loaded on demand (it carries the graph library).
 */
import '@xyflow/react/dist/style.css';
import {
  Background,
  BaseEdge,
  Controls,
  type Edge,
  EdgeLabelRenderer,
  type EdgeProps,
  Handle,
  MarkerType,
  type Node,
  type NodeProps,
  Position,
  ReactFlow,
} from '@xyflow/react';
import { memo, useMemo } from 'react';
import type { GraphEdge, GraphNode, LiveNodeState } from '../api/types.ts';
import { LABEL_MAX_CHARS, layoutGraph, type Point, smoothPath } from './layout.ts';
import { nodeLook } from './look.ts';

export interface WorkflowGraphProps {
  nodes: (GraphNode & { state?: LiveNodeState })[];
  edges: (GraphEdge & { taken?: number })[];
  selected?: string | null;
  onSelect?: (task: string | null) => void;
  /** Problems by task name (the editor's validation), shown on the nodes. */
  problems?: Record<string, 'error' | 'warning'>;
  height?: number;
}

interface TaskData extends Record<string, unknown> {
  node: GraphNode & { state?: LiveNodeState };
  selected: boolean;
  problem?: 'error' | 'warning';
  onSelect?: (task: string | null) => void;
}
interface EndData extends Record<string, unknown> {
  label: string;
}

const TaskNode = memo(function TaskNode({ data }: NodeProps<Node<TaskData>>) {
  const { node, selected, problem, onSelect } = data;
  const st = node.state;
  const look = nodeLook(problem === 'error' ? 'failed' : st?.status);
  const items = st?.items;
  const chips: string[] = [];
  if (node.start) chips.push('start');
  if (node.join !== null) chips.push(`join ${node.join}`);
  if (node.retry) chips.push(`↻${node.retry}`);
  if (node.with_items) chips.push('items');
  if (st && st.entries > 1) chips.push(`×${st.entries}`);
  const statusText = problem ? `${problem} in definition` : st ? look.label : '';
  return (
    <>
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <button
        type="button"
        className={`gnode${selected ? ' selected' : ''}${look.active ? ' active' : ''}`}
        style={{ ['--c' as string]: look.color }}
        data-task={node.id}
        data-status={st?.status ?? ''}
        aria-pressed={selected}
        aria-label={`Task ${node.id}, action ${node.action || 'none'}${statusText ? `, ${statusText}` : ''}${
          items ? `, ${items.succeeded + items.failed} of ${items.total} items done` : ''
        }`}
        onClick={() => onSelect?.(selected ? null : node.id)}
      >
        <span className="chips" aria-hidden="true">
          {chips.map((c) => (
            <span className="chip" key={c}>
              {c}
            </span>
          ))}
        </span>
        <span className="name ellipsis">{node.id}</span>
        <span className="meta ellipsis">{node.action}</span>
        {items ? (
          <>
            <span className="progress" aria-hidden="true">
              <span
                style={{
                  width: `${(items.succeeded / Math.max(1, items.total)) * 100}%`,
                  background: 'var(--st-ok)',
                }}
              />
              <span
                style={{
                  width: `${(items.failed / Math.max(1, items.total)) * 100}%`,
                  background: 'var(--st-fail)',
                }}
              />
              <span
                style={{
                  width: `${(items.running / Math.max(1, items.total)) * 100}%`,
                  background: 'var(--st-run)',
                }}
              />
            </span>
            <span className="meta">
              {items.succeeded + items.failed}/{items.total} items
              {items.failed ? ` · ${items.failed} failed` : ''}
            </span>
          </>
        ) : (
          statusText && <span className="meta ellipsis">{statusText}</span>
        )}
      </button>
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </>
  );
});

const EndNode = memo(function EndNode({ data }: NodeProps<Node<EndData>>) {
  const look = nodeLook(data.label === 'fail' ? 'failed' : 'not_run');
  return (
    <>
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <div
        className="gend"
        style={{ ['--c' as string]: look.color }}
        title={data.label === 'fail' ? 'fails the workflow' : 'does nothing'}
      >
        {data.label}
      </div>
    </>
  );
});

interface RouteData extends Record<string, unknown> {
  points: Point[];
  labelAt: Point | null;
  text: string;
  color: string;
}

/** An edge drawn along dagre's route, its label where dagre made room for it. */
function RoutedEdge({
  sourceX,
  sourceY,
  targetX,
  targetY,
  data,
  markerEnd,
  style,
}: EdgeProps<Edge<RouteData>>) {
  const inner = (data?.points ?? []).slice(1, -1);
  const d = smoothPath([{ x: sourceX, y: sourceY }, ...inner, { x: targetX, y: targetY }]);
  return (
    <>
      <BaseEdge path={d} markerEnd={markerEnd} style={style} />
      {data?.text && data.labelAt && (
        <EdgeLabelRenderer>
          <div
            className="edge-label"
            style={{
              transform: `translate(-50%, -50%) translate(${data.labelAt.x}px, ${data.labelAt.y}px)`,
              color: data.color,
            }}
          >
            {data.text}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

const nodeTypes = { task: TaskNode, end: EndNode };
const edgeTypes = { routed: RoutedEdge };

export default function WorkflowGraph({
  nodes,
  edges,
  selected = null,
  onSelect,
  problems,
  height,
}: WorkflowGraphProps) {
  const structure = useMemo(
    () =>
      JSON.stringify([nodes.map((n) => n.id), edges.map((e) => [e.id, e.from, e.to, e.special, e.label])]),
    [nodes, edges],
  );
  // Lay out only when the structure changes, not on every status update.
  // biome-ignore lint/correctness/useExhaustiveDependencies: keyed by structure
  const layout = useMemo(() => layoutGraph(nodes, edges), [structure]);
  const byId = useMemo(() => new Map(nodes.map((n) => [n.id, n])), [nodes]);
  const edgeInfo = useMemo(() => new Map(edges.map((e) => [e.id, e])), [edges]);

  const rfNodes: Node[] = layout.nodes.map((n) =>
    n.kind === 'task'
      ? {
          id: n.id,
          type: 'task',
          position: { x: n.x, y: n.y },
          data: {
            node: byId.get(n.id)!,
            selected: selected === n.id,
            problem: problems?.[n.id],
            onSelect,
          } satisfies TaskData,
          width: n.width,
          height: n.height,
          // The node is a button: it takes clicks although the graph is not editable.
          style: { pointerEvents: 'all' },
        }
      : {
          id: n.id,
          type: 'end',
          position: { x: n.x, y: n.y },
          data: { label: n.label } satisfies EndData,
          width: n.width,
          height: n.height,
        },
  );
  const rfEdges: Edge[] = layout.edges.map((e) => {
    const info = edgeInfo.get(e.id);
    const taken = (info?.taken ?? 0) > 0;
    const color = info?.special === 'fail' ? 'var(--st-fail)' : taken ? 'var(--st-ok)' : 'var(--st-idle)';
    const label = e.label.length > LABEL_MAX_CHARS ? `${e.label.slice(0, LABEL_MAX_CHARS - 1)}…` : e.label;
    return {
      id: e.id,
      source: e.source,
      target: e.target,
      type: 'routed',
      data: {
        points: e.points,
        labelAt: e.labelAt,
        text: label,
        color: info?.special === 'fail' ? 'var(--st-fail)' : 'var(--muted)',
      } satisfies RouteData,
      style: { stroke: color, strokeWidth: taken ? 2.2 : 1.4 },
      markerEnd: { type: MarkerType.ArrowClosed, color, width: 16, height: 16 },
      focusable: false,
    };
  });

  return (
    <div
      className="graph-box"
      style={{ height: height ?? Math.min(720, Math.max(320, layout.height + 60)) }}
      data-testid="workflow-graph"
      data-workflow-status={nodes.length ? undefined : 'empty'}
    >
      <ReactFlow
        key={structure}
        nodes={rfNodes}
        edges={rfEdges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        fitView
        fitViewOptions={{ padding: 0.15, maxZoom: 1.1 }}
        minZoom={0.2}
        maxZoom={2}
        nodesDraggable={false}
        nodesConnectable={false}
        nodesFocusable={false}
        edgesFocusable={false}
        elementsSelectable={false}
        proOptions={{ hideAttribution: true }}
        onPaneClick={() => onSelect?.(null)}
      >
        <Background gap={20} size={1} color="var(--border)" />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
