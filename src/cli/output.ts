/**
 * How results are shown. Humans get tables and short detail views, fitted to the terminal's width
 * and coloured only on a terminal (never with `NO_COLOR` or `--no-color`); scripts get `--json`,
 * `--yaml` or `-q` (identifiers only, one a line). Results go to stdout; progress, notes and errors
 * to stderr, so that a pipe only ever sees the result.
 */
import Table from 'cli-table3';
import pc from 'picocolors';
import { stringify as toYaml } from 'yaml';

export type Format = 'table' | 'json' | 'yaml' | 'quiet';
export type Colors = ReturnType<typeof pc.createColors>;
export type Cell = string | number | boolean | null | undefined;

export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
  /** Applied to the (already fitted) text of the cell. */
  color?: (text: string, row: T) => string;
  /** Gives up width first when the table is too wide. */
  flex?: boolean;
}

export interface Writer {
  write(s: string): unknown;
}

export interface OutputOptions {
  format: Format;
  color: boolean;
  errColor: boolean;
  /** Width to fit tables to; undefined: no limit (not a terminal). */
  columns?: number | undefined;
  stdout?: Writer;
  stderr?: Writer;
}

const BLANK = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '  ',
};
const GAP = 2;
const MIN_COL = 6;

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point
const ANSI = /\x1b\[[0-9;]*m/g;
export const visibleLength = (s: string): number => [...s.replace(ANSI, '')].length;

/** One-line text of a cell value. */
export function cellText(v: Cell): string {
  if (v === null || v === undefined) return '';
  return String(v).replace(/\s*[\r\n]+\s*/g, ' ');
}

/** Shrinks the widest flexible columns (then any) until the row fits `total`. */
export function fitWidths(natural: number[], flex: boolean[], total: number | undefined): number[] {
  const widths = [...natural];
  if (total === undefined) return widths;
  const budget = total - GAP * (widths.length - 1);
  let excess = widths.reduce((a, b) => a + b, 0) - budget;
  for (const onlyFlex of [true, false]) {
    while (excess > 0) {
      let widest = -1;
      widths.forEach((w, i) => {
        if ((!onlyFlex || flex[i]) && w > MIN_COL && (widest < 0 || w > widths[widest]!)) widest = i;
      });
      if (widest < 0) break;
      const others = widths.filter((_, i) => i !== widest && (!onlyFlex || flex[i]));
      const next = Math.max(...others.filter((w) => w < widths[widest]!), MIN_COL);
      const cut = Math.min(excess, widths[widest]! - next, widths[widest]! - MIN_COL) || 1;
      widths[widest]! -= cut;
      excess -= cut;
    }
  }
  return widths;
}

const truncate = (s: string, w: number): string => {
  const chars = [...s];
  return chars.length <= w ? s : `${chars.slice(0, Math.max(w - 1, 0)).join('')}…`;
};

export class Output {
  readonly format: Format;
  /** Colours for stdout. */
  readonly c: Colors;
  /** Colours for stderr. */
  readonly e: Colors;
  readonly columns: number | undefined;
  private readonly stdout: Writer;
  private readonly stderr: Writer;

  constructor(opts: OutputOptions) {
    this.format = opts.format;
    this.c = pc.createColors(opts.color);
    this.e = pc.createColors(opts.errColor);
    this.columns = opts.columns;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
  }

  get human(): boolean {
    return this.format === 'table';
  }

  /** A line of result on stdout. */
  print(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  /** Raw text on stdout (no newline added). */
  write(text: string): void {
    this.stdout.write(text);
  }

  /** A note on stderr (progress, hints, warnings): never part of a result. */
  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.stderr.write(`${this.e.yellow('warning:')} ${text}\n`);
  }

  /** A value as JSON or YAML (the form of --json / --yaml). */
  doc(value: unknown): void {
    if (this.format === 'yaml') this.stdout.write(toYaml(value ?? null, { lineWidth: 0 }));
    else this.stdout.write(`${JSON.stringify(value ?? null, null, 2)}\n`);
  }

  /**
   * A list: a table for humans (with a note on stderr when there are more than shown), the items for
   * --json / --yaml, their ids for -q.
   */
  list<T>(
    items: T[],
    columns: Column<T>[],
    idOf: (row: T) => Cell,
    opts: { total?: number; empty?: string; more?: string } = {},
  ): void {
    if (this.format === 'json' || this.format === 'yaml') {
      this.doc(items);
      return;
    }
    if (this.format === 'quiet') {
      for (const it of items) this.print(cellText(idOf(it)));
      return;
    }
    if (!items.length) {
      this.note(opts.empty ?? 'nothing found');
      return;
    }
    this.table(items, columns);
    if (opts.total !== undefined && opts.total > items.length)
      this.note(
        this.e.dim(
          `showing ${items.length} of ${opts.total}${opts.more ? `; ${opts.more}` : '; use --limit to see more'}`,
        ),
      );
  }

  /** One resource: `human()` draws it for people; the resource itself for --json / --yaml; its id for -q. */
  item<T>(value: T, idOf: (v: T) => Cell, human: () => void): void {
    if (this.format === 'json' || this.format === 'yaml') this.doc(value);
    else if (this.format === 'quiet') this.print(cellText(idOf(value)));
    else human();
  }

  /** A borderless table fitted to the terminal's width. */
  table<T>(rows: T[], columns: Column<T>[]): void {
    const texts = rows.map((r) => columns.map((col) => cellText(col.value(r))));
    const natural = columns.map((col, i) =>
      Math.max(visibleLength(col.header), ...texts.map((t) => visibleLength(t[i]!))),
    );
    const widths = fitWidths(
      natural,
      columns.map((c) => !!c.flex),
      this.columns,
    );
    const table = new Table({
      head: columns.map((col, i) => this.c.bold(truncate(col.header, widths[i]!))),
      chars: BLANK,
      style: { 'padding-left': 0, 'padding-right': 0, head: [], border: [] },
      colWidths: widths,
      wordWrap: false,
    });
    rows.forEach((r, ri) => {
      table.push(
        columns.map((col, i) => {
          const t = truncate(texts[ri]![i]!, widths[i]!);
          return col.color ? col.color(t, r) : t;
        }),
      );
    });
    for (const line of table.toString().split('\n')) this.print(line.replace(/ +$/, ''));
  }

  /** A detail view: aligned `label  value` lines; values spanning lines are indented. */
  fields(pairs: [string, Cell | string[]][]): void {
    const shown = pairs.filter(([, v]) => v !== undefined);
    const w = Math.max(...shown.map(([k]) => k.length)) + 2;
    for (const [k, v] of shown) {
      const text = Array.isArray(v) ? v.join('\n') : v === null ? this.c.dim('—') : String(v);
      const [first, ...rest] = text.split('\n');
      this.print(`${this.c.dim(`${k}:`.padEnd(w))}${first}`);
      for (const line of rest) this.print(`${' '.repeat(w)}${line}`);
    }
  }

  /** A heading between sections of a detail view. */
  heading(text: string): void {
    this.print();
    this.print(this.c.bold(text));
  }

  /** A nested value written as indented YAML (for parameters, results, schemas in detail views). */
  block(value: unknown, indent = 2): void {
    const text =
      typeof value === 'string' && !value.includes('\n') ? value : toYaml(value ?? null, { lineWidth: 0 });
    for (const line of text.replace(/\n$/, '').split('\n')) this.print(`${' '.repeat(indent)}${line}`);
  }
}

/** Colour of a status word (executions, enforcements, inquiries, keys). */
export function statusColor(c: Colors, status: string): string {
  switch (status) {
    case 'succeeded':
    case 'active':
    case 'responded':
    case 'enabled':
      return c.green(status);
    case 'failed':
    case 'timeout':
    case 'abandoned':
    case 'revoked':
    case 'expired':
      return c.red(status);
    case 'running':
    case 'scheduled':
    case 'pending':
      return c.cyan(status);
    case 'requested':
    case 'delayed':
    case 'paused':
    case 'pausing':
    case 'created':
      return c.yellow(status);
    case 'canceling':
    case 'canceled':
    case 'disabled':
      return c.magenta(status);
    default:
      return status;
  }
}
