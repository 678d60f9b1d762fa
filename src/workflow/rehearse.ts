/**
 * Rehearsal: runs a workflow through the pure engine with mocked task results, on a simulated
 * clock, and reports the task sequence, the final status and output, and how they compare with
 * expectations. Nothing is executed and no time passes: durations, delays, back-offs and timeouts
 * are simulated. Used by `attune workflow test`, `POST /api/v1/workflows/rehearse` and the
 * conformance suite.
 *
 * Mocks, per task, one entry per call (calls are counted in start order: attempts and items too):
 *   {status: succeeded|failed|timeout|canceled, result, duration}   (status defaults to succeeded)
 *   any other value is the result of a succeeded call (wrap it as {result: …} if it looks like the above)
 *   for an inquiry task: {response, by: {user, roles}, duration} or {status: timeout}; a bare value is the answer
 * A list is used call by call and its last entry repeats; a single entry serves every call.
 * A task without mocks succeeds with a null result (an inquiry without mocks waits).
 */
import { parse as parseYaml } from 'yaml';
import { isPlainObject, type WorkflowDefinition, type WorkflowProblem } from './definition.ts';
import { DEFAULT_INQUIRY_ACTIONS, type Environment, start, step } from './engine.ts';
import type { CompletionStatus, StepResult, WorkflowCommand, WorkflowEvent, WorkflowState } from './state.ts';
import { type ActionLookup, validateWorkflow } from './validate.ts';

export interface MockSpec {
  status?: CompletionStatus;
  result?: unknown;
  /** Seconds the run takes (for an inquiry: until the answer arrives). */
  duration?: number;
  response?: unknown;
  by?: { user: string; roles?: string[] };
}

export type RehearsalOperation =
  | { op: 'pause' | 'resume' | 'cancel'; at: number }
  | { op: 'rerun'; at?: number; tasks?: string[]; reset_items?: string[] };

export interface RehearsalExpectation {
  /** The exact sequence of task entries. */
  tasks?: string[];
  status?: string;
  /** The exact output (deep equality). */
  output?: unknown;
  /** Text the error message must contain. */
  error?: string;
  /** Variables that must have these values at the end (others are not compared). */
  vars?: Record<string, unknown>;
  /** How many runs each named task had (attempts and items included). */
  calls?: Record<string, number>;
  /** The rendered input of each call of the named tasks, in call order. */
  inputs?: Record<string, unknown[]>;
  /** How many events the engine rejected (e.g. answers that did not match the response schema). */
  rejections?: number;
  /** When each call of the named tasks started, in seconds since the start, in call order. */
  started_at?: Record<string, number[]>;
  /** Simulated seconds from the start to the end. */
  duration_seconds?: number;
}

export interface RehearsalOptions {
  parameters?: Record<string, unknown>;
  mocks?: Record<string, unknown>;
  operations?: RehearsalOperation[];
  expect?: RehearsalExpectation;
  /** Definitions of sub-workflows by action ref, rehearsed in place of a mock. */
  workflows?: Record<string, unknown>;
  /** Simulated start time (default 2025-01-01T00:00:00Z). */
  start_time?: string;
  max_task_runs?: number;
  inquiry_actions?: string[];
  user?: string;
  keys?: Record<string, unknown>;
  config?: Record<string, unknown>;
  /** Serialise the state to JSON and back between every step (proves it is plain data). */
  round_trip?: boolean;
  /** Deliver every completion, answer and timer event twice; the duplicate must change nothing. */
  check_duplicates?: boolean;
  /** Upper bound of engine steps (default 1,000,000). */
  max_events?: number;
  lookup_action?: ActionLookup;
}

export interface RehearsedRun {
  run_key: string;
  task: string;
  item: number | null;
  attempt: number;
  action: string;
  input: unknown;
  status: string;
  result: unknown;
  /** Seconds since the start of the rehearsal. */
  started_at: number;
  finished_at: number | null;
  kind: 'action' | 'inquiry' | 'workflow';
}

export interface RehearsalReport {
  /** Task entries in order (a task entered twice appears twice). */
  tasks: string[];
  status: string;
  output: unknown;
  error: string | null;
  vars: Record<string, unknown>;
  runs: RehearsedRun[];
  rejections: { at: number; run_key: string | null; reason: string }[];
  /** What the workflow still waits for when it did not finish. */
  waiting: string[];
  problems: WorkflowProblem[];
  duration_seconds: number;
  passed: boolean;
  mismatches: string[];
  /** Reports of rehearsed sub-workflows by run key. */
  children: Record<string, RehearsalReport>;
}

