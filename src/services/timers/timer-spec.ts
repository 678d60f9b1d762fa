/**
 * Timer specifications: the parameters of the core timer triggers, checked and turned into
 * schedules. Pure: no I/O and no clock — times go in and come out as epoch milliseconds.
 *
 * - `core.intervaltimer {unit, delta}`: every `delta` units (seconds, minutes, hours, days), counted
 *   from when the timer was created (when its first rule was enabled).
 * - `core.crontimer {cron, timezone}`: a cron expression with an optional seconds field (5 or 6
 *   fields, or a nickname such as `@hourly`), read in an IANA time zone (default UTC).
 * - `core.datetimetimer {date, timezone}`: once, at an ISO 8601 date-time; without an offset the
 *   wall time is read in `timezone` (default UTC).
 *
 * Every timer also takes `misfire: skip | catch_up_once` (default `skip`): what to do with firings
 * that were missed by more than the grace period (the platform was down). See docs/triggers.md.
 */
import { createHash } from 'node:crypto';
import { Cron } from 'croner';

export const INTERVAL_TIMER = 'core.intervaltimer';
export const CRON_TIMER = 'core.crontimer';
export const DATETIME_TIMER = 'core.datetimetimer';
export const TIMER_TRIGGERS: readonly string[] = [INTERVAL_TIMER, CRON_TIMER, DATETIME_TIMER];

export const MISFIRE_POLICIES = ['skip', 'catch_up_once'] as const;
export type MisfirePolicy = (typeof MISFIRE_POLICIES)[number];

export const INTERVAL_UNITS = { seconds: 1000, minutes: 60_000, hours: 3_600_000, days: 86_400_000 } as const;
export type IntervalUnit = keyof typeof INTERVAL_UNITS;

/** Longest interval accepted (about ten years): beyond it, a timer is a date-time timer. */
const MAX_INTERVAL_MS = 3660 * INTERVAL_UNITS.days;

export interface MissedFirings {
  /** Firings scheduled in the range (at most the cap). */
  count: number;
  /** The last of them. */
  last: number;
  /** True when counting stopped at the cap (there were more). */
  capped: boolean;
}

export interface Schedule {
  readonly kind: 'interval' | 'cron' | 'datetime';
  readonly misfire: MisfirePolicy;
  /** The first firing of a timer created at `now`; null when it will never fire. */
  first(now: number): number | null;
  /** The first firing strictly after `t`; null when there is none (a one-shot timer is done). */
  nextAfter(t: number): number | null;
  /** The firings in [`from`, `to`], where `from` is itself a firing; counts at most `cap`. */
  firingsBetween(from: number, to: number, cap: number): MissedFirings;
}

export type ParsedSpec = { ok: true; schedule: Schedule } | { ok: false; message: string };

type Params = Readonly<Record<string, unknown>>;

const isObject = (v: unknown): v is Params => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses the trigger parameters of a timer trigger; `{ok: false, message}` says what is wrong. */
export function parseTimerSpec(triggerRef: string, params: unknown): ParsedSpec {
  if (!isObject(params)) return { ok: false, message: 'trigger_params must be an object' };
  const misfire = params.misfire ?? 'skip';
  if (typeof misfire !== 'string' || !(MISFIRE_POLICIES as readonly string[]).includes(misfire))
    return {
      ok: false,
      message: `misfire must be one of ${MISFIRE_POLICIES.join(', ')}, got ${JSON.stringify(misfire)}`,
    };
  const policy = misfire as MisfirePolicy;
  switch (triggerRef) {
    case INTERVAL_TIMER:
      return intervalSchedule(params, policy);
    case CRON_TIMER:
      return cronSchedule(params, policy);
    case DATETIME_TIMER:
      return datetimeSchedule(params, policy);
    default:
      return { ok: false, message: `'${triggerRef}' is not a timer trigger` };
  }
}

/**
 * What is wrong with the trigger parameters of a rule on a timer trigger, or undefined when they
 * are fine (or the trigger is not a timer). For the rules API, beyond the param_schema check.
 */
export function timerSpecProblem(triggerRef: string, params: unknown): string | undefined {
  if (!TIMER_TRIGGERS.includes(triggerRef)) return undefined;
  const r = parseTimerSpec(triggerRef, params);
  return r.ok ? undefined : r.message;
}

function intervalSchedule(p: Params, misfire: MisfirePolicy): ParsedSpec {
  const unit = p.unit ?? 'seconds';
  if (typeof unit !== 'string' || !Object.hasOwn(INTERVAL_UNITS, unit))
    return {
      ok: false,
      message: `unit must be one of ${Object.keys(INTERVAL_UNITS).join(', ')}, got ${JSON.stringify(unit)}`,
    };
  const delta = p.delta;
  if (typeof delta !== 'number' || !Number.isInteger(delta) || delta < 1)
    return { ok: false, message: `delta must be a whole number of at least 1, got ${JSON.stringify(delta)}` };
  const ms = delta * INTERVAL_UNITS[unit as IntervalUnit];
  if (ms > MAX_INTERVAL_MS)
    return { ok: false, message: `an interval of ${delta} ${unit} is too long (at most 3660 days)` };
  return {
    ok: true,
    schedule: {
      kind: 'interval',
      misfire,
      first: (now) => now + ms,
      nextAfter: (t) => t + ms,
      firingsBetween: (from, to) => {
        const count = to < from ? 0 : Math.floor((to - from) / ms) + 1;
        return { count, last: from + Math.max(0, count - 1) * ms, capped: false };
      },
    },
  };
}

