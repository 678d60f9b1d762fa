/**
 * The scheduler: takes executions out of `requested`. For each one still requested it looks at the
 * action and decides, in one transaction per batch of messages:
 *  - the action is gone or disabled → `failed` (with a clear error);
 *  - the action is a workflow or an inquiry → left `requested` for the workflow engine (`hooks`);
 *  - the action has a concurrency policy and its group is full → `delayed` (FIFO) or `canceled`;
 *  - otherwise → `scheduled`, with a lease a worker must claim it within, and `execution.scheduled`.
 *
 * Concurrency groups are serialised with a transaction-scoped advisory lock per group, so several
 * scheduler replicas on one PostgreSQL never start more than `limit` executions of a group. Within
 * a group, executions start in creation order: an execution waiting in the group (delayed, or
 * requested again) goes before a newer one, whichever message arrives first.
 */
import { and, asc, eq, inArray, or, sql } from 'drizzle-orm';
import type { BusMessage, Subscription } from '../../bus/bus.ts';
import { ACTIVE_EXECUTION_STATUSES } from '../../domain/status.ts';
import type { Tx } from '../../store/database.ts';
import { type ExecutionRow, transitionExecutions } from '../../store/repositories/executions.ts';
import { executions } from '../../store/schema.ts';
import { Batcher } from '../runtime/batcher.ts';
import { QUEUES, TOPICS } from '../runtime/messages.ts';
import { ActionCache, type ActionRow } from './action-cache.ts';
import { type ConcurrencyPolicy, parseConcurrencyPolicy, policyGroupKey } from './policies.ts';
import {
  completedMessage,
  DEADLINES,
  DEFAULT_TIMEOUT_SECONDS,
  executionIdOf,
  notifyStatuses,
  type OutboxMessage,
  type RuntimeDeps,
  type RuntimeLogger,
  scheduledMessage,
  schedulePatch,
  secondsFromNow,
  silentLogger,
  writeOutboxMany,
} from './runtime.ts';

/** Namespace of the scheduler's advisory locks (the second key is a hash of the group). */
export const POLICY_LOCK_NAMESPACE = 7001;

export interface SchedulerHooks {
  /**
   * A workflow execution is in `requested`: start (or resume) it. Called after the scheduler's
   * transaction, at least once per `execution.requested` message: must be idempotent (e.g. a
   * guarded `requested → running` transition). Throwing makes the message come back later.
   */
  onWorkflow(execution: ExecutionRow): Promise<void>;
  /** An inquiry execution is in `requested`: open the inquiry. Same rules as `onWorkflow`. */
  onInquiry(execution: ExecutionRow): Promise<void>;
}

export interface SchedulerOptions extends RuntimeDeps {
  hooks?: Partial<SchedulerHooks>;
  /** Seconds a worker has to claim a scheduled execution. Default 30. */
  scheduleLeaseSeconds?: number;
  /** Seconds after which an execution delayed by a concurrency policy is looked at again. Default 60. */
  policyRecheckSeconds?: number;
  /** Timeout of executions whose action names none. Default 600. */
  defaultTimeoutSeconds?: number;
  /** Messages handled at once (and largest batch). Default 512 / 256. */
  prefetch?: number;
  batchSize?: number;
  /** How long action definitions are cached. Default 2000 ms. */
  actionCacheMs?: number;
}

type Disposition =
  | { kind: 'done' }
  | { kind: 'hook'; runner: 'workflow' | 'inquiry'; execution: ExecutionRow };
const DONE: Disposition = { kind: 'done' };

interface PolicyGroup {
  key: string;
  policy: ConcurrencyPolicy;
  action: ActionRow;
  rows: ExecutionRow[];
}

export class Scheduler {
  private readonly log: RuntimeLogger;
  private readonly hooks: SchedulerHooks;
  private readonly actions: ActionCache;
  private readonly batcher: Batcher<number, Disposition>;
  private readonly scheduleLease: number;
  private readonly policyRecheck: number;
  private readonly defaultTimeout: number;
  private subs: Subscription[] = [];
  private started = false;

