/**
 * Cluster-wide values read at scrape time — the same on every API process, since they come from the
 * database and the broker:
 * - unfinished executions by action and status,
 * - workers (active, draining, lost) with their capacity and running executions (as of their last
 *   heartbeat),
 * - the outbox backlog (messages committed but not yet relayed),
 * - the depth of every work queue and of its dead-letter queue.
 *
 * A scrape costs one SQL statement (three indexed or tiny aggregates in one `UNION ALL`) and one
 * depth query per queue, whatever the number of executions: finished executions are never scanned
 * (their totals are counters of the process that follows them up, see `registry.ts`). Concurrent
 * scrapes share one collection.
 */
import { sql } from 'drizzle-orm';
import type { Bus } from '../../bus/bus.ts';
import { EXECUTION_STATUSES, TERMINAL_EXECUTION_STATUSES } from '../../domain/status.ts';
import type { Db } from '../../store/database.ts';
import { executions, outbox, workers } from '../../store/schema.ts';
import { QUEUES } from '../runtime/messages.ts';
import { type Gauge, Registry } from './instruments.ts';

/** Statuses counted by `attune_executions` (every status that is not terminal). */
export const UNFINISHED_STATUSES = EXECUTION_STATUSES.filter((s) => !TERMINAL_EXECUTION_STATUSES.includes(s));

/** The queues whose depth is reported: the work queues and their dead-letter queues. */
export const REPORTED_QUEUES: readonly string[] = Object.values(QUEUES).flatMap((q) => [q, `${q}.dead`]);

interface Row {
  kind: 'executions' | 'workers' | 'outbox';
  action: string | null;
  status: string | null;
  n: number | string;
  capacity: number | string;
  running: number | string;
}

/** The one statement of a scrape. */
export function clusterQuery() {
  const statuses = sql.join(
    UNFINISHED_STATUSES.map((s) => sql`${s}`),
    sql`, `,
  );
  return sql`
    select 'executions' as kind, ${executions.actionRef} as action, ${executions.status} as status,
           count(*)::int as n, 0 as capacity, 0 as running
      from ${executions}
     where ${executions.status} in (${statuses})
     group by ${executions.actionRef}, ${executions.status}
    union all
    select 'workers', null::text, ${workers.status}, count(*)::int,
           coalesce(sum(${workers.capacity}), 0)::int, coalesce(sum(${workers.running}), 0)::int
      from ${workers}
     where ${workers.status} <> 'stopped'
     group by ${workers.status}
    union all
    select 'outbox', null::text, null::text, count(*)::int, 0, 0
      from ${outbox}
     where ${outbox.publishedAt} is null`;
}

interface Snapshot {
  rows: Row[];
  depths: [string, number | undefined][];
}

export class ClusterMetrics {
  readonly registry = new Registry();
  private readonly executions: Gauge<'action' | 'status'>;
  private readonly workers: Gauge<'status'>;
  private readonly workerCapacity: Gauge<'status'>;
  private readonly workerRunning: Gauge<'status'>;
  private readonly outboxBacklog: Gauge;
  private readonly queueDepth: Gauge<'queue'>;
  private readonly up: Gauge;
  private inflight: Promise<string> | undefined;

  constructor(
    private readonly source: {
      db: () => Db;
      bus: () => Bus | undefined;
      log?: { warn(obj: object, msg: string): void };
    },
  ) {
    const r = this.registry;
    this.up = r.gauge({
      name: 'attune_cluster_metrics_up',
      help: '1 when the database could be read for this scrape; 0 when not (the database-derived families are then absent)',
    });
    this.executions = r.gauge({
      name: 'attune_executions',
      help: `Executions not finished yet (${UNFINISHED_STATUSES.join(', ')}), by action and status, from the database`,
      labelNames: ['action', 'status'],
    });
    this.workers = r.gauge({
      name: 'attune_workers',
      help: 'Registered workers by status (active, draining, lost), from the database',
      labelNames: ['status'],
    });
    this.workerCapacity = r.gauge({
      name: 'attune_workers_capacity',
      help: 'Total capacity (executions at once) of the workers in each status',
      labelNames: ['status'],
    });
    this.workerRunning = r.gauge({
      name: 'attune_workers_running',
      help: 'Executions running on the workers in each status, as of their last heartbeat',
      labelNames: ['status'],
    });
    this.outboxBacklog = r.gauge({
      name: 'attune_outbox_backlog',
      help: 'Messages committed to the outbox and not yet published to the bus',
    });
    this.queueDepth = r.gauge({
      name: 'attune_queue_depth',
      help: 'Messages waiting in a bus queue (work queues and their .dead queues); absent when unknown',
      labelNames: ['queue'],
    });
  }

  /** Reads the database and the bus, then renders (one collection at a time; others wait for it). */
  collect(): Promise<string> {
    this.inflight ??= this.read()
      .then(
        (snap) => this.apply(snap),
        (e: unknown) => {
          this.source.log?.warn({ err: (e as Error).message }, 'metrics: the database could not be read');
          return this.apply(undefined);
        },
      )
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async read(): Promise<Snapshot> {
    const bus = this.source.bus();
    const [result, depths] = await Promise.all([
      this.source.db().execute(clusterQuery()),
      Promise.all(
        REPORTED_QUEUES.map(
          async (q): Promise<[string, number | undefined]> => [
            q,
            bus ? await bus.queueDepth(q).catch(() => undefined) : undefined,
          ],
        ),
      ),
    ]);
    return { rows: (result as unknown as { rows: Row[] }).rows, depths };
  }

  /**
   * Sets the gauges from one snapshot (none: the read failed) and renders them, synchronously, so
   * that no other scrape interleaves.
   */
  private apply(snap: Snapshot | undefined): string {
    this.executions.reset();
    this.workers.reset();
    this.workerCapacity.reset();
    this.workerRunning.reset();
    this.queueDepth.reset();
    this.outboxBacklog.reset();
    this.up.set(snap ? 1 : 0);
    if (!snap) return this.registry.render();
    const { rows, depths } = snap;
    for (const r of rows) {
      const n = Number(r.n);
      if (r.kind === 'executions') this.executions.set({ action: r.action ?? '', status: r.status ?? '' }, n);
      else if (r.kind === 'workers') {
        const status = r.status ?? '';
        this.workers.set({ status }, n);
        this.workerCapacity.set({ status }, Number(r.capacity));
        this.workerRunning.set({ status }, Number(r.running));
      } else this.outboxBacklog.set(n);
    }
    for (const [queue, depth] of depths) if (depth !== undefined) this.queueDepth.set({ queue }, depth);
    return this.registry.render();
  }
}
