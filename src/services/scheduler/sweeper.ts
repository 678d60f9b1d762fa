/**
 * The sweeper: the deadlines of docs/architecture.md, enforced. Every tick (1 s by default), under a
 * lease so that one scheduler replica sweeps at a time, it moves on whatever missed its deadline:
 *
 * | state                  | deadline passed                          | action                                  |
 * |------------------------|------------------------------------------|-----------------------------------------|
 * | requested              | `updated_at` + 10 s                      | re-publish `execution.requested`        |
 * | delayed                | `run_after`                              | → requested (+ `execution.requested`)   |
 * | scheduled              | `lease_expires_at` (30 s)                | → requested, if a worker has room*      |
 * | running, canceling     | `lease_expires_at` (heartbeats, 20 s)    | → abandoned (+ `execution.completed`)   |
 * | running                | `started_at` + timeout + grace           | → timeout (+ completed, cancel sent)    |
 * | terminal, not followed | `updated_at` + 30 s                      | re-publish `execution.completed`        |
 *
 * (*) A scheduled execution whose lease passed while every live worker is busy is still waiting in
 * the queue, not lost: its lease is extended instead, so a long backlog does not multiply messages.
 * Workers whose heartbeat is older than the run lease are marked `lost`.
 *
 * Every step is one bounded batch in its own short transaction, with guarded transitions only.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { and, asc, eq, inArray, isNotNull, isNull, lt, sql } from 'drizzle-orm';
import { TERMINAL_EXECUTION_STATUSES } from '../../domain/status.ts';
import type { Tx } from '../../store/database.ts';
import { wordsIn } from '../../store/repositories/bulk.ts';
import { type ExecutionRow, transitionExecutions } from '../../store/repositories/executions.ts';
import { acquireLease, releaseLease } from '../../store/repositories/leases.ts';
import { executions, workers } from '../../store/schema.ts';
import { TOPICS } from '../runtime/messages.ts';
import {
  completedMessage,
  DEADLINES,
  type Deadlines,
  notifyStatuses,
  type OutboxMessage,
  type RuntimeDeps,
  type RuntimeLogger,
  requestedMessage,
  secondsFromNow,
  silentLogger,
  writeOutboxMany,
} from './runtime.ts';
import { secondsAgo } from './sql.ts';

export const SWEEPER_LEASE = 'scheduler.sweeper';

export interface SweeperOptions extends RuntimeDeps {
  /** Time between sweeps. Default 1000 ms. */
  intervalMs?: number;
  /** Rows handled per step and sweep. Default 500. */
  batchSize?: number;
  /** Seconds the sweeper lease lasts without renewal. Default 10. */
  leaseSeconds?: number;
  deadlines?: Partial<Deadlines>;
  /** Identity of this sweeper in the lease table. Default hostname:pid:random. */
  owner?: string;
}

export interface SweepStats {
  rekicked: number;
  woken: number;
  requeued: number;
  extended: number;
  abandoned: number;
  timedOut: number;
  republished: number;
  workersLost: number;
}

export class Sweeper {
  readonly owner: string;
  private readonly log: RuntimeLogger;
  private readonly d: Deadlines;
  private readonly batch: number;
  private readonly intervalMs: number;
  private readonly leaseSeconds: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private holding = false;
  private lastCleanup = 0;

