/**
 * The workflow language: its types, and the parser that turns a plain object (a parsed workflow file,
 * or the API resource's `definition` with its `param_schema`) into a checked `WorkflowDefinition`.
 * The top level (ref, label, version, parameters, output…) is read by `file-format.ts`, so a file
 * and the API agree; the tasks are read here, in detail.
 *
 * The parser checks shape and types and reports every problem with the task name, a path and a
 * message; it never throws on user input. Meaning (targets, expressions, reachability, loops…) is
 * checked by `validate.ts`.
 */
import { isRef } from '../domain/refs.ts';
import { type FormatProblem, suggest, workflowFileToResource } from './file-format.ts';

export { suggest };

/** Targets of `do` that are commands to the engine rather than task names. */
export const SPECIAL_TARGETS = ['fail', 'noop', 'retry'] as const;
export type SpecialTarget = (typeof SPECIAL_TARGETS)[number];
export const isSpecialTarget = (s: string): s is SpecialTarget =>
  (SPECIAL_TARGETS as readonly string[]).includes(s);

/** Names a task may not take (the special targets, and `continue`, kept for clarity). */
const RESERVED_NAMES = new Set<string>([...SPECIAL_TARGETS, 'continue']);

export const TASK_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,99}$/;
export const VAR_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

/** Maximum automatic retries of one run, and the default for the `retry` target. */
export const MAX_RETRY_COUNT = 100;
export const DEFAULT_RETRY_TARGET_LIMIT = 3;

export type JsonObject = { [key: string]: unknown };

/** One `name: value` of a `publish` list (values are templates, rendered in order). */
export interface PublishEntry {
  name: string;
  value: unknown;
}

export interface Transition {
  /** A condition (`{{ … }}` template or bare expression); absent = on completion, whatever the status. */
  when?: string;
  publish: PublishEntry[];
  /** Task names and special targets, in order; several task names run in parallel. */
  do: string[];
}

export interface WithItems {
  /** An expression giving a list, or a literal list. */
  items: string | unknown[];
  /** How many items run at once; absent = all at once. */
  concurrency?: number;
  /** Stop starting new items after the first failed item (default false: every item runs). */
  failFast: boolean;
}

export type Backoff = 'constant' | 'linear' | 'exponential';
export const BACKOFFS: readonly Backoff[] = ['constant', 'linear', 'exponential'];

export interface RetryPolicy {
  count: number;
  /** Seconds before the first retry (0 = at once). */
  delay: number;
  backoff: Backoff;
  maxDelay?: number;
  /** Condition for retrying; absent = `failed()` (a failure, including a timeout). */
  when?: string;
}

export interface TaskDefinition {
  name: string;
  description?: string;
  action: string;
  input: JsonObject;
  next: Transition[];
  join?: 'all' | number;
  withItems?: WithItems;
  retry?: RetryPolicy;
  /** Seconds a run may take before it is timed out. */
  timeout?: number;
  /** Seconds to wait before the task starts. */
  delay?: number;
}

export interface WorkflowDefinition {
  ref?: string;
  label?: string;
  description?: string;
  version?: string;
  /** JSON Schema of the parameters (the flat form is converted). */
  parameters?: JsonObject;
  /** Initial variables; values are templates rendered in order at start. */
  vars: JsonObject;
  tasks: TaskDefinition[];
  /** The workflow's output: templates rendered when it succeeds. */
  outputMap?: JsonObject;
  /** JSON Schema of the output, when the file declares one (informative: the engine does not enforce it). */
  outputSchema?: JsonObject;
}

export type Severity = 'error' | 'warning';

/** One problem in a definition: where (task name, path) and what. */
export interface WorkflowProblem {
  task?: string;
  path: string;
  message: string;
  severity: Severity;
}

export type ParseResult =
  | { ok: true; definition: WorkflowDefinition; problems: WorkflowProblem[] }
  | { ok: false; problems: WorkflowProblem[] };

const TASK_KEYS = [
  'name',
  'description',
  'action',
  'input',
  'next',
  'join',
  'with_items',
  'concurrency',
  'retry',
  'timeout',
  'delay',
] as const;
const TRANSITION_KEYS = ['when', 'publish', 'do'] as const;
const WITH_ITEMS_KEYS = ['items', 'concurrency', 'fail_fast'] as const;
const RETRY_KEYS = ['count', 'delay', 'backoff', 'max_delay', 'when'] as const;

