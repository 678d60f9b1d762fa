/**
 * Workflow operations, each one transaction (retried from a fresh read when it lost a race):
 * starting a requested workflow execution, pause, resume, cancel and rerun. For the scheduler (start)
 * and the API (the rest). What must happen after the commit — relay kick, status notifications,
 * cancel broadcasts, events for parent workflows — happens in `flushEffects`.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Bus } from '../../bus/bus.ts';
import { AppError, conflict, notFound, validationError } from '../../domain/errors.ts';
import { EXECUTION_TRANSITIONS, isTerminal } from '../../domain/status.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Db, Store } from '../../store/database.ts';
import { type ExecutionRow, transitionExecution } from '../../store/repositories/executions.ts';
import {
  actions,
  executionSecrets,
  executions,
  workflowRuns,
  workflows,
  workflowTaskRuns,
} from '../../store/schema.ts';
import { DEFAULT_INQUIRY_ACTIONS, start, step } from '../../workflow/engine.ts';
import type { WorkflowEvent, WorkflowStatus } from '../../workflow/state.ts';
import { rerunExecution } from '../executions/rerun-execution.ts';
import { openParameters } from '../runtime/execution-secrets.ts';
import { TOPICS } from '../runtime/messages.ts';
import type { ActionCache } from '../scheduler/action-cache.ts';
import { cancelExecution } from '../scheduler/cancel.ts';
import {
  completedMessage,
  notifyStatuses,
  type RuntimeLogger,
  silentLogger,
  writeOutboxMany,
} from '../scheduler/runtime.ts';
import {
  type AdvanceEnv,
  type AdvanceResult,
  advance,
  Effects,
  type InlineRunning,
  isRetryable,
  RunContext,
  type StateCache,
} from './advance.ts';
import { loadEnvironment } from './environment.ts';
import {
  asSnapshot,
  DefinitionSnapshotError,
  definitionOf,
  openState,
  parseSnapshot,
  snapshotOf,
} from './run-store.ts';

export interface WorkflowDeps {
  store: Store;
  cipher: Cipher;
  /** Status notifications and cancel broadcasts go here (skipped without a bus). */
  bus?: Bus | undefined;
  /** Called after a commit that wrote outbox rows. */
  kickOutbox?: (() => void) | undefined;
  log?: RuntimeLogger | undefined;
  /** The engine's clock (milliseconds). Default `Date.now`. */
  now?: (() => number) | undefined;
  /**
   * Where events for other workflow runs go after a commit (the host's queue). Without it they are
   * applied right away, each in its own transaction.
   */
  followUp?: ((workflowId: number, event: WorkflowEvent) => void) | undefined;
  /** Tasks that need no worker run in the transaction that starts them (the host sets it, with `followUp`). */
  inline?: InlineRunning | undefined;
  /** Action definitions cached a moment (the host's). */
  actions?: ActionCache | undefined;
  /** Told of the earliest workflow timer a transaction scheduled (epoch ms), after its commit. */
  onTimer?: ((dueMs: number) => void) | undefined;
  /** States of the runs this process advanced last (the host's; see `StateCache`). */
  states?: StateCache | undefined;
}

const MAX_TX_ATTEMPTS = 6;
const MAX_FOLLOW_UP_DEPTH = 16;

export function envOf(deps: WorkflowDeps): AdvanceEnv {
  return {
    store: deps.store,
    cipher: deps.cipher,
    log: deps.log ?? silentLogger,
    now: deps.now ?? Date.now,
    // Completions of tasks run inline are followed up through the queue only (see flushEffects).
    inline: deps.followUp ? deps.inline : undefined,
    actions: deps.actions,
    states: deps.states,
  };
}

/**
 * Runs `fn` in a transaction with fresh effects, retrying it from the start when it lost a race
 * (or a deadlock was broken), then carries out its effects.
 */
export async function runInTx<T>(
  deps: WorkflowDeps,
  fn: (tx: Db, fx: Effects) => Promise<T>,
  depth = 0,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const fx = new Effects();
    try {
      const out = await deps.store.transaction((tx) => fn(tx, fx));
      if (fx.state) deps.states?.put(fx.state.id, fx.state.version, fx.state.open);
      await flushEffects(deps, fx, depth);
      return out;
    } catch (e) {
      if (attempt >= MAX_TX_ATTEMPTS || !isRetryable(e)) throw e;
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.floor(Math.random() * 10)));
    }
  }
}