const MOCK_KEYS = ['status', 'result', 'duration', 'response', 'by'];
const STATUSES: CompletionStatus[] = ['succeeded', 'failed', 'timeout', 'canceled'];
const DEFAULT_START = '2025-01-01T00:00:00.000Z';

/** A mock entry in its explicit form (a bare value is the result, or an inquiry's answer). */
function mockSpec(entry: unknown, inquiry: boolean): MockSpec {
  if (
    isPlainObject(entry) &&
    Object.keys(entry).length > 0 &&
    Object.keys(entry).every((k) => MOCK_KEYS.includes(k)) &&
    (entry.status === undefined || STATUSES.includes(entry.status as CompletionStatus))
  )
    return entry as MockSpec;
  return inquiry ? { response: entry } : { result: entry };
}

// ---- a small event queue ordered by time, then by insertion ------------------------------------

interface Pending {
  at: number;
  seq: number;
  event: WorkflowEvent;
  tag?: string;
  dead?: boolean;
}

class EventQueue {
  private heap: Pending[] = [];
  private seq = 0;
  readonly byTag = new Map<string, Pending>();

  push(at: number, event: WorkflowEvent, tag?: string): void {
    const p: Pending = { at, seq: this.seq++, event };
    if (tag) {
      p.tag = tag;
      const old = this.byTag.get(tag);
      if (old) old.dead = true;
      this.byTag.set(tag, p);
    }
    const h = this.heap;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  /** Removes the pending event with this tag; returns it when there was one. */
  cancel(tag: string): Pending | undefined {
    const p = this.byTag.get(tag);
    if (!p) return undefined;
    p.dead = true;
    this.byTag.delete(tag);
    return p;
  }

  pop(): Pending | undefined {
    for (;;) {
      const h = this.heap;
      if (h.length === 0) return undefined;
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
          if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
          if (m === i) break;
          [h[i], h[m]] = [h[m]!, h[i]!];
          i = m;
        }
      }
      if (top.dead) continue;
      if (top.tag !== undefined && this.byTag.get(top.tag) === top) this.byTag.delete(top.tag);
      return top;
    }
  }

  private less(a: Pending, b: Pending): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}

// ---- the rehearsal -----------------------------------------------------------------------------

function loadDefinition(definitionOrYaml: unknown): unknown {
  if (typeof definitionOrYaml !== 'string') return definitionOrYaml;
  return parseYaml(definitionOrYaml);
}

function emptyReport(problems: WorkflowProblem[]): RehearsalReport {
  return {
    tasks: [],
    status: 'invalid',
    output: null,
    error: null,
    vars: {},
    runs: [],
    rejections: [],
    waiting: [],
    problems,
    duration_seconds: 0,
    passed: false,
    mismatches: ['the rehearsal did not run: see problems'],
    children: {},
  };
}

/**
 * Rehearses a workflow (a parsed object, or YAML/JSON text) with mocked task results and compares
 * the outcome with `options.expect` when given.
 */
export function rehearse(definitionOrYaml: unknown, options: RehearsalOptions = {}): RehearsalReport {
  return rehearseAt(definitionOrYaml, options, 0);
}

function rehearseAt(definitionOrYaml: unknown, options: RehearsalOptions, depth: number): RehearsalReport {
  let raw: unknown;
  try {
    raw = loadDefinition(definitionOrYaml);
  } catch (e) {
    return emptyReport([{ path: '', message: `not valid YAML: ${(e as Error).message}`, severity: 'error' }]);
  }
  const inquiryActions = options.inquiry_actions ?? [...DEFAULT_INQUIRY_ACTIONS];
  const v = validateWorkflow(raw, {
    inquiryActions,
    ...(options.lookup_action ? { lookupAction: options.lookup_action } : {}),
  });
  if (!v.ok || !v.definition) return emptyReport(v.problems);
  const def = v.definition;
  const problems = [...v.problems, ...optionProblems(def, options)];
  if (problems.some((p) => p.severity === 'error')) return emptyReport(problems);
  const sim = new Simulation(def, options, inquiryActions, depth);
  const report = sim.run();
  report.problems = problems;
  if (options.expect) compare(report, options.expect, sim.calls, sim.inputs);
  report.passed = report.mismatches.length === 0 && report.problems.every((p) => p.severity !== 'error');
  return report;
}

