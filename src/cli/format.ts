/**
 * Small formatting and parsing helpers of the command line: times, durations, relative times
 * (`--since 2h`), comma lists, positive integers.
 */
import { UsageError } from './errors.ts';

const pad = (n: number) => String(n).padStart(2, '0');

/** `2025-01-02 13:04:05` in local time; '' for nothing. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `850ms`, `12.3s`, `4m 05s`, `2h 03m`, `3d 04h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d ${pad(h % 24)}h`;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * A time for `--since`/`--until`: an ISO 8601 date or date-time (passed through), or a span back
 * from now such as `30s`, `15m`, `2h`, `7d`, `1w`.
 */
export function parseSince(raw: string, flag = '--since', now = Date.now()): string {
  const s = raw.trim();
  const m = /^(\d+)\s*([smhdw])$/i.exec(s);
  if (m) return new Date(now - Number(m[1]) * UNITS[m[2]!.toLowerCase()]! * 1000).toISOString();
  if (/^\d{4}-\d{2}-\d{2}/.test(s) && !Number.isNaN(Date.parse(s))) return s;
  throw new UsageError(`${flag} '${raw}' is neither an ISO 8601 time nor a span such as 30m, 2h or 7d`);
}

export function parsePositiveInt(raw: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`${flag} must be a whole number, not '${raw}'`);
  const n = Number(raw);
  if (n < 1 || n > max) throw new UsageError(`${flag} must be between 1 and ${max}`);
  return n;
}

/** A numeric id argument (executions, events, inquiries, API keys). */
export function parseId(raw: string, what = 'id'): number {
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw)))
    throw new UsageError(`${what} must be a positive whole number, not '${raw}'`);
  return Number(raw);
}

/** `a, b,,c` → `['a', 'b', 'c']`. */
export const splitList = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** A JSON value in one line, shortened to `max` characters. */
export function oneLine(v: unknown, max = 80): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  if (s === undefined) return '';
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
