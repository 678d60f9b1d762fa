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
 * Committed rows go out at once: rows written inside a `store.transaction` are remembered with that
 * transaction, and when it commits (`store.onCommit`) the relay publishes them right away — no
 * claiming transaction, no wait for a poll. They are marked published shortly after, many in one
 * statement (`markDelayMs`); until then they are unpublished in the table, so a process that dies
 * in between publishes them again when it restarts (at least once, as always). A row whose direct
 * publish fails is left to the claiming path below.
 *
 * Wake-ups: callers `kick()` the relay after committing — it runs a claiming pass only when rows were
 * written outside a transaction it follows (a plain handle, a nested transaction); a poll (500 ms by
 * default) covers missed kicks and rows written by other processes (rows younger than `minAgeMs`
 * are left to the process that wrote them, which is publishing them directly). Published rows are
 * deleted after `retentionMs`.
 */
import { and, asc, inArray, isNotNull, isNull, lt, notInArray, sql } from 'drizzle-orm';
import { PgTransaction } from 'drizzle-orm/pg-core';
import type { Db, Store } from '../store/database.ts';
import { insertRows } from '../store/repositories/bulk.ts';
import { outbox } from '../store/schema.ts';
import { type Bus, BusError, type BusLogger, type JsonValue, silentLogger } from './bus.ts';
import { checkTopic, encodePayload, errorMessage } from './common.ts';

export interface OutboxRow {
  id: number;
  topic: string;
  payload: JsonValue;
}

/** Rows written in a transaction, by transaction: published when it commits (see `OutboxRelay`). */
const written = new WeakMap<object, OutboxRow[]>();
/** Rows written where no commit will be seen (a plain handle, a nested transaction): a claiming pass must find them. */
let untracked = 0;

/** A top-level transaction, whose commit `store.onCommit` reports. */
function isTopLevelTransaction(db: Db): boolean {
  return db instanceof PgTransaction && ((db as unknown as { nestedIndex?: number }).nestedIndex ?? 0) === 0;
}

/**
 * Writes messages to the outbox inside the caller's transaction (`tx`, or a plain handle for
 * messages on their own), in one statement (a round trip per message would cost more than the
 * messages). Validates topics and payloads now, so a bad message fails its transaction
 * instead of the relay. Call `relay.kick()` after the commit.
 */
export async function writeOutboxMessages(
  tx: Db,
  messages: readonly { topic: string; payload: JsonValue }[],
): Promise<void> {
  if (messages.length === 0) return;
  for (const m of messages) {
    checkTopic(m.topic);
    encodePayload(m.payload);
  }
  const ids = await insertRows(
    tx,
    outbox,
    messages.map((m) => ({ topic: m.topic, payload: m.payload })),
    { returning: ['id'] },
  );
  const rows: OutboxRow[] = ids.map((r, k) => ({
    id: r.id,
    topic: messages[k]!.topic,
    payload: messages[k]!.payload,
  }));
  trackOutboxRows(tx, rows);
}

/**
 * Rows written to the outbox by a statement of the caller's own (a data-modifying CTE, say), with
 * their ids: published when `tx` commits, like those of `writeOutboxMessages`. Their topics and
 * payloads must be valid (they are checked).
 */
export function trackOutboxRows(tx: Db, rows: readonly OutboxRow[]): void {
  for (const r of rows) {
    checkTopic(r.topic);
    encodePayload(r.payload);
  }
  if (!isTopLevelTransaction(tx)) {
    untracked += rows.length;
    return;
  }
  const list = written.get(tx);
  if (list) list.push(...rows);
  else written.set(tx, [...rows]);
}

/** Adds a message to the outbox inside the caller's transaction; see `writeOutboxMessages`. */
export function writeOutbox(tx: Db, topic: string, payload: JsonValue): Promise<void> {
  return writeOutboxMessages(tx, [{ topic, payload }]);
}