function optionProblems(def: WorkflowDefinition, o: RehearsalOptions): WorkflowProblem[] {
  const out: WorkflowProblem[] = [];
  const names = new Set(def.tasks.map((t) => t.name));
  const err = (path: string, message: string) => out.push({ path, message, severity: 'error' });
  if (o.parameters !== undefined && !isPlainObject(o.parameters)) err('parameters', 'must be a mapping');
  if (o.mocks !== undefined) {
    if (!isPlainObject(o.mocks)) err('mocks', 'must be a mapping of task names to results');
    else
      for (const [k, entries] of Object.entries(o.mocks)) {
        const task = k.split('.')[0]!;
        if (!names.has(task)) err(`mocks.${k}`, `the workflow has no task '${task}'`);
        if (Array.isArray(entries) && entries.length === 0)
          err(`mocks.${k}`, 'an empty list of mocks; omit it instead');
        const list = Array.isArray(entries) ? entries : [entries];
        list.forEach((e, i) => {
          if (
            isPlainObject(e) &&
            e.status !== undefined &&
            Object.keys(e).every((x) => MOCK_KEYS.includes(x)) &&
            !STATUSES.includes(e.status as CompletionStatus)
          )
            err(`mocks.${k}[${i}].status`, `must be one of ${STATUSES.join(', ')}`);
          if (
            isPlainObject(e) &&
            e.duration !== undefined &&
            (typeof e.duration !== 'number' || e.duration < 0)
          )
            err(`mocks.${k}[${i}].duration`, 'must be zero or more seconds');
          if (
            isPlainObject(e) &&
            e.duration !== undefined &&
            !Object.keys(e).every((x) => MOCK_KEYS.includes(x))
          )
            err(
              `mocks.${k}[${i}]`,
              `mixes 'duration' with result fields (${Object.keys(e)
                .filter((x) => !MOCK_KEYS.includes(x))
                .join(', ')}); write {result: {...}, duration: …}`,
            );
        });
      }
  }
  (o.operations ?? []).forEach((op, i) => {
    if (!isPlainObject(op) || !['pause', 'resume', 'cancel', 'rerun'].includes(op.op as string))
      err(`operations[${i}]`, `must be {op: pause|resume|cancel|rerun, at: seconds}`);
    else if (op.op !== 'rerun' && (typeof op.at !== 'number' || op.at < 0))
      err(`operations[${i}].at`, `'${op.op}' needs 'at' (seconds since the start)`);
  });
  return out;
}

class Simulation {
  private readonly q = new EventQueue();
  private readonly t0: number;
  private now: number;
  private state!: WorkflowState;
  private readonly report: RehearsalReport;
  readonly calls = new Map<string, number>();
  readonly inputs = new Map<string, unknown[]>();
  private readonly runs = new Map<string, RehearsedRun>();
  private readonly seenInstances = new Set<string>();
  private readonly env: Environment;
  private readonly inquiryTasks = new Map<string, string>();
  private readonly answers = new Map<string, number>();

  constructor(
    private readonly def: WorkflowDefinition,
    private readonly o: RehearsalOptions,
    private readonly inquiryActions: string[],
    private readonly depth: number,
  ) {
    this.t0 = Date.parse(o.start_time ?? DEFAULT_START);
    if (!Number.isFinite(this.t0)) this.t0 = Date.parse(DEFAULT_START);
    this.now = this.t0;
    this.env = {};
    if (o.keys) this.env.keys = o.keys;
    if (o.config) this.env.config = o.config;
    this.report = { ...emptyReport([]), status: 'running', mismatches: [] };
  }

  private secs(ms: number): number {
    return Math.round(ms - this.t0) / 1000;
  }

