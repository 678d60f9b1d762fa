/**
 * Completion handling: what follows an execution reaching a terminal status (`execution.completed`).
 *  (a) retry policy of the action: a new execution (attempt + 1) is created, delayed by the back-off;
 *  (b) concurrency policy: the oldest executions waiting in the group are woken up for the free slots;
 *  (c) a child of a workflow: the parent is told (`onChildCompleted`);
 *  (d) the platform's internal trigger `core.execution_completed` (an event, when a rule uses it),
 *      and the `onExecutionCompleted` hook.
 *
 * A worker in the same process marks an end that needs none of (a)–(d) handled in the transaction
 * that records it, and sends no message (see `followUpHere` in worker-service.ts); so does the
 * workflow host for the `noop` tasks it runs itself.
 *
 * Exactly once: the transaction that does (a)–(d) first marks the execution handled
 * (`completion_handled_at`, a guarded `… WHERE completion_handled_at IS NULL`), so a duplicate or
 * redelivered message finds nothing to do. The hooks run inside that transaction: if one throws,
 * nothing of the follow-up is kept and the message comes back. A follow-up that never happened
 * (message dead-lettered) is re-published by the sweeper.
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { BusMessage, JsonValue, Subscription } from '../../bus/bus.ts';
import { AppError } from '../../domain/errors.ts';
import { ACTIVE_EXECUTION_STATUSES, TERMINAL_EXECUTION_STATUSES } from '../../domain/status.ts';
import type { Tx } from '../../store/database.ts';
import { idsMatch, mapRows, rawRows, returningList, wordsIn } from '../../store/repositories/bulk.ts';
import { type ExecutionRow, transitionExecutions } from '../../store/repositories/executions.ts';
import { executionSecrets, executions } from '../../store/schema.ts';
import { createEvent } from '../events/create-event.ts';
import { metrics } from '../metrics/registry.ts';
import type { RuleIndex } from '../rules-engine/rule-index.ts';
import { Batcher } from '../runtime/batcher.ts';
import { QUEUES, TOPICS } from '../runtime/messages.ts';
import { ActionCache, type ActionRow } from './action-cache.ts';
import { parseConcurrencyPolicy, parseRetryPolicy, retryDelaySeconds, shouldRetry } from './policies.ts';
import {
  executionIdOf,
  notifyStatuses,
  type OutboxMessage,
  type RuntimeDeps,
  type RuntimeLogger,
  requestedMessage,
  secondsFromNow,
  silentLogger,
  writeOutboxMany,
} from './runtime.ts';

export interface CompletionHooks {
  /**
   * An execution with a parent (a workflow task) is terminal and will not be retried by its
   * action's retry policy (when it is, the hook is called for the last attempt, whose
   * `context.retry_of` leads back to the first). Runs inside the follow-up transaction `tx`.
   */
  onChildCompleted(execution: ExecutionRow, tx: Tx): Promise<void>;
  /** Any execution is terminal (every attempt): emit the internal trigger. Runs inside `tx`. */
  onExecutionCompleted(execution: ExecutionRow, tx: Tx): Promise<void>;
}

/** The internal trigger fired for every execution that reaches a terminal status. */
export const EXECUTION_COMPLETED_TRIGGER = 'core.execution_completed';

/**
 * Whether an execution ending with `status` gives this handler anything to do: a concurrency group
 * to release, a parent workflow to tell, a rule on `core.execution_completed` (`ruleOnCompleted`),
 * or a retry to make (`action` unknown: assume one). Whoever records an end for which this is false
 * may mark it handled at once (see `followUpHere` in worker-service.ts).
 */
export function needsCompletionFollowUp(
  row: Pick<ExecutionRow, 'parentId' | 'policyGroup' | 'attempt'>,
  status: string,
  ruleOnCompleted: boolean,
  action: Pick<ActionRow, 'retryPolicy'> | null,
): boolean {
  if (ruleOnCompleted || row.parentId !== null || row.policyGroup !== null) return true;
  if (status === 'succeeded') return false;
  return !action || shouldRetry(parseRetryPolicy(action.retryPolicy), status, row.attempt);
}

