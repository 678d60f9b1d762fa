/**
 * The transactional outbox (DESIGN §4.2): a message caused by a state change is written to the
 * `outbox` table in the transaction of that change (`writeOutbox`), so it exists exactly when the
 * change is committed; `OutboxRelay` publishes it on the bus after the commit.
 *
 * Relaying: a short transaction claims the oldest unpublished rows (`FOR UPDATE SKIP LOCKED`, so
 * several relays on one PostgreSQL share the work without publishing a row twice), publishes them
 * in id order, waits for the bus to confirm, marks them `published_at = now()` and commits. Rows
 * that could not be published stay (their `attempts` grows) and are tried again.
 *
 * Delivery is at least once: a relay that dies after the broker confirmed and before its commit
 * leaves the rows unpublished, and they are published again — consumers are idempotent. Messages
 * carry the id `outbox-<row id>`. Order is the commit order of one relay's batches at best (a
 * transaction that commits late publishes late; a retried row comes after newer ones): nothing may
 * depend on it.
 *
 * Wake-ups: callers `kick()` the relay after committing; a poll (500 ms by default) covers missed
 * kicks and rows written by other processes. Published rows are deleted after `retentionMs`.
 */
import { and, asc, inArray, isNotNull, isNull, lt, sql } from 'drizzle-orm';
import type { Db, Store } from '../store/database.ts';
import { outbox } from '../store/schema.ts';
import { type Bus, BusError, type BusLogger, type JsonValue, silentLogger } from './bus.ts';
import { checkTopic, encodePayload, errorMessage } from './common.ts';

/**
 * Adds a message to the outbox inside the caller's transaction (`tx`, or a plain handle for a
 * message on its own). Validates the topic and payload now, so a bad message fails its transaction
 * instead of the relay. Call `relay.kick()` after the commit.
 */
export async function writeOutbox(tx: Db, topic: string, payload: JsonValue): Promise<void> {
  checkTopic(topic);
  encodePayload(payload);
  await tx.insert(outbox).values({ topic, payload });
}

/**
 * `writeOutbox` for many messages of one topic: one multi-row insert (a round trip per message
 * costs ~1 ms on PGlite; batches of events and executions write hundreds at once).
 */
export async function writeOutboxMany(tx: Db, topic: string, payloads: readonly JsonValue[]): Promise<void> {
  checkTopic(topic);
  for (const payload of payloads) encodePayload(payload);
  for (let i = 0; i < payloads.length; i += 1000)
    await tx.insert(outbox).values(payloads.slice(i, i + 1000).map((payload) => ({ topic, payload })));
}

export interface OutboxRelayOptions {
  /** Rows claimed per transaction. Default 200. */
  batchSize?: number;
  /** Poll for rows nobody kicked about. Default 500 ms. */
  pollIntervalMs?: number;
  /** Published rows older than this are deleted. Default 1 h. */
  retentionMs?: number;
  /** How often the deletion runs. Default 60 s. */
  cleanupIntervalMs?: number;
  logger?: BusLogger;
}

export interface OutboxRelayStats {
  /** Rows this relay published and marked. */
  published: number;
  /** Rows that can never be published (malformed topic or payload written behind our back): marked and logged. */
  dropped: number;
  /** Publish attempts that failed and will be retried. */
  failed: number;
  /** Published rows deleted after the retention. */
  deleted: number;
}

export interface RelayBatchResult {
  claimed: number;
  published: number;
  failed: number;
}

