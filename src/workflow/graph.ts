/**
 * The task graph of a definition: which tasks start it, which tasks lead to each task, and the
 * nodes and edges a UI draws (each edge labelled with its condition), optionally overlaid with the
 * live state of one execution.
 */
import {
  isSpecialTarget,
  type SpecialTarget,
  type TaskDefinition,
  type WorkflowDefinition,
} from './definition.ts';
import { expressionText } from './expressions.ts';
import { runKeyOf, slotKey, type WorkflowState } from './state.ts';

export interface TaskIndex {
  byName: Map<string, TaskDefinition>;
  /** Distinct names of the tasks with a transition to each task. */
  inbound: Map<string, string[]>;
  starts: string[];
}

const indexCache = new WeakMap<WorkflowDefinition, TaskIndex>();

/** The definition indexed by task (computed once per definition object). */
export function taskIndex(def: WorkflowDefinition): TaskIndex {
  let c = indexCache.get(def);
  if (c) return c;
  const byName = new Map(def.tasks.map((t) => [t.name, t]));
  const inbound = new Map<string, string[]>();
  for (const t of def.tasks)
    for (const tr of t.next)
      for (const target of tr.do) {
        if (!byName.has(target)) continue;
        const list = inbound.get(target) ?? [];
        if (!list.includes(t.name)) list.push(t.name);
        inbound.set(target, list);
      }
  let starts = def.tasks.filter((t) => !inbound.has(t.name)).map((t) => t.name);
  if (starts.length === 0 && def.tasks[0]) starts = [def.tasks[0].name];
  c = { byName, inbound, starts };
  indexCache.set(def, c);
  return c;
}

/** Tasks without inbound transitions start the workflow; when every task has one, the first does. */
export const startTasks = (def: WorkflowDefinition): string[] => taskIndex(def).starts;

/** Names of the tasks with a transition to `task`. */
export const inboundOf = (def: WorkflowDefinition, task: string): string[] =>
  taskIndex(def).inbound.get(task) ?? [];

export interface GraphNode {
  id: string;
  action: string;
  description: string | null;
  start: boolean;
  join: 'all' | number | null;
  with_items: boolean;
  concurrency: number | null;
  retry: number | null;
  timeout: number | null;
  delay: number | null;
}

export interface GraphEdge {
  id: string;
  from: string;
  /** The target task; null for `fail` and `noop`, `from` itself for `retry`. */
  to: string | null;
  special: SpecialTarget | null;
  /** Index of the transition in the task's `next`. */
  transition: number;
  condition: string | null;
  /** A short text for the edge: the condition without braces, or "always". */
  label: string;
  publish: string[];
}

export interface WorkflowGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export function buildGraph(def: WorkflowDefinition): WorkflowGraph {
  const starts = new Set(startTasks(def));
  const nodes: GraphNode[] = def.tasks.map((t) => ({
    id: t.name,
    action: t.action,
    description: t.description ?? null,
    start: starts.has(t.name),
    join: t.join ?? null,
    with_items: t.withItems !== undefined,
    concurrency: t.withItems?.concurrency ?? null,
    retry: t.retry?.count ?? null,
    timeout: t.timeout ?? null,
    delay: t.delay ?? null,
  }));
  const edges: GraphEdge[] = [];
  for (const t of def.tasks)
    t.next.forEach((tr, i) => {
      const label = tr.when === undefined ? 'always' : expressionText(tr.when).trim() || tr.when;
      tr.do.forEach((target, k) => {
        const special = isSpecialTarget(target) ? target : null;
        edges.push({
          id: `${t.name}:${i}:${k}`,
          from: t.name,
          to: special === 'retry' ? t.name : special ? null : target,
          special,
          transition: i,
          condition: tr.when ?? null,
          label,
          publish: tr.publish.map((p) => p.name),
        });
      });
    });
  return { nodes, edges };
}

export interface LiveNodeState {
  /** Status of the latest entry of the task; `not_run` when it never ran, `waiting_join` at a join. */
  status: string;
  /** How many times the task was entered. */
  entries: number;
  latest: string | null;
  run_key: string | null;
  attempt: number | null;
  started_at: string | null;
  finished_at: string | null;
  items: { total: number; succeeded: number; failed: number; running: number; pending: number } | null;
  /** Inbound tasks that arrived at a join not yet complete. */
  join_arrived: string[];
}

export interface LiveGraph {
  status: string;
  nodes: (GraphNode & { state: LiveNodeState })[];
  edges: (GraphEdge & { taken: number })[];
}

/** The graph with the live state of one execution on each node and how often each edge was taken. */
export function liveGraph(def: WorkflowDefinition, state: WorkflowState): LiveGraph {
  const g = buildGraph(def);
  const taken = new Map<string, number>();
  for (const inst of Object.values(state.instances))
    for (const from of inst.from)
      taken.set(`${from}>${inst.task}`, (taken.get(`${from}>${inst.task}`) ?? 0) + 1);
  const nodes = g.nodes.map((n) => {
    const key = state.latest[n.id];
    const inst = key ? state.instances[key] : undefined;
    const arrived = state.joins[n.id] ?? [];
    const s: LiveNodeState = {
      status: inst ? inst.status : arrived.length > 0 ? 'waiting_join' : 'not_run',
      entries: state.seq[n.id] ?? 0,
      latest: key ?? null,
      run_key: null,
      attempt: null,
      started_at: inst?.startedAt ?? null,
      finished_at: inst?.finishedAt ?? null,
      items: null,
      join_arrived: [...arrived],
    };
    if (inst && !inst.items) {
      const slot = state.runs[inst.key];
      if (slot) {
        s.run_key = runKeyOf(slotKey(inst.key), slot.attempt);
        s.attempt = slot.attempt;
      }
    }
    if (inst?.items) {
      const c = inst.counts;
      const running =
        (c.running ?? 0) + (c.asking ?? 0) + (c.paused ?? 0) + (c.waiting ?? 0) + (c.queued ?? 0);
      const succeeded = c.succeeded ?? 0;
      const failed = (c.failed ?? 0) + (c.timeout ?? 0) + (c.canceled ?? 0);
      s.items = {
        total: inst.items.count,
        succeeded,
        failed,
        running,
        pending: Math.max(0, inst.items.count - succeeded - failed - running),
      };
    }
    return { ...n, state: s };
  });
  const edges = g.edges.map((e) => ({
    ...e,
    taken: e.to && !e.special ? (taken.get(`${e.from}>${e.to}`) ?? 0) : 0,
  }));
  return { status: state.status, nodes, edges };
}
