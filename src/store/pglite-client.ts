/**
 * The PGlite client the query layer talks to: PGlite, with a cheaper way of running a statement.
 *
 * `PGlite.query` runs a statement in five calls into WebAssembly (Parse, Describe the statement to
 * learn its parameter types, Bind, Describe the portal, Execute, then Sync), and parses and plans the
 * statement every time. That is ~0.25–0.4 ms of overhead per statement, more than most of the
 * runtime's statements cost to execute. Here a statement is one call: its messages go in one buffer,
 * and statements seen before are named prepared statements, parsed and planned once.
 *
 * Parameters are sent as text with unspecified types (PostgreSQL infers them from the statement), the
 * way node-postgres sends them: the server-mode driver already works like that, so both stores see the
 * same typing rules. Results are parsed by PGlite's own parsers, so rows are exactly what
 * `PGlite.query` returns. Everything else (transactions, `exec`, closing) is PGlite's.
 */
import { type PGlite, protocol, type Results, type Transaction } from '@electric-sql/pglite';

/** Prepared statements kept (least recently used ones are closed beyond this). */
const MAX_PREPARED = 400;
/** Longer statements (large multi-row inserts) are not worth keeping. */
const MAX_PREPARED_TEXT = 4000;

interface QueryOptions {
  rowMode?: 'array' | 'object';
  parsers?: Record<number, (value: string, typeId?: number) => unknown>;
}

interface PgliteInternals {
  _runExclusiveQuery<T>(fn: () => Promise<T>): Promise<T>;
  parsers: Record<number, (value: string, typeId?: number) => unknown>;
}

type DbError = Error & { query?: string; params?: unknown[]; queryOptions?: unknown };

const S = protocol.serialize;

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** An element of a PostgreSQL array literal. */
function arrayItem(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Array.isArray(v)) return arrayLiteral(v);
  const s = typeof v === 'string' ? v : (toText(v) ?? 'NULL');
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function arrayLiteral(items: readonly unknown[]): string {
  return `{${items.map(arrayItem).join(',')}}`;
}