export class OutboxRelay {
  readonly stats: OutboxRelayStats = { published: 0, dropped: 0, failed: 0, deleted: 0 };
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retentionMs: number;
  private readonly cleanupIntervalMs: number;
  private readonly log: BusLogger;
  private running: Promise<void> | undefined;
  private stopped = true;
  private kicked = false;
  private wake: (() => void) | undefined;
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    opts: OutboxRelayOptions = {},
  ) {
    this.batchSize = positive(opts.batchSize ?? 200, 'batchSize');
    this.pollIntervalMs = positive(opts.pollIntervalMs ?? 500, 'pollIntervalMs');
    this.retentionMs = positive(opts.retentionMs ?? 3_600_000, 'retentionMs');
    this.cleanupIntervalMs = positive(opts.cleanupIntervalMs ?? 60_000, 'cleanupIntervalMs');
    this.log = opts.logger ?? silentLogger;
  }

  /** Starts relaying in the background. Idempotent. */
  start(): void {
    if (this.running) return;
    this.stopped = false;
    this.unlisten = this.bus.onStateChange((state) => {
      if (state === 'connected') this.kick();
    });
    this.running = this.loop();
  }

  /** Relay now: something was just committed. Cheap; kicks coalesce. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  /** Stops after the batch in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.unlisten?.();
    this.unlisten = undefined;
    const running = this.running;
    this.running = undefined;
    await running;
  }

  /** Relays until no unpublished row is left (rows locked by another relay excepted); returns how many it published. */
  async flush(): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.relayBatch();
      total += r.published;
      if (r.failed > 0)
        throw new BusError('BUS_UNAVAILABLE', `${r.failed} outbox message(s) could not be published`);
      if (r.claimed < this.batchSize) return total;
    }
  }

  /** One transaction: claim up to `batchSize` rows, publish them, mark the confirmed ones. */
  async relayBatch(): Promise<RelayBatchResult> {
    return this.store.transaction(async (tx) => {
      const rows = await tx
        .select({ id: outbox.id, topic: outbox.topic, payload: outbox.payload })
        .from(outbox)
        .where(isNull(outbox.publishedAt))
        .orderBy(asc(outbox.id))
        .limit(this.batchSize)
        .for('update', { skipLocked: true });
      if (rows.length === 0) return { claimed: 0, published: 0, failed: 0 };
      const results = await Promise.allSettled(
        rows.map((r) => this.bus.publish(r.topic, r.payload as JsonValue, { messageId: `outbox-${r.id}` })),
      );
      const done: number[] = [];
      const failed: number[] = [];
      let published = 0;
      results.forEach((res, i) => {
        const row = rows[i]!;
        if (res.status === 'fulfilled') {
          done.push(row.id);
          published++;
          return;
        }
        const err = res.reason;
        if (err instanceof BusError && (err.code === 'INVALID_ARGUMENT' || err.code === 'INVALID_PAYLOAD')) {
          this.log.error(
            { outboxId: row.id, topic: row.topic, err: err.message },
            'outbox message cannot be published; dropped',
          );
          this.stats.dropped++;
          done.push(row.id);
          return;
        }
        failed.push(row.id);
        if (failed.length === 1) {
          this.log.warn(
            { outboxId: row.id, topic: row.topic, err: errorMessage(err) },
            'outbox publish failed; will retry',
          );
        }
      });
      if (done.length)
        await tx.update(outbox).set({ publishedAt: sql`now()` }).where(inArray(outbox.id, done));
      if (failed.length) {
        await tx
          .update(outbox)
          .set({ attempts: sql`${outbox.attempts} + 1` })
          .where(inArray(outbox.id, failed));
      }
      this.stats.published += published;
      this.stats.failed += failed.length;
      return { claimed: rows.length, published, failed: failed.length };
    });
  }

  /** Deletes published rows older than the retention, in batches; returns how many. */
  async cleanup(): Promise<number> {
    const db = this.store.db;
    let total = 0;
    for (;;) {
      // Oldest first by id (the primary key), so the scan stops as soon as it has a batch.
      const old = db
        .select({ id: outbox.id })
        .from(outbox)
        .where(
          and(
            isNotNull(outbox.publishedAt),
            lt(outbox.publishedAt, sql`now() - make_interval(secs => ${this.retentionMs / 1000})`),
          ),
        )
        .orderBy(asc(outbox.id))
        .limit(5000)
        .for('update', { skipLocked: true });
      const deleted = await db.delete(outbox).where(inArray(outbox.id, old)).returning({ id: outbox.id });
      total += deleted.length;
      if (deleted.length < 5000 || this.stopped) break;
    }
    this.stats.deleted += total;
    return total;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let nextCleanup = Date.now();
    while (!this.stopped) {
      this.kicked = false;
      let ok = true;
      try {
        if (this.bus.healthy) {
          for (;;) {
            const r = await this.relayBatch();
            if (r.failed > 0) {
              ok = false;
              break;
            }
            if (r.claimed < this.batchSize || this.stopped) break;
          }
        }
        if (!this.stopped && Date.now() >= nextCleanup) {
          nextCleanup = Date.now() + this.cleanupIntervalMs;
          await this.cleanup();
        }
      } catch (e) {
        ok = false;
        if (!this.stopped) this.log.warn({ err: errorMessage(e) }, 'outbox relay failed; will retry');
      }
      failures = ok ? 0 : failures + 1;
      if (this.stopped) break;
      if (this.kicked && ok) continue;
      await this.sleep(
        failures ? Math.min(30_000, this.pollIntervalMs * 2 ** Math.min(failures, 6)) : this.pollIntervalMs,
      );
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0)
    throw new BusError('INVALID_ARGUMENT', `${name} must be a positive number`);
  return n;
}
