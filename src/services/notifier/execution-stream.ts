/**
 * The live view of one execution as server-sent events:
 *
 *   status (the execution now) → output stored so far → live status/output … → end
 *
 * Output events carry `id: <seq>` (the `execution_output` row id), so a browser that reconnects
 * sends `Last-Event-ID` and gets only what it has not seen. Nothing is sent twice and nothing is
 * lost between the database and the bus:
 *  1. the listener is attached to the hub (and the bus subscription is open) before the database is
 *     read, and live messages are buffered while the stored output is sent;
 *  2. output is deduplicated by seq: only a seq above the last one sent goes out;
 *  3. status events are read from the database (a notification only says "look"), so they are the
 *     truth in order, and repeated notifications send nothing;
 *  4. when the execution is terminal, the stored output is read once more before `end`, so output
 *     whose broadcast was lost still arrives; broadcasts are best effort, so the database is also
 *     re-read every `catchUpMs` (or `pollMs` while no bus is up).
 */
import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import { EXECUTION_TRANSITIONS, isTerminal } from '../../domain/status.ts';
import type { Db } from '../../store/database.ts';
import type { ExecutionRow } from '../../store/repositories/executions.ts';
import { executionOutput, executions } from '../../store/schema.ts';
import type { StatusNotification } from '../runtime/messages.ts';
import type { HubLogger, HubMessage, NotificationHub } from './hub.ts';
import type { SseStream } from './sse.ts';

/** Rows read from the database per query while sending stored output (a row holds at most 64 KB). */
const PAGE = 200;
/** Live output messages kept while the stored output is being sent; beyond, the database is re-read. */
const MAX_BUFFERED = 5000;

export interface StreamDeps {
  db: () => Db;
  hub: NotificationHub;
  log: HubLogger;
  /** The API form of an execution (the `status` event's data). */
  toApi: (row: ExecutionRow) => unknown;
}

/** The data of an `output` event. */
export interface OutputEvent {
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
  truncated: boolean;
}

const statusKey = (r: ExecutionRow) => `${r.status}|${r.updatedAt.getTime()}`;

export class ExecutionStream {
  private lastSeq: number;
  private lastStatus = '';
  private backfilling = true;
  private buffered: OutputEvent[] = [];
  private overflow = false;
  private statusDirty = false;
  private chain: Promise<void> = Promise.resolve();
  private pollQueued = false;
  private refreshQueued = false;
  private detach: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sse: SseStream | undefined;
  private stopped = false;

  constructor(
    private readonly deps: StreamDeps,
    readonly executionId: number,
    after: number,
  ) {
    this.lastSeq = after;
  }

  /**
   * Attaches to the hub. Resolves once live messages flow (or at once without a bus). If the bus
   * refuses, the stream still works from the database (polling).
   */
  async subscribe(): Promise<void> {
    try {
      this.detach = await this.deps.hub.listen((m) => this.onMessage(m), { executionId: this.executionId });
    } catch (e) {
      this.deps.log.warn(
        { execution_id: this.executionId, err: (e as Error).message },
        'live notifications unavailable; the execution stream polls the database',
      );
    }
  }

  /** Sends the stream on `sse` until the execution ends or the client leaves. */
  start(sse: SseStream): void {
    this.sse = sse;
    sse.onClose(() => this.stop());
    if (sse.closed) return;
    this.enqueue(() => this.backfill());
  }