/** Many messages of one topic; see `writeOutboxMessages`. */
export function writeOutboxMany(tx: Db, topic: string, payloads: readonly JsonValue[]): Promise<void> {
  return writeOutboxMessages(
    tx,
    payloads.map((payload) => ({ topic, payload })),
  );
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
  /** How long rows published directly may wait to be marked published (they are marked together). Default 50 ms. */
  markDelayMs?: number;
  /** Rows the poll leaves to the process that wrote them (it publishes them directly). Default 1000 ms. */
  minAgeMs?: number;
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
  private readonly markDelayMs: number;
  private readonly minAgeMs: number;
  private readonly log: BusLogger;
  private running: Promise<void> | undefined;
  private stopped = true;
  private kicked = false;
  private wake: (() => void) | undefined;
  private unlisten: (() => void) | undefined;
  private unhook: (() => void) | undefined;
  /** `untracked` when this relay last looked. */
  private untrackedSeen = untracked;
  /** Rows being published directly (not to be claimed meanwhile). */
  private readonly inFlight = new Set<number>();
  private readonly direct = new Set<Promise<void>>();
  /** Rows published directly, to be marked. */
  private toMark: number[] = [];
  /** A direct publish failed: a claiming pass must pick its rows up. */
  private needPass = false;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    opts: OutboxRelayOptions = {},
  ) {
    this.batchSize = positive(opts.batchSize ?? 200, 'batchSize');
    this.pollIntervalMs = positive(opts.pollIntervalMs ?? 500, 'pollIntervalMs');
    this.retentionMs = positive(opts.retentionMs ?? 3_600_000, 'retentionMs');
    this.cleanupIntervalMs = positive(opts.cleanupIntervalMs ?? 60_000, 'cleanupIntervalMs');
    this.markDelayMs = positive(opts.markDelayMs ?? 50, 'markDelayMs');
    this.minAgeMs = Math.max(0, opts.minAgeMs ?? 1000);
    this.log = opts.logger ?? silentLogger;
  }

  /** Starts relaying in the background. Idempotent. */
  start(): void {
    if (this.running) return;
    this.stopped = false;
    this.unlisten = this.bus.onStateChange((state) => {
      if (state === 'connected') {
        this.needPass = true;
        this.kick();
      }
    });
    this.unhook = this.store.onCommit((tx) => this.committed(tx));
    // The first pass takes every unpublished row: what is left from before the start is nobody's.
    this.needPass = true;
    this.running = this.loop();
  }

  /**
   * Relay now: something was just committed. Cheap; kicks coalesce. What a followed transaction
   * wrote is already on its way; a claiming pass runs only for rows written outside one.
   */
  kick(): void {
    if (untracked === this.untrackedSeen && !this.needPass) return;
    this.kicked = true;
    this.wake?.();
  }

  /** Stops after the batch in progress; marks what was published directly. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unhook?.();
    this.unhook = undefined;
    this.wake?.();
    this.unlisten?.();
    this.unlisten = undefined;
    const running = this.running;
    this.running = undefined;
    await running;
    await Promise.all(this.direct);
    await this.markPublished().catch((e: unknown) =>
      this.log.warn(
        { err: errorMessage(e) },
        'outbox rows not marked published; they will be published again',
      ),
    );
  }

  /** Publishes the rows a transaction wrote, now that it committed. */
  private committed(tx: object): void {
    const rows = written.get(tx);
    if (!rows) return;
    written.delete(tx);
    if (this.stopped || !this.bus.healthy) {
      this.needPass = true;
      this.kick();
      return;
    }
    for (const r of rows) this.inFlight.add(r.id);
    const done = this.publishDirect(rows).finally(() => {
      this.direct.delete(done);
      for (const r of rows) this.inFlight.delete(r.id);
      if (this.toMark.length) this.wake?.();
    });
    this.direct.add(done);
  }

  private async publishDirect(rows: OutboxRow[]): Promise<void> {
    const results = await Promise.allSettled(
      rows.map((r) => this.bus.publish(r.topic, r.payload, { messageId: `outbox-${r.id}` })),
    );
    results.forEach((res, i) => {
      const row = rows[i]!;
      if (res.status === 'fulfilled') {
        this.toMark.push(row.id);
        this.stats.published++;
        return;
      }
      if (!this.needPass)
        this.log.warn(
          { outboxId: row.id, topic: row.topic, err: errorMessage(res.reason) },
          'outbox publish failed; will retry',
        );
      this.needPass = true;
    });
    if (this.needPass) this.kick();
  }

  /** Marks the rows published directly (one statement for all of them). */
  private async markPublished(): Promise<void> {
    while (this.toMark.length) {
      const ids = this.toMark.splice(0, 5000);
      try {
        await this.store.db.update(outbox).set({ publishedAt: sql`now()` }).where(inArray(outbox.id, ids));
      } catch (e) {
        this.toMark.unshift(...ids);
        throw e;
      }
    }
  }

  /** Relays until no unpublished row is left (rows locked by another relay excepted); returns how many it published. */
  async flush(): Promise<number> {
    await Promise.all(this.direct);
    await this.markPublished();
    let total = 0;
    for (;;) {
      const r = await this.relayBatch();
      total += r.published;
      if (r.failed > 0)
        throw new BusError('BUS_UNAVAILABLE', `${r.failed} outbox message(s) could not be published`);
      if (r.claimed < this.batchSize) return total;
    }
  }

  /**
   * One transaction: claim up to `batchSize` rows, publish them, mark the confirmed ones. `minAgeMs`
   * leaves younger rows alone (the poll's pass: their writers publish them).
   */
  async relayBatch(minAgeMs = 0): Promise<RelayBatchResult> {
    const busy = [...this.inFlight];
    return this.store.transaction(async (tx) => {
      const rows = await tx
        .select({ id: outbox.id, topic: outbox.topic, payload: outbox.payload })
        .from(outbox)
        .where(
          and(
            isNull(outbox.publishedAt),
            busy.length ? notInArray(outbox.id, busy) : undefined,
            minAgeMs > 0
              ? lt(outbox.createdAt, sql`now() - make_interval(secs => ${minAgeMs / 1000})`)
              : undefined,
          ),
        )
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
    let nextPoll = Date.now();
    while (!this.stopped) {
      // A pass claims rows: when kicked about rows written outside a followed transaction, after
      // a failed direct publish, and on every poll.
      const polled = Date.now() >= nextPoll;
      const claim = this.kicked || this.needPass || polled || failures > 0;
      const minAge = this.kicked || this.needPass || failures > 0 ? 0 : this.minAgeMs;
      this.kicked = false;
      this.untrackedSeen = untracked;
      let ok = true;
      try {
        if (this.toMark.length) await this.markPublished();
        if (claim && this.bus.healthy) {
          this.needPass = false;
          if (polled) nextPoll = Date.now() + this.pollIntervalMs;
          for (;;) {
            const r = await this.relayBatch(minAge);
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
      const wait = failures
        ? Math.min(30_000, this.pollIntervalMs * 2 ** Math.min(failures, 6))
        : Math.max(0, nextPoll - Date.now());
      await this.sleep(this.toMark.length && !failures ? Math.min(wait, this.markDelayMs) : wait);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const until = Date.now() + ms;
      let t = setTimeout(done, ms);
      let marking = false;
      const self = this;
      function done() {
        clearTimeout(t);
        self.wake = undefined;
        resolve();
      }
      this.wake = () => {
        if (this.kicked || this.stopped || this.needPass) done();
        else if (this.toMark.length && !marking) {
          // Rows published directly: marked together, not sooner than `markDelayMs`.
          marking = true;
          clearTimeout(t);
          t = setTimeout(done, Math.max(0, Math.min(until - Date.now(), this.markDelayMs)));
        }
      };
    });
  }
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0)
    throw new BusError('INVALID_ARGUMENT', `${name} must be a positive number`);
  return n;
}