  run(): RehearsalReport {
    const r = start(this.def, this.o.parameters ?? {}, {
      executionId: `rehearsal-${this.depth}`,
      now: this.now,
      user: this.o.user ?? 'rehearsal',
      ...(this.o.max_task_runs !== undefined ? { maxTaskRuns: this.o.max_task_runs } : {}),
      inquiryActions: this.inquiryActions,
      env: this.env,
    });
    this.absorb(r);
    const reruns: RehearsalOperation[] = [];
    for (const op of this.o.operations ?? []) {
      if (op.op === 'rerun') reruns.push(op);
      else this.q.push(this.t0 + op.at * 1000, { type: op.op, now: 0 });
    }
    const max = this.o.max_events ?? 1_000_000;
    let steps = 0;
    for (;;) {
      const p = this.q.pop();
      if (!p) {
        const op = reruns.shift();
        if (op?.op !== 'rerun') break;
        if (op.at !== undefined) this.now = Math.max(this.now, this.t0 + op.at * 1000);
        const ev: WorkflowEvent = { type: 'rerun', now: this.now };
        if (op.tasks) ev.tasks = op.tasks;
        if (op.reset_items) ev.resetItems = op.reset_items;
        this.apply(ev);
        continue;
      }
      if (++steps > max) {
        this.report.mismatches.push(`the rehearsal stopped after ${max} events (an endless workflow?)`);
        break;
      }
      this.now = Math.max(this.now, p.at);
      this.apply({ ...p.event, now: this.now } as WorkflowEvent);
    }
    const s = this.state;
    const rep = this.report;
    rep.status = s.status;
    rep.output = s.output;
    rep.vars = s.vars;
    rep.duration_seconds = this.secs(this.now);
    rep.runs = [...this.runs.values()];
    if (s.status === 'failed') {
      const first = s.errors[0];
      rep.error = first
        ? `${first.message}${s.errors.length > 1 ? ` (and ${s.errors.length - 1} more)` : ''}`
        : 'the workflow failed';
    }
    for (const key of Object.keys(s.open)) {
      const inst = s.instances[key]!;
      const what =
        (inst.counts.asking ?? 0) > 0
          ? 'an inquiry waits for an answer'
          : inst.status === 'pending'
            ? 'waits for the workflow to resume'
            : inst.status;
      rep.waiting.push(`${key}: ${what}`);
    }
    for (const [task, arrived] of Object.entries(s.joins))
      rep.waiting.push(`${task}: join waits (arrived: ${arrived.join(', ')})`);
    return rep;
  }

  private apply(event: WorkflowEvent): void {
    // with round_trip, the engine only ever sees state that went through JSON
    const input = this.o.round_trip ? (JSON.parse(JSON.stringify(this.state)) as WorkflowState) : this.state;
    const r = step(this.def, input, event, this.env);
    if (r.outcome === 'rejected') {
      const runKey = 'runKey' in event ? event.runKey : null;
      this.report.rejections.push({ at: this.secs(this.now), run_key: runKey, reason: r.reason ?? '' });
      if (event.type === 'inquiry_responded') this.nextAnswer(event.runKey);
      return;
    }
    if (r.outcome === 'applied' && 'runKey' in event) {
      const run = this.runs.get(event.runKey);
      if (run && run.finished_at === null) {
        const st = r.state.runs[event.runKey.replace(/@\d+$/, '')];
        if (event.type === 'task_completed') this.finishRun(run, event.status, event.result ?? null);
        else if (event.type === 'inquiry_responded') this.finishRun(run, 'succeeded', st?.result ?? null);
        else if (event.type === 'inquiry_timeout') this.finishRun(run, 'timeout', null);
      }
    }
    this.absorb(r);
    if (
      this.o.check_duplicates &&
      r.outcome === 'applied' &&
      event.type !== 'pause' &&
      event.type !== 'resume'
    ) {
      if (event.type === 'cancel' || event.type === 'rerun') return;
      const again = step(this.def, this.state, event, this.env);
      if (again.outcome !== 'ignored' || again.commands.length > 0)
        this.report.mismatches.push(
          `a duplicate ${event.type} event (${'runKey' in event ? event.runKey : 'key' in event ? event.key : ''}) was not ignored: ${again.outcome}, ${again.commands.length} commands`,
        );
    }
  }

  private finishRun(run: RehearsedRun, status: string, result: unknown): void {
    run.status = status;
    run.result = result;
    run.finished_at = this.secs(this.now);
  }

  private absorb(r: StepResult): void {
    this.state = r.state;
    for (const key of r.changed.instances)
      if (!this.seenInstances.has(key)) {
        this.seenInstances.add(key);
        const inst = r.state.instances[key];
        if (inst) this.report.tasks.push(inst.task);
      }
    for (const c of r.commands) this.carryOut(c);
  }