  /** Detaches from the hub and stops every timer. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.detach?.();
    this.detach = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.buffered = [];
    this.sse?.close();
  }

  private onMessage(m: HubMessage): void {
    if (this.stopped) return;
    if (m.kind === 'output') {
      const ev: OutputEvent = {
        seq: m.payload.seq,
        stream: m.payload.stream,
        data: m.payload.data,
        truncated: false,
      };
      if (this.backfilling) {
        if (this.buffered.length < MAX_BUFFERED) this.buffered.push(ev);
        else this.overflow = true;
        return;
      }
      this.enqueue(async () => this.sendOutput(ev));
      return;
    }
    if (this.backfilling) {
      this.statusDirty = true;
      return;
    }
    this.queueRefresh();
  }

  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.stopped || !this.sse || this.sse.closed) return;
      try {
        await step();
      } catch (e) {
        this.deps.log.warn(
          { execution_id: this.executionId, err: (e as Error).message },
          'execution stream failed; the client reconnects and resumes',
        );
        this.stop();
      }
    });
  }

  private queueRefresh(): void {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    this.enqueue(async () => {
      this.refreshQueued = false;
      await this.refresh();
    });
  }

  private async backfill(): Promise<void> {
    const row = await this.load();
    if (!row) return this.gone();
    this.sendStatus(row);
    await this.sendStoredOutput();
    this.backfilling = false;
    if (this.overflow) {
      this.overflow = false;
      await this.sendStoredOutput();
    }
    const buffered = this.buffered;
    this.buffered = [];
    for (const ev of buffered) this.sendOutput(ev);
    if (isTerminal(EXECUTION_TRANSITIONS, row.status)) return this.finish(row);
    if (this.statusDirty) {
      this.statusDirty = false;
      await this.refresh();
    }
    this.schedulePoll();
  }

  /** Re-reads the execution: sends its status when it changed, and ends the stream when it is terminal. */
  private async refresh(): Promise<void> {
    const row = await this.load();
    if (!row) return this.gone();
    if (isTerminal(EXECUTION_TRANSITIONS, row.status)) return this.finish(row);
    this.sendStatus(row);
  }

  /** The last stored output, the final status, then `end`. */
  private async finish(row: ExecutionRow): Promise<void> {
    await this.sendStoredOutput();
    this.sendStatus(row);
    this.sse?.send('end', { execution_id: row.id, status: row.status });
    this.stop();
  }

  private gone(): void {
    this.sse?.send('end', {
      execution_id: this.executionId,
      status: null,
      reason: 'the execution was deleted',
    });
    this.stop();
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const { catchUpMs, pollMs } = this.deps.hub.settings;
    const wait = this.detach && this.deps.hub.live ? catchUpMs : pollMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.pollQueued) return this.schedulePoll();
      this.pollQueued = true;
      this.enqueue(async () => {
        this.pollQueued = false;
        await this.sendStoredOutput();
        await this.refresh();
      });
      this.schedulePoll();
    }, wait);
    this.timer.unref();
  }

  private load(): Promise<ExecutionRow | undefined> {
    return this.deps
      .db()
      .select()
      .from(executions)
      .where(eq(executions.id, this.executionId))
      .then((rows) => rows[0]);
  }

  private sendStatus(row: ExecutionRow): void {
    const key = statusKey(row);
    if (key === this.lastStatus) return;
    this.lastStatus = key;
    this.sse?.send('status', this.deps.toApi(row));
  }

  private sendOutput(ev: OutputEvent): void {
    if (ev.seq <= this.lastSeq) return;
    this.lastSeq = ev.seq;
    this.sse?.send('output', ev, ev.seq);
  }

  private async sendStoredOutput(): Promise<void> {
    for (;;) {
      const rows = await this.deps
        .db()
        .select({
          seq: executionOutput.id,
          stream: executionOutput.stream,
          data: executionOutput.data,
          truncated: executionOutput.truncated,
        })
        .from(executionOutput)
        .where(and(eq(executionOutput.executionId, this.executionId), gt(executionOutput.id, this.lastSeq)))
        .orderBy(asc(executionOutput.id))
        .limit(PAGE);
      for (const r of rows) {
        this.sendOutput({
          seq: r.seq,
          stream: r.stream === 'stderr' ? 'stderr' : 'stdout',
          data: r.data,
          truncated: r.truncated,
        });
        // Stored output can be large: go at the client's pace rather than buffering it all.
        if (this.sse?.needsDrain) await this.sse.drain();
        if (!this.sse || this.sse.closed) return;
      }
      if (rows.length < PAGE) return;
    }
  }
}