/** The payload of a `core.execution_completed` event. */
export function executionCompletedPayload(row: ExecutionRow): JsonValue {
  return {
    execution_id: row.id,
    action_ref: row.actionRef,
    status: row.status,
    result: (row.result ?? null) as JsonValue,
    parent_id: row.parentId,
    rule_ref: row.ruleRef,
    started_at: row.startedAt?.toISOString() ?? null,
    finished_at: (row.finishedAt ?? new Date()).toISOString(),
  };
}

export interface CompletionHandlerOptions extends RuntimeDeps {
  hooks?: Partial<CompletionHooks>;
  /**
   * The rule index of this process: when an enabled rule uses `core.execution_completed`, each
   * completion creates such an event (in the follow-up transaction). Without it, none is created.
   */
  ruleIndex?: RuleIndex;
  prefetch?: number;
  batchSize?: number;
  actionCacheMs?: number;
  /** Most executions woken per group when a group's action no longer has a limit. Default 100. */
  maxWakePerGroup?: number;
}

export interface FollowUp {
  /** Executions handled by this call (not handled before). */
  handled: number[];
  /** Retries created: original id → new execution id. */
  retries: Map<number, number>;
  /** Executions woken from `delayed` for freed concurrency slots. */
  woken: number[];
}

export class CompletionHandler {
  private readonly log: RuntimeLogger;
  private readonly actions: ActionCache;
  private readonly batcher: Batcher<number>;
  private subs: Subscription[] = [];
  private started = false;

  constructor(private readonly deps: CompletionHandlerOptions) {
    this.log = deps.log ?? silentLogger;
    this.actions = new ActionCache(() => deps.store.db, deps.actionCacheMs ?? 2000);
    // A batch that fails (a hook threw) is retried item by item: one bad execution fails alone.
    this.batcher = new Batcher(
      async (ids) => {
        await this.handle(ids);
      },
      { maxBatchSize: deps.batchSize ?? 256 },
    );
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.subs.push(
      await this.deps.bus.subscribe([TOPICS.definitionsChanged], async () => this.actions.clear()),
      await this.deps.bus.consume(
        QUEUES.completions,
        { topics: [TOPICS.executionCompleted], prefetch: this.deps.prefetch ?? 512 },
        (msg) => this.onMessage(msg),
      ),
    );
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    const subs = this.subs;
    this.subs = [];
    await Promise.all(subs.map((s) => s.close()));
    await this.batcher.close();
  }

  private async onMessage(msg: BusMessage): Promise<void> {
    await this.batcher.add(executionIdOf(msg.payload));
  }

  /** Does the follow-up of the terminal executions among `ids` that were not followed up yet. */
  async handle(ids: number[]): Promise<FollowUp> {
    const unique = [...new Set(ids)];
    const out: FollowUp = { handled: [], retries: new Map(), woken: [] };
    // Asked before the transaction: the index may load from the database (one connection on PGlite).
    const emit = (await this.deps.ruleIndex?.hasRules(EXECUTION_COMPLETED_TRIGGER)) ?? false;
    const messages: OutboxMessage[] = [];
    const woken: ExecutionRow[] = [];
    let followed: ExecutionRow[] = [];
    await this.deps.store.transaction(async (tx) => {
      // Written directly rather than with the query builder: building it cost more than running it.
      const rows = mapRows<ExecutionRow>(
        executions,
        rawRows(
          await tx.execute(sql`update "executions" set "completion_handled_at" = now()
             where ${idsMatch('"id"', unique)} and "completion_handled_at" is null
               and ${wordsIn('"status"', TERMINAL_EXECUTION_STATUSES)}
             returning ${returningList(executions)}`),
        ),
      );
      if (rows.length === 0) return;
      rows.sort((a, b) => a.id - b.id);
      followed = rows;
      // A cache miss loads through the transaction (PGlite has a single connection).
      const acts = await this.actions.getMany(
        rows.map((r) => r.actionRef),
        tx,
      );
      const groups = new Map<string, ActionRow | null>();
      for (const row of rows) {
        const action = acts.get(row.actionRef) ?? null;
        const retryId = await this.retry(tx, row, action, messages);
        if (retryId !== null) out.retries.set(row.id, retryId);
        if (row.policyGroup) groups.set(row.policyGroup, action);
        if (row.parentId !== null && retryId === null && this.deps.hooks?.onChildCompleted) {
          await this.deps.hooks.onChildCompleted(row, tx);
        }
        if (emit) await this.emitCompleted(tx, row);
        if (this.deps.hooks?.onExecutionCompleted) await this.deps.hooks.onExecutionCompleted(row, tx);
        out.handled.push(row.id);
      }
      for (const [group, action] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const moved = await this.wake(tx, group, action);
        for (const r of moved) messages.push(requestedMessage(r.id));
        woken.push(...moved);
      }
      await writeOutboxMany(tx, messages);
    });
    out.woken = woken.map((r) => r.id);
    metrics.executionsFinished(followed);
    // Retries, wake-ups and internal events all wrote outbox rows.
    if (out.handled.length) this.deps.kickOutbox?.();
    notifyStatuses(this.deps.bus, woken, this.log);
    return out;
  }

