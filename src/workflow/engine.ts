/**
 * The workflow engine: `start(definition, parameters, context)` and `step(definition, state, event)`
 * each return the new state and the commands to carry out. No I/O, no clock, no randomness: time
 * comes in with every event (`now`), and everything the engine wants done is a command.
 *
 * The state is plain JSON. For speed, `step` updates the state it is given in place and returns it
 * (a 10,000-item fan-out must not copy the state on every item); a caller that needs the previous
 * state keeps its own copy, as a persisting scheduler does by storing it. If `step` throws (a bug,
 * never bad input), the state passed in must be discarded.
 *
 * Idempotent: an event for a run that is not in flight (a duplicate completion, a stale timer) is
 * `ignored` and changes nothing.
 */
import { validateAgainst } from '../domain/json-schema.ts';
import {
  DEFAULT_RETRY_TARGET_LIMIT,
  isPlainObject,
  type JsonObject,
  type RetryPolicy,
  type TaskDefinition,
  type WorkflowDefinition,
} from './definition.ts';
import { type ExprContext, errorMessage, evalCondition, evalItems, renderValue } from './expressions.ts';
import { parametersToSchema } from './file-format.ts';
import { type TaskIndex, taskIndex } from './graph.ts';
import {
  type CompletionStatus,
  type EngineOptions,
  type InstanceStatus,
  type Instant,
  instanceKey,
  isFailure,
  isFinalRun,
  parseRunKey,
  type RunSlot,
  type RunStatus,
  runKeyOf,
  type StatusCounts,
  type StepResult,
  slotKey,
  type TaskInstance,
  type WorkflowCommand,
  type WorkflowError,
  type WorkflowEvent,
  type WorkflowState,
  type WorkflowStatus,
} from './state.ts';

export const DEFAULT_MAX_TASK_RUNS = 1000;
export const DEFAULT_INQUIRY_ACTIONS: readonly string[] = ['core.ask'];

export interface StartContext {
  executionId: string | number;
  now: Instant;
  user?: string | null;
  maxTaskRuns?: number;
  inquiryActions?: readonly string[];
  /** Keys and pack config the first tasks' inputs may read (as later steps get them per call). */
  env?: Environment;
}