/** A parameter as PostgreSQL's text input format (null stays null). */
export function toText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'bigint':
      return String(v);
    case 'boolean':
      return v ? 't' : 'f';
    default:
      if (v instanceof Date) return v.toISOString();
      if (v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`;
      if (Array.isArray(v)) return arrayLiteral(v);
      return JSON.stringify(v);
  }
}

export class StatementCache {
  /** Statement text → name, in least-recently-used order (a Map keeps insertion order). */
  private readonly names = new Map<string, string>();
  private readonly toClose: string[] = [];
  private seq = 0;

  /** The name of a prepared `text`, or undefined when it must be parsed (and the name to give it). */
  lookup(text: string): { name: string; prepared: boolean } | undefined {
    const name = this.names.get(text);
    if (name !== undefined) {
      this.names.delete(text);
      this.names.set(text, name);
      return { name, prepared: true };
    }
    if (text.length > MAX_PREPARED_TEXT) return undefined;
    return { name: `attune_${++this.seq}`, prepared: false };
  }

  /** `text` was parsed as `name` (the server holds it now). */
  remember(text: string, name: string): void {
    this.names.set(text, name);
    if (this.names.size > MAX_PREPARED) {
      const [oldText, oldName] = this.names.entries().next().value as [string, string];
      this.names.delete(oldText);
      this.toClose.push(oldName);
    }
  }

  /** Close messages for statements evicted since the last call. */
  takeCloses(): Uint8Array[] {
    return this.toClose.splice(0).map((name) => S.close({ type: 'S', name }));
  }
}

/** Runs one statement through the extended protocol in a single call. Call under PGlite's query lock. */
async function runStatement(
  pg: PGlite,
  cache: StatementCache,
  text: string,
  params: readonly unknown[] | undefined,
  options: QueryOptions | undefined,
  inTransaction: boolean,
): Promise<Results> {
  const values = (params ?? []).map(toText);
  const slot = cache.lookup(text);
  const parts = cache.takeCloses();
  if (slot && !slot.prepared) parts.push(S.parse({ name: slot.name, text }));
  else if (!slot) parts.push(S.parse({ text }));
  parts.push(
    S.bind({ statement: slot?.name ?? '', values }),
    S.describe({ type: 'P' }),
    S.execute({}),
    S.sync(),
  );
  const { messages } = await pg.execProtocol(concat(parts), { syncToFs: false, throwOnError: false });
  if (slot && !slot.prepared && messages.some((m) => m.name === 'parseComplete'))
    cache.remember(text, slot.name);
  const failure = messages.find((m) => m.name === 'error') as DbError | undefined;
  if (failure) {
    failure.query = text;
    failure.params = params ? [...params] : [];
    failure.queryOptions = options;
    throw failure;
  }
  if (!inTransaction) await pg.syncToFs();
  return resultOf(messages, (pg as unknown as PgliteInternals).parsers, options);
}

type Parser = (value: string, typeId?: number) => unknown;
interface RowDescription {
  name: 'rowDescription';
  fields: { name: string; dataTypeID: number }[];
}
interface DataRow {
  name: 'dataRow';
  fields: (string | null)[];
}
interface CommandComplete {
  name: 'commandComplete';
  text: string;
}

/**
 * The result of one statement, as `PGlite.query` gives it (its `parseResults`, which copies every
 * parser of the database into a new object for each statement when options name parsers of their
 * own — as drizzle's do — costing more than the statement; here each column's parser is looked up once).
 */
function resultOf(
  messages: readonly { name: string }[],
  defaults: Record<number, Parser>,
  options: QueryOptions | undefined,
): Results {
  const overrides = options?.parsers;
  const asArrays = options?.rowMode === 'array';
  let fields: { name: string; dataTypeID: number }[] = [];
  let parsers: (Parser | undefined)[] = [];
  const rows: Results['rows'] = [];
  for (const m of messages) {
    if (m.name === 'rowDescription') {
      fields = (m as RowDescription).fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
      parsers = fields.map((f) => overrides?.[f.dataTypeID] ?? defaults[f.dataTypeID]);
    } else if (m.name === 'dataRow') {
      const values = (m as DataRow).fields;
      const parsed = values.map((v, i) => {
        if (v === null) return null;
        const p = parsers[i];
        return p ? p(v, fields[i]!.dataTypeID) : v;
      });
      if (asArrays) rows.push(parsed as unknown as Results['rows'][number]);
      else {
        const row: Record<string, unknown> = {};
        for (let i = 0; i < fields.length; i++) row[fields[i]!.name] = parsed[i];
        rows.push(row);
      }
    } else if (m.name === 'commandComplete') {
      const words = (m as CommandComplete).text.split(' ');
      const command = words[0] ?? '';
      const n = Number.parseInt(words[words.length - 1] ?? '', 10);
      const affectedRows =
        ['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE'].includes(command) && !Number.isNaN(n) ? n : 0;
      const out: Results & { command: string; rowCount?: number } = { rows, fields, command, affectedRows };
      if (!Number.isNaN(n)) out.rowCount = n;
      return out as Results;
    }
  }
  return { affectedRows: 0, rows: [], fields: [] } as Results;
}

/**
 * A PGlite handle for drizzle: `query` takes the fast path, in and out of transactions; the rest is
 * PGlite's own.
 */
export function fastPglite(pg: PGlite): PGlite {
  const cache = new StatementCache();
  const internals = pg as unknown as PgliteInternals;
  const query = (text: string, params?: unknown[], options?: QueryOptions) =>
    internals._runExclusiveQuery(() => runStatement(pg, cache, text, params, options, false));
  const txHandle = (tx: Transaction): Transaction =>
    new Proxy(tx, {
      get(target, prop) {
        if (prop === 'query')
          return (text: string, params?: unknown[], options?: QueryOptions) => {
            if (target.closed) return Promise.reject(new Error('Transaction is closed'));
            return internals._runExclusiveQuery(() => runStatement(pg, cache, text, params, options, true));
          };
        return Reflect.get(target, prop);
      },
    });
  return new Proxy(pg, {
    get(target, prop) {
      // What was set on the handle itself (a test's spy, say) comes first.
      if (Object.hasOwn(target, prop)) return Reflect.get(target, prop);
      if (prop === 'query') return query;
      if (prop === 'transaction')
        return <T>(fn: (tx: Transaction) => Promise<T>) => target.transaction((tx) => fn(txHandle(tx)));
      const v = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
