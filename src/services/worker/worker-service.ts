/**
 * A worker: claims scheduled executions, runs them with the runner library, stores their output
 * and records how they ended.
 *
 *  - Registers itself in `workers` and heartbeats every 5 s: one statement renews the worker row and
 *    the leases (20 s) of all its running and canceling executions. An execution whose lease passes
 *    (the worker died, hung, or lost the database) is abandoned by the sweeper; a worker that finds
 *    an execution no longer renewed stops it.
 *  - Consumes `execution.scheduled` with prefetch = capacity: each message handler runs one
 *    execution from claim to completion, so at most `capacity` run at once. The claim is the
 *    guarded `scheduled → running`; a message whose execution is not scheduled any more (taken,
 *    canceled, requeued, duplicate) is acknowledged and ignored.
 *  - Output is buffered and written every ~100 ms (see OutputWriter); the terminal status, result
 *    and `execution.completed` are one transaction, batched across executions finishing together.
 *    When the completion handler lives in this process (`followUpHere`), an end that needs no
 *    follow-up is marked followed up in that transaction instead, with no message.
 *  - `noop` executions have nothing to run: they are claimed and ended in one pass (`claimAndEnd`),
 *    through the same guarded transitions.
 *  - Processes are started through the process host (runners/process-host.ts): forking a worker
 *    that holds an embedded database costs ~20 ms of blocked event loop per process.
 *  - `execution.cancel` broadcasts abort the matching run (its process group is killed); a lost
 *    broadcast is caught by the heartbeat, which sees the execution `canceling`.
 *  - `stop()`: stops claiming, lets running executions finish for `shutdownGraceMs`, then stops the
 *    rest (they end `abandoned`, which a retry policy may retry) and deregisters.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { eq, inArray, sql } from 'drizzle-orm';
import type { BusMessage, Subscription } from '../../bus/bus.ts';
import { isRunner, RUNNER_REFS, type RunnerRef } from '../../domain/runners.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Tx } from '../../store/database.ts';
import {
  type ExecutionRow,
  transitionExecution,
  transitionExecutions,
} from '../../store/repositories/executions.ts';
import { executionSecrets, executions, workers } from '../../store/schema.ts';
import { metrics } from '../metrics/registry.ts';
import type { RuleIndex } from '../rules-engine/rule-index.ts';
import { Batcher } from '../runtime/batcher.ts';
import { isSecretMarker, openParameters, schemaSecretNames } from '../runtime/execution-secrets.ts';
import { QUEUES, TOPICS } from '../runtime/messages.ts';
import { ActionCache, type ActionRow } from '../scheduler/action-cache.ts';
import { EXECUTION_COMPLETED_TRIGGER, needsCompletionFollowUp } from '../scheduler/completion.ts';
import {
  completedMessage,
  DEADLINES,
  DEFAULT_TIMEOUT_SECONDS,
  executionIdOf,
  NOTIFIED_COLUMNS,
  notifyStatuses,
  type OutboxMessage,
  type RuntimeDeps,
  type RuntimeLogger,
  SCHEDULER_RUNNERS,
  secondsFromNow,
  silentLogger,
  writeOutboxMany,
} from '../scheduler/runtime.ts';
import { OutputWriter } from './output-writer.ts';
import { SecretRedactor } from './redact.ts';
import { type ResolvedRunnerConfig, type RunnerConfig, resolveRunnerConfig } from './runners/config.ts';
import { type RunOutcome, type RunRequest, runAction } from './runners/runner.ts';

/** The runners a worker carries out (workflows and inquiries are the scheduler's). */
export const WORKER_RUNNERS: readonly RunnerRef[] = RUNNER_REFS.filter((r) => !SCHEDULER_RUNNERS.includes(r));

