/**
 * The metrics of this process, in one registry: `metrics`. The runtime reports what happens through
 * one-line calls (an event stored, an execution claimed or finished, an HTTP response); the values
 * live in this process and are rendered by `GET /metrics` (see `routes/metrics.ts`), next to the
 * cluster-wide values read from the database at scrape time (`cluster-metrics.ts`).
 *
 * Where each value is counted, so that it is counted once:
 * - events: when stored (`createEvents`), by trigger;
 * - enforcements: when the rules engine's transaction has committed, by outcome;
 * - the event → start latency: when a worker claims an execution that a rule created; the event's
 *   time travels on the execution (`context.event_created_at`, written by the rules engine), so the
 *   claim needs no extra read;
 * - terminal executions and their run time: when the completion handler follows an execution up,
 *   which it does exactly once per execution (whoever ended it: a worker, the sweeper, a cancel);
 * - the load of this process's worker: read from the worker when rendered.
 */
import { type Counter, DURATION_BUCKETS, type Gauge, type Histogram, Registry } from './instruments.ts';
import { ProcessMetrics } from './process-metrics.ts';

/** The execution context key under which the rules engine records the time of the event. */
export const EVENT_TIME_KEY = 'event_created_at';

/** What a worker shows of its load. */
export interface WorkerLoad {
  readonly id: string;
  readonly capacity: number;
  /** Executions running now. */
  readonly active: number;
}

/** The columns of an execution row the metrics read. */
export interface ExecutionFacts {
  actionRef: string;
  status: string;
  enforcementId: number | null;
  context: Record<string, unknown>;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const RUN_TIME_BUCKETS = [...DURATION_BUCKETS, 120, 300, 900, 1800, 3600];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The route label of requests that matched no route (their raw URLs would be unbounded). */
export const UNMATCHED_ROUTE = 'unmatched';

export class PlatformMetrics {
  readonly registry = new Registry();
  readonly process: ProcessMetrics;
  readonly eventsCreated: Counter<'trigger'>;
  readonly enforcementsCreated: Counter<'status'>;
  readonly executionsCompleted: Counter<'action' | 'status'>;
  readonly executionDuration: Histogram<'action'>;
  readonly eventToStart: Histogram;
  readonly httpRequests: Counter<'method' | 'route' | 'status_code'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly workerRunning: Gauge<'worker'>;
  readonly workerCapacity: Gauge<'worker'>;
  private readonly workers = new Set<WorkerLoad>();

  constructor() {
    const r = this.registry;
    this.eventsCreated = r.counter({
      name: 'attune_events_created_total',
      help: 'Events stored by this process (API, webhooks, timers, sensors, internal triggers), by trigger',
      labelNames: ['trigger'],
    });
    this.enforcementsCreated = r.counter({
      name: 'attune_enforcements_created_total',
      help: 'Rule matches recorded by this process: scheduled (an execution was requested) or failed',
      labelNames: ['status'],
    });
    this.executionsCompleted = r.counter({
      name: 'attune_executions_completed_total',
      help: 'Executions that reached a terminal status, by action and status (counted once, by the process that followed them up)',
      labelNames: ['action', 'status'],
    });
    this.executionDuration = r.histogram({
      name: 'attune_execution_duration_seconds',
      help: 'Run time of finished executions (finished_at - started_at), by action',
      labelNames: ['action'],
      buckets: RUN_TIME_BUCKETS,
    });
    this.eventToStart = r.histogram({
      name: 'attune_event_to_start_seconds',
      help: "Time from an event's creation to the start (worker claim) of an execution a rule requested for it",
      buckets: DURATION_BUCKETS,
    });
    this.httpRequests = r.counter({
      name: 'attune_http_requests_total',
      help: `HTTP requests answered, by method, route template ('${UNMATCHED_ROUTE}' when none matched) and status code`,
      labelNames: ['method', 'route', 'status_code'],
    });
    this.httpDuration = r.histogram({
      name: 'attune_http_request_duration_seconds',
      help: 'Time to answer HTTP requests (until the response ended), by method, route template and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: HTTP_BUCKETS,
    });
    this.workerRunning = r.gauge({
      name: 'attune_worker_running',
      help: "Executions running on this process's worker now",
      labelNames: ['worker'],
    });
    this.workerCapacity = r.gauge({
      name: 'attune_worker_capacity',
      help: "Executions this process's worker runs at once at most",
      labelNames: ['worker'],
    });
    r.addCollector(() => {
      this.workerRunning.reset();
      this.workerCapacity.reset();
      for (const w of this.workers) {
        this.workerRunning.set({ worker: w.id }, w.active);
        this.workerCapacity.set({ worker: w.id }, w.capacity);
      }
    });
    this.process = new ProcessMetrics(r);
  }

  // ───────────── the calls of the runtime (one line each where they happen) ─────────────

  /** Events were stored. */
  eventsStored(rows: readonly { triggerRef: string }[]): void {
    for (const e of rows) this.eventsCreated.inc({ trigger: e.triggerRef });
  }

  /** The rules engine committed enforcements: `scheduled` requested an execution, `failed` did not. */
  enforcementsRecorded(scheduled: number, failed: number): void {
    if (scheduled > 0) this.enforcementsCreated.inc({ status: 'scheduled' }, scheduled);
    if (failed > 0) this.enforcementsCreated.inc({ status: 'failed' }, failed);
  }

  /** A worker claimed these executions (`started_at` set): observes the event → start latency. */
  executionsStarted(rows: readonly ExecutionFacts[]): void {
    for (const r of rows) {
      if (r.enforcementId === null || !r.startedAt) continue;
      const at = r.context[EVENT_TIME_KEY];
      const t = typeof at === 'string' ? Date.parse(at) : Number.NaN;
      if (Number.isNaN(t)) continue;
      this.eventToStart.observe(Math.max(0, r.startedAt.getTime() - t) / 1000);
    }
  }

  /** Executions in a terminal status were followed up (once each): counts them, observes run times. */
  executionsFinished(rows: readonly ExecutionFacts[]): void {
    for (const r of rows) {
      this.executionsCompleted.inc({ action: r.actionRef, status: r.status });
      if (r.startedAt && r.finishedAt)
        this.executionDuration.observe(
          { action: r.actionRef },
          Math.max(0, r.finishedAt.getTime() - r.startedAt.getTime()) / 1000,
        );
    }
  }

  /** One HTTP response; `route` is the route template (never the raw URL). */
  httpResponse(method: string, route: string | undefined, statusCode: number, seconds: number): void {
    const labels = { method, route: route ?? UNMATCHED_ROUTE, status_code: statusCode };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  /** A worker of this process started: its load is shown until `detachWorker`. */
  attachWorker(w: WorkerLoad): void {
    this.workers.add(w);
  }

  detachWorker(w: WorkerLoad): void {
    this.workers.delete(w);
  }

  /** Every family of this process, rendered. */
  render(): Promise<string> {
    return this.registry.collect();
  }
}

/** The metrics of this process. */
export const metrics = new PlatformMetrics();
