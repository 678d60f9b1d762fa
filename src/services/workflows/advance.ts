/**
 * Advancing one workflow run: in the caller's transaction, lock the run (`SELECT … FOR UPDATE`),
 * feed the events to the pure engine, carry out the commands it returns, and store the new state,
 * the changed task runs and the timers — all or nothing. The update of the run is guarded by its
 * `version` as well, so a writer that somehow raced ahead makes this one start over from a fresh read.
 *
 * Commands:
 *  - `start_task`: a child execution of the task's action (parent = the workflow, context
 *    `{workflow_run_key, workflow_task, item_index}`), in `requested` with its outbox message, and
 *    its `workflow_task_runs` row (written with the other changed runs when the state is stored) —
 *    a run key already in `workflow_task_runs` is not started again. A start that cannot happen
 *    (unknown or disabled action, parameters that do not fit) fails the task with the reason, as a
 *    task failure the workflow can handle. The run-key check costs no statement of its own: the
 *    statement that stores the state counts the started keys that were stored before it, and a
 *    clash rolls the transaction back; its retry checks first and skips them (see `checkStartsOf`).
 *    A task whose action needs no worker (`noop`, no
 *    concurrency policy) runs here when the host allows it: created `succeeded` with its follow-up
 *    done (`finishInline`) — nobody could see it running, as it ends in this same transaction — and
 *    its completion applied in a transaction of its own after this one: each step of a chain is
 *    persisted.
 *  - `create_inquiry`: a `core.ask` child execution, running at once, and its inquiry.
 *  - `cancel_task` / `pause_task` / `resume_task`: the child execution(s) of the run key — a
 *    sub-workflow is advanced in turn (recursively, in this transaction), an inquiry is withdrawn,
 *    an action run is asked to stop (`canceling`, broadcast after commit).
 *  - `schedule_timer` / `cancel_timer`: rows of `workflow_timers`.
 *  - `workflow_status` / `complete_workflow`: the workflow execution's status, its result (checked
 *    against the workflow's output schema) and, at the end, `execution.completed`.
 *
 * Nothing here talks to the bus: what must happen after the commit (relay kick, broadcasts, events
 * for a parent workflow) is gathered in `Effects`.
 */
import { and, eq, inArray, notInArray, sql } from 'drizzle-orm';
import { AppError } from '../../domain/errors.ts';
import { validateAgainst } from '../../domain/json-schema.ts';
import { TERMINAL_EXECUTION_STATUSES } from '../../domain/status.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Db, Store } from '../../store/database.ts';
import {
  type InsertRow,
  insertRows,
  insertStatement,
  mapRows,
  rawRows,
  valuesMatch,
} from '../../store/repositories/bulk.ts';
import { type ExecutionRow, transitionExecution } from '../../store/repositories/executions.ts';
import {
  actions,
  executionSecrets,
  executions,
  inquiries,
  workflowRuns,
  workflowTaskRuns,
  workflowTimers,
} from '../../store/schema.ts';
import { isPlainObject, type WorkflowDefinition } from '../../workflow/definition.ts';
import { step } from '../../workflow/engine.ts';
import {
  isFinalRun,
  parseRunKey,
  runKeyOf,
  type StepResult,
  TERMINAL_WORKFLOW_STATUSES,
  type WorkflowCommand,
  type WorkflowEvent,
  type WorkflowState,
} from '../../workflow/state.ts';
import { createEvent } from '../events/create-event.ts';
import { describeIssues, MAX_TIMEOUT_SECONDS } from '../executions/request-execution.ts';
import { metrics } from '../metrics/registry.ts';
import type { RuleIndex } from '../rules-engine/rule-index.ts';
import { schemaSecretNames, sealParameters } from '../runtime/execution-secrets.ts';
import { TOPICS } from '../runtime/messages.ts';
import type { ActionCache, ActionRow } from '../scheduler/action-cache.ts';
import { EXECUTION_COMPLETED_TRIGGER, executionCompletedPayload } from '../scheduler/completion.ts';
import { parseConcurrencyPolicy } from '../scheduler/policies.ts';
import {
  completedMessage,
  type OutboxMessage,
  type RuntimeLogger,
  writeOutboxMany,
} from '../scheduler/runtime.ts';
import { type LoadedEnvironment, loadEnvironment, NO_ENVIRONMENT } from './environment.ts';
import { moveExecution } from './execution-moves.ts';
import { inquiryFields, inquiryParameters } from './inquiry-fields.ts';
import {
  asSnapshot,
  type DefinitionSnapshot,
  definitionOf,
  knownDefinition,
  type OpenState,
  openState,
  redactSecrets,
  sealState,
  secretInputNames,
  secretValues,
} from './run-store.ts';

/** What advancing needs besides the transaction. */
export interface AdvanceEnv {
  store: Store;
  cipher: Cipher;
  log: RuntimeLogger;
  /** The clock the engine is given (milliseconds). */
  now: () => number;
  /**
   * Run tasks that need no worker here (see `runsInline`): given by the workflow host, whose queue
   * takes the completions after the commit. Absent: every task goes through the scheduler and a worker.
   */
  inline?: InlineRunning | undefined;
  /** Action definitions, cached a moment (the host's; cleared when definitions change). Default: read each time. */
  actions?: ActionCache | undefined;
  /** States of runs this process advanced last (the host's). Default: every advance reads the state. */
  states?: StateCache | undefined;
}