/** Whether `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function timeZoneOf(p: Params): { ok: true; tz: string } | { ok: false; message: string } {
  const tz = p.timezone ?? 'UTC';
  if (typeof tz !== 'string' || tz === '' || !isTimeZone(tz))
    return {
      ok: false,
      message: `timezone must be an IANA time zone such as 'UTC' or 'Europe/Paris', got ${JSON.stringify(tz)}`,
    };
  return { ok: true, tz };
}

function cronSchedule(p: Params, misfire: MisfirePolicy): ParsedSpec {
  const expr = p.cron;
  if (typeof expr !== 'string' || expr.trim() === '')
    return { ok: false, message: 'cron must be a cron expression such as "0 */5 * * * *"' };
  const zone = timeZoneOf(p);
  if (!zone.ok) return zone;
  let job: Cron;
  try {
    job = new Cron(expr.trim(), { paused: true, timezone: zone.tz, mode: '5-or-6-parts' });
  } catch (e) {
    return {
      ok: false,
      message: `invalid cron expression "${expr}": ${(e as Error).message.replace(/^CronPattern: /, '')}`,
    };
  }
  const next = (t: number): number | null => {
    const d = job.nextRun(new Date(t));
    return d ? d.getTime() : null;
  };
  if (next(Date.UTC(2000, 0, 1)) === null)
    return { ok: false, message: `cron expression "${expr}" never fires` };
  return {
    ok: true,
    schedule: {
      kind: 'cron',
      misfire,
      first: next,
      nextAfter: next,
      firingsBetween: (from, to, cap) => {
        if (to < from) return { count: 0, last: from, capped: false };
        let count = 1;
        let last = from;
        for (;;) {
          const n = next(last);
          if (n === null || n > to) return { count, last, capped: false };
          if (count >= cap) return { count, last, capped: true };
          count++;
          last = n;
        }
      },
    },
  };
}

// date, time (seconds and fraction optional), optional zone
const ISO_DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

function datetimeSchedule(p: Params, misfire: MisfirePolicy): ParsedSpec {
  const date = p.date;
  if (typeof date !== 'string')
    return { ok: false, message: 'date must be an ISO 8601 date-time such as "2030-01-31T09:00:00"' };
  const zone = timeZoneOf(p);
  if (!zone.ok) return zone;
  const at = parseZonedDateTime(date, zone.tz);
  if (at === undefined)
    return {
      ok: false,
      message: `date must be a valid ISO 8601 date-time such as "2030-01-31T09:00:00", got ${JSON.stringify(date)}`,
    };
  return {
    ok: true,
    schedule: {
      kind: 'datetime',
      misfire,
      first: () => at,
      nextAfter: () => null,
      firingsBetween: (from, to) =>
        to < from ? { count: 0, last: from, capped: false } : { count: 1, last: from, capped: false },
    },
  };
}

/**
 * An ISO 8601 date-time as epoch milliseconds. With `Z` or an offset it is that instant; without,
 * the wall time is read in `tz` (a wall time that a daylight-saving change skips is read with the
 * offset in force before the change). Undefined when it is not a real date-time.
 */
export function parseZonedDateTime(s: string, tz: string): number | undefined {
  const m = ISO_DATETIME.exec(s.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate())
    return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const wall = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const zone = m[8];
  if (zone) {
    if (zone.toUpperCase() === 'Z') return wall;
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2, 4));
    if (oh > 23 || om > 59) return undefined;
    return wall - sign * (oh * 60 + om) * 60_000;
  }
  return wallTimeToEpoch(wall, tz);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The offset of `tz` from UTC at instant `epoch`, in milliseconds (positive east of Greenwich). */
export function timeZoneOffsetMs(epoch: number, tz: string): number {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  const get: Record<string, number> = {};
  for (const part of f.formatToParts(new Date(epoch)))
    if (part.type !== 'literal') get[part.type] = Number(part.value);
  const asUtc = Date.UTC(get.year!, get.month! - 1, get.day!, get.hour!, get.minute!, get.second!);
  return asUtc - (epoch - (((epoch % 1000) + 1000) % 1000));
}

/** The instant at which the clocks of `tz` show `wall` (a wall time written as if it were UTC). */
function wallTimeToEpoch(wall: number, tz: string): number {
  const guess = wall - timeZoneOffsetMs(wall, tz);
  const offset = timeZoneOffsetMs(guess, tz);
  return wall - offset;
}

/** JSON with object keys sorted at every level: equal documents give equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .sort()
      .filter((k) => v[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** The key of a timer: the same trigger with the same parameters (in any key order) is one timer. */
export function timerKey(triggerRef: string, params: unknown): string {
  return createHash('sha256')
    .update(`${triggerRef}\n${canonicalJson(params)}`)
    .digest('hex');
}