/** Keys starting with `x-` or `__` are annotations (UI layout, tooling) and are ignored. */
const isAnnotation = (k: string): boolean => k.startsWith('x-') || k.startsWith('__');

export const isPlainObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;

class Collector {
  readonly problems: WorkflowProblem[] = [];
  error(path: string, message: string, task?: string): void {
    this.problems.push(
      task === undefined ? { path, message, severity: 'error' } : { task, path, message, severity: 'error' },
    );
  }
  warn(path: string, message: string, task?: string): void {
    this.problems.push(
      task === undefined
        ? { path, message, severity: 'warning' }
        : { task, path, message, severity: 'warning' },
    );
  }
  unknownKeys(obj: JsonObject, known: readonly string[], path: string, task?: string): void {
    for (const k of Object.keys(obj)) {
      if (known.includes(k) || isAnnotation(k)) continue;
      const s = suggest(k, known);
      this.error(
        path ? `${path}.${k}` : k,
        `unknown key '${k}'${s ? ` (did you mean '${s}'?)` : ''}; allowed: ${known.join(', ')}`,
        task,
      );
    }
  }
}

function optString(
  c: Collector,
  obj: JsonObject,
  key: string,
  path: string,
  task?: string,
): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    c.error(path, `must be a string, got ${describe(v)}`, task);
    return undefined;
  }
  return v;
}

function seconds(
  c: Collector,
  v: unknown,
  path: string,
  task: string | undefined,
  opts: { allowZero: boolean },
): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    c.error(path, `must be a number of seconds, got ${describe(v)}`, task);
    return undefined;
  }
  if (v < 0 || (!opts.allowZero && v === 0)) {
    c.error(path, `must be ${opts.allowZero ? 'zero or more' : 'more than zero'} seconds, got ${v}`, task);
    return undefined;
  }
  if (v > 366 * 24 * 3600) {
    c.error(path, `must be at most one year (31622400 seconds), got ${v}`, task);
    return undefined;
  }
  return v;
}

function positiveInt(
  c: Collector,
  v: unknown,
  path: string,
  task: string | undefined,
  max: number,
): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    c.error(path, `must be a whole number from 1 to ${max}, got ${JSON.stringify(v)}`, task);
    return undefined;
  }
  return v;
}

/** A condition: a string (template or bare expression), or a boolean written directly. */
function condition(c: Collector, v: unknown, path: string, task?: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v !== 'string' || v.trim() === '') {
    c.error(path, `must be a condition such as "{{ succeeded() }}", got ${describe(v)}`, task);
    return undefined;
  }
  return v;
}

/** `publish` (and `output_map` in list form): a mapping, or a list of one-key mappings. */
function entriesOf(
  c: Collector,
  v: unknown,
  path: string,
  task: string | undefined,
  what: string,
): PublishEntry[] {
  if (v === undefined || v === null) return [];
  const out: PublishEntry[] = [];
  const add = (name: string, value: unknown, p: string) => {
    if (!VAR_NAME_PATTERN.test(name)) {
      c.error(
        p,
        `'${name}' is not a valid ${what} name (letters, digits and _; not starting with a digit)`,
        task,
      );
      return;
    }
    if (out.some((e) => e.name === name)) c.warn(p, `'${name}' is set twice; the last value wins`, task);
    out.push({ name, value });
  };
  if (Array.isArray(v)) {
    v.forEach((e, i) => {
      if (!isPlainObject(e) || Object.keys(e).length !== 1) {
        c.error(`${path}[${i}]`, `each entry must be a one-key mapping such as {name: "{{ … }}"}`, task);
        return;
      }
      const [k, val] = Object.entries(e)[0]!;
      add(k, val, `${path}[${i}].${k}`);
    });
    return out;
  }
  if (isPlainObject(v)) {
    for (const [k, val] of Object.entries(v)) add(k, val, `${path}.${k}`);
    return out;
  }
  c.error(path, `must be a mapping or a list of one-key mappings, got ${describe(v)}`, task);
  return out;
}

function targets(c: Collector, v: unknown, path: string, task: string): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v;
  if (!Array.isArray(list)) {
    c.error(path, `must be a task name or a list of task names, got ${describe(v)}`, task);
    return [];
  }
  const out: string[] = [];
  list.forEach((t, i) => {
    if (typeof t !== 'string' || t.trim() === '') {
      c.error(`${path}[${i}]`, `must be a task name, got ${describe(t)}`, task);
      return;
    }
    if (out.includes(t)) {
      c.warn(`${path}[${i}]`, `'${t}' is listed twice`, task);
      return;
    }
    out.push(t.trim());
  });
  return out;
}