export interface StatusFilter {
  statuses?: ReadonlySet<string> | undefined;
  actionRef?: string | undefined;
  parentId?: number | undefined;
}

export const matchesStatusFilter = (f: StatusFilter, n: StatusNotification): boolean =>
  (!f.statuses || f.statuses.has(n.status)) &&
  (f.actionRef === undefined || n.action_ref === f.actionRef) &&
  (f.parentId === undefined || n.parent_id === f.parentId);

/**
 * The global stream of status changes: every `status` notification that passes `filter`, as sent by
 * the bus (no database read per event). Best effort: a client that reconnects lists what it missed.
 * Returns the detach function once live (rejects when the bus refuses).
 */
export async function listenStatusChanges(
  hub: NotificationHub,
  filter: StatusFilter,
  send: (n: StatusNotification) => void,
): Promise<() => void> {
  return hub.listen(
    (m) => {
      if (m.kind === 'status') send(m.payload);
    },
    { filter: (m) => m.kind === 'status' && matchesStatusFilter(filter, m.payload) },
  );
}

/** How far back each poll of the status fallback looks again (a transaction commits after its `now()`). */
const POLL_OVERLAP_MS = 10_000;

/**
 * The global status stream without a bus: polls `executions.updated_at` every `pollMs` and sends the
 * current status of every execution that changed (intermediate statuses between two polls are not
 * seen). Each (execution, status, time) is sent once.
 */
export class StatusPoller {
  private cursor: Date | undefined;
  private readonly seen = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly db: () => Db,
    private readonly filter: StatusFilter,
    private readonly send: (n: StatusNotification) => void,
    private readonly pollMs: number,
    private readonly log: HubLogger,
  ) {}

  async start(): Promise<void> {
    const r = (await this.db().execute(sql`select now() as now`)) as unknown as {
      rows: { now: string | Date }[];
    };
    this.cursor = new Date(r.rows[0]!.now);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.poll().then(
        () => this.schedule(),
        (e: unknown) => {
          this.log.warn({ err: (e as Error).message }, 'polling execution statuses failed');
          this.schedule();
        },
      );
    }, this.pollMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    const since = new Date((this.cursor?.getTime() ?? Date.now()) - POLL_OVERLAP_MS);
    const where = [gt(executions.updatedAt, since)];
    if (this.filter.statuses) where.push(inArray(executions.status, [...this.filter.statuses]));
    if (this.filter.actionRef !== undefined) where.push(eq(executions.actionRef, this.filter.actionRef));
    if (this.filter.parentId !== undefined) where.push(eq(executions.parentId, this.filter.parentId));
    const rows = await this.db()
      .select({
        id: executions.id,
        status: executions.status,
        actionRef: executions.actionRef,
        parentId: executions.parentId,
        updatedAt: executions.updatedAt,
      })
      .from(executions)
      .where(and(...where))
      .orderBy(asc(executions.updatedAt), asc(executions.id))
      .limit(1000);
    if (this.stopped) return;
    for (const r of rows) {
      const t = r.updatedAt.getTime();
      const key = `${r.id}|${r.status}|${t}`;
      if (this.seen.has(key)) continue;
      this.seen.set(key, t);
      if (!this.cursor || t > this.cursor.getTime()) this.cursor = r.updatedAt;
      this.send({
        execution_id: r.id,
        status: r.status,
        action_ref: r.actionRef,
        parent_id: r.parentId,
        at: r.updatedAt.toISOString(),
      });
    }
    const horizon = (this.cursor?.getTime() ?? 0) - POLL_OVERLAP_MS;
    for (const [k, t] of this.seen) if (t < horizon) this.seen.delete(k);
  }
}
