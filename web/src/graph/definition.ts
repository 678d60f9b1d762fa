/**
 * The task graph of a workflow definition as the API stores it, read in the browser: one node per
 * task, one edge per transition target, as `GET /api/v1/executions/{id}/graph` describes a run.
 * Tolerant by design: it draws what it can of a definition that is still being edited.
 */
import type { GraphEdge, GraphNode, JsonObject } from '../api/types.ts';

const SPECIAL = new Set(['fail', 'noop', 'retry']);
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function tasksOf(def: JsonObject): JsonObject[] {
  const t = def.tasks;
  if (Array.isArray(t)) return t.filter(isObject);
  if (isObject(t)) return Object.entries(t).map(([name, v]) => ({ name, ...(isObject(v) ? v : {}) }));
  return [];
}

function targetsOf(d: unknown): string[] {
  if (typeof d === 'string')
    return d
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (Array.isArray(d)) return d.flatMap(targetsOf);
  return [];
}

/** The condition's text without its braces, for an edge label. */
export function conditionLabel(when: unknown): string {
  if (when === undefined || when === null) return 'always';
  const s = String(when).trim();
  const m = /^\{\{\s*([\s\S]*?)\s*\}\}$/.exec(s);
  return m ? m[1]! : s;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function graphOfDefinition(def: JsonObject): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const tasks = tasksOf(def);
  const names = new Set(tasks.map((t) => String(t.name ?? '')));
  const inbound = new Set<string>();
  const edges: GraphEdge[] = [];
  for (const t of tasks) {
    const from = String(t.name ?? '');
    const next = Array.isArray(t.next) ? t.next : isObject(t.next) ? [t.next] : [];
    next.forEach((tr: unknown, i: number) => {
      if (!isObject(tr)) return;
      const label = conditionLabel(tr.when);
      const publish = Array.isArray(tr.publish)
        ? tr.publish.flatMap((p) => (isObject(p) ? Object.keys(p) : []))
        : isObject(tr.publish)
          ? Object.keys(tr.publish)
          : [];
      targetsOf(tr.do).forEach((target, k) => {
        const special = SPECIAL.has(target) && !names.has(target) ? (target as GraphEdge['special']) : null;
        const to = special === 'retry' ? from : special ? null : target;
        if (to && !special) inbound.add(to);
        edges.push({
          id: `${from}:${i}:${k}`,
          from,
          to,
          special,
          transition: i,
          condition: tr.when === undefined ? null : String(tr.when),
          label,
          publish,
        });
      });
    });
  }
  const anyStart = tasks.some((t) => !inbound.has(String(t.name ?? '')));
  const nodes: GraphNode[] = tasks.map((t, i) => {
    const wi = t.with_items;
    const name = String(t.name ?? `task ${i + 1}`);
    return {
      id: name,
      action: typeof t.action === 'string' ? t.action : '',
      description: typeof t.description === 'string' ? t.description : null,
      start: anyStart ? !inbound.has(name) : i === 0,
      join: t.join === 'all' ? 'all' : num(t.join),
      with_items: wi !== undefined,
      concurrency: num(t.concurrency) ?? (isObject(wi) ? num(wi.concurrency) : null),
      retry: isObject(t.retry) ? num(t.retry.count) : null,
      timeout: num(t.timeout),
      delay: num(t.delay),
    };
  });
  return { nodes, edges };
}