/** What a committed transaction leaves to do. Never throws for a broadcast. */
export async function flushEffects(deps: WorkflowDeps, fx: Effects, depth = 0): Promise<void> {
  const log = deps.log ?? silentLogger;
  if (fx.outbox) deps.kickOutbox?.();
  if (fx.nextTimer !== undefined) deps.onTimer?.(fx.nextTimer);
  if (deps.bus) {
    notifyStatuses(deps.bus, [...fx.changed.values()], log);
    for (const id of fx.cancels)
      deps.bus
        .publish(TOPICS.executionCancel, { execution_id: id })
        .catch((e: unknown) =>
          log.warn(
            { execution_id: id, err: (e as Error).message },
            'cancel broadcast failed; the heartbeat will carry it',
          ),
        );
  }
  for (const f of fx.followUps) {
    if (deps.followUp) deps.followUp(f.workflowId, f.event);
    else if (depth < MAX_FOLLOW_UP_DEPTH)
      await runInTx(
        deps,
        (tx, fx2) => advance(tx, envOf(deps), fx2, f.workflowId, [f.event]),
        depth + 1,
      ).catch((e: unknown) =>
        log.warn(
          { workflow_execution_id: f.workflowId, err: (e as Error).message },
          'parent workflow not told',
        ),
      );
  }
}

/** Applies `events` to workflow run `id` in one transaction (with retries and effects). */
export function advanceWorkflow(
  deps: WorkflowDeps,
  id: number,
  events: readonly WorkflowEvent[],
  actor?: string,
): Promise<AdvanceResult> {
  return runInTx(deps, (tx, fx) => advance(tx, envOf(deps), fx, id, events, actor ? { actor } : {}));
}

// ───────────────────────────── start ─────────────────────────────

export type StartOutcome = 'started' | 'failed' | 'skipped';

/**
 * Starts workflow execution `id` if it is still `requested`: loads the workflow by the execution's
 * action ref, snapshots it, runs `engine.start` and — in one transaction — stores the run, moves the
 * execution to `running` and carries out the first commands. A workflow that no longer exists or
 * is not valid fails the execution with the reason. Idempotent: `skipped` when there is nothing to do.
 */
export function startWorkflow(deps: WorkflowDeps, id: number): Promise<StartOutcome> {
  const env = envOf(deps);
  return runInTx(deps, async (tx, fx) => {
    const [e] = await tx
      .select()
      .from(executions)
      .where(and(eq(executions.id, id), eq(executions.status, 'requested')))
      .for('update');
    if (!e) return 'skipped';
    const fail = async (type: string, message: string): Promise<StartOutcome> => {
      const moved = await transitionExecution(tx, e.id, ['requested'], 'failed', {
        error: { type, message },
      });
      if (moved) {
        fx.note(moved);
        await writeOutboxMany(tx, [completedMessage(moved)]);
        fx.outbox = true;
      }
      env.log.warn({ workflow_execution_id: e.id, err: message }, 'workflow could not start');
      return 'failed';
    };
    const [existing] = await tx
      .select({ id: workflowRuns.executionId })
      .from(workflowRuns)
      .where(eq(workflowRuns.executionId, e.id));
    if (existing) {
      fx.note(await transitionExecution(tx, e.id, ['requested'], 'running', { startedAt: sql`now()` }));
      return 'skipped';
    }
    const [w] = await tx.select().from(workflows).where(eq(workflows.ref, e.actionRef));
    if (!w)
      return fail(
        'workflow_not_found',
        `workflow '${e.actionRef}' does not exist (it was deleted after the execution was requested)`,
      );
    const snapshot = snapshotOf(w);
    let def: ReturnType<typeof parseSnapshot>;
    try {
      def = parseSnapshot(snapshot);
    } catch (err) {
      if (err instanceof DefinitionSnapshotError) return fail('workflow_invalid', err.message);
      throw err;
    }
    const [sec] = await tx
      .select({ ciphertext: executionSecrets.ciphertext })
      .from(executionSecrets)
      .where(eq(executionSecrets.executionId, e.id));
    let opened: ReturnType<typeof openParameters>;
    try {
      opened = openParameters(deps.cipher, e.parameters, sec?.ciphertext);
    } catch (err) {
      return fail(
        'secret_undecryptable',
        `the secret parameters cannot be decrypted: ${(err as Error).message}`,
      );
    }
    // Tasks whose action is run by the inquiry runner ask a person (core.ask and its kind).
    const refs = [...new Set(def.tasks.map((t) => t.action))];
    const asking = await tx
      .select({ ref: actions.ref })
      .from(actions)
      .where(and(inArray(actions.ref, refs), eq(actions.runner, 'inquiry')));
    const loaded = await loadEnvironment(tx, deps.store, deps.cipher, def, snapshot.pack_ref);
    const r = start(def, opened.parameters, {
      executionId: e.id,
      now: env.now(),
      user: e.createdBy,
      inquiryActions: [...new Set([...DEFAULT_INQUIRY_ACTIONS, ...asking.map((a) => a.ref)])],
      env: loaded.env,
    });
    const running = await transitionExecution(tx, e.id, ['requested'], 'running', { startedAt: sql`now()` });
    if (!running) return 'skipped';
    fx.note(running);
    const ctx = new RunContext(
      tx,
      env,
      fx,
      running,
      def,
      snapshot,
      { state: r.state, secretNames: opened.secretNames },
      {},
      loaded,
    );
    await ctx.absorb(null, r);
    await ctx.persist({ insert: { workflowRef: w.ref } });
    return ctx.state.status === 'failed' ? 'failed' : 'started';
  });
}