  constructor(private readonly deps: SchedulerOptions) {
    this.log = deps.log ?? silentLogger;
    const log = this.log;
    this.hooks = {
      onWorkflow:
        deps.hooks?.onWorkflow ??
        (async (e) =>
          log.warn(
            { execution_id: e.id, action: e.actionRef },
            'no workflow engine is attached to this scheduler; the workflow execution stays requested',
          )),
      onInquiry:
        deps.hooks?.onInquiry ??
        (async (e) =>
          log.warn(
            { execution_id: e.id, action: e.actionRef },
            'no inquiry handler is attached to this scheduler; the inquiry execution stays requested',
          )),
    };
    this.actions = new ActionCache(() => deps.store.db, deps.actionCacheMs ?? 2000);
    this.scheduleLease = deps.scheduleLeaseSeconds ?? DEADLINES.scheduleLease;
    this.policyRecheck = deps.policyRecheckSeconds ?? DEADLINES.policyRecheck;
    this.defaultTimeout = deps.defaultTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    // A batch that fails is retried item by item by the batcher: one bad execution fails alone.
    this.batcher = new Batcher((ids) => this.scheduleBatch(ids), { maxBatchSize: deps.batchSize ?? 256 });
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.subs.push(
      await this.deps.bus.subscribe([TOPICS.definitionsChanged], async () => this.actions.clear()),
      await this.deps.bus.consume(
        QUEUES.scheduler,
        { topics: [TOPICS.executionRequested], prefetch: this.deps.prefetch ?? 512 },
        (msg) => this.onMessage(msg),
      ),
    );
  }

