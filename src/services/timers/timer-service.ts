/**
 * The timer service: fires the events of the core timer triggers (interval, cron, one-shot
 * date-time) for the enabled rules that use them. It runs in the scheduler process; any number of
 * replicas may run it against one database, and each firing still happens exactly once.
 *
 * State lives in the `timers` table, one row per distinct timer (trigger ref + trigger parameters):
 * rules with identical timer parameters share one row, hence one event per firing, carrying exactly
 * those parameters as its `trigger_params`.
 *
 * - Sync: the rows follow the enabled rules — on every `notify.definitions.changed` broadcast and
 *   every `syncIntervalMs` (10 s). A new timer gets its first firing time; a timer no rule uses any
 *   more is deleted (so an interval restarts when its rule is enabled again), except one-shot timers
 *   that are done: they stay, so re-enabling their rule does not fire them a second time.
 * - Firing: for each row whose `next_fire_at` has come, one transaction runs the guarded
 *   `UPDATE timers SET next_fire_at = $next, last_fired_at = $due WHERE key = $k AND next_fire_at = $due`
 *   and, only if that updated the row, creates the event (with its `event.created` outbox message).
 *   A replica that loses the race updates nothing and creates nothing.
 * - Lateness: a firing less than `misfireGraceMs` (30 s) late fires normally (a short lag is caught up
 *   one firing at a time). A firing later than that means the platform was down: every firing up to
 *   now is missed and the timer's `misfire` parameter decides — `skip` (default) fires nothing,
 *   `catch_up_once` fires one event for all of them with `missed_count`. Either way the next firing
 *   is the first one after now.
 *
 * Times come from an injectable clock (`now`), so tests can move time; timers read the host clock of
 * whichever replica fires them, so replicas need synchronised clocks (NTP), as for any scheduler.
 */
import { and, asc, eq, inArray, isNotNull, lte, min, not, sql } from 'drizzle-orm';
import type { Bus, BusLogger, JsonValue, Subscription } from '../../bus/bus.ts';
import { silentLogger } from '../../bus/bus.ts';
import { AppError } from '../../domain/errors.ts';
import type { Store } from '../../store/database.ts';
import { rules, timers, triggers } from '../../store/schema.ts';
import { createEvents } from '../events/create-event.ts';
import { TOPICS } from '../runtime/messages.ts';
import { DATETIME_TIMER, parseTimerSpec, type Schedule, TIMER_TRIGGERS, timerKey } from './timer-spec.ts';

export interface TimerServiceOptions {
  store: Store;
  /** Follows `notify.definitions.changed` to re-sync at once when rules change. */
  bus?: Bus;
  log?: BusLogger;
  /** Called after a commit that wrote outbox rows, so the relay publishes them at once. */
  kickOutbox?: () => void;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
  /** Time between two syncs of the timers with the rules. Default 10 000 ms. */
  syncIntervalMs?: number;
  /** Longest sleep between two looks at the table (timers another replica created). Default 1000 ms. */
  maxIdleMs?: number;
  /** A firing later than this is missed (the platform was down). Default 30 000 ms. */
  misfireGraceMs?: number;
  /** Most missed cron firings counted for `missed_count`. Default 100 000. */
  missedCountCap?: number;
  /** Due timers read at once. Default 500. */
  batchSize?: number;
}

export interface SyncResult {
  /** Distinct timers the enabled rules use (valid ones). */
  wanted: number;
  created: number;
  deleted: number;
  /** Rules whose timer parameters are invalid: `{rule, message}`. */
  invalid: { rule: string; message: string }[];
}

type TimerRow = typeof timers.$inferSelect;

interface Plan {
  next: number | null;
  /** The scheduled time recorded as `last_fired_at`; null when nothing fired (skipped). */
  firedFor: number | null;
  payload: Record<string, JsonValue> | undefined;
  missed: number;
}

/** Loops over one due timer are bounded, so one timer cannot hold a tick forever. */
const MAX_FIRINGS_PER_TIMER_AND_TICK = 1000;

export class TimerService {
  private readonly store: Store;
  private readonly log: BusLogger;
  private readonly now: () => number;
  private readonly syncIntervalMs: number;
  private readonly maxIdleMs: number;
  private readonly graceMs: number;
  private readonly missedCap: number;
  private readonly batchSize: number;
  private readonly schedules = new Map<string, Schedule | string>();
  /** Keys whose invalid parameters were logged already (logged again once they change). */
  private readonly reported = new Set<string>();
  private subscription: Subscription | undefined;
  private loop: Promise<void> | undefined;
  private stopped = true;
  /** Set by `stop()`: a tick in progress ends after its current firing. */
  private stopping = false;
  private syncWanted = true;
  private nextSyncAt = 0;
  private wake: (() => void) | undefined;
  /** Events created by this instance (for tests and metrics). */
  fired = 0;

  constructor(private readonly opts: TimerServiceOptions) {
    this.store = opts.store;
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.syncIntervalMs = opts.syncIntervalMs ?? 10_000;
    this.maxIdleMs = opts.maxIdleMs ?? 1000;
    this.graceMs = opts.misfireGraceMs ?? 30_000;
    this.missedCap = opts.missedCountCap ?? 100_000;
    this.batchSize = opts.batchSize ?? 500;
  }

