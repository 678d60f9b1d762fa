/**
 * Live output of executions: chunks from the runners are buffered and written every `flushMs`
 * (or as soon as `flushBytes` are waiting) as `execution_output` rows in one INSERT, then broadcast
 * as `notify.execution.output` with the row id as sequence number, so a client can resume after the
 * last row it saw. Adjacent chunks of one stream of one execution become one row.
 */

import { inArray } from 'drizzle-orm';
import type { Bus } from '../../bus/bus.ts';
import type { Store } from '../../store/database.ts';
import { executionOutput, executions } from '../../store/schema.ts';
import { type OutputNotification, TOPICS } from '../runtime/messages.ts';
import { type RuntimeLogger, silentLogger } from '../scheduler/runtime.ts';

export interface OutputWriterOptions {
  flushMs?: number;
  flushBytes?: number;
  /** Output kept in memory while the database refuses writes; beyond it the oldest is dropped. */
  maxBufferedBytes?: number;
  log?: RuntimeLogger;
}

interface Chunk {
  executionId: number;
  stream: 'stdout' | 'stderr';
  data: string;
  truncated: boolean;
}

const MAX_ROW_CHARS = 64 * 1024;

export class OutputWriter {
  private pending: Chunk[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly flushMs: number;
  private readonly flushBytes: number;
  private readonly maxBuffered: number;
  private readonly log: RuntimeLogger;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    opts: OutputWriterOptions = {},
  ) {
    this.flushMs = opts.flushMs ?? 100;
    this.flushBytes = opts.flushBytes ?? 64 * 1024;
    this.maxBuffered = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.log = opts.log ?? silentLogger;
  }

  write(executionId: number, stream: 'stdout' | 'stderr', data: string): void {
    if (data === '') return;
    this.pending.push({ executionId, stream, data, truncated: false });
    this.pendingBytes += data.length;
    if (this.pendingBytes >= this.flushBytes) void this.flush();
    else if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.flushMs);
    }
  }

  /** Records that a stream's output was cut at the size limit (an empty row marked truncated). */
  markTruncated(executionId: number, stream: 'stdout' | 'stderr'): void {
    this.pending.push({ executionId, stream, data: '', truncated: true });
  }

  /** Writes everything buffered so far; resolves when it is stored (or given up on). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const next = this.chain.then(() => this.writeNow());
    this.chain = next;
    return next;
  }

  /** Flushes what is buffered and leaves no timer behind (later writes wait for an explicit flush). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** `chunks` without those of deleted executions (all of them when the database cannot say). */
  private async withoutVanished(chunks: Chunk[]): Promise<Chunk[]> {
    const ids = [...new Set(chunks.map((c) => c.executionId))];
    try {
      const found = await this.store.db
        .select({ id: executions.id })
        .from(executions)
        .where(inArray(executions.id, ids));
      if (found.length === ids.length) return chunks;
      const alive = new Set(found.map((r) => r.id));
      return chunks.filter((c) => alive.has(c.executionId));
    } catch {
      return chunks;
    }
  }

  private async writeNow(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const rows: Chunk[] = [];
    for (const c of chunks) {
      const last = rows[rows.length - 1];
      if (
        last &&
        !last.truncated &&
        !c.truncated &&
        last.executionId === c.executionId &&
        last.stream === c.stream &&
        last.data.length + c.data.length <= MAX_ROW_CHARS
      ) {
        last.data += c.data;
      } else rows.push({ ...c });
    }
    let ids: { id: number }[];
    try {
      ids = await this.store.db
        .insert(executionOutput)
        .values(
          rows.map((r) => ({
            executionId: r.executionId,
            stream: r.stream,
            data: r.data,
            truncated: r.truncated,
          })),
        )
        .returning({ id: executionOutput.id });
    } catch (e) {
      // Keep the output for the next flush, within a bound — except that of executions that no
      // longer exist (deleted meanwhile), which would make every later flush fail too.
      const kept = await this.withoutVanished(chunks);
      this.pending = [...kept, ...this.pending];
      this.pendingBytes += kept === chunks ? bytes : kept.reduce((n, c) => n + c.data.length, 0);
      while (this.pendingBytes > this.maxBuffered && this.pending.length > 1) {
        const dropped = this.pending.shift();
        this.pendingBytes -= dropped?.data.length ?? 0;
      }
      this.log.warn(
        { err: (e as Error).message, rows: rows.length },
        'execution output could not be stored; will retry',
      );
      if (!this.timer && !this.closed) {
        this.timer = setTimeout(
          () => {
            this.timer = undefined;
            void this.flush();
          },
          Math.max(this.flushMs, 1000),
        );
      }
      return;
    }
    rows.forEach((r, i) => {
      const id = ids[i]?.id;
      if (id === undefined || r.data === '') return;
      const n: OutputNotification = { execution_id: r.executionId, seq: id, stream: r.stream, data: r.data };
      this.bus.publish(TOPICS.notifyOutput, { ...n }).catch(() => {});
    });
  }
}