  /** Stops taking messages and waits for the batches in progress. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    const subs = this.subs;
    this.subs = [];
    await Promise.all(subs.map((s) => s.close()));
    await this.batcher.close();
  }

  private async onMessage(msg: BusMessage): Promise<void> {
    const d = await this.batcher.add(executionIdOf(msg.payload));
    if (d.kind !== 'hook') return;
    if (d.runner === 'workflow') await this.hooks.onWorkflow(d.execution);
    else await this.hooks.onInquiry(d.execution);
  }

  /**
   * Schedules the executions `ids` that are still requested; returns, per id, whether a hook must
   * run for it. Exposed for tests and for callers that want to schedule without the bus.
   */
  async scheduleBatch(ids: number[]): Promise<Disposition[]> {
    const unique = [...new Set(ids)];
    const rows = await this.deps.store.db
      .select()
      .from(executions)
      .where(and(inArray(executions.id, unique), eq(executions.status, 'requested')))
      .orderBy(asc(executions.id));
    if (rows.length === 0) return ids.map(() => DONE);
    const acts = await this.actions.getMany(rows.map((r) => r.actionRef));

    const hooked = new Map<number, Disposition>();
    const failures: { row: ExecutionRow; error: Record<string, unknown> }[] = [];
    const plain = new Map<string, { action: ActionRow; rows: ExecutionRow[] }>();
    const groups = new Map<string, PolicyGroup>();
    for (const row of rows) {
      const action = acts.get(row.actionRef) ?? null;
      if (!action) {
        failures.push({
          row,
          error: {
            type: 'action_not_found',
            message: `action '${row.actionRef}' does not exist (it was deleted after the execution was requested)`,
          },
        });
        continue;
      }
      if (!action.enabled) {
        failures.push({
          row,
          error: { type: 'action_disabled', message: `action '${row.actionRef}' is disabled` },
        });
        continue;
      }
      if (row.runner === 'workflow' || row.runner === 'inquiry') {
        hooked.set(row.id, { kind: 'hook', runner: row.runner, execution: row });
        continue;
      }
      const policy = parseConcurrencyPolicy(action.concurrencyPolicy);
      if (!policy) {
        const p = plain.get(action.ref) ?? { action, rows: [] };
        p.rows.push(row);
        plain.set(action.ref, p);
        continue;
      }
      const key = policyGroupKey(action.ref, policy, row.parameters);
      const g = groups.get(key) ?? { key, policy, action, rows: [] };
      g.rows.push(row);
      groups.set(key, g);
    }

    const changed: ExecutionRow[] = [];
    const messages: OutboxMessage[] = [];
    if (failures.length || plain.size || groups.size) {
      await this.deps.store.transaction(async (tx) => {
        for (const f of failures) {
          const moved = await transitionExecutions(tx, [f.row.id], ['requested'], 'failed', {
            error: f.error,
          });
          for (const r of moved) messages.push(completedMessage(r));
          changed.push(...moved);
        }
        for (const { action, rows: rs } of plain.values()) {
          const moved = await transitionExecutions(
            tx,
            rs.map((r) => r.id),
            ['requested'],
            'scheduled',
            this.schedulePatch(action, null),
          );
          for (const r of moved) messages.push(scheduledMessage(r));
          changed.push(...moved);
        }
        // A fixed lock order (by key) keeps two schedulers locking overlapping groups from deadlocking.
        for (const g of [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
          await this.scheduleGroup(tx, g, changed, messages);
        }
        messages.sort((a, b) => (a.payload.execution_id as number) - (b.payload.execution_id as number));
        await writeOutboxMany(tx, messages);
      });
      if (messages.length) this.deps.kickOutbox?.();
      notifyStatuses(this.deps.bus, changed, this.log);
    }
    const seen = new Set<number>();
    return ids.map((id) => {
      const d = hooked.get(id);
      if (!d || seen.has(id)) return DONE;
      seen.add(id);
      return d;
    });
  }

  private schedulePatch(action: ActionRow, group: string | null) {
    return schedulePatch(action, group, this.scheduleLease, this.defaultTimeout);
  }

  /** One concurrency group, under its advisory lock (held until the transaction ends). */
  private async scheduleGroup(
    tx: Tx,
    g: PolicyGroup,
    changed: ExecutionRow[],
    messages: OutboxMessage[],
  ): Promise<void> {
    await tx.execute(
      sql`select pg_advisory_xact_lock(${POLICY_LOCK_NAMESPACE}::integer, hashtext(${g.key}))`,
    );
    const [{ n } = { n: 0 }] = await tx
      .select({ n: sql<number>`count(*)::integer` })
      .from(executions)
      .where(
        and(eq(executions.policyGroup, g.key), inArray(executions.status, [...ACTIVE_EXECUTION_STATUSES])),
      );
    const free = Math.max(0, g.policy.limit - Number(n));
    const batchIds = g.rows.map((r) => r.id);
    // The oldest executions waiting in the group get the free slots: this batch's (as they are now,
    // after the lock: a duplicate message may have been handled meanwhile) and those already
    // waiting (delayed, or requested again) — an older one goes before a newer one.
    const chosen =
      free === 0
        ? []
        : await tx
            .select({ id: executions.id, status: executions.status })
            .from(executions)
            .where(
              and(
                or(eq(executions.policyGroup, g.key), inArray(executions.id, batchIds)),
                inArray(
                  executions.status,
                  g.policy.mode === 'delay' ? ['requested', 'delayed'] : ['requested'],
                ),
              ),
            )
            .orderBy(asc(executions.id))
            .limit(free);
    const chosenIds = new Set(chosen.map((c) => c.id));
    const wokenDelayed = chosen.filter((c) => c.status === 'delayed').map((c) => c.id);
    if (wokenDelayed.length)
      await transitionExecutions(tx, wokenDelayed, ['delayed'], 'requested', { runAfter: null });
    const scheduled = await transitionExecutions(
      tx,
      chosen.map((c) => c.id),
      ['requested'],
      'scheduled',
      this.schedulePatch(g.action, g.key),
    );
    for (const r of scheduled) messages.push(scheduledMessage(r));
    changed.push(...scheduled);

    const beyond = batchIds.filter((id) => !chosenIds.has(id));
    if (!beyond.length) return;
    const where = g.policy.groupBy.length ? ` for ${g.key.slice(g.action.ref.length + 1)}` : '';
    if (g.policy.mode === 'delay') {
      const delayed = await transitionExecutions(tx, beyond, ['requested'], 'delayed', {
        policyGroup: g.key,
        runAfter: secondsFromNow(this.policyRecheck),
      });
      changed.push(...delayed);
    } else {
      const canceled = await transitionExecutions(tx, beyond, ['requested'], 'canceled', {
        policyGroup: g.key,
        error: {
          type: 'concurrency_limit',
          message: `canceled by the concurrency policy of '${g.action.ref}': ${g.policy.limit} execution(s) already active${where}`,
        },
      });
      for (const r of canceled) messages.push(completedMessage(r));
      changed.push(...canceled);
    }
  }
}