function parseTransition(c: Collector, raw: unknown, path: string, task: string): Transition | undefined {
  if (!isPlainObject(raw)) {
    c.error(
      path,
      `a transition must be a mapping with 'when', 'publish' and 'do', got ${describe(raw)}`,
      task,
    );
    return undefined;
  }
  c.unknownKeys(raw, TRANSITION_KEYS, path, task);
  const when = condition(c, raw.when, `${path}.when`, task);
  const publish = entriesOf(c, raw.publish, `${path}.publish`, task, 'variable');
  const dos = targets(c, raw.do, `${path}.do`, task);
  return when === undefined ? { publish, do: dos } : { when, publish, do: dos };
}

function parseWithItems(c: Collector, raw: JsonObject, path: string, task: string): WithItems | undefined {
  const v = raw.with_items;
  const taskConcurrency = positiveInt(c, raw.concurrency, `${path}.concurrency`, task, 100_000);
  if (v === undefined || v === null) {
    if (raw.concurrency !== undefined)
      c.error(`${path}.concurrency`, `'concurrency' needs 'with_items'`, task);
    return undefined;
  }
  if (typeof v === 'string' || Array.isArray(v)) {
    const w: WithItems = { items: v, failFast: false };
    if (taskConcurrency !== undefined) w.concurrency = taskConcurrency;
    return w;
  }
  if (!isPlainObject(v)) {
    c.error(
      `${path}.with_items`,
      `must be an expression giving a list, or {items, concurrency}, got ${describe(v)}`,
      task,
    );
    return undefined;
  }
  c.unknownKeys(v, WITH_ITEMS_KEYS, `${path}.with_items`, task);
  const items = v.items;
  if (typeof items !== 'string' && !Array.isArray(items)) {
    c.error(
      `${path}.with_items.items`,
      `must be an expression giving a list, or a list, got ${describe(items)}`,
      task,
    );
    return undefined;
  }
  const inner = positiveInt(c, v.concurrency, `${path}.with_items.concurrency`, task, 100_000);
  if (inner !== undefined && taskConcurrency !== undefined)
    c.error(`${path}.concurrency`, `concurrency is given twice (here and in with_items)`, task);
  if (v.fail_fast !== undefined && typeof v.fail_fast !== 'boolean')
    c.error(`${path}.with_items.fail_fast`, `must be true or false, got ${describe(v.fail_fast)}`, task);
  const w: WithItems = { items, failFast: v.fail_fast === true };
  const conc = inner ?? taskConcurrency;
  if (conc !== undefined) w.concurrency = conc;
  return w;
}

function parseRetry(c: Collector, v: unknown, path: string, task: string): RetryPolicy | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) {
    c.error(path, `must be a mapping {count, delay, backoff, max_delay, when}, got ${describe(v)}`, task);
    return undefined;
  }
  c.unknownKeys(v, RETRY_KEYS, path, task);
  const before = c.problems.length;
  let count = 0;
  if (v.count === undefined) c.error(`${path}.count`, `'count' is required (how many times to retry)`, task);
  else if (
    typeof v.count !== 'number' ||
    !Number.isInteger(v.count) ||
    v.count < 1 ||
    v.count > MAX_RETRY_COUNT
  )
    c.error(
      `${path}.count`,
      `must be a whole number from 1 to ${MAX_RETRY_COUNT}, got ${JSON.stringify(v.count)}`,
      task,
    );
  else count = v.count;
  const delay = seconds(c, v.delay, `${path}.delay`, task, { allowZero: true }) ?? 0;
  let backoff: Backoff = 'constant';
  if (v.backoff !== undefined) {
    if (typeof v.backoff === 'string' && (BACKOFFS as readonly string[]).includes(v.backoff))
      backoff = v.backoff as Backoff;
    else
      c.error(
        `${path}.backoff`,
        `must be one of ${BACKOFFS.join(', ')}, got ${JSON.stringify(v.backoff)}`,
        task,
      );
  }
  const maxDelay = seconds(c, v.max_delay, `${path}.max_delay`, task, { allowZero: false });
  if (maxDelay !== undefined && maxDelay < delay)
    c.error(`${path}.max_delay`, `max_delay (${maxDelay}) is smaller than delay (${delay})`, task);
  if (maxDelay !== undefined && backoff === 'constant')
    c.warn(`${path}.max_delay`, `max_delay has no effect with constant backoff`, task);
  const when = condition(c, v.when, `${path}.when`, task);
  if (c.problems.slice(before).some((p) => p.severity === 'error')) return undefined;
  const r: RetryPolicy = { count, delay, backoff };
  if (maxDelay !== undefined) r.maxDelay = maxDelay;
  if (when !== undefined) r.when = when;
  return r;
}