// ───────────────────────────── pause, resume, cancel ─────────────────────────────

export interface OperationResult {
  /** The workflow execution after the operation. */
  execution: ExecutionRow;
  /** `applied`: it changed something; `ignored`: it was already so (pausing twice…). */
  outcome: 'applied' | 'ignored';
  reason?: string;
}

const TERMINAL_WORKFLOW: readonly WorkflowStatus[] = ['succeeded', 'failed', 'canceled'];

async function operate(
  deps: WorkflowDeps,
  id: number,
  type: 'pause' | 'resume' | 'cancel',
  by: string,
): Promise<OperationResult | null> {
  const verb = type === 'pause' ? 'paused' : type === 'resume' ? 'resumed' : 'canceled';
  return runInTx(deps, async (tx, fx) => {
    const [e] = await tx.select().from(executions).where(eq(executions.id, id));
    if (!e) throw notFound('execution', id);
    const r = await advance(tx, envOf(deps), fx, id, [{ type, now: envOf(deps).now() }], { actor: by });
    if (!r.found) {
      if (e.runner !== 'workflow') return null;
      if (type === 'cancel' && e.status === 'requested') {
        const moved = await transitionExecution(tx, id, ['requested'], 'canceled', {
          error: { type: 'canceled', message: `canceled by ${by}`, canceled_by: by },
        });
        if (moved) {
          fx.note(moved);
          await writeOutboxMany(tx, [completedMessage(moved)]);
          fx.outbox = true;
          return { execution: moved, outcome: 'applied' };
        }
      }
      if (isTerminal(EXECUTION_TRANSITIONS, e.status))
        throw conflict(`execution ${id} already finished (${e.status}); it cannot be ${verb}`, {
          id,
          status: e.status,
        });
      throw conflict(`workflow execution ${id} has not started yet (${e.status}); it cannot be ${verb}`, {
        id,
        status: e.status,
      });
    }
    const o = r.outcomes[0] ?? { outcome: 'ignored' as const };
    const status = r.state?.status;
    if (o.outcome === 'ignored' && status && TERMINAL_WORKFLOW.includes(status))
      throw conflict(`execution ${id} already finished (${status}); it cannot be ${verb}`, { id, status });
    if (o.outcome === 'rejected')
      throw conflict(o.reason ?? `the workflow cannot be ${verb}`, { id, status: status ?? e.status });
    const out: OperationResult = { execution: r.execution ?? e, outcome: o.outcome };
    if (o.reason !== undefined) out.reason = o.reason;
    return out;
  });
}

function notAWorkflow(id: number): AppError {
  return conflict(`execution ${id} is not a workflow execution; only workflows can be paused and resumed`, {
    id,
  });
}

/**
 * Pauses workflow execution `id`: no new task starts; running tasks finish (running sub-workflows
 * pause too); the workflow is `pausing`, then `paused`. 404 / 409 (not a workflow, finished, or a
 * status that cannot pause, e.g. failing).
 */
export async function pauseWorkflow(deps: WorkflowDeps, id: number, by: string): Promise<OperationResult> {
  const r = await operate(deps, id, 'pause', by);
  if (!r) throw notAWorkflow(id);
  return r;
}

/** Resumes a pausing or paused workflow execution: waiting tasks start, paused sub-workflows resume. */
export async function resumeWorkflow(deps: WorkflowDeps, id: number, by: string): Promise<OperationResult> {
  const r = await operate(deps, id, 'resume', by);
  if (!r) throw notAWorkflow(id);
  return r;
}

/**
 * Cancels workflow execution `id`: running tasks and sub-workflows are canceled, delayed tasks and
 * retries dropped, inquiries withdrawn; it is `canceling` until its running tasks confirm, then
 * `canceled`. Any other execution is canceled as `cancelExecution` does (needs the bus).
 */
export async function cancelWorkflow(deps: WorkflowDeps, id: number, by: string): Promise<OperationResult> {
  const r = await operate(deps, id, 'cancel', by);
  if (r) return r;
  if (!deps.bus)
    throw new AppError(
      'SERVICE_UNAVAILABLE',
      'executions cannot be canceled: the message bus is not running',
    );
  const c = await cancelExecution(deps.store, deps.bus, id, by, {
    ...(deps.kickOutbox && { kickOutbox: deps.kickOutbox }),
    ...(deps.log && { log: deps.log }),
  });
  return { execution: c.execution, outcome: 'applied' };
}