export interface WorkerServiceOptions extends RuntimeDeps {
  /** Decrypts `execution_secrets`. */
  cipher: Cipher;
  /** The directory of a pack's files (script actions), or null when the pack has none here. */
  packDir: (packRef: string) => string | null;
  /** Default `hostname:pid:random`. */
  id?: string;
  /** Executions run at once. Default 8. */
  capacity?: number;
  /** Runners this worker accepts. Default all worker runners. */
  runners?: readonly RunnerRef[];
  runnerConfig?: RunnerConfig;
  /** Default 5 s. */
  heartbeatIntervalSeconds?: number;
  /** Lease renewed by each heartbeat. Default 20 s. */
  runLeaseSeconds?: number;
  /** How long `stop()` lets running executions finish before stopping them. Default 30 s. */
  shutdownGraceMs?: number;
  /** Largest output kept per stream and execution. Default 10 MB. */
  maxOutputBytes?: number;
  outputFlushMs?: number;
  outputFlushBytes?: number;
  /** Timeout of an execution that has none recorded and whose action names none. Default 600 s. */
  defaultTimeoutSeconds?: number;
  labels?: Record<string, unknown>;
  /**
   * The scheduler's completion handler runs in this process, with no hook of its own beyond the
   * workflow host's: an execution that needs no follow-up — no retry to make, no concurrency group,
   * no parent workflow, no rule on `core.execution_completed` (asked of `rules`) — is marked followed
   * up in the transaction that ends it, and sends no `execution.completed`. Default: every end is
   * followed up by the completion handler.
   */
  followUpHere?: { rules?: RuleIndex | undefined };
}

type StopReason = 'cancel' | 'shutdown' | 'lease_lost';

/** What the noop path reads back of the executions it moves: notifications, metrics, messages. */
const BRIEF_COLUMNS = [
  ...NOTIFIED_COLUMNS,
  'runner',
  'enforcementId',
  'context',
  'startedAt',
  'finishedAt',
  'policyGroup',
  'attempt',
] as const;

interface Run {
  row: ExecutionRow;
  controller: AbortController;
  /** Date.now() after the claim committed. */
  claimedAt: number;
  reason: StopReason | undefined;
}

interface Claimed {
  row: ExecutionRow;
  ciphertext: string | null;
}

/** A run's outcome, or a failure of the worker itself (whose error types the runners do not know). */
type Outcome = Omit<RunOutcome, 'error'> & { error?: { type: string; message: string } };

interface Finished {
  row: ExecutionRow;
  outcome: Outcome;
  reason: StopReason | undefined;
}

export class WorkerService {
  readonly id: string;
  readonly capacity: number;
  private readonly log: RuntimeLogger;
  private readonly runners: ReadonlySet<string>;
  private readonly runnerConfig: ResolvedRunnerConfig;
  private readonly heartbeatMs: number;
  private readonly runLease: number;
  private readonly graceMs: number;
  private readonly actions: ActionCache;
  private readonly output: OutputWriter;
  private readonly claims: Batcher<number, Claimed | null>;
  /** Claims of executions whose runner needs no run at all (noop): claimed and ended in one transaction. */
  private readonly inlineClaims: Batcher<number, Claimed | null>;
  private readonly completions: Batcher<Finished>;
  private readonly runs = new Map<number, Run>();
  /** Ends of runs being recorded. */
  private readonly recording = new Set<Promise<void>>();
  /** Aborted when the worker gives up on everything (end of stop). */
  private readonly lifetime = new AbortController();
  private consumer: Subscription | undefined;
  private subs: Subscription[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatRun: Promise<void> | undefined;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  /** Heartbeats go on while running and stopping, until the very end of `stop()`. */
  private beating = true;

  constructor(private readonly deps: WorkerServiceOptions) {
    this.id = deps.id ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.capacity = Math.max(1, Math.floor(deps.capacity ?? 8));
    this.log = deps.log ?? silentLogger;
    this.runners = new Set(deps.runners ?? WORKER_RUNNERS);
    this.runnerConfig = resolveRunnerConfig(deps.runnerConfig ?? {});
    this.heartbeatMs = (deps.heartbeatIntervalSeconds ?? DEADLINES.heartbeatInterval) * 1000;
    this.runLease = deps.runLeaseSeconds ?? DEADLINES.runLease;
    this.graceMs = deps.shutdownGraceMs ?? 30_000;
    this.actions = new ActionCache(() => deps.store.db);
    this.output = new OutputWriter(deps.store, deps.bus, {
      ...(deps.outputFlushMs !== undefined && { flushMs: deps.outputFlushMs }),
      ...(deps.outputFlushBytes !== undefined && { flushBytes: deps.outputFlushBytes }),
      log: this.log,
    });
    this.claims = new Batcher((ids) => this.claimBatch(ids), { maxBatchSize: this.capacity });
    this.inlineClaims = new Batcher((ids) => this.claimAndEnd(ids), { maxBatchSize: this.capacity });
    this.completions = new Batcher((items) => this.completeBatch(items), { maxBatchSize: 256 });
  }

  /** Executions running on this worker now. */
  get active(): number {
    return this.runs.size;
  }

  /** Ids of the executions running on this worker now. */
  get runningIds(): number[] {
    return [...this.runs.keys()];
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`worker ${this.id} was already started`);
    this.state = 'running';
    await this.deps.store.db
      .insert(workers)
      .values({
        id: this.id,
        hostname: os.hostname(),
        pid: process.pid,
        runners: [...this.runners],
        capacity: this.capacity,
        status: 'active',
        labels: this.deps.labels ?? {},
      })
      .onConflictDoUpdate({
        target: workers.id,
        set: { status: 'active', heartbeatAt: sql`now()`, capacity: this.capacity, stoppedAt: null },
      });
    this.subs.push(
      await this.deps.bus.subscribe([TOPICS.executionCancel], async (msg) => this.onCancel(msg)),
      await this.deps.bus.subscribe([TOPICS.definitionsChanged], async () => this.actions.clear()),
    );
    this.consumer = await this.deps.bus.consume(
      QUEUES.workers,
      { topics: [TOPICS.executionScheduled], prefetch: this.capacity },
      (msg) => this.onMessage(msg),
    );
    this.armHeartbeat();
    metrics.attachWorker(this);
    this.log.info({ worker_id: this.id, capacity: this.capacity }, 'worker started');
  }

