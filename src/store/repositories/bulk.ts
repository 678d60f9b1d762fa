/**
 * Statements of the hot paths, built without the query builder.
 *
 * Building a statement with drizzle's builders costs more than running it on the hot paths: ~0.15 ms
 * for a guarded status update returning its rows, ~45 µs per row of a multi-row insert (2–5 ms for a
 * batch of a hundred executions). Here:
 *  - `insertRows` writes many rows with one parameter per column (`unnest` of arrays), so the
 *    statement text depends only on the columns — prepared once, planned once, built in
 *    microseconds; a few rows go as plain VALUES (cheaper to run);
 *  - `returningList` / `mapRows` read rows back with each column's own decoder, exactly as the query
 *    builder would.
 * Values go through each column's encoder, as with the builder; both drivers (PGlite, node-postgres)
 * take the arrays as PostgreSQL array literals.
 */
import { getTableColumns, getTableName, is, SQL, sql } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Db } from '../database.ts';

interface ColumnInfo {
  key: string;
  name: string;
  column: PgColumn;
  /** The element type of the column's array parameter (`unnest`); '' for an array column. */
  arrayType: string;
}

interface TableInfo {
  table: string;
  byKey: Map<string, ColumnInfo>;
  byName: Map<string, ColumnInfo>;
  returningAll: string;
}

const infos = new WeakMap<PgTable, TableInfo>();

/** Up to this many rows go in as VALUES; more as one array per column. */
const FEW_ROWS = 4;

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function infoOf(table: PgTable): TableInfo {
  let info = infos.get(table);
  if (info) return info;
  const byKey = new Map<string, ColumnInfo>();
  const byName = new Map<string, ColumnInfo>();
  for (const [key, column] of Object.entries(getTableColumns(table)) as [string, PgColumn][]) {
    const type = column.getSQLType();
    // Array columns cannot go through `unnest` (it would flatten them); no hot table has one.
    const arrayType = type.endsWith(']')
      ? ''
      : type === 'bigserial'
        ? 'bigint'
        : type === 'serial'
          ? 'integer'
          : type;
    const c = { key, name: column.name, column, arrayType };
    byKey.set(key, c);
    byName.set(column.name, c);
  }
  info = {
    table: quote(getTableName(table)),
    byKey,
    byName,
    returningAll: [...byKey.values()].map((c) => quote(c.name)).join(', '),
  };
  infos.set(table, info);
  return info;
}

/** The rows of a raw query on either driver (node-postgres and PGlite both give `{rows}`). */
export function rawRows(result: unknown): Record<string, unknown>[] {
  if (Array.isArray(result)) return result as Record<string, unknown>[];
  const rows = (result as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
}

/** Rows read by column name, decoded into the table's typed rows (what `select()` would give). */
export function mapRows<T>(table: PgTable, rows: readonly Record<string, unknown>[]): T[] {
  const info = infoOf(table);
  return rows.map((raw) => {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(raw)) {
      const c = info.byName.get(name);
      const v = raw[name];
      if (!c) out[name] = v;
      else out[c.key] = v === null || v === undefined ? null : c.column.mapFromDriverValue(v);
    }
    return out as T;
  });
}

/** `returning` with every column of the table, or those of `keys`. */
export function returningList(table: PgTable, keys?: readonly string[]): SQL {
  const info = infoOf(table);
  if (!keys) return sql.raw(info.returningAll);
  return sql.raw(keys.map((k) => quote(info.byKey.get(k)?.name ?? k)).join(', '));
}

/**
 * `<column> = $1` for one id, `<column> = any($1::bigint[])` for several. With an array parameter
 * PostgreSQL plans the statement anew at each run and scans the index by array keys: on the
 * embedded database that made a one-row statement two to three times dearer, and most statements
 * of the hot path touch one row.
 */
export function idsMatch(column: string, ids: readonly number[]): SQL {
  return valuesMatch(column, ids, 'bigint');
}

/** `idsMatch` for values of another type (`text` run keys, say). */
export function valuesMatch(
  column: string,
  values: readonly (number | string)[],
  type: 'bigint' | 'text',
): SQL {
  return values.length === 1
    ? sql`${sql.raw(column)} = ${values[0]}`
    : sql`${sql.raw(column)} = any(${sql.param([...values])}::${sql.raw(type)}[])`;
}

/** A constant word (a status and the like) as an SQL literal; only lower-case words are taken. */
export function wordLiteral(word: string): string {
  if (!/^[a-z_]+$/.test(word)) throw new Error(`not a lower-case word: ${JSON.stringify(word)}`);
  return `'${word}'`;
}