function parseJoin(c: Collector, v: unknown, path: string, task: string): 'all' | number | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === 'all') return 'all';
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1) return v;
  c.error(
    path,
    `must be 'all' or a whole number of inbound branches (1 or more), got ${JSON.stringify(v)}`,
    task,
  );
  return undefined;
}

function parseTask(c: Collector, raw: unknown, i: number): TaskDefinition | undefined {
  const path = `tasks[${i}]`;
  if (!isPlainObject(raw)) {
    c.error(path, `a task must be a mapping with at least 'name' and 'action', got ${describe(raw)}`);
    return undefined;
  }
  const before = c.problems.length;
  let name = typeof raw.name === 'string' ? raw.name : undefined;
  if (name === undefined) {
    c.error(
      `${path}.name`,
      raw.name === undefined ? `'name' is required` : `must be a string, got ${describe(raw.name)}`,
    );
    name = `#${i}`;
  } else if (!TASK_NAME_PATTERN.test(name)) {
    c.error(
      `${path}.name`,
      `'${name}' is not a valid task name (letters, digits, _ and -; starting with a letter or _; at most 100)`,
      name,
    );
  } else if (RESERVED_NAMES.has(name)) {
    c.error(`${path}.name`, `'${name}' is reserved for the engine and cannot name a task`, name);
  }
  const task = name;
  c.unknownKeys(raw, TASK_KEYS, path, task);
  const description = optString(c, raw, 'description', `${path}.description`, task);
  let action = '';
  if (raw.action === undefined)
    c.error(`${path}.action`, `'action' is required (an action ref such as core.echo)`, task);
  else if (typeof raw.action !== 'string' || !isRef(raw.action))
    c.error(
      `${path}.action`,
      `must be an action ref such as 'core.echo', got ${JSON.stringify(raw.action)}`,
      task,
    );
  else action = raw.action;
  let input: JsonObject = {};
  if (raw.input !== undefined && raw.input !== null) {
    if (isPlainObject(raw.input)) input = raw.input;
    else
      c.error(
        `${path}.input`,
        `must be a mapping of parameter names to values, got ${describe(raw.input)}`,
        task,
      );
  }
  const next: Transition[] = [];
  if (raw.next !== undefined && raw.next !== null) {
    if (!Array.isArray(raw.next))
      c.error(
        `${path}.next`,
        `must be a list of transitions [{when, publish, do}], got ${describe(raw.next)}`,
        task,
      );
    else
      raw.next.forEach((t, j) => {
        const tr = parseTransition(c, t, `${path}.next[${j}]`, task);
        if (tr) next.push(tr);
      });
  }
  const join = parseJoin(c, raw.join, `${path}.join`, task);
  const withItems = parseWithItems(c, raw, path, task);
  const retry = parseRetry(c, raw.retry, `${path}.retry`, task);
  const timeout = seconds(c, raw.timeout, `${path}.timeout`, task, { allowZero: false });
  const delay = seconds(c, raw.delay, `${path}.delay`, task, { allowZero: true });
  if (c.problems.slice(before).some((p) => p.severity === 'error')) return undefined;
  const t: TaskDefinition = { name: task, action, input, next };
  if (description !== undefined) t.description = description;
  if (join !== undefined) t.join = join;
  if (withItems !== undefined) t.withItems = withItems;
  if (retry !== undefined) t.retry = retry;
  if (timeout !== undefined) t.timeout = timeout;
  if (delay !== undefined && delay > 0) t.delay = delay;
  return t;
}

/**
 * Parses a workflow from a plain object: a whole workflow document (`ref`, `parameters`, `vars`,
 * `tasks`, `output_map`…) or the API's `definition` field (`vars`, `tasks`, `output_map`).
 * Structural problems are errors; the result is `ok` only when there is none.
 */