  /**
   * Stops claiming, waits up to the grace period for running executions, stops the rest, records
   * their end, and deregisters. Leaves no timer behind.
   */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    const db = this.deps.store.db;
    await db
      .update(workers)
      .set({ status: 'draining' })
      .where(eq(workers.id, this.id))
      .catch(() => {});
    const closing = this.consumer?.close() ?? Promise.resolve();
    this.consumer = undefined;
    if (!(await settlesWithin(closing, this.graceMs))) {
      for (const run of this.runs.values()) this.abortRun(run, 'shutdown');
      // Processes get TERM, then KILL after the runner's grace; then their end is recorded.
      if (!(await settlesWithin(closing, this.runnerConfig.killGraceMs + 10_000))) {
        this.log.error(
          { worker_id: this.id, execution_ids: this.runningIds },
          'executions did not end after being stopped; leaving them to the sweeper',
        );
        this.lifetime.abort();
      }
    }
    await closing;
    // The ends of the last runs are being recorded; give the database a moment if it is slow.
    if (!(await settlesWithin(Promise.all(this.recording), 10_000))) this.lifetime.abort();
    await Promise.all(this.recording);
    this.lifetime.abort();
    await Promise.all(this.subs.map((s) => s.close()));
    this.subs = [];
    await this.claims.close();
    await this.inlineClaims.close();
    await this.completions.close();
    await this.output.close();
    this.beating = false;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.heartbeatRun;
    await db
      .update(workers)
      .set({ status: 'stopped', running: 0, stoppedAt: sql`now()` })
      .where(eq(workers.id, this.id))
      .catch(() => {});
    this.state = 'stopped';
    metrics.detachWorker(this);
    this.log.info({ worker_id: this.id }, 'worker stopped');
  }

  // ───────────────────────────── claiming and running ─────────────────────────────

  private async onMessage(msg: BusMessage): Promise<void> {
    const id = executionIdOf(msg.payload);
    const runner = (msg.payload as { runner?: unknown }).runner;
    if (typeof runner === 'string' && !this.runners.has(runner)) {
      // Another worker may run it; the bus hands the message on.
      throw new Error(`worker ${this.id} does not run '${runner}' executions`);
    }
    const claimed = await (runner === 'noop' ? this.inlineClaims : this.claims).add(id);
    if (!claimed) return;
    await this.execute(claimed);
  }

  /**
   * The `noop` runner has nothing to run: its executions are claimed (`scheduled → running`) and
   * ended (`running → succeeded`, with `execution.completed`) in the same pass — the same guarded
   * transitions and outbox message as any run, without a run or a batch in between. One whose
   * action went away (or stopped being a noop) is handed back, claimed, to the ordinary run.
   */
  private async claimAndEnd(ids: number[]): Promise<(Claimed | null)[]> {
    const db = this.deps.store.db;
    const claimed = await transitionExecutions(
      db,
      [...new Set(ids)],
      ['scheduled'],
      'running',
      {
        workerId: this.id,
        startedAt: sql`now()`,
        heartbeatAt: sql`now()`,
        leaseExpiresAt: secondsFromNow(this.runLease),
      },
      BRIEF_COLUMNS,
    );
    if (!claimed.length) return ids.map(() => null);
    metrics.executionsStarted(claimed);
    notifyStatuses(this.deps.bus, claimed, this.log);
    const known = await this.actions.getMany(claimed.map((r) => r.actionRef));
    const noop: number[] = [];
    const handBack: number[] = [];
    for (const r of claimed)
      if (r.runner === 'noop' && known.get(r.actionRef)?.runner === 'noop') noop.push(r.id);
      else handBack.push(r.id);
    if (noop.length) {
      // One turn of the event loop, as between the claim and the end of any run: whoever follows
      // the statuses hears of `running` before `succeeded` is there to be read.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const byId = new Map(claimed.map((r) => [r.id, r]));
      const emit = await this.followUpsWanted();
      const free = noop.filter((id) => !this.needsFollowUp(byId.get(id)!, 'succeeded', emit, null));
      const followed = noop.filter((id) => !free.includes(id));
      try {
        const [quiet, told] = await this.deps.store.transaction(async (tx) => {
          const ends = { result: null, error: null };
          const q = await transitionExecutions(
            tx,
            free,
            ['running'],
            'succeeded',
            { ...ends, completionHandledAt: sql`now()` },
            BRIEF_COLUMNS,
          );
          const t = await transitionExecutions(tx, followed, ['running'], 'succeeded', ends, BRIEF_COLUMNS);
          await writeOutboxMany(tx, t.map(completedMessage));
          return [q, t];
        });
        metrics.executionsFinished(quiet);
        if (told.length) this.deps.kickOutbox?.();
        notifyStatuses(this.deps.bus, [...quiet, ...told], this.log);
      } catch (e) {
        // They are claimed: the ordinary run records their end, retrying as long as it takes.
        this.log.warn({ err: (e as Error).message, count: noop.length }, 'recording noop executions failed');
        handBack.push(...noop);
      }
    }
    if (!handBack.length) return ids.map(() => null);
    // Claimed, to be run the ordinary way: the whole rows.
    const rows = await db.select().from(executions).where(inArray(executions.id, handBack));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const secrets = await this.secretsOf(rows);
    return ids.map((id) => {
      const row = byId.get(id);
      if (!row) return null;
      byId.delete(id);
      return { row, ciphertext: secrets.get(id) ?? null };
    });
  }

  /** The sealed secret parameters of claimed executions (a marker in the parameters says which have some). */
  private async secretsOf(rows: readonly ExecutionRow[]): Promise<Map<number, string>> {
    const secrets = new Map<number, string>();
    const sealed = rows.filter((r) => Object.values(r.parameters).some(isSecretMarker)).map((r) => r.id);
    if (sealed.length) {
      const found = await this.deps.store.db
        .select({ id: executionSecrets.executionId, ciphertext: executionSecrets.ciphertext })
        .from(executionSecrets)
        .where(inArray(executionSecrets.executionId, sealed));
      for (const s of found) secrets.set(s.id, s.ciphertext);
    }
    return secrets;
  }

  private async claimBatch(ids: number[]): Promise<(Claimed | null)[]> {
    const db = this.deps.store.db;
    const rows = await transitionExecutions(db, [...new Set(ids)], ['scheduled'], 'running', {
      workerId: this.id,
      startedAt: sql`now()`,
      heartbeatAt: sql`now()`,
      leaseExpiresAt: secondsFromNow(this.runLease),
    });
    const byId = new Map(rows.map((r) => [r.id, r]));
    // Secret values are stored apart.
    const secrets = await this.secretsOf(rows);
    if (rows.length) notifyStatuses(this.deps.bus, rows, this.log);
    metrics.executionsStarted(rows);
    // A duplicate id in one batch gets the execution once.
    return ids.map((id) => {
      const row = byId.get(id);
      if (!row) return null;
      byId.delete(id);
      return { row, ciphertext: secrets.get(id) ?? null };
    });
  }

  /**
   * Runs a claimed execution; resolves when the run is over. Recording its end (output, status)
   * goes on in the background, so a slot is free again as soon as the process is gone; until the
   * end is recorded the execution stays in `runs` and its lease keeps being renewed.
   */
  private async execute({ row, ciphertext }: Claimed): Promise<void> {
    const run: Run = { row, controller: new AbortController(), claimedAt: Date.now(), reason: undefined };
    this.runs.set(row.id, run);
    let outcome: Outcome;
    try {
      outcome = await this.runOne(run, ciphertext);
    } catch (e) {
      outcome = internalFailure(`the worker failed to run the execution: ${(e as Error).message}`);
    }
    const recording = this.record(run, outcome).finally(() => {
      this.runs.delete(row.id);
      this.recording.delete(recording);
    });
    this.recording.add(recording);
  }

  private async record(run: Run, outcome: Outcome): Promise<void> {
    const { row } = run;
    if (outcome.truncated.stdout) this.output.markTruncated(row.id, 'stdout');
    if (outcome.truncated.stderr) this.output.markTruncated(row.id, 'stderr');
    await this.output.flush();
    await this.finish({ row, outcome, reason: run.reason });
  }

  private async runOne(run: Run, ciphertext: string | null): Promise<Outcome> {
    const { row } = run;
    const action = await this.actions.get(row.actionRef);
    if (!action) {
      return failed(
        'action_not_found',
        `action '${row.actionRef}' does not exist (deleted after it was scheduled)`,
      );
    }
    if (!isRunner(row.runner)) return failed('unsupported_runner', `unknown runner '${row.runner}'`);
    let opened: ReturnType<typeof openParameters>;
    try {
      opened = openParameters(this.deps.cipher, row.parameters, ciphertext);
    } catch (e) {
      return failed(
        'secret_error',
        `the execution's secret parameters cannot be decrypted (${(e as Error).message}); was the encryption key changed?`,
      );
    }
    const parameters = opened.parameters;
    applyDefaults(parameters, action.paramSchema);
    const secretNames = new Set([...schemaSecretNames(action.paramSchema), ...opened.secretNames]);
    // Whatever the action prints or returns, its secrets are not stored or broadcast in clear.
    const redactor = new SecretRedactor([...secretNames].map((n) => parameters[n]));
    const out = {
      stdout: redactor.stream((d) => this.output.write(row.id, 'stdout', d)),
      stderr: redactor.stream((d) => this.output.write(row.id, 'stderr', d)),
    };
    const req: RunRequest = {
      executionId: row.id,
      actionRef: row.actionRef,
      runner: row.runner,
      entryPoint: action.entryPoint,
      packDir: this.deps.packDir(action.packRef),
      parameters,
      secretParameters: [...secretNames],
      ...envParametersOf(action),
      timeoutSeconds:
        row.timeoutSeconds ??
        action.timeoutSeconds ??
        this.deps.defaultTimeoutSeconds ??
        DEFAULT_TIMEOUT_SECONDS,
      meta: action.meta,
      limits: { maxOutputBytes: this.deps.maxOutputBytes ?? 10 * 1024 * 1024 },
      signal: run.controller.signal,
      onOutput: (stream, chunk) => out[stream].write(chunk.replaceAll('\0', '\uFFFD')),
    };
    const outcome = await runAction(req, this.runnerConfig);
    out.stdout.end();
    out.stderr.end();
    if (!redactor.active) return outcome;
    return {
      ...outcome,
      result: redactor.value(outcome.result),
      ...(outcome.error && { error: { ...outcome.error, message: redactor.text(outcome.error.message) } }),
    };
  }

  /** Records the end of a run; retries while the database refuses, until the worker gives up. */
  private async finish(f: Finished): Promise<void> {
    let item = f;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.completions.add(item);
        return;
      } catch (e) {
        const message = (e as Error).message;
        if (attempt === 0) {
          // Maybe the result itself cannot be stored: record the end without it.
          item = {
            ...f,
            outcome: {
              ...f.outcome,
              status: f.outcome.status === 'succeeded' ? 'failed' : f.outcome.status,
              result: null,
              error: {
                type: 'internal_error',
                message: `the execution's result could not be stored: ${message}`,
              },
            },
          };
        }
        if (this.lifetime.signal.aborted) {
          this.log.error(
            { execution_id: f.row.id, err: message },
            'the end of the execution could not be recorded; the sweeper will abandon it',
          );
          return;
        }
        this.log.warn(
          { execution_id: f.row.id, err: message, attempt },
          'recording the end of an execution failed; retrying',
        );
        await sleep(Math.min(5000, 100 * 2 ** attempt), this.lifetime.signal);
      }
    }
  }

  private async completeBatch(items: Finished[]): Promise<void> {
    const changed: ExecutionRow[] = [];
    const messages: OutboxMessage[] = [];
    const quiet: ExecutionRow[] = [];
    // What the follow-up needs to know, asked before the transaction (PGlite has one connection).
    const emit = await this.followUpsWanted();
    const acts = this.deps.followUpHere
      ? await this.actions.getMany(items.map((f) => f.row.actionRef))
      : null;
    await this.deps.store.transaction(async (tx) => {
      // Outcomes that are alike (typically: succeeded with the same result) move in one statement.
      const alike = new Map<string, Finished[]>();
      for (const f of items) {
        const key =
          f.outcome.status === 'canceled'
            ? `#${f.row.id}`
            : JSON.stringify([f.outcome.status, f.outcome.result ?? null, f.outcome.error ?? null]);
        alike.set(key, [...(alike.get(key) ?? []), f]);
      }
      for (const group of alike.values()) {
        const status = group[0]!.outcome.status;
        const free = new Set(
          status === 'canceled'
            ? []
            : group
                .filter((f) => !this.needsFollowUp(f.row, status, emit, acts?.get(f.row.actionRef) ?? null))
                .map((f) => f.row.id),
        );
        const moved = [
          ...(await this.recordOutcomes(
            tx,
            group.filter((f) => !free.has(f.row.id)),
          )),
          ...(await this.recordOutcomes(
            tx,
            group.filter((f) => free.has(f.row.id)),
            true,
          )),
        ];
        const ids = new Set(moved.map((r) => r.id));
        for (const r of moved) {
          changed.push(r);
          if (free.has(r.id)) quiet.push(r);
          else messages.push(completedMessage(r));
        }
        for (const f of group) {
          if (!ids.has(f.row.id)) {
            this.log.info(
              { execution_id: f.row.id },
              'execution was no longer held by this worker when it ended; its end is not recorded',
            );
          }
        }
      }
      await writeOutboxMany(tx, messages);
    });
    metrics.executionsFinished(quiet);
    if (messages.length) this.deps.kickOutbox?.();
    notifyStatuses(this.deps.bus, changed, this.log);
  }

  /** Whether a rule uses `core.execution_completed` (when this worker follows ends up itself). */
  private async followUpsWanted(): Promise<boolean> {
    const here = this.deps.followUpHere;
    if (!here) return true;
    return (await here.rules?.hasRules(EXECUTION_COMPLETED_TRIGGER)) ?? false;
  }

  /** Whether an execution ending with `status` needs the completion handler (see `followUpHere`). */
  private needsFollowUp(
    row: Pick<ExecutionRow, 'parentId' | 'policyGroup' | 'attempt'>,
    status: string,
    emit: boolean,
    action: ActionRow | null,
  ): boolean {
    return !this.deps.followUpHere || needsCompletionFollowUp(row, status, emit, action);
  }

  /**
   * Records alike outcomes (same status, result and error; or a single canceled one); `followedUp`:
   * and marks them followed up (they need nothing of the completion handler).
   */
  private async recordOutcomes(tx: Tx, group: Finished[], followedUp = false): Promise<ExecutionRow[]> {
    if (!group.length) return [];
    const { row, outcome, reason } = group[0]!;
    const result = cleanJson(outcome.result ?? null);
    const error = outcome.error ? (cleanJson(outcome.error) as Record<string, unknown>) : null;
    if (outcome.status !== 'canceled') {
      return transitionExecutions(
        tx,
        group.map((f) => f.row.id),
        ['running', 'canceling'],
        outcome.status,
        followedUp ? { result, error, completionHandledAt: sql`now()` } : { result, error },
      );
    }
    const canceled = await transitionExecution(tx, row.id, ['canceling'], 'canceled', { result, error });
    if (canceled) return [canceled];
    // Nobody asked for a cancel: this worker stopped it (shutdown) or no longer held it.
    return transitionExecutions(tx, [row.id], ['running'], 'abandoned', {
      result,
      error: {
        type: 'worker_stopped',
        message:
          reason === 'shutdown'
            ? `worker '${this.id}' shut down before the execution finished`
            : `worker '${this.id}' stopped the execution (${reason ?? 'aborted'})`,
        worker_id: this.id,
      },
    });
  }

  // ───────────────────────────── cancel and heartbeat ─────────────────────────────

  private onCancel(msg: BusMessage): void {
    const id = (msg.payload as { execution_id?: unknown } | null)?.execution_id;
    if (typeof id !== 'number') return;
    const run = this.runs.get(id);
    if (run) this.abortRun(run, 'cancel');
  }

  private abortRun(run: Run, reason: StopReason): void {
    if (run.controller.signal.aborted) return;
    run.reason = reason;
    this.log.info({ execution_id: run.row.id, reason }, 'stopping execution');
    run.controller.abort();
  }

  private armHeartbeat(): void {
    if (!this.beating) return;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = undefined;
      this.heartbeatRun = this.heartbeat()
        .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'heartbeat failed; will retry'))
        .finally(() => {
          this.heartbeatRun = undefined;
          this.armHeartbeat();
        });
    }, this.heartbeatMs);
  }

  /**
   * One heartbeat: a single statement renews this worker's row and the leases of all its running
   * and canceling executions. Runs that were not renewed are no longer this worker's (the sweeper
   * abandoned or timed them out): they are stopped. Runs found `canceling` are stopped too.
   */
  async heartbeat(): Promise<void> {
    const began = Date.now();
    const revived = this.state === 'stopping' ? 'draining' : 'active';
    const result = await this.deps.store.db.execute(sql`
      with w as (
        insert into ${workers} (id, hostname, pid, runners, capacity, running, status)
        values (${this.id}, ${os.hostname()}, ${process.pid}, ${`{${[...this.runners].join(',')}}`}::text[], ${this.capacity}, ${this.runs.size}, ${revived})
        on conflict (id) do update
          set heartbeat_at = now(), running = excluded.running,
              status = case when ${workers}.status = 'lost' then excluded.status else ${workers}.status end
        returning 1
      )
      update ${executions}
         set lease_expires_at = now() + make_interval(secs => ${this.runLease}), heartbeat_at = now()
       where worker_id = ${this.id} and status in ('running', 'canceling')
      returning id, status`);
    const rows = (result as unknown as { rows: { id: number | string; status: string }[] }).rows;
    const renewed = new Map(rows.map((r) => [Number(r.id), r.status]));
    for (const run of this.runs.values()) {
      const status = renewed.get(run.row.id);
      if (status === 'canceling') this.abortRun(run, 'cancel');
      else if (status === undefined && run.claimedAt < began) {
        this.log.warn(
          { execution_id: run.row.id },
          'execution is no longer held by this worker; stopping it',
        );
        this.abortRun(run, 'lease_lost');
      }
    }
  }
}