/** `<column> in ('a', 'b')` for constant words, written as literals: one statement text per set. */
export function wordsIn(column: string, words: readonly string[]): SQL {
  return sql.raw(`${column} in (${[...new Set(words)].map(wordLiteral).join(', ')})`);
}

/** A column's name, quoted, by its key in the table. */
export function columnName(table: PgTable, key: string): string {
  const c = infoOf(table).byKey.get(key);
  if (!c) throw new Error(`${getTableName(table)} has no column '${key}'`);
  return quote(c.name);
}

/** A value for column `key`: an SQL expression as it is, anything else through the column's encoder. */
export function valueFor(table: PgTable, key: string, value: unknown): SQL {
  if (is(value, SQL)) return value;
  const c = infoOf(table).byKey.get(key);
  if (!c) throw new Error(`${getTableName(table)} has no column '${key}'`);
  return sql`${sql.param(value, c.column)}`;
}

export interface InsertOptions<K extends string> {
  /** Columns to read back (default: none). `'all'` for every column. */
  returning?: readonly K[] | 'all';
  /**
   * `ON CONFLICT (<columns>) DO NOTHING` (an empty list: on any conflict): rows that conflict are
   * skipped, and not returned.
   */
  onConflictDoNothing?: readonly PgColumn[];
  /** `ON CONFLICT (<target>) DO UPDATE SET <set>` (`excluded.<column>` is the row that conflicted). */
  onConflictDoUpdate?: { target: readonly PgColumn[]; set: SQL };
  /** A null in a json/jsonb column is the JSON value null rather than SQL NULL. */
  jsonNull?: boolean;
}

/** A row to insert: values of the columns, or SQL expressions. */
export type InsertRow<T extends PgTable> = { [K in keyof T['$inferInsert']]?: T['$inferInsert'][K] | SQL };

/** Rows are grouped by the columns they give and by the SQL expressions they hold. */
function shapeOf(row: Record<string, unknown>): string {
  let shape = '';
  for (const k of Object.keys(row)) {
    const v = row[k];
    if (v === undefined) continue;
    shape += is(v, SQL) ? `${k}=${sqlText(v)};` : `${k};`;
  }
  return shape;
}

function sqlText(v: SQL): string {
  return v.queryChunks
    .map((c: unknown) => {
      // A value written straight into a template (`sql\`… ${30}\``) is a chunk of its own.
      if (c === null || typeof c !== 'object') return `\u0000${JSON.stringify(c) ?? String(c)}`;
      if (is(c, SQL)) return `(${sqlText(c)})`;
      const x = c as { value?: unknown; name?: unknown };
      if (Array.isArray(x.value)) return x.value.join('');
      if ('value' in x) return `\u0000${JSON.stringify(x.value) ?? 'undefined'}`;
      return `\u0001${(c as object).constructor.name}:${String(x.name ?? '')}`;
    })
    .join('');
}

/**
 * Inserts `rows` and returns the columns asked for. Rows that give the same columns (and the same
 * SQL expressions, e.g. \`now()\`) go in one statement per 5000, in the order given and returned so;
 * rows of another shape go in a statement of their own, returned after. A column left out of a row
 * takes its default.
 */
export async function insertRows<T extends PgTable, K extends keyof T['$inferSelect'] & string>(
  db: Db,
  table: T,
  rows: readonly InsertRow<T>[],
  opts: InsertOptions<K> = {},
): Promise<Pick<T['$inferSelect'], K>[]> {
  if (rows.length === 0) return [];
  const groups = new Map<string, InsertRow<T>[]>();
  for (const r of rows) {
    const shape = shapeOf(r as Record<string, unknown>);
    const g = groups.get(shape);
    if (g) g.push(r);
    else groups.set(shape, [r]);
  }
  const out: Pick<T['$inferSelect'], K>[] = [];
  for (const group of groups.values())
    for (let start = 0; start < group.length; start += 5000)
      out.push(...(await insertGroup(db, table, group.slice(start, start + 5000), opts)));
  return out;
}

/** One statement for rows of one shape. */
async function insertGroup<T extends PgTable, K extends keyof T['$inferSelect'] & string>(
  db: Db,
  table: T,
  part: readonly InsertRow<T>[],
  opts: InsertOptions<K>,
): Promise<Pick<T['$inferSelect'], K>[]> {
  const result = await db.execute(insertStatement(table, part, opts));
  return opts.returning === undefined ? [] : mapRows<Pick<T['$inferSelect'], K>>(table, rawRows(result));
}