  private takeMock(task: string): unknown | undefined {
    const all = this.o.mocks;
    if (!all || !Object.hasOwn(all, task)) return undefined;
    const entries = all[task];
    const n = this.calls.get(task) ?? 0;
    if (!Array.isArray(entries)) return entries;
    return entries[Math.min(n, entries.length - 1)];
  }

  private countCall(task: string, input: unknown): void {
    this.calls.set(task, (this.calls.get(task) ?? 0) + 1);
    const list = this.inputs.get(task) ?? [];
    list.push(input);
    this.inputs.set(task, list);
  }

  private record(
    c: Extract<WorkflowCommand, { type: 'start_task' | 'create_inquiry' }>,
    kind: RehearsedRun['kind'],
  ) {
    this.runs.set(c.runKey, {
      run_key: c.runKey,
      task: c.task,
      item: c.itemIndex ?? null,
      attempt: c.attempt,
      action: c.action,
      input: c.input,
      status: kind === 'inquiry' ? 'asking' : 'running',
      result: null,
      started_at: this.secs(this.now),
      finished_at: null,
      kind,
    });
  }

  private carryOut(c: WorkflowCommand): void {
    switch (c.type) {
      case 'start_task': {
        const mock = this.takeMock(c.task);
        const child = this.o.workflows?.[c.action];
        if (mock === undefined && child !== undefined && this.depth < 10) {
          this.record(c, 'workflow');
          this.countCall(c.task, c.input);
          this.subWorkflow(c, child);
          return;
        }
        this.record(c, 'action');
        this.countCall(c.task, c.input);
        const spec = mock === undefined ? {} : mockSpec(mock, false);
        const at = this.now + (spec.duration ?? 0) * 1000;
        this.q.push(
          at,
          {
            type: 'task_completed',
            runKey: c.runKey,
            status: spec.status ?? 'succeeded',
            result: spec.result ?? null,
            now: 0,
          },
          `run:${c.runKey}`,
        );
        return;
      }
      case 'create_inquiry':
        this.record(c, 'inquiry');
        this.countCall(c.task, c.input);
        this.inquiryTasks.set(c.runKey, c.task);
        this.nextAnswer(c.runKey, true);
        return;
      case 'cancel_task': {
        const pending = this.q.cancel(`run:${c.runKey}`);
        const run = this.runs.get(c.runKey);
        if (run && run.finished_at === null) {
          if (c.reason === 'timeout') this.finishRun(run, 'timeout', null);
          else if (run.kind === 'inquiry') this.finishRun(run, 'canceled', null);
        }
        if (pending && run?.kind !== 'inquiry' && c.reason !== 'timeout')
          this.q.push(
            this.now,
            { type: 'task_completed', runKey: c.runKey, status: 'canceled', now: 0 },
            `run:${c.runKey}`,
          );
        return;
      }
      case 'schedule_timer':
        this.q.push(Date.parse(c.at), { type: 'timer_fired', key: c.key, now: 0 }, `timer:${c.key}`);
        return;
      case 'cancel_timer':
        this.q.cancel(`timer:${c.key}`);
        return;
      default:
        return;
    }
  }

  /**
   * Schedules the next mocked answer of an inquiry: when it opens (a list's last entry repeats for
   * later inquiries of the task), and after a rejected answer (only entries not used yet).
   */
  private nextAnswer(runKey: string, opening = false): void {
    const task = this.inquiryTasks.get(runKey);
    const entries = task === undefined ? undefined : this.o.mocks?.[task];
    if (task === undefined || entries === undefined) return;
    const n = this.answers.get(task) ?? 0;
    let entry: unknown;
    if (Array.isArray(entries)) {
      if (n < entries.length) entry = entries[n];
      else if (opening) entry = entries[entries.length - 1];
      else return;
    } else if (opening) entry = entries;
    else return;
    this.answers.set(task, n + 1);
    const spec = mockSpec(entry, true);
    const at = this.now + (spec.duration ?? 0) * 1000;
    if (spec.status === 'timeout')
      this.q.push(at, { type: 'inquiry_timeout', runKey, now: 0 }, `run:${runKey}`);
    else if (spec.status === 'failed' || spec.status === 'canceled')
      this.q.push(
        at,
        { type: 'task_completed', runKey, status: spec.status, result: spec.result ?? null, now: 0 },
        `run:${runKey}`,
      );
    else {
      const ev: WorkflowEvent = {
        type: 'inquiry_responded',
        runKey,
        response: spec.response ?? spec.result ?? null,
        now: 0,
      };
      if (spec.by) ev.by = spec.by;
      this.q.push(at, ev, `run:${runKey}`);
    }
  }

