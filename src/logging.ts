/**
 * Structured logs: JSON lines (one object per line, with `component` and, where known,
 * `execution_id`, `workflow_execution_id`, `event_id`), or a readable one-line form on a terminal.
 */
import pino, { type Logger } from 'pino';

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);

/** One JSON log line → `12:00:01 INFO  [scheduler] message key=value …`. */
export function prettyLine(line: string, colour: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = Number(o.level);
  const time = new Date(Number(o.time)).toISOString().slice(11, 23);
  const name = (LEVELS[level] ?? String(o.level)).padEnd(5);
  const lvl = colour ? `\x1b[${COLORS[level] ?? '0'}m${name}\x1b[0m` : name;
  const comp = o.component ? ` [${String(o.component)}]` : '';
  const rest = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => {
      if (k === 'err' && v && typeof v === 'object') {
        const e = v as { message?: string; stack?: string };
        return `\n    ${e.stack ?? e.message ?? JSON.stringify(v)}`;
      }
      return ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    })
    .join('');
  return `${time} ${lvl}${comp} ${String(o.msg ?? '')}${rest}`;
}

/** JSON logs to stdout; readable lines when stdout is a terminal (or ATTUNE_LOG_FORMAT=pretty). */
export function createLogger(level: string, format = process.env.ATTUNE_LOG_FORMAT): Logger {
  const pretty = format === 'pretty' || (format !== 'json' && process.stdout.isTTY === true);
  if (!pretty) return pino({ level });
  const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
  return pino(
    { level },
    {
      write(chunk: string) {
        for (const line of chunk.split('\n')) if (line) process.stdout.write(`${prettyLine(line, colour)}\n`);
      },
    },
  );
}