/**
 * The statement `insertRows` runs for rows of one shape (at most 5000), to run it yourself — as a
 * common table expression of a larger statement, say. Its `returning` reads columns by name: decode
 * them with `mapRows`.
 */
export function insertStatement<T extends PgTable, K extends keyof T['$inferSelect'] & string>(
  table: T,
  part: readonly InsertRow<T>[],
  opts: InsertOptions<K> = {},
): SQL {
  if (part.length === 0 || part.length > 5000) throw new Error('insertStatement: 1 to 5000 rows');
  const info = infoOf(table);
  const first = part[0] as Record<string, unknown>;
  const keys = Object.keys(first).filter((k) => first[k] !== undefined);
  const cols = keys.map((k) => {
    const c = info.byKey.get(k);
    if (!c) throw new Error(`${getTableName(table)} has no column '${k}'`);
    if (!c.arrayType)
      throw new Error(`insertRows: column '${k}' is an array; insert it with the query builder`);
    return c;
  });
  const encode = (c: ColumnInfo, v: unknown) =>
    v === null
      ? opts.jsonNull && (c.arrayType === 'jsonb' || c.arrayType === 'json')
        ? 'null'
        : null
      : c.column.mapToDriverValue(v);
  // The statement is written as text pieces around its values: one template, the cheapest thing
  // for the query layer to turn into a statement.
  const q = new Statement(`insert into ${info.table} (${cols.map((c) => quote(c.name)).join(', ')})`);
  if (part.length <= FEW_ROWS) {
    // A few rows: plain VALUES, cheaper to run than unnest (and few distinct texts to prepare).
    part.forEach((r, n) => {
      const row = r as Record<string, unknown>;
      q.text(n === 0 ? ' values (' : ', (');
      cols.forEach((c, i) => {
        if (i > 0) q.text(', ');
        const v = row[c.key];
        if (is(v, SQL)) q.value(v);
        else {
          q.value(encode(c, v));
          q.text(`::${c.arrayType}`);
        }
      });
      q.text(')');
    });
  } else {
    const names: string[] = [];
    q.text(' select ');
    cols.forEach((c, i) => {
      if (i > 0) q.text(', ');
      const shared = first[c.key];
      if (is(shared, SQL)) q.value(shared);
      else {
        q.text(`c${i}`);
        names.push(`c${i}`);
      }
    });
    if (names.length) {
      q.text(' from unnest(');
      let k = 0;
      cols.forEach((c) => {
        if (is(first[c.key], SQL)) return;
        if (k++ > 0) q.text(', ');
        q.value(part.map((r) => encode(c, (r as Record<string, unknown>)[c.key])));
        q.text(`::${c.arrayType}[]`);
      });
      // Rows go in in the order given (and come back so).
      q.text(`) with ordinality as v(${names.join(', ')}, n) order by n`);
    } else q.text(` from generate_series(1, ${part.length}) as v(n) order by n`);
  }
  if (opts.onConflictDoUpdate) {
    q.text(
      ` on conflict (${opts.onConflictDoUpdate.target.map((c) => quote(c.name)).join(', ')}) do update set `,
    );
    q.value(opts.onConflictDoUpdate.set);
  } else if (opts.onConflictDoNothing)
    q.text(
      opts.onConflictDoNothing.length
        ? ` on conflict (${opts.onConflictDoNothing.map((c) => quote(c.name)).join(', ')}) do nothing`
        : ' on conflict do nothing',
    );
  if (opts.returning !== undefined)
    q.text(
      ` returning ${opts.returning === 'all' ? info.returningAll : opts.returning.map((k) => quote(info.byKey.get(k)?.name ?? k)).join(', ')}`,
    );
  return q.sql();
}

/**
 * A statement as text pieces and values, turned into one `sql` template: values are parameters, or
 * embedded when they are SQL themselves.
 */
class Statement {
  private readonly strings: string[];
  private readonly values: unknown[] = [];
  constructor(start: string) {
    this.strings = [start];
  }
  text(t: string): void {
    this.strings[this.strings.length - 1] += t;
  }
  value(v: unknown): void {
    // An array is one parameter (the query layer would spread it into a list).
    this.values.push(Array.isArray(v) ? sql.param(v) : v);
    this.strings.push('');
  }
  sql(): SQL {
    const strings = Object.assign([...this.strings], { raw: [...this.strings] }) as TemplateStringsArray;
    return sql(strings, ...this.values);
  }
}