  constructor(private readonly deps: SweeperOptions) {
    this.log = deps.log ?? silentLogger;
    this.d = { ...DEADLINES, ...deps.deadlines };
    this.batch = deps.batchSize ?? 500;
    this.intervalMs = deps.intervalMs ?? 1000;
    this.leaseSeconds = deps.leaseSeconds ?? 10;
    this.owner = deps.owner ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  /** Whether this sweeper held the lease at its last tick. */
  get isLeader(): boolean {
    return this.holding;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.arm(0);
  }

  /** Stops ticking, waits for a sweep in progress, and gives the lease up. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    if (this.holding) {
      this.holding = false;
      await releaseLease(this.deps.store.db, SWEEPER_LEASE, this.owner).catch(() => {});
    }
  }

  private arm(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.tick()
        .then(
          () => undefined,
          (e: unknown) => this.log.warn({ err: (e as Error).message }, 'sweep failed; will try again'),
        )
        .finally(() => {
          this.running = undefined;
          this.arm(this.intervalMs);
        });
    }, ms);
  }

  /** One tick: takes or renews the lease, and sweeps if it holds it. Null when another sweeper holds it. */
  async tick(): Promise<SweepStats | null> {
    const had = this.holding;
    this.holding = await acquireLease(this.deps.store.db, SWEEPER_LEASE, this.owner, this.leaseSeconds);
    if (this.holding !== had)
      this.log.info({ owner: this.owner, leader: this.holding }, 'sweeper lease changed');
    if (!this.holding) return null;
    return this.sweep();
  }

  /** Every step once (without looking at the lease). */
  async sweep(): Promise<SweepStats> {
    const stats: SweepStats = {
      rekicked: await this.rekickRequested(),
      woken: await this.wakeDelayed(),
      ...(await this.requeueScheduled()),
      ...(await this.abandonOrphans()),
      timedOut: await this.timeOutOverdue(),
      republished: await this.republishCompletions(),
    };
    if (Date.now() - this.lastCleanup > 60_000) {
      this.lastCleanup = Date.now();
      await this.deps.store.db
        .delete(workers)
        .where(
          and(inArray(workers.status, ['stopped', 'lost']), lt(workers.heartbeatAt, secondsAgo(86_400))),
        );
    }
    return stats;
  }

  /** Runs `fn` in a transaction, then kicks the relay and broadcasts what changed. */
  private async step(
    fn: (tx: Tx, messages: OutboxMessage[], changed: ExecutionRow[]) => Promise<number>,
  ): Promise<number> {
    const messages: OutboxMessage[] = [];
    const changed: ExecutionRow[] = [];
    const n = await this.deps.store.transaction(async (tx) => {
      const count = await fn(tx, messages, changed);
      await writeOutboxMany(tx, messages);
      return count;
    });
    if (messages.length) this.deps.kickOutbox?.();
    notifyStatuses(this.deps.bus, changed, this.log);
    return n;
  }

  /** requested without progress for `requestedStale`: the message may be lost; publish it again. */
  private rekickRequested(): Promise<number> {
    return this.step(async (tx, messages) => {
      const stale = tx
        .select({ id: executions.id })
        .from(executions)
        .where(
          and(
            wordsIn('"executions"."status"', ['requested']),
            lt(executions.updatedAt, secondsAgo(this.d.requestedStale)),
          ),
        )
        .orderBy(asc(executions.updatedAt))
        .limit(this.batch)
        .for('update', { skipLocked: true });
      const rows = await tx
        .update(executions)
        .set({ updatedAt: sql`now()` })
        .where(and(inArray(executions.id, stale), eq(executions.status, 'requested')))
        .returning({ id: executions.id });
      rows.sort((a, b) => a.id - b.id);
      for (const r of rows) messages.push(requestedMessage(r.id));
      if (rows.length) this.log.info({ count: rows.length }, 'requested executions re-published');
      return rows.length;
    });
  }

  /** delayed whose `run_after` passed → requested (policies are checked again by the scheduler). */
  private wakeDelayed(): Promise<number> {
    return this.step(async (tx, messages, changed) => {
      const due = await tx
        .select({ id: executions.id })
        .from(executions)
        .where(and(wordsIn('"executions"."status"', ['delayed']), lt(executions.runAfter, sql`now()`)))
        .orderBy(asc(executions.runAfter), asc(executions.id))
        .limit(this.batch)
        .for('update', { skipLocked: true });
      const moved = await transitionExecutions(
        tx,
        due.map((r) => r.id),
        ['delayed'],
        'requested',
        { runAfter: null },
      );
      moved.sort((a, b) => a.id - b.id);
      for (const r of moved) messages.push(requestedMessage(r.id));
      changed.push(...moved);
      return moved.length;
    });
  }

  /** scheduled whose lease passed: no worker took it (message lost) → requested again. */
  private async requeueScheduled(): Promise<{ requeued: number; extended: number }> {
    let extended = 0;
    const requeued = await this.step(async (tx, messages, changed) => {
      const expired = await tx
        .select({ id: executions.id })
        .from(executions)
        .where(
          and(wordsIn('"executions"."status"', ['scheduled']), lt(executions.leaseExpiresAt, sql`now()`)),
        )
        .orderBy(asc(executions.id))
        .limit(this.batch)
        .for('update', { skipLocked: true });
      if (!expired.length) return 0;
      const ids = expired.map((r) => r.id);
      // Live workers with room would have taken a message that exists: it is lost. If every live
      // worker is busy (or none is alive), the message is just waiting in its queue.
      const [room] = await tx
        .select({
          free: sql<number>`coalesce(sum(greatest(${workers.capacity} - ${workers.running}, 0)), 0)::integer`,
        })
        .from(workers)
        .where(
          and(eq(workers.status, 'active'), sql`${workers.heartbeatAt} > ${secondsAgo(this.d.runLease)}`),
        );
      if (Number(room?.free ?? 0) <= 0) {
        const ext = await tx
          .update(executions)
          .set({ leaseExpiresAt: secondsFromNow(this.d.scheduleLease) })
          .where(and(inArray(executions.id, ids), eq(executions.status, 'scheduled')))
          .returning({ id: executions.id });
        extended = ext.length;
        return 0;
      }
      const moved = await transitionExecutions(tx, ids, ['scheduled'], 'requested', { leaseExpiresAt: null });
      moved.sort((a, b) => a.id - b.id);
      for (const r of moved) messages.push(requestedMessage(r.id));
      changed.push(...moved);
      if (moved.length)
        this.log.warn({ count: moved.length }, 'scheduled executions not claimed in time; requested again');
      return moved.length;
    });
    return { requeued, extended };
  }

  /** running/canceling whose lease passed: the worker died or lost the database → abandoned. */
  private async abandonOrphans(): Promise<{ abandoned: number; workersLost: number }> {
    const workersLost = await this.deps.store.db
      .update(workers)
      .set({ status: 'lost' })
      .where(
        and(
          inArray(workers.status, ['active', 'draining']),
          lt(workers.heartbeatAt, secondsAgo(this.d.runLease)),
        ),
      )
      .returning({ id: workers.id });
    for (const w of workersLost)
      this.log.warn({ worker_id: w.id }, 'worker stopped heartbeating; marked lost');
    const abandoned = await this.step(async (tx, messages, changed) => {
      const orphans = await tx
        .select({ id: executions.id, workerId: executions.workerId })
        .from(executions)
        .where(
          and(
            wordsIn('"executions"."status"', ['running', 'canceling']),
            isNotNull(executions.workerId),
            lt(executions.leaseExpiresAt, sql`now()`),
          ),
        )
        .orderBy(asc(executions.id))
        .limit(this.batch)
        .for('update', { skipLocked: true });
      const byWorker = new Map<string, number[]>();
      for (const o of orphans) {
        const k = o.workerId ?? '';
        byWorker.set(k, [...(byWorker.get(k) ?? []), o.id]);
      }
      for (const [workerId, ids] of byWorker) {
        const moved = await transitionExecutions(tx, ids, ['running', 'canceling'], 'abandoned', {
          error: {
            type: 'abandoned',
            message: `worker '${workerId}' stopped renewing its lease (it died, hung or lost the database); the execution may or may not have finished`,
            worker_id: workerId,
          },
        });
        for (const r of moved) messages.push(completedMessage(r));
        changed.push(...moved);
      }
      if (changed.length) this.log.warn({ execution_ids: changed.map((r) => r.id) }, 'executions abandoned');
      return changed.length;
    });
    return { abandoned, workersLost: workersLost.length };
  }

  /** Safety net: running far past its timeout (its worker did not stop it) → timeout. */
  private async timeOutOverdue(): Promise<number> {
    const moved: ExecutionRow[] = [];
    const n = await this.step(async (tx, messages, changed) => {
      const overdue = await tx
        .select({ id: executions.id, timeoutSeconds: executions.timeoutSeconds })
        .from(executions)
        .where(
          and(
            wordsIn('"executions"."status"', ['running']),
            isNotNull(executions.workerId),
            isNotNull(executions.timeoutSeconds),
            sql`${executions.startedAt} + make_interval(secs => ${executions.timeoutSeconds} + ${this.d.timeoutGrace}) < now()`,
          ),
        )
        .orderBy(asc(executions.id))
        .limit(this.batch)
        .for('update', { skipLocked: true });
      for (const o of overdue) {
        const [r] = await transitionExecutions(tx, [o.id], ['running'], 'timeout', {
          error: {
            type: 'timeout',
            message: `ran longer than its timeout of ${o.timeoutSeconds} s and its worker did not stop it`,
          },
        });
        if (r) {
          messages.push(completedMessage(r));
          changed.push(r);
          moved.push(r);
        }
      }
      return changed.length;
    });
    // Ask the worker (if it is still there) to kill what is left of it.
    for (const r of moved) {
      this.deps.bus.publish(TOPICS.executionCancel, { execution_id: r.id }).catch(() => {});
    }
    return n;
  }

  /** Terminal executions whose follow-up never happened: publish `execution.completed` again. */
  private republishCompletions(): Promise<number> {
    return this.step(async (tx, messages) => {
      const stale = tx
        .select({ id: executions.id })
        .from(executions)
        .where(
          and(
            isNotNull(executions.finishedAt),
            isNull(executions.completionHandledAt),
            lt(executions.updatedAt, secondsAgo(this.d.completionStale)),
          ),
        )
        .orderBy(asc(executions.updatedAt))
        .limit(this.batch)
        .for('update', { skipLocked: true });
      const rows = await tx
        .update(executions)
        .set({ updatedAt: sql`now()` })
        .where(
          and(
            inArray(executions.id, stale),
            isNull(executions.completionHandledAt),
            wordsIn('"executions"."status"', TERMINAL_EXECUTION_STATUSES),
          ),
        )
        .returning({ id: executions.id, status: executions.status });
      rows.sort((a, b) => a.id - b.id);
      for (const r of rows) messages.push(completedMessage(r));
      if (rows.length) this.log.warn({ count: rows.length }, 'completions not followed up; re-published');
      return rows.length;
    });
  }
}
