/**
 * The workflow host: runs workflows durably next to the scheduler (DESIGN §4.4).
 *
 *  - `startWorkflow` / `openInquiry` are the scheduler's hooks for executions of runner `workflow`
 *    and `inquiry`.
 *  - `onChildCompleted` is the completion handler's hook: the finished child becomes a
 *    `task_completed` event for its parent, queued. The queue advances each workflow run in its own
 *    transaction, one at a time per run, with every event waiting for it at once (a fan-out's
 *    completions are applied in few steps). A duplicate completion is ignored by the engine.
 *  - Tasks of `noop` actions run in the transaction that starts them (see `runsInline` in
 *    advance.ts); their completions come back through the queue, like a worker's.
 *  - A workflow timer this host schedules is fired on time by a timer of its own; a poller (every
 *    `pollIntervalMs`, under a lease when several hosts share a database) fires the others (delays,
 *    retry back-offs, task timeouts scheduled elsewhere or missed) and times out inquiries.
 *  - Recovery (at start and every `recoveryIntervalMs`): a completion that never reached its
 *    workflow (the process died between the follow-up and the advance) is delivered again; a
 *    workflow canceled from outside is canceled in its engine; a sub-workflow that paused (or
 *    resumed) is reported to its parent; inquiry executions canceled through the API are settled.
 *
 * Killing the process at any moment loses nothing: every state change is one transaction, and
 * whatever was in flight in memory is found again in the database by the scheduler's sweeper
 * (requested, scheduled, running executions, unhandled completions) and by the recovery here.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { and, asc, eq, lte, sql } from 'drizzle-orm';
import type { Bus, BusMessage, Subscription } from '../../bus/bus.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Store } from '../../store/database.ts';
import type { ExecutionRow } from '../../store/repositories/executions.ts';
import { acquireLease, releaseLease } from '../../store/repositories/leases.ts';
import { executions, workflowTimers } from '../../store/schema.ts';
import type { WorkflowEvent } from '../../workflow/state.ts';
import type { RuleIndex } from '../rules-engine/rule-index.ts';
import { TOPICS } from '../runtime/messages.ts';
import { ActionCache } from '../scheduler/action-cache.ts';
import type { CompletionHooks } from '../scheduler/completion.ts';
import { executionIdOf, type RuntimeLogger, silentLogger } from '../scheduler/runtime.ts';
import type { SchedulerHooks } from '../scheduler/scheduler.ts';
import { type AdvanceResult, advance, childOutcome, runKeyOfChild, StateCache } from './advance.ts';
import {
  openInquiry,
  type Responder,
  respondInquiry,
  settleCanceledInquiries,
  timeOutInquiries,
} from './inquiries.ts';
import {
  cancelWorkflow,
  envOf,
  type OperationResult,
  pauseWorkflow,
  type RerunOptions,
  rerunWorkflow,
  resumeWorkflow,
  runInTx,
  type StartOutcome,
  startWorkflow,
  type WorkflowDeps,
} from './operations.ts';

export const WORKFLOW_HOST_LEASE = 'workflows.host';

export interface WorkflowHostOptions {
  store: Store;
  bus: Bus;
  cipher: Cipher;
  log?: RuntimeLogger;
  kickOutbox?: () => void;
  /** Time between polls of timers and inquiry timeouts. Default 250 ms. */
  pollIntervalMs?: number;
  /** Time between recovery passes. Default 5000 ms. */
  recoveryIntervalMs?: number;
  /** A finished child whose follow-up is older than this and whose run still waits is redelivered. Default 3 s. */
  recoveryGraceSeconds?: number;
  /** Workflow runs advanced at once. Default 1 on PGlite (one connection), 4 on PostgreSQL. */
  concurrency?: number;
  /** Seconds the poller lease lasts (PostgreSQL only; one process owns a PGlite database). Default 10. */
  leaseSeconds?: number;
  /** The engine's clock. Default `Date.now`. */
  now?: () => number;
  /**
   * Tasks whose action needs no worker (`noop`) run in the transaction that starts them, their
   * completion queued here like a worker's. Default true.
   */
  inlineTasks?: boolean;
  /** The process's rule index: tasks run inline create `core.execution_completed` events when a rule uses them. */
  ruleIndex?: RuleIndex | undefined;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Queued {
  events: WorkflowEvent[];
  waiters: Waiter[];
}