export function parseWorkflow(raw: unknown): ParseResult {
  const c = new Collector();
  if (!isPlainObject(raw)) {
    c.error('', `a workflow must be a mapping with a 'tasks' list, got ${describe(raw)}`);
    return { ok: false, problems: c.problems };
  }
  const file = workflowFileToResource(raw);
  const f = file.fields;
  const outputIsMap =
    raw.output !== undefined && raw.output !== null && f.definition.output_map === raw.output;
  // the file format reads the top level; the tasks, vars and output_map are checked here in detail
  for (const p of file.problems) {
    const head = String(p.path[0] ?? '');
    if (head === 'tasks' || head === 'vars' || head === 'output_map' || (head === 'output' && outputIsMap))
      continue;
    c.error(formatPath(p.path), p.message);
  }
  const def: WorkflowDefinition = { vars: {}, tasks: [] };
  if (f.ref !== undefined) def.ref = f.ref;
  if (f.label !== undefined) def.label = f.label;
  if (f.description !== undefined) def.description = f.description;
  if (f.version !== undefined) def.version = f.version;
  if (f.param_schema) def.parameters = f.param_schema;
  if (f.out_schema) def.outputSchema = f.out_schema;
  for (const e of entriesOf(c, raw.vars, 'vars', undefined, 'variable')) def.vars[e.name] = e.value;

  const outputRaw = outputIsMap ? raw.output : raw.output_map;
  if (outputRaw !== undefined && outputRaw !== null) {
    const entries = entriesOf(c, outputRaw, outputIsMap ? 'output' : 'output_map', undefined, 'output');
    def.outputMap = Object.fromEntries(entries.map((e) => [e.name, e.value]));
  }

  // a mapping of names to tasks is accepted (the file format turns it into a list with names)
  const tasks = isPlainObject(raw.tasks) ? f.definition.tasks : raw.tasks;
  if (tasks === undefined || tasks === null) c.error('tasks', `'tasks' is required (a list of tasks)`);
  else if (!Array.isArray(tasks)) c.error('tasks', `must be a list of tasks, got ${describe(tasks)}`);
  else if (tasks.length === 0) c.error('tasks', 'a workflow needs at least one task');
  else {
    const seen = new Map<string, number>();
    tasks.forEach((t: unknown, i: number) => {
      const task = parseTask(c, t, i);
      const name = isPlainObject(t) && typeof t.name === 'string' ? t.name : undefined;
      if (name !== undefined) {
        const first = seen.get(name);
        if (first !== undefined)
          c.error(
            `tasks[${i}].name`,
            `duplicate task name '${name}' (first defined at tasks[${first}])`,
            name,
          );
        else seen.set(name, i);
      }
      if (task) def.tasks.push(task);
    });
  }
  const ok = !c.problems.some((p) => p.severity === 'error');
  return ok ? { ok, definition: def, problems: c.problems } : { ok, problems: c.problems };
}

/** `['parameters', 'x', 'type']` → `parameters.x.type`; numbers become `[i]`. */
function formatPath(path: FormatProblem['path']): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/**
 * The definition of a stored workflow resource: its `definition` (vars, tasks, output_map) with its
 * `param_schema`, parsed the same way as a file.
 */
export function parseWorkflowResource(resource: {
  param_schema?: Record<string, unknown> | null;
  definition: unknown;
}): ParseResult {
  if (!isPlainObject(resource.definition))
    return {
      ok: false,
      problems: [{ path: 'definition', message: 'must be a mapping with a tasks list', severity: 'error' }],
    };
  const raw: JsonObject = { ...resource.definition };
  if (resource.param_schema) raw.parameters = resource.param_schema;
  return parseWorkflow(raw);
}

/** Parses and throws a `WorkflowDefinitionError` listing the problems when the workflow is invalid. */
export function parseWorkflowOrThrow(raw: unknown): WorkflowDefinition {
  const r = parseWorkflow(raw);
  if (!r.ok) throw new WorkflowDefinitionError(r.problems);
  return r.definition;
}

export class WorkflowDefinitionError extends Error {
  readonly problems: WorkflowProblem[];
  constructor(problems: WorkflowProblem[]) {
    const errors = problems.filter((p) => p.severity === 'error');
    const first = errors[0];
    super(
      first
        ? `invalid workflow: ${first.task ? `task '${first.task}': ` : ''}${first.path ? `${first.path}: ` : ''}${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`
        : 'invalid workflow',
    );
    this.name = 'WorkflowDefinitionError';
    this.problems = problems;
  }
}