  /** (d) A `core.execution_completed` event; dropped (and logged) if its trigger refuses it. */
  private async emitCompleted(tx: Tx, row: ExecutionRow): Promise<void> {
    try {
      await createEvent(tx, {
        triggerRef: EXECUTION_COMPLETED_TRIGGER,
        payload: executionCompletedPayload(row),
        source: 'internal',
      });
    } catch (e) {
      // Missing, disabled, or a payload_schema changed to refuse it: the execution is not at fault.
      if (!(e instanceof AppError)) throw e;
      this.log.warn({ execution_id: row.id, err: e.message }, 'core.execution_completed event not created');
    }
  }

  /** (a) Creates the retry of `row` when its action's policy asks for one; returns its id. */
  private async retry(
    tx: Tx,
    row: ExecutionRow,
    action: ActionRow | null,
    messages: OutboxMessage[],
  ): Promise<number | null> {
    const policy = parseRetryPolicy(action?.retryPolicy);
    if (!policy || !action || !shouldRetry(policy, row.status, row.attempt)) return null;
    const delay = retryDelaySeconds(policy, row.attempt);
    const [created] = await tx
      .insert(executions)
      .values({
        actionRef: row.actionRef,
        runner: row.runner,
        parameters: row.parameters,
        status: delay > 0 ? 'delayed' : 'requested',
        runAfter: delay > 0 ? secondsFromNow(delay) : null,
        parentId: row.parentId,
        rootId: row.rootId,
        taskName: row.taskName,
        ruleRef: row.ruleRef,
        triggerRef: row.triggerRef,
        eventId: row.eventId,
        createdBy: row.createdBy,
        retryOf: row.id,
        attempt: row.attempt + 1,
        timeoutSeconds: row.timeoutSeconds,
        context: { ...row.context, retry_of: row.id, retry_delay_seconds: delay },
      })
      .onConflictDoNothing({ target: executions.retryOf })
      .returning({ id: executions.id });
    if (!created) return null;
    await tx.execute(
      sql`insert into ${executionSecrets} (execution_id, ciphertext)
          select ${created.id}::bigint, ciphertext from ${executionSecrets} where execution_id = ${row.id}::bigint`,
    );
    if (delay <= 0) messages.push(requestedMessage(created.id));
    this.log.info(
      {
        execution_id: row.id,
        retry_execution_id: created.id,
        attempt: row.attempt + 1,
        delay_seconds: delay,
        status: row.status,
      },
      'execution retried by its retry policy',
    );
    return created.id;
  }

  /** (b) Wakes the oldest executions waiting in a concurrency group for the slots now free. */
  private async wake(tx: Tx, group: string, action: ActionRow | null): Promise<ExecutionRow[]> {
    const policy = parseConcurrencyPolicy(action?.concurrencyPolicy);
    let free = this.deps.maxWakePerGroup ?? 100;
    if (policy) {
      const [{ n } = { n: 0 }] = await tx
        .select({ n: sql<number>`count(*)::integer` })
        .from(executions)
        .where(
          and(eq(executions.policyGroup, group), inArray(executions.status, [...ACTIVE_EXECUTION_STATUSES])),
        );
      free = Math.min(free, policy.limit - Number(n));
    }
    if (free <= 0) return [];
    const oldest = await tx
      .select({ id: executions.id })
      .from(executions)
      .where(and(eq(executions.policyGroup, group), eq(executions.status, 'delayed')))
      .orderBy(asc(executions.id))
      .limit(free)
      .for('update', { skipLocked: true });
    return transitionExecutions(
      tx,
      oldest.map((r) => r.id),
      ['delayed'],
      'requested',
    );
  }
}