  private subWorkflow(c: Extract<WorkflowCommand, { type: 'start_task' }>, child: unknown): void {
    const prefix = `${c.task}.`;
    const mocks: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.o.mocks ?? {}))
      if (k.startsWith(prefix)) mocks[k.slice(prefix.length)] = v;
    const opts: RehearsalOptions = {
      parameters: isPlainObject(c.input) ? c.input : {},
      mocks,
      start_time: new Date(this.now).toISOString(),
      ...(this.o.workflows ? { workflows: this.o.workflows } : {}),
      ...(this.o.round_trip ? { round_trip: true } : {}),
      inquiry_actions: this.inquiryActions,
    };
    const rep = rehearseAt(child, opts, this.depth + 1);
    this.report.children[c.runKey] = rep;
    const status: CompletionStatus =
      rep.status === 'succeeded' ? 'succeeded' : rep.status === 'canceled' ? 'canceled' : 'failed';
    const result =
      status === 'succeeded' ? rep.output : { error: rep.error ?? `the sub-workflow ended ${rep.status}` };
    this.q.push(
      this.now + rep.duration_seconds * 1000,
      { type: 'task_completed', runKey: c.runKey, status, result, now: 0 },
      `run:${c.runKey}`,
    );
  }
}

// ---- expectations ------------------------------------------------------------------------------

/** JSON with sorted keys, for order-independent deep comparison. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isPlainObject(v))
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v ?? null);
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s !== undefined && s.length > 300 ? `${s.slice(0, 300)}…` : String(s);
};

function compare(
  rep: RehearsalReport,
  e: RehearsalExpectation,
  calls: Map<string, number>,
  inputs: Map<string, unknown[]>,
): void {
  const m = rep.mismatches;
  if (e.tasks !== undefined && canonical(e.tasks) !== canonical(rep.tasks))
    m.push(`tasks: expected ${show(e.tasks)}, got ${show(rep.tasks)}`);
  if (e.status !== undefined && e.status !== rep.status)
    m.push(
      `status: expected ${e.status}, got ${rep.status}${rep.error ? ` (${rep.error})` : ''}${rep.waiting.length ? ` (waiting: ${rep.waiting.join('; ')})` : ''}`,
    );
  if (e.output !== undefined && canonical(e.output) !== canonical(rep.output))
    m.push(`output: expected ${show(e.output)}, got ${show(rep.output)}`);
  if (e.error !== undefined && !(rep.error ?? '').includes(e.error))
    m.push(`error: expected a message containing ${show(e.error)}, got ${show(rep.error)}`);
  for (const [k, v] of Object.entries(e.vars ?? {}))
    if (canonical(v) !== canonical(rep.vars[k]))
      m.push(`vars.${k}: expected ${show(v)}, got ${show(rep.vars[k])}`);
  for (const [k, n] of Object.entries(e.calls ?? {}))
    if ((calls.get(k) ?? 0) !== n) m.push(`calls.${k}: expected ${n}, got ${calls.get(k) ?? 0}`);
  for (const [k, list] of Object.entries(e.inputs ?? {}))
    if (canonical(list) !== canonical(inputs.get(k) ?? []))
      m.push(`inputs.${k}: expected ${show(list)}, got ${show(inputs.get(k) ?? [])}`);
  for (const [k, list] of Object.entries(e.started_at ?? {})) {
    const got = rep.runs.filter((r) => r.task === k).map((r) => r.started_at);
    if (canonical(list) !== canonical(got))
      m.push(`started_at.${k}: expected ${show(list)}, got ${show(got)}`);
  }
  if (e.duration_seconds !== undefined && e.duration_seconds !== rep.duration_seconds)
    m.push(`duration_seconds: expected ${e.duration_seconds}, got ${rep.duration_seconds}`);
  if (e.rejections !== undefined && e.rejections !== rep.rejections.length)
    m.push(
      `rejections: expected ${e.rejections}, got ${rep.rejections.length}${rep.rejections.length ? ` (${rep.rejections.map((r) => r.reason).join('; ')})` : ''}`,
    );
}