// ───────────────────────────── rerun ─────────────────────────────

export interface RerunOptions {
  /** Tasks to run again (default: the failed and canceled ones that ended the workflow). */
  tasks?: string[] | undefined;
  /** With-items tasks whose items all run again (default: only their failed items). */
  resetItems?: string[] | undefined;
  /** Login of who asks. */
  by?: string | null | undefined;
}

/**
 * Reruns a failed or canceled workflow execution as a new execution (`rerun_of` = `id`) seeded with
 * its state: the chosen failed tasks run again; succeeded tasks — and the succeeded items of a
 * with-items task — are reused with their results and published variables. The task runs of the
 * first execution are copied to the new one, so its history stays visible.
 * 400 for unknown task names; 404; 409 when the execution is not a finished workflow or the engine
 * refuses (a task that succeeded, nothing to rerun…).
 */
export function rerunWorkflow(
  deps: WorkflowDeps,
  id: number,
  opts: RerunOptions = {},
): Promise<ExecutionRow> {
  const env = envOf(deps);
  return runInTx(deps, async (tx, fx) => {
    const [old] = await tx.select().from(executions).where(eq(executions.id, id));
    if (!old) throw notFound('execution', id);
    const [run] = await tx.select().from(workflowRuns).where(eq(workflowRuns.executionId, id));
    if (!run)
      throw conflict(
        old.runner === 'workflow'
          ? `workflow execution ${id} never started (${old.status}); rerun it as a new execution`
          : `execution ${id} is not a workflow execution; re-run it with POST /api/v1/executions/${id}/rerun`,
        { id, status: old.status },
      );
    if (!isTerminal(EXECUTION_TRANSITIONS, old.status))
      throw conflict(`workflow execution ${id} is ${old.status}; only a finished workflow can be rerun`, {
        id,
        status: old.status,
      });
    const snapshot = asSnapshot(run.definition);
    const def = definitionOf(run, snapshot);
    const known = def.tasks.map((t) => t.name);
    for (const [field, names] of [
      ['tasks', opts.tasks],
      ['reset_items', opts.resetItems],
    ] as const) {
      for (const n of names ?? []) {
        if (!known.includes(n))
          throw validationError(`the workflow has no task '${n}'`, { field, task: n, tasks: known });
      }
    }
    const open = openState(deps.cipher, run.state);
    const state = structuredClone(open.state);
    if (state.status !== 'failed' && state.status !== 'canceled')
      throw conflict(`only a failed or canceled workflow can be rerun (this one is ${state.status})`, {
        id,
        status: state.status,
      });
    const created = await rerunExecution(tx, deps.cipher, id, { createdBy: opts.by ?? null });
    fx.outbox = true;
    const now = env.now();
    state.execution = {
      id: String(created.id),
      started: new Date(now).toISOString(),
      user: opts.by ?? created.createdBy,
    };
    const event: WorkflowEvent = { type: 'rerun', now };
    if (opts.tasks?.length) event.tasks = [...opts.tasks];
    if (opts.resetItems?.length) event.resetItems = [...opts.resetItems];
    const loaded = await loadEnvironment(tx, deps.store, deps.cipher, def, snapshot.pack_ref);
    const r = step(def, state, event, loaded.env);
    if (r.outcome !== 'applied')
      throw conflict(r.reason ?? 'the workflow cannot be rerun', { id, status: open.state.status });
    const running = await transitionExecution(tx, created.id, ['requested'], 'running', {
      startedAt: sql`now()`,
    });
    if (!running) throw new Error(`rerun execution ${created.id} left requested`);
    fx.note(running);
    await tx.execute(sql`
      insert into ${workflowTaskRuns} (workflow_execution_id, task_name, run_key, item_index, attempt, status,
                                       execution_id, input, result, started_at, finished_at)
      select ${created.id}::bigint, task_name, run_key, item_index, attempt, status,
             execution_id, input, result, started_at, finished_at
        from ${workflowTaskRuns} where workflow_execution_id = ${id}::bigint order by id
      on conflict do nothing`);
    const ctx = new RunContext(
      tx,
      env,
      fx,
      running,
      def,
      snapshot,
      { state, secretNames: open.secretNames, ...(open.sealed ? { sealed: true } : {}) },
      opts.by ? { actor: opts.by } : {},
      loaded,
    );
    await ctx.absorb(event, r);
    await ctx.persist({ insert: { workflowRef: run.workflowRef } });
    return ctx.wf;
  });
}