  /** Starts syncing and firing in the background. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopping = false;
    this.syncWanted = true;
    if (this.opts.bus)
      this.subscription = await this.opts.bus.subscribe([TOPICS.definitionsChanged], async () => {
        this.syncWanted = true;
        this.wake?.();
      });
    this.loop = this.run();
  }

  /** Stops after the firing in progress. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopping = true;
    this.wake?.();
    const sub = this.subscription;
    this.subscription = undefined;
    await sub?.close();
    await this.loop;
    this.loop = undefined;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let wakeAt: number | undefined;
      try {
        if (this.syncWanted || this.now() >= this.nextSyncAt) {
          this.syncWanted = false;
          await this.sync();
          this.nextSyncAt = this.now() + this.syncIntervalMs;
        }
        wakeAt = await this.tick();
        failures = 0;
      } catch (e) {
        failures++;
        if (!this.stopped)
          this.log.warn({ err: (e as Error).message }, 'timer service: tick failed; will retry');
      }
      if (this.stopped) break;
      const now = this.now();
      let delay = Math.min(this.maxIdleMs, this.nextSyncAt - now);
      if (wakeAt !== undefined) delay = Math.min(delay, wakeAt - now);
      if (failures) delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
      if (!this.syncWanted) await this.sleep(Math.max(0, delay));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /**
   * Brings the `timers` table in line with the enabled rules (of enabled timer triggers). Safe to
   * run on several replicas at once.
   */
  async sync(): Promise<SyncResult> {
    const db = this.store.db;
    // Rows created after this instant are spared below: another replica may have just created them
    // for a rule committed after our read of the rules.
    const clock = (await db.execute(sql`select now() as t0`)) as unknown as { rows: [{ t0: string | Date }] };
    const t0 = clock.rows[0].t0;
    const used = await db
      .select({ ref: rules.ref, triggerRef: rules.triggerRef, params: rules.triggerParams })
      .from(rules)
      .innerJoin(triggers, eq(triggers.ref, rules.triggerRef))
      .where(
        and(
          eq(rules.enabled, true),
          eq(triggers.enabled, true),
          inArray(rules.triggerRef, [...TIMER_TRIGGERS]),
        ),
      )
      .orderBy(asc(rules.ref));
    const wanted = new Map<
      string,
      { triggerRef: string; params: Record<string, unknown>; schedule: Schedule }
    >();
    const invalid: SyncResult['invalid'] = [];
    for (const r of used) {
      const key = timerKey(r.triggerRef, r.params);
      const schedule = this.scheduleOf(key, r.triggerRef, r.params);
      if (typeof schedule === 'string') {
        invalid.push({ rule: r.ref, message: schedule });
        if (!this.reported.has(`${key}:${r.ref}`)) {
          this.reported.add(`${key}:${r.ref}`);
          this.log.error(
            { rule: r.ref, trigger: r.triggerRef, trigger_params: r.params, err: schedule },
            `rule '${r.ref}' has invalid timer parameters; its timer is skipped: ${schedule}`,
          );
        }
        continue;
      }
      wanted.set(key, { triggerRef: r.triggerRef, params: r.params, schedule });
    }
    const existing = await db.select({ key: timers.key }).from(timers);
    const have = new Set(existing.map((e) => e.key));
    const now = this.now();
    const fresh = [...wanted].filter(([key]) => !have.has(key));
    let created = 0;
    if (fresh.length) {
      const rows = await db
        .insert(timers)
        .values(
          fresh.map(([key, t]) => {
            const first = t.schedule.first(now);
            return {
              key,
              triggerRef: t.triggerRef,
              triggerParams: t.params,
              nextFireAt: first === null ? null : new Date(first),
            };
          }),
        )
        .onConflictDoNothing()
        .returning({ key: timers.key });
      created = rows.length;
    }
    const stale = existing.map((e) => e.key).filter((k) => !wanted.has(k));
    let deleted = 0;
    if (stale.length) {
      const rows = await db
        .delete(timers)
        .where(
          and(
            inArray(timers.key, stale),
            sql`${timers.createdAt} < ${t0 instanceof Date ? t0.toISOString() : t0}::timestamptz`,
            // A one-shot timer that is done stays done.
            not(and(eq(timers.triggerRef, DATETIME_TIMER), sql`${timers.nextFireAt} IS NULL`)!),
          ),
        )
        .returning({ key: timers.key });
      deleted = rows.length;
      for (const r of rows) this.schedules.delete(r.key);
    }
    for (const k of this.reported) if (!used.some((r) => k.endsWith(`:${r.ref}`))) this.reported.delete(k);
    if (created || deleted) this.log.debug({ created, deleted, wanted: wanted.size }, 'timers synced');
    return { wanted: wanted.size, created, deleted, invalid };
  }