// ───────────────────────────── helpers ─────────────────────────────

function failed(type: string, message: string): Outcome {
  return {
    status: 'failed',
    result: null,
    error: { type, message },
    truncated: { stdout: false, stderr: false },
    durationMs: 0,
  };
}

const internalFailure = (message: string): Outcome => failed('internal_error', message);

/** Fills in the `default` of declared parameters that were not given. */
function applyDefaults(parameters: Record<string, unknown>, schema: Record<string, unknown>): void {
  const props = schema.properties;
  if (typeof props !== 'object' || props === null || Array.isArray(props)) return;
  for (const [name, p] of Object.entries(props as Record<string, unknown>)) {
    if (Object.hasOwn(parameters, name) || typeof p !== 'object' || p === null) continue;
    if (Object.hasOwn(p, 'default')) parameters[name] = structuredClone((p as { default: unknown }).default);
  }
}

/** `meta.env_parameters` of the action: a list of names or `all-non-secret`. */
function envParametersOf(action: ActionRow): Pick<RunRequest, 'envParameters'> {
  const v = action.meta.env_parameters;
  if (v === 'all-non-secret') return { envParameters: 'all-non-secret' };
  if (Array.isArray(v)) return { envParameters: v.filter((x): x is string => typeof x === 'string') };
  return {};
}

/** PostgreSQL's jsonb refuses the NUL character; it becomes U+FFFD. */
function cleanJson(v: unknown): unknown {
  if (typeof v === 'string') return v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v;
  if (Array.isArray(v)) return v.map(cleanJson);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[cleanJson(k) as string] = cleanJson(x);
    return out;
  }
  return v;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Whether `p` settles within `ms` (the timer does not outlive the wait). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