/** Values expressions may read that are not part of the state (a snapshot supplied per call). */
export interface Environment {
  keys?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

// ---- helpers -----------------------------------------------------------------------------------

function toMs(now: Instant): number | undefined {
  const ms = typeof now === 'number' ? now : typeof now === 'string' ? Date.parse(now) : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

const canAdvance = (s: WorkflowStatus): boolean => s === 'running' || s === 'pausing' || s === 'paused';
const isTerminal = (s: WorkflowStatus): boolean => s === 'succeeded' || s === 'failed' || s === 'canceled';

const describeValue = (v: unknown): string =>
  v === null || v === undefined
    ? 'null'
    : Array.isArray(v)
      ? 'a list'
      : typeof v === 'object'
        ? 'a mapping'
        : `a ${typeof v} (${JSON.stringify(v)})`;

/** Seconds before retry number `n` (1-based). */
export function retryDelay(policy: Pick<RetryPolicy, 'delay' | 'backoff' | 'maxDelay'>, n: number): number {
  let d = policy.delay;
  if (policy.backoff === 'linear') d = policy.delay * n;
  else if (policy.backoff === 'exponential') d = policy.delay * 2 ** (n - 1);
  return policy.maxDelay !== undefined ? Math.min(d, policy.maxDelay) : d;
}

const count = (c: StatusCounts, s: RunStatus): number => c[s] ?? 0;

/** The response schema of an inquiry input (`response_schema`, JSON Schema or flat form). */
function responseSchemaOf(input: unknown): { schema: JsonObject } | { error: string } {
  const raw = isPlainObject(input) ? input.response_schema : undefined;
  if (raw === undefined || raw === null) return { schema: {} };
  const r = parametersToSchema(raw, { at: ['response_schema'] });
  if (r.schema) return { schema: r.schema };
  const p = r.problems[0];
  return { error: `${p ? p.path.join('.') : 'response_schema'}: ${p?.message ?? 'invalid'}` };
}

const stringList = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;

// ---- one step ----------------------------------------------------------------------------------

class Step {
  readonly commands: WorkflowCommand[] = [];
  private readonly dirtyInstances = new Set<string>();
  private readonly dirtyRuns = new Set<string>();
  private taskMap: Record<string, { status: string; result: unknown }> | null = null;
  private baseCtx: ExprContext | null = null;
  readonly nowIso: string;

  constructor(
    readonly def: WorkflowDefinition,
    readonly cd: TaskIndex,
    readonly s: WorkflowState,
    readonly env: Environment,
    readonly nowMs: number,
  ) {
    this.nowIso = new Date(nowMs).toISOString();
  }

  result(outcome: StepResult['outcome'] = 'applied', reason?: string): StepResult {
    const r: StepResult = {
      state: this.s,
      commands: this.commands,
      outcome,
      changed: { instances: [...this.dirtyInstances], runs: [...this.dirtyRuns] },
    };
    if (reason !== undefined) r.reason = reason;
    return r;
  }

  private cmd(c: WorkflowCommand): void {
    this.commands.push(c);
  }

  private at(seconds: number): string {
    return new Date(this.nowMs + Math.round(seconds * 1000)).toISOString();
  }

  private task(name: string): TaskDefinition {
    const t = this.cd.byName.get(name);
    if (!t) throw new Error(`workflow state names task '${name}', which the definition does not have`);
    return t;
  }

  private touch(inst: TaskInstance): void {
    this.dirtyInstances.add(inst.key);
    this.taskMap = null;
    this.baseCtx = null;
  }

  // ---- expression contexts ----

  private tasksView(): Record<string, { status: string; result: unknown }> {
    if (!this.taskMap) {
      const m: Record<string, { status: string; result: unknown }> = {};
      for (const [name, key] of Object.entries(this.s.latest)) {
        const inst = this.s.instances[key];
        if (inst) m[name] = { status: inst.status, result: inst.result ?? null };
      }
      this.taskMap = m;
    }
    return this.taskMap;
  }

  private statusFns(status: string | undefined, result: unknown): ExprContext {
    const of = (name: unknown): { status: string | undefined; result: unknown } => {
      if (name === undefined) return { status, result };
      const t = typeof name === 'string' ? this.tasksView()[name] : undefined;
      return t ?? { status: undefined, result: null };
    };
    return {
      result: (name?: unknown) => of(name).result ?? null,
      succeeded: (name?: unknown) => of(name).status === 'succeeded',
      failed: (name?: unknown) => isFailure(of(name).status ?? ''),
      timed_out: (name?: unknown) => of(name).status === 'timeout',
      completed: (name?: unknown) => {
        const st = of(name).status;
        return st === 'succeeded' || st === 'failed' || st === 'timeout' || st === 'canceled';
      },
    };
  }

  private base(): ExprContext {
    if (!this.baseCtx) {
      this.baseCtx = {
        parameters: this.s.parameters,
        vars: this.s.vars,
        workflow: this.s.vars,
        task: this.tasksView(),
        execution: this.s.execution,
        keys: this.env.keys ?? {},
        config: this.env.config ?? {},
        ...this.statusFns(undefined, null),
      };
    }
    return this.baseCtx;
  }

  private itemCtx(inst: TaskInstance, item: number | undefined): ExprContext {
    if (item === undefined) return this.base();
    return { ...this.base(), item: this.s.itemLists[inst.key]?.[item] ?? null, index: item };
  }

  private runCtx(inst: TaskInstance, item: number | undefined, status: string, result: unknown): ExprContext {
    return { ...this.itemCtx(inst, item), ...this.statusFns(status, result) };
  }

  // ---- errors and failing ----

  private addError(e: WorkflowError, inst?: TaskInstance): void {
    this.s.errors.push(e);
    if (inst && !this.s.unhandled.includes(inst.key)) this.s.unhandled.push(inst.key);
  }

  private expressionError(inst: TaskInstance, path: string, e: unknown, runKey?: string): void {
    const err: WorkflowError = { task: inst.task, path, message: `${path}: ${errorMessage(e)}` };
    if (runKey !== undefined) err.runKey = runKey;
    this.addError(err, inst);
    this.startFailing();
  }

  /** No new task starts; the running ones finish; then the workflow fails. */
  startFailing(): void {
    if (!canAdvance(this.s.status)) return;
    this.s.status = 'failing';
    this.cmd({ type: 'workflow_status', status: 'failing' });
    this.sweep('failing');
  }

  /** Cancels everything in flight; the workflow is canceled once canceled runs are acknowledged. */
  startCanceling(): void {
    if (isTerminal(this.s.status) || this.s.status === 'canceling') return;
    this.s.status = 'canceling';
    this.cmd({ type: 'workflow_status', status: 'canceling' });
    this.sweep('canceled');
  }

  private sweep(reason: 'failing' | 'canceled'): void {
    for (const key of Object.keys(this.s.open)) {
      const inst = this.s.instances[key];
      if (!inst || !this.s.open[key]) continue;
      if (inst.status === 'delayed') this.cmd({ type: 'cancel_timer', key: `delay:${inst.key}` });
      if (inst.items) inst.items.queue = [];
      this.forEachLiveSlot(inst, (sk, slot) => this.settleSlot(sk, slot, reason));
      if (inst.status === 'pending' || inst.status === 'delayed') {
        const started = inst.items !== undefined || this.s.runs[inst.key] !== undefined;
        if (this.liveSlots(inst) === 0) this.finishInstance(inst, started ? undefined : 'canceled');
      } else this.maybeFinish(inst);
    }
  }

  /** Number of slots of an instance that are not final. */
  private liveSlots(inst: TaskInstance): number {
    const c = inst.counts;
    return (
      count(c, 'running') + count(c, 'asking') + count(c, 'paused') + count(c, 'waiting') + count(c, 'queued')
    );
  }

  private forEachLiveSlot(inst: TaskInstance, fn: (key: string, slot: RunSlot) => void): void {
    if (this.liveSlots(inst) === 0) return;
    if (!inst.items) {
      const slot = this.s.runs[inst.key];
      if (slot && !isFinalRun(slot.status)) fn(inst.key, slot);
      return;
    }
    for (let i = 0; i < inst.items.count; i++) {
      const k = slotKey(inst.key, i);
      const slot = this.s.runs[k];
      if (slot && !isFinalRun(slot.status)) fn(k, slot);
    }
  }

  private settleSlot(key: string, slot: RunSlot, reason: 'failing' | 'canceled'): void {
    const runKey = runKeyOf(key, slot.attempt);
    switch (slot.status) {
      case 'running':
        if (reason === 'canceled' && !slot.cancelRequested) {
          slot.cancelRequested = true;
          this.dirtyRuns.add(key);
          this.cmd({ type: 'cancel_task', runKey, reason: 'canceled' });
        }
        return;
      case 'paused':
        if (!slot.cancelRequested) {
          slot.cancelRequested = true;
          this.dirtyRuns.add(key);
          this.cmd({ type: 'cancel_task', runKey, reason });
        }
        return;
      case 'asking':
        this.cmd({ type: 'cancel_task', runKey, reason });
        this.cancelTimeoutTimer(slot, runKey);
        slot.finishedAt = this.nowIso;
        this.setStatus(key, slot, 'canceled');
        return;
      case 'waiting':
      case 'queued': {
        if (slot.status === 'waiting')
          this.cmd({ type: 'cancel_timer', key: `retry:${key}@${slot.attempt}` });
        const ranBefore = slot.startedAt !== undefined;
        if (ranBefore && slot.attempt > 1) slot.attempt--;
        const last = slot.lastStatus ?? 'failed';
        this.setStatus(key, slot, reason === 'canceled' || !ranBefore ? 'canceled' : last);
        return;
      }
      default:
        return;
    }
  }

  // ---- slots ----

  private setStatus(key: string, slot: RunSlot, status: RunStatus): void {
    const prev = slot.status;
    if (prev === status) return;
    const inst = this.s.instances[slot.instance]!;
    for (const c of [this.s.counts, inst.counts]) {
      c[prev] = (c[prev] ?? 1) - 1;
      c[status] = (c[status] ?? 0) + 1;
    }
    slot.status = status;
    this.dirtyRuns.add(key);
    this.dirtyInstances.add(inst.key);
  }

  private newSlot(inst: TaskInstance, item: number | undefined): [string, RunSlot] {
    const key = slotKey(inst.key, item);
    const task = this.task(inst.task);
    const slot: RunSlot = {
      instance: inst.key,
      task: inst.task,
      attempt: 1,
      kind: this.s.options.inquiryActions.includes(task.action) ? 'inquiry' : 'action',
      status: 'queued',
    };
    if (item !== undefined) slot.item = item;
    this.s.runs[key] = slot;
    for (const c of [this.s.counts, inst.counts]) c.queued = (c.queued ?? 0) + 1;
    this.dirtyRuns.add(key);
    return [key, slot];
  }

  private cancelTimeoutTimer(slot: RunSlot, runKey: string): void {
    if (this.task(slot.task).timeout !== undefined)
      this.cmd({ type: 'cancel_timer', key: `timeout:${runKey}` });
  }

  /** Starts the slot's current attempt (renders the input on the first one). */
  private startRun(key: string, slot: RunSlot): void {
    const inst = this.s.instances[slot.instance]!;
    const task = this.task(inst.task);
    const runKey = runKeyOf(key, slot.attempt);
    if (slot.input === undefined) {
      try {
        slot.input = renderValue(task.input, this.itemCtx(inst, slot.item)) ?? {};
      } catch (e) {
        slot.startedAt = this.nowIso;
        slot.finishedAt = this.nowIso;
        slot.result = null;
        this.setStatus(key, slot, 'failed');
        this.expressionError(inst, 'input', e, runKey);
        return;
      }
    }
    slot.startedAt = this.nowIso;
    delete slot.finishedAt;
    this.dirtyRuns.add(key);
    const extra: { itemIndex?: number } = slot.item === undefined ? {} : { itemIndex: slot.item };
    if (slot.kind === 'inquiry') {
      const rs = responseSchemaOf(slot.input);
      if ('error' in rs) {
        slot.finishedAt = this.nowIso;
        slot.result = null;
        this.setStatus(key, slot, 'failed');
        this.addError({ task: inst.task, runKey, path: 'input.response_schema', message: rs.error }, inst);
        this.startFailing();
        return;
      }
      this.setStatus(key, slot, 'asking');
      this.cmd({
        type: 'create_inquiry',
        runKey,
        task: inst.task,
        action: task.action,
        input: slot.input,
        responseSchema: rs.schema,
        attempt: slot.attempt,
        ...extra,
        ...(task.timeout !== undefined ? { expiresAt: this.at(task.timeout) } : {}),
      });
    } else {
      this.setStatus(key, slot, 'running');
      this.cmd({
        type: 'start_task',
        runKey,
        task: inst.task,
        action: task.action,
        input: slot.input,
        attempt: slot.attempt,
        ...extra,
        ...(task.timeout !== undefined ? { timeoutSeconds: task.timeout } : {}),
      });
    }
    if (task.timeout !== undefined)
      this.cmd({ type: 'schedule_timer', key: `timeout:${runKey}`, at: this.at(task.timeout) });
  }

  /** A run ended (completion, answer, timeout): retry it, or settle the slot and move on. */
  private runEnded(key: string, slot: RunSlot, status: CompletionStatus, result: unknown): void {
    const inst = this.s.instances[slot.instance]!;
    const task = this.task(inst.task);
    delete slot.cancelRequested;
    slot.result = result ?? null;
    slot.finishedAt = this.nowIso;
    this.dirtyRuns.add(key);
    if (
      status !== 'canceled' &&
      canAdvance(this.s.status) &&
      task.retry &&
      slot.attempt <= task.retry.count
    ) {
      let again = isFailure(status);
      if (task.retry.when !== undefined) {
        try {
          again = evalCondition(task.retry.when, this.runCtx(inst, slot.item, status, slot.result));
        } catch (e) {
          this.setStatus(key, slot, status);
          this.expressionError(inst, 'retry.when', e, runKeyOf(key, slot.attempt));
          return;
        }
      }
      if (again) {
        slot.lastStatus = status;
        this.retrySlot(inst, key, slot, retryDelay(task.retry, slot.attempt));
        return;
      }
    }
    this.setStatus(key, slot, status);
    this.slotSettled(inst, status);
  }

  /** Schedules the next attempt of a slot after `delay` seconds (0 = now, or when resumed). */
  private retrySlot(inst: TaskInstance, key: string, slot: RunSlot, delay: number): void {
    slot.attempt++;
    if (delay > 0) {
      this.setStatus(key, slot, 'waiting');
      this.cmd({ type: 'schedule_timer', key: `retry:${key}@${slot.attempt}`, at: this.at(delay) });
    } else this.readySlot(inst, key, slot);
  }

  /** A slot may start now: start it if the workflow runs, queue it otherwise. */
  private readySlot(inst: TaskInstance, key: string, slot: RunSlot): void {
    if (inst.items) {
      this.setStatus(key, slot, 'queued');
      inst.items.queue.push(slot.item!);
      if (this.s.status === 'running') this.launchItems(inst);
    } else if (this.s.status === 'running') this.startRun(key, slot);
    else this.setStatus(key, slot, 'queued');
  }

  private slotSettled(inst: TaskInstance, status: RunStatus): void {
    if (inst.items) {
      if (isFailure(status) && inst.items.failFast && !inst.items.stopped) {
        inst.items.stopped = true;
        this.touch(inst);
      }
      this.launchItems(inst);
    }
    this.maybeFinish(inst);
  }

  // ---- instances ----

  /** Enters a task: a new instance, counted against the task-run bound. */
  enter(name: string, from: string[], carryFrom?: string): void {
    const s = this.s;
    if (!canAdvance(s.status)) return;
    const task = this.task(name);
    if (s.taskRuns >= s.options.maxTaskRuns) {
      this.addError({
        task: name,
        message: `the workflow reached its limit of ${s.options.maxTaskRuns} task runs when entering '${name}' again (a loop without an exit?)`,
      });
      this.startFailing();
      return;
    }
    s.taskRuns++;
    const seq = (s.seq[name] ?? 0) + 1;
    s.seq[name] = seq;
    const key = instanceKey(name, seq);
    const inst: TaskInstance = {
      key,
      task: name,
      seq,
      status: 'pending',
      from,
      enteredAt: this.nowIso,
      counts: {},
      retried: 0,
    };
    if (carryFrom !== undefined) inst.carryFrom = carryFrom;
    s.instances[key] = inst;
    s.open[key] = true;
    s.latest[name] = key;
    this.touch(inst);
    if (task.delay !== undefined) {
      inst.status = 'delayed';
      this.cmd({ type: 'schedule_timer', key: `delay:${key}`, at: this.at(task.delay) });
      return;
    }
    if (s.status === 'running') this.activate(inst);
  }

  /** Starts an entered instance: its run, or its items. */
  private activate(inst: TaskInstance): void {
    const task = this.task(inst.task);
    inst.status = 'running';
    inst.startedAt ??= this.nowIso;
    this.touch(inst);
    if (!task.withItems) {
      const existing = this.s.runs[inst.key];
      if (existing) {
        if (existing.status === 'queued') this.startRun(inst.key, existing);
        return;
      }
      const [key, slot] = this.newSlot(inst, undefined);
      this.startRun(key, slot);
      return;
    }
    if (inst.items) {
      this.launchItems(inst);
      this.maybeFinish(inst);
      return;
    }
    let list = this.s.itemLists[inst.key];
    if (!list && inst.carryFrom !== undefined) {
      list = this.s.itemLists[inst.carryFrom] ?? [];
      this.s.itemLists[inst.key] = list;
    }
    if (!list) {
      let v: unknown;
      try {
        v = evalItems(task.withItems.items, this.base());
      } catch (e) {
        this.failInstance(inst, 'with_items', `with_items: ${errorMessage(e)}`);
        return;
      }
      if (!Array.isArray(v)) {
        this.failInstance(inst, 'with_items', `with_items must give a list, got ${describeValue(v)}`);
        return;
      }
      list = v;
      this.s.itemLists[inst.key] = list;
    }
    inst.items = {
      count: list.length,
      concurrency: Math.max(1, task.withItems.concurrency ?? list.length),
      next: 0,
      queue: [],
      failFast: task.withItems.failFast,
      stopped: false,
    };
    if (inst.carryFrom !== undefined) this.carryItems(inst, inst.carryFrom);
    this.launchItems(inst);
    this.maybeFinish(inst);
  }

  /** A rerun of a with-items task: succeeded items are kept, the others are queued to run again. */
  private carryItems(inst: TaskInstance, fromKey: string): void {
    const it = inst.items!;
    for (let i = 0; i < it.count; i++) {
      const old = this.s.runs[slotKey(fromKey, i)];
      if (old && old.status === 'succeeded') {
        const key = slotKey(inst.key, i);
        const slot: RunSlot = { ...old, instance: inst.key, reused: true };
        this.s.runs[key] = slot;
        for (const c of [this.s.counts, inst.counts]) c.succeeded = (c.succeeded ?? 0) + 1;
        this.dirtyRuns.add(key);
      } else it.queue.push(i);
    }
    it.next = it.count;
  }

  /** An instance that cannot start (its item list failed to evaluate): an unhandled failure. */
  private failInstance(inst: TaskInstance, path: string, message: string): void {
    inst.status = 'failed';
    inst.result = null;
    inst.finishedAt = this.nowIso;
    delete this.s.open[inst.key];
    this.touch(inst);
    this.addError({ task: inst.task, path, message }, inst);
    this.startFailing();
  }

  private launchItems(inst: TaskInstance): void {
    const it = inst.items!;
    while (this.s.status === 'running' && inst.status === 'running') {
      const active =
        count(inst.counts, 'running') +
        count(inst.counts, 'asking') +
        count(inst.counts, 'paused') +
        count(inst.counts, 'waiting');
      if (active >= it.concurrency) break;
      let idx: number;
      if (it.queue.length > 0) idx = it.queue.shift()!;
      else if (!it.stopped && it.next < it.count) idx = it.next++;
      else break;
      this.dirtyInstances.add(inst.key);
      const k = slotKey(inst.key, idx);
      const existing = this.s.runs[k];
      if (existing) this.startRun(k, existing);
      else {
        const [key, slot] = this.newSlot(inst, idx);
        this.startRun(key, slot);
      }
    }
  }

  /** Finishes the instance when nothing of it is left to run. */
  private maybeFinish(inst: TaskInstance): void {
    if (inst.status !== 'running' || !this.s.open[inst.key]) return;
    if (this.liveSlots(inst) > 0) return;
    const it = inst.items;
    if (it) {
      if (it.queue.length > 0) return;
      if (!it.stopped && it.next < it.count && canAdvance(this.s.status)) return;
    } else {
      const slot = this.s.runs[inst.key];
      if (!slot) return;
    }
    this.finishInstance(inst);
  }

  private finishInstance(inst: TaskInstance, forced?: InstanceStatus): void {
    let status: InstanceStatus;
    let result: unknown = null;
    if (forced) status = forced;
    else if (inst.items) {
      const it = inst.items;
      const c = inst.counts;
      const failures = count(c, 'failed') + count(c, 'timeout');
      const unstarted = it.count - it.next + it.queue.length;
      status = failures > 0 ? 'failed' : count(c, 'canceled') > 0 || unstarted > 0 ? 'canceled' : 'succeeded';
      const out = new Array<unknown>(it.count);
      for (let i = 0; i < it.count; i++) out[i] = this.s.runs[slotKey(inst.key, i)]?.result ?? null;
      result = out;
    } else {
      const slot = this.s.runs[inst.key]!;
      status = slot.status as InstanceStatus;
      result = slot.result ?? null;
    }
    inst.status = status;
    inst.result = result;
    inst.finishedAt = this.nowIso;
    delete this.s.open[inst.key];
    this.touch(inst);
    if (canAdvance(this.s.status)) {
      if (status === 'canceled') {
        this.addError({ task: inst.task, message: `task '${inst.task}' was canceled` }, inst);
        this.startCanceling();
      } else this.transitions(inst);
      return;
    }
    if (isFailure(status) || status === 'canceled') {
      if (!this.s.unhandled.includes(inst.key)) {
        if (isFailure(status) && this.s.status === 'failing')
          this.addError(
            {
              task: inst.task,
              message: `task '${inst.task}' ${status === 'timeout' ? 'timed out' : 'failed'}`,
              result,
            },
            inst,
          );
        else this.s.unhandled.push(inst.key);
      }
    }
  }

  /** Evaluates the transitions of a finished instance: publish, then enter the targets. */
  private transitions(inst: TaskInstance): void {
    const task = this.task(inst.task);
    const ctx = this.runCtx(inst, undefined, inst.status, inst.result);
    let handled = false;
    let fail: string | undefined;
    let retry = false;
    const targets: string[] = [];
    const retryLimit = task.retry?.count ?? DEFAULT_RETRY_TARGET_LIMIT;
    for (let i = 0; i < task.next.length; i++) {
      const tr = task.next[i]!;
      if (tr.when !== undefined) {
        let ok: boolean;
        try {
          ok = evalCondition(tr.when, ctx);
        } catch (e) {
          this.expressionError(inst, `next[${i}].when`, e);
          return;
        }
        if (!ok) continue;
      }
      for (const p of tr.publish) {
        try {
          this.s.vars[p.name] = renderValue(p.value, ctx) ?? null;
        } catch (e) {
          this.expressionError(inst, `next[${i}].publish.${p.name}`, e);
          return;
        }
      }
      if (tr.do.length === 0) handled = true;
      for (const t of tr.do) {
        if (t === 'fail') fail ??= `task '${inst.task}' took a transition to 'fail' (next[${i}])`;
        else if (t === 'noop') handled = true;
        else if (t === 'retry') {
          if (inst.retried < retryLimit) retry = true;
        } else {
          targets.push(t);
          handled = true;
        }
      }
    }
    if (retry) {
      handled = true;
      this.retryInstance(inst);
    }
    for (const t of targets) this.arrive(t, inst.task);
    if (fail !== undefined) {
      const e: WorkflowError = { task: inst.task, message: fail };
      if (isFailure(inst.status)) e.result = inst.result;
      this.addError(e, inst);
      this.startFailing();
    } else if (isFailure(inst.status) && !handled) {
      this.addError(
        {
          task: inst.task,
          message: `task '${inst.task}' ${inst.status === 'timeout' ? 'timed out' : 'failed'} and no transition handled it`,
          result: inst.result,
        },
        inst,
      );
      this.startFailing();
    }
  }

  /** The `retry` target: the task runs again (a with-items task runs its failed items again). */
  private retryInstance(inst: TaskInstance): void {
    const task = this.task(inst.task);
    inst.retried++;
    inst.status = 'running';
    delete inst.finishedAt;
    inst.result = null;
    this.s.open[inst.key] = true;
    this.touch(inst);
    const delay = task.retry ? retryDelay(task.retry, inst.retried) : 0;
    if (!inst.items) {
      const slot = this.s.runs[inst.key]!;
      slot.lastStatus = slot.status;
      this.retrySlot(inst, inst.key, slot, delay);
      return;
    }
    const it = inst.items;
    it.stopped = false;
    for (let i = 0; i < it.next; i++) {
      const k = slotKey(inst.key, i);
      const slot = this.s.runs[k];
      if (slot && (isFailure(slot.status) || slot.status === 'canceled')) {
        slot.lastStatus = slot.status;
        slot.attempt++;
        this.setStatus(k, slot, 'queued');
        it.queue.push(i);
      }
    }
    if (delay > 0) {
      inst.status = 'delayed';
      this.cmd({ type: 'schedule_timer', key: `delay:${inst.key}`, at: this.at(delay) });
    } else if (this.s.status === 'running') this.launchItems(inst);
  }

  /** A transition reaches `target`: enter it, or count the arrival at its join. */
  private arrive(target: string, from: string): void {
    const t = this.cd.byName.get(target);
    if (!t) {
      // only an unvalidated definition gets here
      this.addError({
        task: from,
        message: `task '${from}' has a transition to '${target}', which does not exist`,
      });
      this.startFailing();
      return;
    }
    if (t.join === undefined) {
      this.enter(target, [from]);
      return;
    }
    const required = t.join === 'all' ? (this.cd.inbound.get(target)?.length ?? 1) : t.join;
    const arrived = this.s.joins[target] ?? [];
    if (!arrived.includes(from)) arrived.push(from);
    this.s.joins[target] = arrived;
    if (arrived.length >= required) {
      delete this.s.joins[target];
      this.enter(target, arrived);
    }
  }

  // ---- completion ----

  /** Ends the workflow when nothing is open; turns pausing into paused when nothing runs. */
  settle(): void {
    const s = this.s;
    if (isTerminal(s.status)) return;
    let open = false;
    for (const _ in s.open) {
      open = true;
      break;
    }
    if (!open) {
      this.complete();
      return;
    }
    if (s.status === 'pausing' && count(s.counts, 'running') === 0) {
      s.status = 'paused';
      this.cmd({ type: 'workflow_status', status: 'paused' });
    }
  }

  private complete(): void {
    const s = this.s;
    let status: 'succeeded' | 'failed' | 'canceled' =
      s.status === 'canceling' ? 'canceled' : s.status === 'failing' ? 'failed' : 'succeeded';
    let output: unknown = null;
    if (status === 'succeeded' && this.def.outputMap) {
      const out: Record<string, unknown> = {};
      for (const [name, tpl] of Object.entries(this.def.outputMap)) {
        try {
          out[name] = renderValue(tpl, this.base()) ?? null;
        } catch (e) {
          s.errors.push({ path: `output_map.${name}`, message: `output_map.${name}: ${errorMessage(e)}` });
          status = 'failed';
        }
      }
      if (status === 'succeeded') output = out;
    }
    s.status = status;
    s.output = output;
    s.finishedAt = this.nowIso;
    let error: { message: string; errors: WorkflowError[] } | null = null;
    if (status === 'failed') {
      const first = s.errors[0];
      const more = s.errors.length > 1 ? ` (and ${s.errors.length - 1} more)` : '';
      error = { message: `${first?.message ?? 'the workflow failed'}${more}`, errors: s.errors };
    }
    this.cmd({ type: 'complete_workflow', status, output, error });
  }

  // ---- events ----

  private slotOf(runKey: string): [string, RunSlot] | undefined {
    const p = parseRunKey(runKey);
    if (!p) return undefined;
    const slot = this.s.runs[p.slot];
    if (!slot || runKeyOf(p.slot, slot.attempt) !== runKey) return undefined;
    return [p.slot, slot];
  }

  taskCompleted(runKey: string, status: CompletionStatus, result: unknown): StepResult {
    const found = this.slotOf(runKey);
    if (!found) return this.result('ignored', `no run '${runKey}' is in flight`);
    const [key, slot] = found;
    if (slot.status !== 'running' && slot.status !== 'paused' && slot.status !== 'asking')
      return this.result('ignored', `run '${runKey}' is not in flight (${slot.status})`);
    this.cancelTimeoutTimer(slot, runKey);
    // The worker enforces the same deadline as the task's timer; whichever fires first, a timed-out
    // run reads the same `result().error`.
    const seconds = this.task(slot.task).timeout;
    if (status === 'timeout' && seconds !== undefined) {
      const base = result !== null && typeof result === 'object' && !Array.isArray(result) ? result : {};
      if (!('error' in base)) result = { ...base, error: `timed out after ${seconds} seconds` };
    }
    this.runEnded(key, slot, status, result);
    return this.done();
  }

  taskPaused(runKey: string, paused: boolean): StepResult {
    const found = this.slotOf(runKey);
    const want: RunStatus = paused ? 'running' : 'paused';
    if (!found || found[1].status !== want)
      return this.result('ignored', `run '${runKey}' is not ${paused ? 'running' : 'paused'}`);
    this.setStatus(found[0], found[1], paused ? 'paused' : 'running');
    return this.done();
  }

  inquiryResponded(runKey: string, response: unknown, by?: { user: string; roles?: string[] }): StepResult {
    const found = this.slotOf(runKey);
    if (found?.[1].status !== 'asking')
      return this.result('ignored', `no inquiry '${runKey}' is waiting for an answer`);
    const [key, slot] = found;
    const input = isPlainObject(slot.input) ? slot.input : {};
    if (by) {
      const users = stringList(input.users);
      const roles = stringList(input.roles);
      if ((users?.length ?? 0) + (roles?.length ?? 0) > 0) {
        const allowed =
          (users?.includes(by.user) ?? false) || (roles ?? []).some((r) => (by.roles ?? []).includes(r));
        if (!allowed) return this.result('rejected', `user '${by.user}' may not answer this inquiry`);
      }
    }
    const rs = responseSchemaOf(input);
    const schema = 'schema' in rs ? rs.schema : {};
    const answer = structuredClone(response);
    const issues = validateAgainst(schema, answer);
    if (issues.length > 0)
      return this.result(
        'rejected',
        `the response does not match the inquiry's response_schema: ${issues
          .map((i) => `${i.path} ${i.message}`)
          .join('; ')}`,
      );
    this.cancelTimeoutTimer(slot, runKey);
    if (by) slot.respondedBy = by.user;
    this.runEnded(key, slot, 'succeeded', { response: answer });
    return this.done();
  }

  inquiryTimedOut(runKey: string): StepResult {
    const found = this.slotOf(runKey);
    if (found?.[1].status !== 'asking')
      return this.result('ignored', `no inquiry '${runKey}' is waiting for an answer`);
    this.cancelTimeoutTimer(found[1], runKey);
    this.runEnded(found[0], found[1], 'timeout', null);
    return this.done();
  }

  timerFired(key: string): StepResult {
    const colon = key.indexOf(':');
    const kind = key.slice(0, colon);
    const rest = key.slice(colon + 1);
    if (kind === 'delay') {
      const inst = this.s.instances[rest];
      if (inst?.status !== 'delayed' || !this.s.open[rest])
        return this.result('ignored', `no task waits for timer '${key}'`);
      if (this.s.status === 'running') {
        if (inst.items) {
          inst.status = 'running';
          this.touch(inst);
          this.launchItems(inst);
          this.maybeFinish(inst);
        } else this.activate(inst);
      } else {
        inst.status = 'pending';
        this.touch(inst);
      }
      return this.done();
    }
    if (kind === 'retry') {
      const at = rest.lastIndexOf('@');
      const sk = rest.slice(0, at);
      const attempt = Number(rest.slice(at + 1));
      const slot = this.s.runs[sk];
      if (slot?.status !== 'waiting' || slot.attempt !== attempt)
        return this.result('ignored', `no run waits for timer '${key}'`);
      this.readySlot(this.s.instances[slot.instance]!, sk, slot);
      return this.done();
    }
    if (kind === 'timeout') {
      const found = this.slotOf(rest);
      if (!found || !['running', 'paused', 'asking'].includes(found[1].status))
        return this.result('ignored', `run '${rest}' is no longer in flight`);
      const [sk, slot] = found;
      const seconds = this.task(slot.task).timeout;
      this.cmd({ type: 'cancel_task', runKey: rest, reason: 'timeout' });
      this.runEnded(sk, slot, 'timeout', { error: `timed out after ${seconds} seconds` });
      return this.done();
    }
    return this.result('ignored', `unknown timer '${key}'`);
  }

  pause(): StepResult {
    const s = this.s;
    if (s.status === 'pausing' || s.status === 'paused') return this.result('ignored', `already ${s.status}`);
    if (s.status !== 'running') return this.result('rejected', `a ${s.status} workflow cannot be paused`);
    s.status = 'pausing';
    this.cmd({ type: 'workflow_status', status: 'pausing' });
    for (const key of Object.keys(s.open)) {
      const inst = s.instances[key]!;
      if (count(inst.counts, 'running') === 0) continue;
      this.forEachLiveSlot(inst, (sk, slot) => {
        if (slot.status === 'running' && slot.kind === 'action')
          this.cmd({ type: 'pause_task', runKey: runKeyOf(sk, slot.attempt) });
      });
    }
    return this.done();
  }

  resume(): StepResult {
    const s = this.s;
    if (s.status === 'running') return this.result('ignored', 'the workflow is running');
    if (s.status !== 'pausing' && s.status !== 'paused')
      return this.result('rejected', `a ${s.status} workflow cannot be resumed`);
    s.status = 'running';
    this.cmd({ type: 'workflow_status', status: 'running' });
    for (const key of Object.keys(s.open)) {
      const inst = s.instances[key];
      if (!inst || !s.open[key] || s.status !== 'running') continue;
      if (inst.status === 'pending') {
        this.activate(inst);
        continue;
      }
      if (inst.status !== 'running') continue;
      this.forEachLiveSlot(inst, (sk, slot) => {
        if (slot.status === 'paused') {
          this.cmd({ type: 'resume_task', runKey: runKeyOf(sk, slot.attempt) });
          this.setStatus(sk, slot, 'running');
        } else if (slot.status === 'queued' && !inst.items && s.status === 'running') this.startRun(sk, slot);
      });
      if (inst.items) this.launchItems(inst);
      this.maybeFinish(inst);
    }
    return this.done();
  }

  cancel(): StepResult {
    if (isTerminal(this.s.status)) return this.result('ignored', `the workflow already ${this.s.status}`);
    if (this.s.status === 'canceling') return this.result('ignored', 'the workflow is already canceling');
    this.startCanceling();
    return this.done();
  }

  rerun(tasks: string[] | undefined, resetItems: string[] | undefined): StepResult {
    const s = this.s;
    if (s.status !== 'failed' && s.status !== 'canceled')
      return this.result(
        'rejected',
        `only a failed or canceled workflow can be rerun (this one is ${s.status})`,
      );
    const names = tasks ?? [
      ...new Set(s.unhandled.map((k) => s.instances[k]?.task).filter((t): t is string => !!t)),
    ];
    if (names.length === 0) return this.result('rejected', 'there is no failed or canceled task to rerun');
    for (const n of [...names, ...(resetItems ?? [])]) {
      if (!this.cd.byName.has(n)) return this.result('rejected', `the workflow has no task '${n}'`);
    }
    for (const n of names) {
      const key = s.latest[n];
      const inst = key ? s.instances[key] : undefined;
      if (!inst) return this.result('rejected', `task '${n}' never ran, so it cannot be rerun`);
      if (inst.status === 'succeeded')
        return this.result('rejected', `task '${n}' succeeded; only failed or canceled tasks are rerun`);
    }
    s.status = 'running';
    s.errors = [];
    s.unhandled = [];
    s.output = null;
    delete s.finishedAt;
    this.cmd({ type: 'workflow_status', status: 'running' });
    for (const n of names) {
      const old = s.instances[s.latest[n]!]!;
      const carry =
        this.task(n).withItems && old.items && !(resetItems ?? []).includes(n) ? old.key : undefined;
      const before = s.seq[n] ?? 0;
      this.enter(n, [], carry);
      if (s.seq[n] !== before) {
        old.rerunAs = instanceKey(n, s.seq[n]!);
        this.touch(old);
      }
    }
    return this.done();
  }

  /** Vars, then the start tasks. */
  begin(): StepResult {
    const s = this.s;
    for (const [name, tpl] of Object.entries(this.def.vars)) {
      try {
        s.vars[name] = renderValue(tpl, this.base()) ?? null;
      } catch (e) {
        s.errors.push({ path: `vars.${name}`, message: `vars.${name}: ${errorMessage(e)}` });
        s.status = 'failing';
        break;
      }
    }
    if (s.status === 'running') for (const name of this.cd.starts) this.enter(name, []);
    return this.done();
  }

  failAtStart(message: string, path: string): StepResult {
    this.s.errors.push({ path, message });
    this.s.status = 'failing';
    return this.done();
  }

  done(): StepResult {
    this.settle();
    return this.result('applied');
  }
}

// ---- public API --------------------------------------------------------------------------------

/**
 * Starts a workflow execution: checks the parameters against the definition's schema (applying its
 * defaults), renders `vars`, and enters the start tasks.
 */
export function start(
  def: WorkflowDefinition,
  parameters: Record<string, unknown> | null | undefined,
  ctx: StartContext,
): StepResult {
  const nowMs = toMs(ctx.now);
  if (nowMs === undefined) throw new TypeError(`start: 'now' must be an ISO time or epoch milliseconds`);
  const options: EngineOptions = {
    maxTaskRuns: ctx.maxTaskRuns ?? DEFAULT_MAX_TASK_RUNS,
    inquiryActions: [...(ctx.inquiryActions ?? DEFAULT_INQUIRY_ACTIONS)],
  };
  const params: Record<string, unknown> = parameters ? structuredClone(parameters) : {};
  const state: WorkflowState = {
    format: 1,
    status: 'running',
    execution: {
      id: String(ctx.executionId),
      started: new Date(nowMs).toISOString(),
      user: ctx.user ?? null,
    },
    options,
    parameters: params,
    vars: {},
    taskRuns: 0,
    seq: {},
    instances: {},
    runs: {},
    open: {},
    latest: {},
    joins: {},
    itemLists: {},
    counts: {},
    errors: [],
    output: null,
    unhandled: [],
  };
  const step = new Step(def, taskIndex(def), state, ctx.env ?? {}, nowMs);
  if (def.parameters) {
    const issues = validateAgainst(def.parameters, params);
    if (issues.length > 0)
      return step.failAtStart(
        `the parameters do not match the workflow's schema: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
        'parameters',
      );
  }
  return step.begin();
}

/** Applies one event to the state (in place) and returns it with the commands to carry out. */
export function step(
  def: WorkflowDefinition,
  state: WorkflowState,
  event: WorkflowEvent,
  env: Environment = {},
): StepResult {
  const nowMs = toMs(event?.now);
  const st = new Step(def, taskIndex(def), state, env, nowMs ?? 0);
  if (nowMs === undefined)
    return st.result('rejected', `the event needs 'now' (an ISO time or epoch milliseconds)`);
  if (isTerminal(state.status) && event.type !== 'rerun')
    return st.result('ignored', `the workflow already ${state.status}`);
  switch (event.type) {
    case 'task_completed':
      if (!['succeeded', 'failed', 'timeout', 'canceled'].includes(event.status))
        return st.result('rejected', `unknown completion status '${String(event.status)}'`);
      return st.taskCompleted(event.runKey, event.status, event.result ?? null);
    case 'task_paused':
      return st.taskPaused(event.runKey, true);
    case 'task_resumed':
      return st.taskPaused(event.runKey, false);
    case 'inquiry_responded':
      return st.inquiryResponded(event.runKey, event.response, event.by);
    case 'inquiry_timeout':
      return st.inquiryTimedOut(event.runKey);
    case 'timer_fired':
      return st.timerFired(event.key);
    case 'pause':
      return st.pause();
    case 'resume':
      return st.resume();
    case 'cancel':
      return st.cancel();
    case 'rerun':
      return st.rerun(event.tasks, event.resetItems);
    default:
      return st.result('rejected', `unknown event type '${String((event as { type?: unknown }).type)}'`);
  }
}