const TERMINAL_SQL = sql`('succeeded', 'failed', 'timeout', 'canceled', 'abandoned')`;

export class WorkflowHost {
  readonly owner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  /** Hooks for `new Scheduler({hooks})`. */
  readonly schedulerHooks: SchedulerHooks;
  /** Hooks for `new CompletionHandler({hooks})`. */
  readonly completionHooks: Pick<CompletionHooks, 'onChildCompleted'>;
  private readonly log: RuntimeLogger;
  private readonly deps: WorkflowDeps;
  private readonly queue = new Map<number, Queued>();
  private readonly active = new Set<number>();
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly recoveryMs: number;
  private readonly graceSeconds: number;
  private readonly leaseSeconds: number;
  private readonly firing = new Set<string>();
  private idle: (() => void)[] = [];
  private sub: Subscription | undefined;
  private definitionsSub: Subscription | undefined;
  /** Actions of the tasks it starts, cached a moment like the scheduler's (cleared when definitions change). */
  private readonly actions: ActionCache;
  private timer: NodeJS.Timeout | undefined;
  /** A timer armed for the earliest workflow timer this process scheduled. */
  private precise: { at: number; timer: NodeJS.Timeout } | undefined;
  private polling: Promise<void> | undefined;
  private lastRecovery = 0;
  private running = false;
  private closed = false;
  private holding = false;

  constructor(private readonly opts: WorkflowHostOptions) {
    this.log = opts.log ?? silentLogger;
    this.actions = new ActionCache(() => opts.store.db);
    this.deps = {
      store: opts.store,
      cipher: opts.cipher,
      bus: opts.bus,
      kickOutbox: opts.kickOutbox,
      log: this.log,
      now: opts.now ?? Date.now,
      followUp: (id, event) => {
        this.enqueue(id, [event]).catch(() => {});
      },
      inline: opts.inlineTasks === false ? undefined : { rules: opts.ruleIndex },
      actions: this.actions,
      onTimer: (due) => this.fireAt(due),
      states: new StateCache(),
    };
    this.concurrency = opts.concurrency ?? (opts.store.kind === 'pglite' ? 1 : 4);
    this.pollMs = opts.pollIntervalMs ?? 250;
    this.recoveryMs = opts.recoveryIntervalMs ?? 5000;
    this.graceSeconds = opts.recoveryGraceSeconds ?? 3;
    this.leaseSeconds = opts.leaseSeconds ?? 10;
    this.schedulerHooks = {
      onWorkflow: async (e) => {
        await this.startWorkflow(e);
      },
      onInquiry: async (e) => {
        await this.openInquiry(e);
      },
    };
    this.completionHooks = { onChildCompleted: async (child) => this.onChildCompleted(child) };
  }

  /** The dependencies the operations need (for the API of this process). */
  get operations(): WorkflowDeps {
    return this.deps;
  }

