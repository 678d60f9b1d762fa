/**
 * The log of sensor processes (`sensor_logs`): their stderr, the stdout lines that were not valid
 * events (stream `invalid`, with the reason), and what the manager did (stream `system`: started,
 * exited, restarting, stopped). Written in batches; bounded to the newest `keep` lines per sensor.
 */
import { and, desc, eq, sql } from 'drizzle-orm';
import type { BusLogger } from '../../bus/bus.ts';
import type { Store } from '../../store/database.ts';
import { sensorLogs } from '../../store/schema.ts';

export type SensorLogStream = 'stderr' | 'invalid' | 'system';

/** Longest line kept in the log (longer ones are cut and marked). */
export const MAX_LOG_LINE_CHARS = 8192;

interface Pending {
  sensorRef: string;
  stream: SensorLogStream;
  line: string;
}

export class SensorLogWriter {
  private pending: Pending[] = [];
  private dropped = new Map<string, number>();
  private sinceTrim = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly log: BusLogger,
    /** Lines kept per sensor. */
    readonly keep = 1000,
    private readonly flushMs = 200,
    /** Lines waiting at most; beyond, lines are dropped (and the drop is logged). */
    private readonly maxPending = 5000,
  ) {}

  write(sensorRef: string, stream: SensorLogStream, line: string): void {
    if (this.pending.length >= this.maxPending) {
      this.dropped.set(sensorRef, (this.dropped.get(sensorRef) ?? 0) + 1);
      return;
    }
    const text = line.length > MAX_LOG_LINE_CHARS ? `${line.slice(0, MAX_LOG_LINE_CHARS)}… [cut]` : line;
    // PostgreSQL stores no NUL character in text.
    this.pending.push({ sensorRef, stream, line: text.replaceAll('\0', '\uFFFD') });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs);
  }

  /** Writes what is waiting. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.pending;
    this.pending = [];
    for (const [ref, n] of this.dropped)
      batch.push({
        sensorRef: ref,
        stream: 'system',
        line: `${n} log line(s) dropped: the sensor wrote faster than they could be stored`,
      });
    this.dropped.clear();
    if (!batch.length) return;
    this.flushing = this.insert(batch).finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async insert(batch: Pending[]): Promise<void> {
    try {
      for (let i = 0; i < batch.length; i += 1000)
        await this.store.db.insert(sensorLogs).values(batch.slice(i, i + 1000));
    } catch (e) {
      this.log.warn(
        { err: (e as Error).message, lines: batch.length },
        'sensor log lines could not be stored',
      );
      return;
    }
    for (const p of batch) this.sinceTrim.set(p.sensorRef, (this.sinceTrim.get(p.sensorRef) ?? 0) + 1);
    for (const [ref, n] of this.sinceTrim) {
      if (n < Math.max(1, Math.floor(this.keep / 10))) continue;
      this.sinceTrim.delete(ref);
      await this.trim(ref).catch((e: unknown) =>
        this.log.warn({ err: (e as Error).message, sensor: ref }, 'sensor log could not be trimmed'),
      );
    }
  }

  /** Keeps the newest `keep` lines of a sensor. */
  async trim(sensorRef: string): Promise<number> {
    const db = this.store.db;
    const [cut] = await db
      .select({ id: sensorLogs.id })
      .from(sensorLogs)
      .where(eq(sensorLogs.sensorRef, sensorRef))
      .orderBy(desc(sensorLogs.id))
      .offset(this.keep)
      .limit(1);
    if (!cut) return 0;
    const gone = await db
      .delete(sensorLogs)
      .where(and(eq(sensorLogs.sensorRef, sensorRef), sql`${sensorLogs.id} <= ${cut.id}`))
      .returning({ id: sensorLogs.id });
    return gone.length;
  }

  async close(): Promise<void> {
    await this.flush();
    for (const ref of [...this.sinceTrim.keys()]) await this.trim(ref).catch(() => 0);
    this.sinceTrim.clear();
  }
}
