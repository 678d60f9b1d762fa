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
 * same typing rules. Column values are converted by PGlite's own parsers, so rows are exactly what
 * `PGlite.query` returns. Everything else (transactions, `exec`, closing) is PGlite's.
 *
 * The wire messages are written and read by `wire.ts`, with Node's native string coding: PGlite's
 * protocol code measures and copies strings a character at a time, which cost as much as running
 * the statement when it carries a workflow's state document.
 */
import { type PGlite, protocol, type Results, type Transaction } from '@electric-sql/pglite';
import {
  bindMessage,
  closeMessage,
  DESCRIBE_EXECUTE_SYNC,
  parseMessage,
  readResponse,
  type StatementResponse,
} from './wire.ts';

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
  _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>;
  parsers: Record<number, (value: string, typeId?: number) => unknown>;
}

type DbError = InstanceType<typeof protocol.messages.DatabaseError> & {
  query?: string;
  params?: unknown[];
  queryOptions?: unknown;
};

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
  takeCloses(): Buffer[] {
    return this.toClose.splice(0).map(closeMessage);
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
  if (slot && !slot.prepared) parts.push(parseMessage(slot.name, text));
  else if (!slot) parts.push(parseMessage('', text));
  parts.push(bindMessage(slot?.name ?? '', values), DESCRIBE_EXECUTE_SYNC);
  const chunks: Buffer[] = [];
  await pg.execProtocolRawStream(Buffer.concat(parts), {
    syncToFs: false,
    // A view of the database's memory, valid during the call only.
    onRawData: (chunk) => chunks.push(Buffer.from(chunk)),
  });
  const res = readResponse(
    chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
    protocol.messages.DatabaseError,
  );
  if (slot && !slot.prepared && res.parsed) cache.remember(text, slot.name);
  if (res.error) {
    const failure = res.error as DbError;
    failure.query = text;
    failure.params = params ? [...params] : [];
    failure.queryOptions = options;
    throw failure;
  }
  if (!inTransaction) await pg.syncToFs();
  return resultOf(res, (pg as unknown as PgliteInternals).parsers, options);
}

type Parser = (value: string, typeId?: number) => unknown;

/**
 * The result of one statement, as `PGlite.query` gives it (its `parseResults`, which copies every
 * parser of the database into a new object for each statement when options name parsers of their
 * own — as drizzle's do — costing more than the statement; here each column's parser is looked up once).
 */
function resultOf(
  res: StatementResponse,
  defaults: Record<number, Parser>,
  options: QueryOptions | undefined,
): Results {
  if (res.command === undefined) return { affectedRows: 0, rows: [], fields: [] } as Results;
  const overrides = options?.parsers;
  const asArrays = options?.rowMode === 'array';
  const fields = res.fields;
  const parsers = fields.map((f) => overrides?.[f.dataTypeID] ?? defaults[f.dataTypeID]);
  const rows: Results['rows'] = [];
  for (const values of res.rows) {
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
  }
  const words = res.command.split(' ');
  const command = words[0] ?? '';
  const n = Number.parseInt(words[words.length - 1] ?? '', 10);
  const affectedRows =
    ['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE'].includes(command) && !Number.isNaN(n) ? n : 0;
  const out: Results & { command: string; rowCount?: number } = { rows, fields, command, affectedRows };
  if (!Number.isNaN(n)) out.rowCount = n;
  return out as Results;
}

/**
 * A PGlite handle for drizzle: `query` takes the fast path, in and out of transactions; the rest is
 * PGlite's own.
 */
export function fastPglite(pg: PGlite): PGlite {
  const cache = new StatementCache();
  const internals = pg as unknown as PgliteInternals;
  const query = (text: string, params?: unknown[], options?: QueryOptions) =>
    // Outside a transaction, a statement waits for the open transaction to end, as `PGlite.query`
    // does: the session is one, and a statement run between two of a transaction's would be part of
    // it — rolled back with it, or failing it.
    internals._runExclusiveTransaction(() =>
      internals._runExclusiveQuery(() => runStatement(pg, cache, text, params, options, false)),
    );
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