  /** Listens for cancel requests, runs a first recovery pass and starts polling. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.sub = await this.opts.bus.subscribe([TOPICS.executionCancel], (m) => this.onCancel(m));
    this.definitionsSub = await this.opts.bus.subscribe([TOPICS.definitionsChanged], async () =>
      this.actions.clear(),
    );
    this.arm(0);
  }

  /** Stops polling and waits for the advances in progress. Events still queued are left to recovery. */
  async stop(): Promise<void> {
    this.closed = true;
    if (!this.running) return;
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.precise) clearTimeout(this.precise.timer);
    this.precise = undefined;
    await this.sub?.close();
    await this.definitionsSub?.close();
    await this.polling;
    for (const [, q] of this.queue) for (const w of q.waiters) w.resolve();
    this.queue.clear();
    if (this.active.size) await new Promise<void>((r) => this.idle.push(r));
    if (this.holding) {
      this.holding = false;
      await releaseLease(this.opts.store.db, WORKFLOW_HOST_LEASE, this.owner).catch(() => {});
    }
  }

  // ───────────────────────────── hooks ─────────────────────────────

  /** Scheduler hook: a workflow execution is requested. */
  startWorkflow(execution: Pick<ExecutionRow, 'id'>): Promise<StartOutcome> {
    return startWorkflow(this.deps, execution.id);
  }

  /** Scheduler hook: an inquiry execution is requested. */
  openInquiry(execution: Pick<ExecutionRow, 'id'>): Promise<boolean> {
    return openInquiry(this.deps, execution.id);
  }

  /**
   * Completion hook: a child of a workflow finished. Queued, not awaited: the hook runs inside the
   * completion handler's transaction, and the advance takes its own (the child's status it reads was
   * committed by whoever finished it). Should the process die before the advance, recovery delivers it.
   */
  onChildCompleted(child: ExecutionRow): void {
    const key = runKeyOfChild(child);
    if (child.parentId === null || !key) return;
    const { status, result } = childOutcome(child);
    this.enqueue(child.parentId, [
      { type: 'task_completed', runKey: key, status, result, now: this.deps.now?.() ?? Date.now() },
    ]).catch(() => {});
  }

  private async onCancel(msg: BusMessage): Promise<void> {
    const id = executionIdOf(msg.payload);
    const [e] = await this.opts.store.db
      .select({ runner: executions.runner, status: executions.status })
      .from(executions)
      .where(eq(executions.id, id));
    if (!e) return;
    if (e.runner === 'workflow' && (e.status === 'canceling' || e.status === 'canceled'))
      await this.enqueue(id, [{ type: 'cancel', now: this.now() }]);
    else if (e.runner === 'inquiry' && e.status === 'canceling')
      await settleCanceledInquiries(this.deps, [id]);
  }

  // ───────────────────────────── the queue ─────────────────────────────

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Queues events for workflow run `id`; resolves once they are applied (or found stale). */
  enqueue(id: number, events: WorkflowEvent[]): Promise<void> {
    // Stopped: what would have been applied is found again by the recovery of the next start.
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const q = this.queue.get(id) ?? { events: [], waiters: [] };
      q.events.push(...events);
      q.waiters.push({ resolve, reject });
      this.queue.set(id, q);
      this.pump();
    });
  }

  private pump(): void {
    for (const [id, q] of this.queue) {
      if (this.active.size >= this.concurrency) return;
      if (this.active.has(id)) continue;
      this.queue.delete(id);
      this.active.add(id);
      void this.process(id, q).finally(() => {
        this.active.delete(id);
        if (this.active.size === 0 && this.queue.size === 0) for (const r of this.idle.splice(0)) r();
        this.pump();
      });
    }
  }

  private async process(id: number, q: Queued): Promise<void> {
    try {
      const t0 = performance.now();
      await this.apply(id, q.events);
      this.log.debug(
        { workflow_execution_id: id, events: q.events.length, ms: Math.round(performance.now() - t0) },
        'workflow advanced',
      );
      for (const w of q.waiters) w.resolve();
    } catch (e) {
      if (q.events.length > 1) {
        // One bad event must not hold the others back: apply them one by one, in order.
        let failure: unknown;
        for (const ev of q.events) {
          try {
            await this.apply(id, [ev]);
          } catch (e1) {
            failure ??= e1;
            this.log.error(
              { workflow_execution_id: id, event: ev.type, err: (e1 as Error).message },
              'workflow event not applied; recovery will retry',
            );
          }
        }
        for (const w of q.waiters)
          if (failure === undefined) w.resolve();
          else w.reject(failure);
        return;
      }
      this.log.error(
        { workflow_execution_id: id, err: (e as Error).message },
        'workflow advance failed; recovery will retry',
      );
      for (const w of q.waiters) w.reject(e);
    }
  }

  private apply(id: number, events: WorkflowEvent[]): Promise<AdvanceResult> {
    return runInTx(this.deps, (tx, fx) => advance(tx, envOf(this.deps), fx, id, events));
  }

  /** Resolves when nothing is queued or being applied (for tests and shutdown). */
  async drain(): Promise<void> {
    if (this.active.size === 0 && this.queue.size === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  // ───────────────────────────── polling ─────────────────────────────

  /**
   * Fires the timers due at `at` (epoch ms, engine clock) on time: a task timeout or a delay must
   * not wait for the next poll (which stays, for timers scheduled elsewhere or missed).
   */
  private fireAt(at: number): void {
    if (!this.running || (this.precise && this.precise.at <= at)) return;
    if (this.precise) clearTimeout(this.precise.timer);
    const timer = setTimeout(
      () => {
        if (this.precise?.timer === timer) this.precise = undefined;
        this.fireTimers().catch((e: unknown) =>
          this.log.warn({ err: (e as Error).message }, 'workflow timers not fired; the poll will'),
        );
      },
      Math.max(0, at - this.now()) + 1,
    );
    this.precise = { at, timer };
  }

  private arm(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.polling = this.tick()
        .catch((e: unknown) =>
          this.log.warn({ err: (e as Error).message }, 'workflow poll failed; will try again'),
        )
        .finally(() => {
          this.polling = undefined;
          this.arm(this.pollMs);
        });
    }, ms);
  }

  /** One poll: due timers, inquiry timeouts, and a recovery pass when one is due. */
  async tick(): Promise<void> {
    if (this.opts.store.kind === 'postgres') {
      this.holding = await acquireLease(
        this.opts.store.db,
        WORKFLOW_HOST_LEASE,
        this.owner,
        this.leaseSeconds,
      );
      if (!this.holding) return;
    }
    await this.fireTimers();
    await timeOutInquiries(this.deps);
    if (Date.now() - this.lastRecovery >= this.recoveryMs) {
      this.lastRecovery = Date.now();
      await this.recover();
    }
  }

  /** Feeds the due timers to their workflows; returns how many were due. */
  async fireTimers(limit = 1000): Promise<number> {
    const now = this.now();
    const due = await this.opts.store.db
      .select({ id: workflowTimers.workflowExecutionId, key: workflowTimers.key })
      .from(workflowTimers)
      .where(and(sql`${workflowTimers.fired} = false`, lte(workflowTimers.dueAt, new Date(now))))
      .orderBy(asc(workflowTimers.dueAt))
      .limit(limit);
    const byRun = new Map<number, string[]>();
    for (const t of due) {
      const k = `${t.id}:${t.key}`;
      if (this.firing.has(k)) continue;
      this.firing.add(k);
      byRun.set(t.id, [...(byRun.get(t.id) ?? []), t.key]);
    }
    await Promise.allSettled(
      [...byRun].map(([id, keys]) =>
        this.enqueue(
          id,
          keys.map((key) => ({ type: 'timer_fired', key, now })),
        ).finally(() => {
          for (const key of keys) this.firing.delete(`${id}:${key}`);
        }),
      ),
    );
    return due.length;
  }

  /** One recovery pass (see the module comment); returns how many events it delivered. */
  async recover(): Promise<number> {
    const db = this.opts.store.db;
    const now = this.now();
    const events: { id: number; event: WorkflowEvent }[] = [];
    // (a) finished children whose workflow still waits for them
    const lost = await db.execute(sql`
      select e.id, e.parent_id, tr.run_key, e.status, e.result, e.error
        from workflow_runs r
        join workflow_task_runs tr
          on tr.workflow_execution_id = r.execution_id and tr.status in ('running', 'asking', 'paused')
        join executions e
          on e.parent_id = r.execution_id and e.context->>'workflow_run_key' = tr.run_key
       where r.status not in ('succeeded', 'failed', 'canceled')
         and e.status in ${TERMINAL_SQL}
         and e.completion_handled_at is not null
         and e.completion_handled_at < now() - make_interval(secs => ${this.graceSeconds})
         and not exists (select 1 from executions x where x.retry_of = e.id)
       order by e.id
       limit 500`);
    for (const row of rowsOf<LostRow>(lost)) {
      const { status, result } = childOutcome({ status: row.status, result: row.result, error: row.error });
      events.push({
        id: Number(row.parent_id),
        event: { type: 'task_completed', runKey: row.run_key, status, result, now },
      });
    }
    if (events.length) this.log.warn({ count: events.length }, 'workflow task completions redelivered');
    // (b) workflows canceled from outside whose engine does not know yet
    const canceled = await db.execute(sql`
      select r.execution_id as id from workflow_runs r join executions e on e.id = r.execution_id
       where e.status in ('canceling', 'canceled')
         and r.status not in ('canceling', 'succeeded', 'failed', 'canceled')
       limit 200`);
    for (const row of rowsOf<{ id: number }>(canceled))
      events.push({ id: Number(row.id), event: { type: 'cancel', now } });
    // (c) sub-workflows that paused or resumed without their parent knowing
    const paused = await db.execute(sql`
      select c.parent_id, tr.run_key,
             case when c.status = 'paused' then 'task_paused' else 'task_resumed' end as type
        from workflow_runs pr
        join workflow_task_runs tr
          on tr.workflow_execution_id = pr.execution_id and tr.status in ('running', 'paused')
        join executions c
          on c.parent_id = pr.execution_id and c.context->>'workflow_run_key' = tr.run_key
       where pr.status in ('running', 'pausing', 'paused')
         and c.runner = 'workflow'
         and ((c.status = 'paused' and tr.status = 'running' and pr.status = 'pausing')
           or (c.status = 'running' and tr.status = 'paused'))
       limit 200`);
    for (const row of rowsOf<PausedRow>(paused))
      events.push({ id: Number(row.parent_id), event: { type: row.type, runKey: row.run_key, now } });
    const byRun = new Map<number, WorkflowEvent[]>();
    for (const e of events) byRun.set(e.id, [...(byRun.get(e.id) ?? []), e.event]);
    await Promise.allSettled([...byRun].map(([id, evs]) => this.enqueue(id, evs)));
    // (d) inquiry executions canceled through the API
    await settleCanceledInquiries(this.deps);
    return events.length;
  }

  // ───────────────────────────── operations ─────────────────────────────

  pause(id: number, by: string): Promise<OperationResult> {
    return pauseWorkflow(this.deps, id, by);
  }
  resume(id: number, by: string): Promise<OperationResult> {
    return resumeWorkflow(this.deps, id, by);
  }
  cancel(id: number, by: string): Promise<OperationResult> {
    return cancelWorkflow(this.deps, id, by);
  }
  rerun(id: number, opts: RerunOptions = {}): Promise<ExecutionRow> {
    return rerunWorkflow(this.deps, id, opts);
  }
  respond(inquiryId: number, response: unknown, by: Responder) {
    return respondInquiry(this.deps, inquiryId, response, by);
  }
}

interface LostRow {
  id: number;
  parent_id: number;
  run_key: string;
  status: string;
  result: unknown;
  error: Record<string, unknown> | null;
}

interface PausedRow {
  parent_id: number;
  run_key: string;
  type: 'task_paused' | 'task_resumed';
}

/** The rows of a raw query on either driver (node-postgres returns `{rows}`, PGlite too). */
function rowsOf<T>(r: unknown): T[] {
  if (Array.isArray(r)) return r as T[];
  const rows = (r as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as T[]) : [];
}