  private scheduleOf(key: string, triggerRef: string, params: unknown): Schedule | string {
    let s = this.schedules.get(key);
    if (s === undefined) {
      const parsed = parseTimerSpec(triggerRef, params);
      s = parsed.ok ? parsed.schedule : parsed.message;
      this.schedules.set(key, s);
    }
    return s;
  }

  /**
   * Fires every timer that is due now (as many firings as each is behind, within the grace period).
   * Returns the earliest next firing time in the table, if any.
   */
  async tick(): Promise<number | undefined> {
    const db = this.store.db;
    for (let round = 0; round < MAX_FIRINGS_PER_TIMER_AND_TICK; round++) {
      const now = this.now();
      const due = await db
        .select()
        .from(timers)
        .where(lte(timers.nextFireAt, new Date(now)))
        .orderBy(asc(timers.nextFireAt))
        .limit(this.batchSize);
      if (!due.length) break;
      let progressed = false;
      for (const row of due) {
        if (this.stopping) break;
        if (await this.fire(row, now)) progressed = true;
      }
      if (!progressed || this.stopping) break;
    }
    const [next] = await db
      .select({ at: min(timers.nextFireAt) })
      .from(timers)
      .where(isNotNull(timers.nextFireAt));
    return next?.at ? next.at.getTime() : undefined;
  }

  /** Handles one due timer; true when this instance moved it on (with or without an event). */
  private async fire(row: TimerRow, now: number): Promise<boolean> {
    const due = row.nextFireAt!.getTime();
    const schedule = this.scheduleOf(row.key, row.triggerRef, row.triggerParams);
    if (typeof schedule === 'string') {
      // The parameters were valid when the row was made (e.g. a time zone this runtime does not know).
      return this.advance(row, due, null, schedule);
    }
    const plan = this.plan(row, schedule, due, now);
    try {
      const won = await this.store.transaction(async (tx) => {
        const updated = await tx
          .update(timers)
          .set({
            nextFireAt: plan.next === null ? null : new Date(plan.next),
            ...(plan.firedFor !== null && { lastFiredAt: new Date(plan.firedFor) }),
            fireCount: plan.payload ? sql`${timers.fireCount} + 1` : timers.fireCount,
            lastError: null,
            updatedAt: sql`now()`,
          })
          .where(and(eq(timers.key, row.key), eq(timers.nextFireAt, new Date(due))))
          .returning({ key: timers.key });
        if (!updated.length) return false;
        if (plan.payload)
          await createEvents(tx, [
            {
              triggerRef: row.triggerRef,
              payload: plan.payload,
              triggerParams: row.triggerParams as Record<string, JsonValue>,
              source: 'timer',
            },
          ]);
        return true;
      });
      if (won && plan.payload) {
        this.fired++;
        this.opts.kickOutbox?.();
      }
      if (won && plan.missed) {
        const what =
          schedule.misfire === 'skip'
            ? 'skipped (misfire: skip)'
            : 'fired as one event (misfire: catch_up_once)';
        this.log.warn(
          { timer: row.key, trigger: row.triggerRef, trigger_params: row.triggerParams, missed: plan.missed },
          `timer missed ${plan.missed} firing(s) while the platform was down; ${what}`,
        );
      }
      return won;
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      // The trigger was disabled, removed, or refuses the payload: no event; move on, say why.
      this.log.warn(
        { timer: row.key, trigger: row.triggerRef, trigger_params: row.triggerParams, err: e.message },
        'timer firing produced no event',
      );
      return this.advance(row, due, plan.next, e.message);
    }
  }

  private plan(row: TimerRow, schedule: Schedule, due: number, now: number): Plan {
    const params = row.triggerParams as Record<string, JsonValue>;
    const base = (scheduledAt: number): Record<string, JsonValue> => ({
      ...params,
      executed_at: new Date(now).toISOString(),
      scheduled_at: new Date(scheduledAt).toISOString(),
    });
    if (now - due <= this.graceMs)
      return { next: schedule.nextAfter(due), firedFor: due, payload: base(due), missed: 0 };
    const missed = schedule.firingsBetween(due, now, this.missedCap);
    const next =
      schedule.kind === 'interval' && !missed.capped
        ? schedule.nextAfter(missed.last)
        : schedule.nextAfter(now);
    if (schedule.misfire === 'skip')
      return { next, firedFor: null, payload: undefined, missed: missed.count };
    return {
      next,
      firedFor: missed.last,
      payload: {
        ...base(missed.last),
        missed_count: missed.count,
        first_missed_at: new Date(due).toISOString(),
        ...(missed.capped && { missed_count_capped: true }),
      },
      missed: missed.count,
    };
  }

  /** Moves a timer on without an event (guarded like a firing), recording why. */
  private async advance(row: TimerRow, due: number, next: number | null, error: string): Promise<boolean> {
    const updated = await this.store.db
      .update(timers)
      .set({
        nextFireAt: next === null ? null : new Date(next),
        lastError: error,
        updatedAt: sql`now()`,
      })
      .where(and(eq(timers.key, row.key), eq(timers.nextFireAt, new Date(due))))
      .returning({ key: timers.key });
    return updated.length > 0;
  }
}