/**
 * The opened states of the runs this process advanced last, each with the `version` it was stored
 * at. An advance reads the run's version under its lock and takes the cached state when the
 * versions agree, instead of reading and parsing the whole document (it grows with a fan-out's item
 * slots). An entry is taken out while an advance works on it (the engine changes the state in
 * place) and put back only once that advance has committed (`Effects.state`); anything else — a
 * failed transaction, another process's advance — makes the next advance read the database.
 */
export class StateCache {
  readonly #entries = new Map<number, { version: number; open: OpenState }>();
  constructor(private readonly max = 500) {}

  /** The state of run `id` stored at `version`, taken out of the cache; undefined when not there. */
  take(id: number, version: number): OpenState | undefined {
    const e = this.#entries.get(id);
    if (!e) return undefined;
    this.#entries.delete(id);
    return e.version === version ? e.open : undefined;
  }

  put(id: number, version: number, open: OpenState): void {
    this.#entries.delete(id);
    this.#entries.set(id, { version, open });
    if (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value as number);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** How tasks run in the transaction that starts them report, like the completion handler would. */
export interface InlineRunning {
  /** The process's rule index: `core.execution_completed` events are created when a rule uses them. */
  rules?: RuleIndex | undefined;
}

/**
 * Whether a task of `action` runs in the transaction that starts it, without a worker: the `noop`
 * runner does nothing and cannot fail, so there is nothing for a worker to do. An action with a
 * concurrency policy still goes through the scheduler (its slots are counted there).
 */
export function runsInline(action: Pick<ActionRow, 'runner' | 'enabled' | 'concurrencyPolicy'>): boolean {
  return (
    action.runner === 'noop' && action.enabled && parseConcurrencyPolicy(action.concurrencyPolicy) === null
  );
}

/** What a transaction leaves to do once it has committed. */
export class Effects {
  /** Executions whose status changed (live notifications). */
  readonly changed = new Map<number, ExecutionRow>();
  /** Executions moved to `canceling` whose worker must be told. */
  readonly cancels = new Set<number>();
  /** Outbox rows were written. */
  outbox = false;
  /** Events for other workflow runs (a sub-workflow paused or resumed tells its parent). */
  readonly followUps: { workflowId: number; event: WorkflowEvent }[] = [];
  /** The earliest workflow timer scheduled (epoch ms): the host fires it on time rather than at its next poll. */
  nextTimer: number | undefined;
  /** A run's state as this transaction stored it: cached once it has committed (see `StateCache`). */
  state: { id: number; version: number; open: OpenState } | undefined;

  note(...rows: (ExecutionRow | null | undefined)[]): void {
    for (const r of rows) if (r) this.changed.set(r.id, r);
  }
}

/**
 * Workflow runs whose last advance found a run key it had started already stored (the engine asked
 * twice for one run): their next advance looks the keys up before creating anything and skips those
 * stored. Otherwise the check rides on the statement that stores the state (see `persist`).
 */
const checkStartsOf = new Set<number>();

/** The run was changed by someone else between the read and the write: start over. */
export class AdvanceConflict extends Error {
  constructor(id: number) {
    super(`workflow run ${id} changed while it was being advanced`);
    this.name = 'AdvanceConflict';
  }
}

export interface EventOutcome {
  outcome: StepResult['outcome'];
  reason?: string;
}

export interface AdvanceResult {
  /** False when the execution has no workflow run (not a workflow, or not started yet). */
  found: boolean;
  /** One per event given, in order. */
  outcomes: EventOutcome[];
  /** The workflow execution after the advance. */
  execution?: ExecutionRow;
  state?: WorkflowState;
}

export interface AdvanceOptions {
  /** Login of who asked (pause, resume, cancel), recorded on the execution. */
  actor?: string;
}

type StartCmd = Extract<WorkflowCommand, { type: 'start_task' }>;
type AskCmd = Extract<WorkflowCommand, { type: 'create_inquiry' }>;
type ChildCmd = Extract<WorkflowCommand, { type: 'cancel_task' | 'pause_task' | 'resume_task' }>;

/** Run statuses stored as task-run rows (queued and waiting slots are not runs yet). */
const STORED_RUN_STATUSES = new Set([
  'running',
  'asking',
  'paused',
  'succeeded',
  'failed',
  'timeout',
  'canceled',
]);

const NOT_STARTED = ['requested', 'delayed', 'scheduled'];

const toDate = (iso: string | undefined): Date | null => (iso ? new Date(iso) : null);

type TaskRunRow = typeof workflowTaskRuns.$inferInsert;

/** A changed task run overwrites the stored one, keeping what it does not know (its execution, input, start). */
const TASK_RUN_UPSERT = {
  onConflictDoUpdate: {
    target: [workflowTaskRuns.workflowExecutionId, workflowTaskRuns.runKey],
    set: sql`status = excluded.status, attempt = excluded.attempt,
             execution_id = coalesce(excluded.execution_id, ${workflowTaskRuns.executionId}),
             input = coalesce(excluded.input, ${workflowTaskRuns.input}), result = excluded.result,
             started_at = coalesce(excluded.started_at, ${workflowTaskRuns.startedAt}),
             finished_at = excluded.finished_at`,
  },
};

/** The engine's completion status for a finished child execution, and the task result. */
export function childOutcome(child: Pick<ExecutionRow, 'status' | 'result' | 'error'>): {
  status: 'succeeded' | 'failed' | 'timeout' | 'canceled';
  result: unknown;
} {
  const status =
    child.status === 'succeeded' || child.status === 'timeout' || child.status === 'canceled'
      ? child.status
      : 'failed';
  let result: unknown = child.result ?? null;
  if (status !== 'succeeded' && (result === null || result === undefined) && child.error)
    result = { error: child.error };
  return { status, result };
}

/** The run key a child execution was started for (null when it is not a workflow task). */
export function runKeyOfChild(child: Pick<ExecutionRow, 'context'>): string | null {
  const k = child.context?.workflow_run_key;
  return typeof k === 'string' && parseRunKey(k) ? k : null;
}

/**
 * Advances workflow run `workflowId` with `events`, in `tx`. Returns `found: false` when there is
 * no such run. Throws `AdvanceConflict` when the run changed underneath (retry from a fresh read).
 */
export async function advance(
  tx: Db,
  env: AdvanceEnv,
  fx: Effects,
  workflowId: number,
  events: readonly WorkflowEvent[],
  opts: AdvanceOptions = {},
): Promise<AdvanceResult> {
  // The run, locked, with its workflow execution: one statement (an advance is a few statements,
  // each of which counts on a chain of short tasks).
  // The definition is read only the first time: a snapshot never changes.
  // Written directly rather than with the query builder: building it cost more than running it.
  const [read] = mapRows<ExecutionRow & { run_version: number; run_created_at: Date }>(
    executions,
    rawRows(
      await tx.execute(sql`select e.*, r.version as run_version, r.created_at as run_created_at
          from "workflow_runs" r join "executions" e on e.id = r.execution_id
         where r.execution_id = ${workflowId} for update of r`),
    ),
  );
  if (!read) return { found: false, outcomes: [] };
  const { run_version, run_created_at, ...wf } = read;
  const run = { executionId: workflowId, version: Number(run_version), createdAt: new Date(run_created_at) };
  let known = knownDefinition(run);
  if (!known) {
    const [d] = await tx
      .select({ definition: workflowRuns.definition })
      .from(workflowRuns)
      .where(eq(workflowRuns.executionId, workflowId));
    const snapshot = asSnapshot(d!.definition);
    known = { snapshot, def: definitionOf(run, snapshot) };
  }
  const { snapshot, def } = known;
  // The state: this process's own copy when it is the one stored, else the stored document.
  let open = env.states?.take(workflowId, run.version);
  if (!open) {
    const [d] = await tx
      .select({ state: workflowRuns.state })
      .from(workflowRuns)
      .where(eq(workflowRuns.executionId, workflowId));
    open = openState(env.cipher, d!.state);
  }
  const ctx = new RunContext(
    tx,
    env,
    fx,
    wf,
    def,
    snapshot,
    open,
    opts,
    await loadEnvironment(tx, env.store, env.cipher, def, snapshot.pack_ref),
  );
  const outcomes: EventOutcome[] = [];
  for (const ev of events) outcomes.push(await ctx.apply(ev));
  if (ctx.applied) {
    await ctx.persist({ version: run.version });
    if (env.states && !TERMINAL_WORKFLOW_STATUSES.includes(ctx.open.state.status))
      fx.state = { id: workflowId, version: run.version + 1, open: ctx.open };
  } else await ctx.persistTimers(); // stale timers fired without effect are used up all the same
  return { found: true, outcomes, execution: ctx.wf, state: ctx.open.state };
}

/**
 * One workflow run being changed in one transaction. Also used to start a run and to seed a rerun
 * (`persist({insert})`).
 */
export class RunContext {
  applied = false;
  private readonly dirtySlots = new Set<string>();
  /** Runs that ended in this transaction, by run key (their slot may have moved to a new attempt). */
  private readonly ended = new Map<string, { status: string; result: unknown; at: string }>();
  /**
   * The task runs started by this transaction, with their child executions: written with the other
   * task runs that changed, in the one statement of `persistTaskRuns`.
   */
  private readonly startedRuns = new Map<string, TaskRunRow>();
  /** Run keys started by this transaction without looking them up first: `persist` checks them. */
  private readonly unchecked = new Set<string>();
  /** Timer changes, applied at persist: due time, `cancel` or `fired`. */
  private readonly timers = new Map<string, { due: Date } | 'cancel' | 'fired'>();
  private dropTimers = false;
  private live: Map<string, ExecutionRow[]> | null = null;
  /** Starts asked for and not carried out yet, and the events failed starts cause. */
  private readonly starts: StartCmd[] = [];
  private readonly asks: AskCmd[] = [];
  private readonly followUps: WorkflowEvent[] = [];
  private readonly secrets: unknown[];

  constructor(
    readonly tx: Db,
    readonly env: AdvanceEnv,
    readonly fx: Effects,
    public wf: ExecutionRow,
    readonly def: WorkflowDefinition,
    readonly snapshot: DefinitionSnapshot,
    readonly open: OpenState,
    readonly opts: AdvanceOptions = {},
    readonly environment: LoadedEnvironment = NO_ENVIRONMENT,
  ) {
    this.secrets = [...secretValues(open), ...environment.secrets];
    if (environment.secrets.length) open.sealed = true;
  }

  get state(): WorkflowState {
    return this.open.state;
  }

  /** Applies one event (and the follow-up events its commands cause); returns its outcome. */
  async apply(event: WorkflowEvent): Promise<EventOutcome> {
    if (event.type === 'timer_fired' && !(await this.timerDue(event.key)))
      return { outcome: 'ignored', reason: `timer '${event.key}' is not due` };
    const r = step(this.def, this.state, event, this.environment.env);
    if (event.type === 'timer_fired') this.timers.set(event.key, 'fired');
    if (r.outcome !== 'applied')
      return r.reason === undefined ? { outcome: r.outcome } : { outcome: r.outcome, reason: r.reason };
    await this.absorb(event, r);
    return { outcome: 'applied' };
  }

  /** Takes in an applied step result: remembers what changed and carries out its commands. */
  async absorb(event: WorkflowEvent | null, r: StepResult): Promise<void> {
    this.applied = true;
    this.record(event, r);
    await this.carryOut(r.commands);
  }

  /**
   * Creates the child executions asked for so far — all of them in a few statements, whichever
   * events asked — and applies the events that causes (a start that failed), until nothing is left.
   */
  async flushStarts(): Promise<void> {
    while (this.starts.length || this.asks.length || this.followUps.length) {
      if (this.starts.length || this.asks.length)
        await this.startChildren(this.starts.splice(0), this.asks.splice(0), this.followUps);
      while (this.followUps.length) {
        const ev = this.followUps.shift()!;
        const r2 = step(this.def, this.state, ev, this.environment.env);
        if (r2.outcome !== 'applied') continue;
        this.record(ev, r2);
        await this.carryOut(r2.commands);
      }
    }
  }

  private record(event: WorkflowEvent | null, r: StepResult): void {
    for (const k of r.changed.runs) this.dirtySlots.add(k);
    const at = new Date(this.env.now()).toISOString();
    if (!event) return;
    if (event.type === 'task_completed')
      this.ended.set(event.runKey, { status: event.status, result: event.result ?? null, at });
    else if (event.type === 'inquiry_timeout')
      this.ended.set(event.runKey, { status: 'timeout', result: null, at });
    else if (event.type === 'timer_fired' && event.key.startsWith('timeout:'))
      this.ended.set(event.key.slice('timeout:'.length), { status: 'timeout', result: null, at });
  }

  // ───────────────────────────── commands ─────────────────────────────

  /**
   * Carries out commands in order. Starts are gathered (see `flushStarts`); a command that must see
   * the children started before it (cancel, pause, resume, a status change) flushes them first.
   */
  private async carryOut(commands: readonly WorkflowCommand[]): Promise<void> {
    for (const c of commands) {
      switch (c.type) {
        case 'start_task':
          this.starts.push(c);
          break;
        case 'create_inquiry':
          this.asks.push(c);
          break;
        case 'cancel_task':
        case 'pause_task':
        case 'resume_task':
          await this.flushStarts();
          await this.childCommand(c);
          break;
        case 'schedule_timer':
          this.timers.set(c.key, { due: new Date(c.at) });
          break;
        case 'cancel_timer':
          this.timers.set(c.key, 'cancel');
          break;
        case 'workflow_status':
          await this.flushStarts();
          await this.workflowStatus(c.status);
          break;
        case 'complete_workflow':
          await this.flushStarts();
          await this.complete(c);
          break;
      }
    }
  }

  private now(): number {
    return this.env.now();
  }

  private failStart(followUps: WorkflowEvent[], runKey: string, message: string): void {
    this.env.log.info(
      { workflow_execution_id: this.wf.id, run_key: runKey, err: message },
      'workflow task could not start',
    );
    followUps.push({
      type: 'task_completed',
      runKey,
      status: 'failed',
      result: { error: message },
      now: this.now(),
    });
  }

  /** Which of `keys` this workflow run has stored task runs of. */
  private async storedRunKeys(keys: readonly string[]): Promise<Set<string>> {
    // Written directly rather than with the query builder: building it cost more than running it.
    const rows = rawRows(
      await this.tx.execute(
        sql`select run_key from "workflow_task_runs" where workflow_execution_id = ${this.wf.id} and ${valuesMatch('run_key', keys, 'text')}`,
      ),
    );
    return new Set(rows.map((r) => String(r.run_key)));
  }

  /**
   * A run key started here was stored before this transaction: remember to look first, and start
   * over (the retry skips it). Nothing of this transaction is kept.
   */
  private startedTwice(keys: Iterable<string>): never {
    checkStartsOf.add(this.wf.id);
    this.env.log.warn(
      { workflow_execution_id: this.wf.id, run_keys: [...keys] },
      'workflow task run started again; starting over and skipping it',
    );
    throw new AdvanceConflict(this.wf.id);
  }

  /** Looks up run keys started without a look first; any already stored is a clash (`startedTwice`). */
  private async refuseStored(keys: readonly string[]): Promise<void> {
    if (!keys.length) return;
    const stored = await this.storedRunKeys(keys);
    if (stored.size) this.startedTwice(stored);
  }

  /** Creates the child executions of `start_task` and `create_inquiry` commands, in bulk. */
  private async startChildren(starts: StartCmd[], asks: AskCmd[], followUps: WorkflowEvent[]): Promise<void> {
    const tx = this.tx;
    this.live = null;
    const keys = [...starts.map((c) => c.runKey), ...asks.map((c) => c.runKey)];
    const lookFirst = checkStartsOf.delete(this.wf.id);
    const existing = lookFirst ? await this.storedRunKeys(keys) : new Set<string>();
    for (const k of existing)
      this.env.log.warn(
        { workflow_execution_id: this.wf.id, run_key: k },
        'workflow task run already started; not starting it again',
      );
    if (!lookFirst) for (const k of keys) this.unchecked.add(k);
    const refs = [...new Set([...starts.map((c) => c.action), ...asks.map((c) => c.action)])];
    const acts = this.env.actions
      ? await this.env.actions.getMany(refs, tx)
      : new Map(
          (await tx.select().from(actions).where(inArray(actions.ref, refs))).map((a) => [a.ref, a] as const),
        );
    const rootId = this.wf.rootId ?? this.wf.id;
    const nowDate = new Date(this.now());

    interface Pending {
      cmd: StartCmd | AskCmd;
      values: InsertRow<typeof executions>;
      ciphertext: string | null;
      input: unknown;
      inquiry?: typeof inquiries.$inferInsert;
      /** Run here (see `runsInline`): created `succeeded`, its follow-up done before the commit. */
      inline?: boolean;
    }
    const pending: Pending[] = [];
    for (const cmd of [...starts, ...asks]) {
      if (existing.has(cmd.runKey)) continue;
      const action = acts.get(cmd.action);
      if (!action) {
        this.failStart(followUps, cmd.runKey, `action '${cmd.action}' does not exist`);
        continue;
      }
      if (!action.enabled) {
        this.failStart(followUps, cmd.runKey, `action '${cmd.action}' is disabled`);
        continue;
      }
      const input = isPlainObject(cmd.input) ? cmd.input : {};
      const parameters: Record<string, unknown> =
        cmd.type === 'create_inquiry'
          ? structuredClone(inquiryParameters(input, cmd.responseSchema))
          : structuredClone(input);
      let problems: ReturnType<typeof validateAgainst>;
      try {
        problems = validateAgainst(action.paramSchema, parameters);
      } catch (e) {
        this.failStart(
          followUps,
          cmd.runKey,
          `action '${action.ref}' has a param_schema that is not usable: ${(e as Error).message}`,
        );
        continue;
      }
      if (problems.length) {
        this.failStart(
          followUps,
          cmd.runKey,
          describeIssues(`input does not fit action '${action.ref}'`, problems),
        );
        continue;
      }
      const secret = schemaSecretNames(action.paramSchema);
      for (const n of secretInputNames(parameters, this.secrets)) secret.add(n);
      const sealed = sealParameters(this.env.cipher, parameters, secret);
      const context: Record<string, unknown> = { workflow_run_key: cmd.runKey, workflow_task: cmd.task };
      if (cmd.itemIndex !== undefined) context.item_index = cmd.itemIndex;
      if (cmd.attempt > 1) context.workflow_attempt = cmd.attempt;
      const values: InsertRow<typeof executions> = {
        actionRef: action.ref,
        runner: action.runner,
        parameters: sealed.parameters,
        status: 'requested',
        parentId: this.wf.id,
        rootId,
        taskName: cmd.task,
        createdBy: this.wf.createdBy,
        context,
      };
      const p: Pending = {
        cmd,
        values,
        ciphertext: sealed.ciphertext,
        input: redactSecrets(input, this.secrets),
      };
      if (cmd.type === 'start_task') {
        if (cmd.timeoutSeconds !== undefined)
          values.timeoutSeconds = Math.max(1, Math.min(MAX_TIMEOUT_SECONDS, Math.ceil(cmd.timeoutSeconds)));
        if (this.env.inline && runsInline(action)) {
          // Created ended: nobody could see it running, as it would end in this same transaction.
          values.status = 'succeeded';
          values.scheduledAt = sql`now()`;
          values.startedAt = sql`now()`;
          values.finishedAt = sql`now()`;
          values.result = null;
          values.completionHandledAt = sql`now()`;
          p.inline = true;
        }
      } else {
        const fields = inquiryFields(parameters);
        values.status = 'running';
        values.startedAt = nowDate;
        const timeoutAt = cmd.expiresAt
          ? new Date(cmd.expiresAt)
          : fields.timeoutSeconds !== null
            ? new Date(nowDate.getTime() + fields.timeoutSeconds * 1000)
            : null;
        p.inquiry = {
          executionId: 0,
          workflowExecutionId: this.wf.id,
          taskName: cmd.task,
          prompt: fields.prompt,
          responseSchema: fields.responseSchema,
          assignedUsers: fields.users,
          assignedRoles: fields.roles,
          timeoutAt,
        };
      }
      pending.push(p);
    }
    if (!pending.length) return;

    const created = await insertRows(
      tx,
      executions,
      pending.map((p) => p.values),
      { returning: 'all' },
    );
    const byKey = new Map(created.map((r) => [r.context.workflow_run_key as string, r] as const));
    const secretsRows: (typeof executionSecrets.$inferInsert)[] = [];
    const inquiryRows: (typeof inquiries.$inferInsert)[] = [];
    const messages: OutboxMessage[] = [];
    for (const p of pending) {
      const row = byKey.get(p.cmd.runKey);
      if (!row) throw new Error(`child execution of run '${p.cmd.runKey}' was not stored`);
      if (p.ciphertext !== null) secretsRows.push({ executionId: row.id, ciphertext: p.ciphertext });
      if (p.inquiry) inquiryRows.push({ ...p.inquiry, executionId: row.id });
      else if (!p.inline)
        messages.push({ topic: TOPICS.executionRequested, payload: { execution_id: row.id } });
      this.startedRuns.set(p.cmd.runKey, {
        workflowExecutionId: this.wf.id,
        taskName: p.cmd.task,
        runKey: p.cmd.runKey,
        itemIndex: p.cmd.itemIndex ?? null,
        attempt: p.cmd.attempt,
        status: p.cmd.type === 'create_inquiry' ? 'asking' : 'running',
        executionId: row.id,
        input: p.input,
        startedAt: nowDate,
        finishedAt: null,
        result: null,
      });
      this.fx.note(row);
    }
    if (secretsRows.length) await tx.insert(executionSecrets).values(secretsRows);
    if (inquiryRows.length) await tx.insert(inquiries).values(inquiryRows);
    if (messages.length) {
      await writeOutboxMany(tx, messages);
      this.fx.outbox = true;
    }
    const inline = pending.filter((p) => p.inline).map((p) => byKey.get(p.cmd.runKey)!);
    if (inline.length) await this.finishInline(inline);
  }

  /**
   * The end of tasks run here, created `succeeded` with `completion_handled_at` set: the rest of the
   * completion handler's follow-up — the `core.execution_completed` event when a rule uses it — and
   * the completion queued for this workflow, applied in a transaction of its own after this one
   * commits (as a worker's would be).
   */
  private async finishInline(done: ExecutionRow[]): Promise<void> {
    const rules = this.env.inline?.rules;
    const emit = rules ? await rules.hasRules(EXECUTION_COMPLETED_TRIGGER, this.tx) : false;
    const now = this.now();
    for (const row of done) {
      this.fx.note(row);
      const runKey = runKeyOfChild(row);
      if (runKey)
        this.fx.followUps.push({
          workflowId: this.wf.id,
          event: { type: 'task_completed', runKey, status: 'succeeded', result: null, now },
        });
      if (emit) {
        try {
          await createEvent(this.tx, {
            triggerRef: EXECUTION_COMPLETED_TRIGGER,
            payload: executionCompletedPayload(row),
            source: 'internal',
          });
          this.fx.outbox = true;
        } catch (e) {
          if (!(e instanceof AppError)) throw e;
          this.env.log.warn(
            { execution_id: row.id, err: e.message },
            'core.execution_completed event not created',
          );
        }
      }
    }
    metrics.executionsStarted(done);
    metrics.executionsFinished(done);
  }

  /** The non-terminal child executions of this workflow, by run key (loaded once per need). */
  private async liveChildren(): Promise<Map<string, ExecutionRow[]>> {
    if (!this.live) {
      const rows = await this.tx
        .select()
        .from(executions)
        .where(
          and(
            eq(executions.parentId, this.wf.id),
            notInArray(executions.status, [...TERMINAL_EXECUTION_STATUSES]),
          ),
        );
      const m = new Map<string, ExecutionRow[]>();
      for (const r of rows) {
        const k = runKeyOfChild(r);
        if (k) m.set(k, [...(m.get(k) ?? []), r]);
      }
      this.live = m;
    }
    return this.live;
  }

  private async childCommand(c: ChildCmd): Promise<void> {
    const kids = (await this.liveChildren()).get(c.runKey) ?? [];
    if (!kids.length) return;
    this.live = null;
    for (const kid of kids) {
      if (c.type === 'cancel_task') await cancelChild(this.tx, this.env, this.fx, kid, this.wf.id, c.reason);
      else if (kid.runner === 'workflow')
        await advance(this.tx, this.env, this.fx, kid.id, [
          { type: c.type === 'pause_task' ? 'pause' : 'resume', now: this.now() },
        ]);
    }
  }

  // ───────────────────────────── the workflow execution ─────────────────────────────

  /** Tells the parent workflow (if any) that this one paused or resumed. */
  private tellParent(type: 'task_paused' | 'task_resumed'): void {
    const key = runKeyOfChild(this.wf);
    if (this.wf.parentId === null || !key) return;
    this.fx.followUps.push({ workflowId: this.wf.parentId, event: { type, runKey: key, now: this.now() } });
  }

  private async workflowStatus(
    status: 'running' | 'pausing' | 'paused' | 'failing' | 'canceling',
  ): Promise<void> {
    if (status === 'failing') return;
    const patch =
      status === 'canceling' && this.opts.actor
        ? { context: { ...this.wf.context, canceled_by: this.opts.actor } }
        : {};
    const moved = await moveExecution(this.tx, this.wf, status, patch);
    if (!moved) return;
    this.wf = moved;
    this.fx.note(moved);
    if (status === 'paused') this.tellParent('task_paused');
    if (status === 'running') this.tellParent('task_resumed');
  }

  private async complete(c: Extract<WorkflowCommand, { type: 'complete_workflow' }>): Promise<void> {
    let status = c.status;
    let output = c.output;
    let error: Record<string, unknown> | null = c.error ? { type: 'workflow_failed', ...c.error } : null;
    const outSchema = this.snapshot.out_schema;
    if (status === 'succeeded' && outSchema && Object.keys(outSchema).length > 0) {
      let issues: ReturnType<typeof validateAgainst>;
      try {
        issues = validateAgainst(outSchema, output);
      } catch (e) {
        issues = [{ path: '/', message: `the output schema is not usable (${(e as Error).message})` }];
      }
      if (issues.length) {
        const message = describeIssues("the output does not match the workflow's output schema", issues);
        status = 'failed';
        output = null;
        this.state.status = 'failed';
        this.state.output = null;
        this.state.errors.push({ path: 'output', message });
        error = { type: 'output_invalid', message, errors: this.state.errors, problems: issues };
      }
    }
    if (status === 'canceled') {
      const by =
        typeof this.wf.context.canceled_by === 'string' ? this.wf.context.canceled_by : this.opts.actor;
      error = {
        type: 'canceled',
        message: by ? `canceled by ${by}` : 'the workflow was canceled',
        ...(by ? { canceled_by: by } : {}),
        ...(c.error ? { errors: c.error.errors } : {}),
      };
    }
    this.dropTimers = true;
    const moved = await moveExecution(this.tx, this.wf, status, { result: output ?? null, error });
    if (!moved) return;
    this.wf = moved;
    this.fx.note(moved);
    await writeOutboxMany(this.tx, [completedMessage(moved)]);
    this.fx.outbox = true;
  }

  // ───────────────────────────── timers ─────────────────────────────

  private async timerDue(key: string): Promise<boolean> {
    const pendingOp = this.timers.get(key);
    const now = this.now();
    if (pendingOp === 'cancel' || pendingOp === 'fired') return false;
    if (pendingOp) return pendingOp.due.getTime() <= now;
    const [t] = await this.tx
      .select({ dueAt: workflowTimers.dueAt, fired: workflowTimers.fired })
      .from(workflowTimers)
      .where(and(eq(workflowTimers.workflowExecutionId, this.wf.id), eq(workflowTimers.key, key)));
    return !!t && !t.fired && t.dueAt.getTime() <= now;
  }

  async persistTimers(): Promise<void> {
    const tx = this.tx;
    const wfId = this.wf.id;
    if (this.timers.size === 0 && !this.dropTimers) return;
    if (this.dropTimers) {
      await tx.delete(workflowTimers).where(eq(workflowTimers.workflowExecutionId, wfId));
      return;
    }
    const upserts: (typeof workflowTimers.$inferInsert)[] = [];
    const cancels: string[] = [];
    const fired: string[] = [];
    for (const [key, op] of this.timers) {
      if (op === 'cancel') cancels.push(key);
      else if (op === 'fired') fired.push(key);
      else {
        upserts.push({ workflowExecutionId: wfId, key, dueAt: op.due, fired: false });
        const due = op.due.getTime();
        if (this.fx.nextTimer === undefined || due < this.fx.nextTimer) this.fx.nextTimer = due;
      }
    }
    if (upserts.length)
      await tx
        .insert(workflowTimers)
        .values(upserts)
        .onConflictDoUpdate({
          target: [workflowTimers.workflowExecutionId, workflowTimers.key],
          set: { dueAt: sql`excluded.due_at`, fired: false },
        });
    if (cancels.length)
      await tx
        .delete(workflowTimers)
        .where(and(eq(workflowTimers.workflowExecutionId, wfId), inArray(workflowTimers.key, cancels)));
    if (fired.length)
      await tx
        .update(workflowTimers)
        .set({ fired: true })
        .where(and(eq(workflowTimers.workflowExecutionId, wfId), inArray(workflowTimers.key, fired)));
  }

  // ───────────────────────────── storing ─────────────────────────────

  /**
   * Stores the state (a guarded update on `version`, or the first insert of a run), the task runs
   * that changed and the timers.
   */
  async persist(how: { version: number } | { insert: { workflowRef: string } }): Promise<void> {
    await this.flushStarts();
    const tx = this.tx;
    const doc = sealState(this.env.cipher, this.open);
    const { rows, current } = this.taskRunRows();
    const unchecked = [...this.unchecked];
    this.unchecked.clear();
    if ('insert' in how) {
      await this.refuseStored(unchecked);
      await tx.insert(workflowRuns).values({
        executionId: this.wf.id,
        workflowRef: how.insert.workflowRef,
        definition: this.snapshot as unknown as Record<string, unknown>,
        state: doc,
        status: this.state.status,
        version: 0,
      });
      await insertRows(tx, workflowTaskRuns, rows, TASK_RUN_UPSERT);
    } else {
      // The task runs that changed go in the statement that stores the state (as a common table
      // expression): one statement less at each step of a workflow.
      const runs =
        rows.length > 0 && rows.length <= 5000
          ? insertStatement(workflowTaskRuns, rows, TASK_RUN_UPSERT)
          : null;
      if (!runs) {
        await this.refuseStored(unchecked);
        await insertRows(tx, workflowTaskRuns, rows, TASK_RUN_UPSERT);
      }
      // The started keys stored before this statement (its parts all see the rows as they were
      // when it began, not what its own `runs` writes).
      const clashes =
        runs && unchecked.length
          ? sql`, array(select run_key from "workflow_task_runs" where workflow_execution_id = ${this.wf.id} and ${valuesMatch('run_key', unchecked, 'text')}) as clashes`
          : sql``;
      const [done] = rawRows(
        await tx.execute(sql`${runs ? sql`with runs as (${runs}) ` : sql``}update "workflow_runs"
            set "state" = ${JSON.stringify(doc)}::json, "status" = ${this.state.status},
                "version" = ${how.version + 1}, "updated_at" = now()
          where "execution_id" = ${this.wf.id} and "version" = ${how.version} returning "version"${clashes}`),
      );
      if (!done) throw new AdvanceConflict(this.wf.id);
      const clashed = done.clashes as string[] | undefined;
      if (clashed?.length) this.startedTwice(clashed);
    }
    await this.persistEnded(current);
    await this.persistTimers();
  }

  /** The task runs that changed, as rows (with the executions of those started here), all of one shape. */
  private taskRunRows(): { rows: TaskRunRow[]; current: Set<string> } {
    const s = this.state;
    const rows: TaskRunRow[] = [];
    const current = new Set<string>();
    const started = this.startedRuns;
    for (const key of this.dirtySlots) {
      const slot = s.runs[key];
      if (!slot || !STORED_RUN_STATUSES.has(slot.status)) continue;
      const runKey = runKeyOf(key, slot.attempt);
      current.add(runKey);
      const start = started.get(runKey);
      started.delete(runKey);
      rows.push({
        workflowExecutionId: this.wf.id,
        taskName: slot.task,
        runKey,
        itemIndex: slot.item ?? null,
        attempt: slot.attempt,
        status: slot.status,
        input: slot.input === undefined ? (start?.input ?? null) : redactSecrets(slot.input, this.secrets),
        result: isFinalRun(slot.status) ? redactSecrets(slot.result ?? null, this.secrets) : null,
        startedAt: toDate(slot.startedAt) ?? start?.startedAt ?? null,
        finishedAt: isFinalRun(slot.status) ? toDate(slot.finishedAt) : null,
        executionId: start?.executionId ?? null,
      });
    }
    // Started runs whose slot did not change afterwards (not expected; stored all the same). They
    // have the same columns: `insertStatement` reads each row by column.
    rows.push(...started.values());
    started.clear();
    return { rows, current };
  }

  /** Runs that ended while their slot moved on to another attempt keep how they ended. */
  private async persistEnded(current: ReadonlySet<string>): Promise<void> {
    for (const [runKey, e] of this.ended) {
      if (current.has(runKey)) continue;
      await this.tx
        .update(workflowTaskRuns)
        .set({ status: e.status, result: redactSecrets(e.result, this.secrets), finishedAt: new Date(e.at) })
        .where(
          and(
            eq(workflowTaskRuns.workflowExecutionId, this.wf.id),
            eq(workflowTaskRuns.runKey, runKey),
            inArray(workflowTaskRuns.status, ['running', 'asking', 'paused']),
          ),
        );
    }
  }
}

/**
 * Cancels one child execution of a workflow, in `tx`: not started → `canceled`; an action run →
 * `canceling` (its worker is told after commit); a sub-workflow → canceled through its own engine
 * (cascading to its children); an inquiry → withdrawn (or timed out, when `reason` is a timeout).
 */
export async function cancelChild(
  tx: Db,
  env: AdvanceEnv,
  fx: Effects,
  kid: ExecutionRow,
  workflowId: number,
  reason: 'canceled' | 'timeout' | 'failing',
): Promise<void> {
  const why =
    reason === 'timeout'
      ? 'its task timed out'
      : reason === 'failing'
        ? 'its workflow is failing'
        : 'its workflow was canceled';
  const error = {
    type: reason === 'timeout' ? 'timeout' : 'canceled',
    message: `canceled by workflow ${workflowId}: ${why}`,
  };
  const finish = async (row: ExecutionRow | null) => {
    if (!row) return;
    fx.note(row);
    await writeOutboxMany(tx, [completedMessage(row)]);
    fx.outbox = true;
  };
  if (NOT_STARTED.includes(kid.status)) {
    await finish(await transitionExecution(tx, kid.id, [kid.status as 'requested'], 'canceled', { error }));
    return;
  }
  if (kid.runner === 'workflow') {
    const r = await advance(tx, env, fx, kid.id, [{ type: 'cancel', now: env.now() }], {
      actor: `workflow ${workflowId}`,
    });
    if (!r.found && kid.status === 'paused')
      await finish(await moveExecution(tx, kid, 'canceled', { error }));
    return;
  }
  if (kid.runner === 'inquiry') {
    const to = reason === 'timeout' ? 'timeout' : 'canceled';
    await tx
      .update(inquiries)
      .set({ status: to })
      .where(and(eq(inquiries.executionId, kid.id), eq(inquiries.status, 'pending')));
    await finish(
      await moveExecution(tx, kid, to, {
        error:
          reason === 'timeout' ? { type: 'timeout', message: 'the inquiry was not answered in time' } : error,
      }),
    );
    return;
  }
  if (kid.status === 'paused') {
    await finish(await transitionExecution(tx, kid.id, ['paused'], 'canceled', { error }));
    return;
  }
  if (kid.status === 'running' || kid.status === 'pausing') {
    const moved = await transitionExecution(tx, kid.id, [kid.status], 'canceling', {
      context: { ...kid.context, canceled_by: `workflow ${workflowId}` },
    });
    fx.note(moved);
    if (moved) fx.cancels.add(kid.id);
    return;
  }
  if (kid.status === 'canceling') fx.cancels.add(kid.id);
}

/** Whether an error is worth retrying the whole transaction for (a lost race, a deadlock). */
export function isRetryable(e: unknown): boolean {
  if (e instanceof AdvanceConflict) return true;
  const code =
    (e as { code?: unknown; cause?: { code?: unknown } } | null)?.code ??
    (e as { cause?: { code?: unknown } } | null)?.cause?.code;
  return code === '40P01' || code === '40001';
}
