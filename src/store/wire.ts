/**
 * The few messages of PostgreSQL's extended query protocol that running one statement takes
 * (Parse, Bind, Describe, Execute, Sync, Close; and the answers to them), written and read with
 * Node's native string coding. Used by the embedded database's client (`pglite-client.ts`), which
 * hands PGlite whole messages and reads its raw answer.
 *
 * Frontend messages are a type byte, a 32-bit length (counting itself) and the body; strings are
 * UTF-8 ending in a zero byte. Parameters and results are in text format.
 */

/** The fields of an ErrorResponse, by their one-letter codes, as node-postgres names them. */
const ERROR_FIELDS: Record<string, string> = {
  S: 'severity',
  C: 'code',
  D: 'detail',
  H: 'hint',
  P: 'position',
  p: 'internalPosition',
  q: 'internalQuery',
  W: 'where',
  s: 'schema',
  t: 'table',
  c: 'column',
  d: 'dataType',
  n: 'constraint',
  F: 'file',
  L: 'line',
  R: 'routine',
};

/** A message of `type` whose body is `size` bytes, written by `fill` from offset 5. */
function message(type: string, size: number, fill: (b: Buffer, o: number) => number): Buffer {
  const b = Buffer.allocUnsafe(5 + size);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4 + size, 1);
  const end = fill(b, 5);
  if (end !== b.length) throw new Error(`wire: ${type} message of ${b.length} bytes filled to ${end}`);
  return b;
}

function cstring(b: Buffer, o: number, s: string): number {
  const n = b.write(s, o, 'utf8');
  b[o + n] = 0;
  return o + n + 1;
}

/** Parse: prepares `text` as statement `name` ('' for the unnamed one), parameter types left to the server. */
export function parseMessage(name: string, text: string): Buffer {
  const size = Buffer.byteLength(name) + 1 + Buffer.byteLength(text) + 1 + 2;
  return message('P', size, (b, o) => {
    o = cstring(b, o, name);
    o = cstring(b, o, text);
    return b.writeInt16BE(0, o);
  });
}

/** Bind: statement `name` with text parameters (null for SQL NULL) into the unnamed portal; text results. */
export function bindMessage(name: string, values: readonly (string | null)[]): Buffer {
  const lengths = values.map((v) => (v === null ? -1 : Buffer.byteLength(v)));
  let size = 1 + Buffer.byteLength(name) + 1 + 2 + 2 + 2;
  for (const n of lengths) size += 4 + Math.max(n, 0);
  return message('B', size, (b, o) => {
    o = cstring(b, o, '');
    o = cstring(b, o, name);
    o = b.writeInt16BE(0, o); // every parameter in text format
    o = b.writeInt16BE(values.length, o);
    for (let i = 0; i < values.length; i++) {
      o = b.writeInt32BE(lengths[i]!, o);
      const v = values[i];
      if (v !== null && v !== undefined) o += b.write(v, o, 'utf8');
    }
    return b.writeInt16BE(0, o); // every result column in text format
  });
}

/** Close of prepared statement `name`. */
export function closeMessage(name: string): Buffer {
  return message('C', 1 + Buffer.byteLength(name) + 1, (b, o) => {
    b[o] = 'S'.charCodeAt(0);
    return cstring(b, o + 1, name);
  });
}

/** Describe the unnamed portal, Execute it (all rows), Sync. */
export const DESCRIBE_EXECUTE_SYNC: Buffer = Buffer.concat([
  message('D', 2, (b, o) => {
    b[o] = 'P'.charCodeAt(0);
    return cstring(b, o + 1, '');
  }),
  message('E', 5, (b, o) => b.writeInt32BE(0, cstring(b, o, ''))),
  message('S', 0, (_b, o) => o),
]);

/** What the answer to one statement said. */
export interface StatementResponse {
  /** A ParseComplete came: the statement was prepared. */
  parsed: boolean;
  fields: { name: string; dataTypeID: number }[];
  /** Column values as text, null for SQL NULL. */
  rows: (string | null)[][];
  /** The CommandComplete tag (`INSERT 0 1`, `SELECT 3`, …); undefined when the statement did not complete. */
  command: string | undefined;
  error: Error | undefined;
}

type ErrorClass = new (message: string, length: number, name: 'error') => Error;

/** Reads the backend messages of `buf`; an ErrorResponse becomes an `errorClass` with its fields. */
export function readResponse(buf: Buffer, errorClass: ErrorClass): StatementResponse {
  const out: StatementResponse = {
    parsed: false,
    fields: [],
    rows: [],
    command: undefined,
    error: undefined,
  };
  let o = 0;
  while (o + 5 <= buf.length) {
    const type = buf[o]!;
    const end = o + 1 + buf.readInt32BE(o + 1);
    let p = o + 5;
    switch (type) {
      case 0x31: // '1' ParseComplete
        out.parsed = true;
        break;
      case 0x54: {
        // 'T' RowDescription: name, table oid, column number, type oid, type size, type modifier, format
        const n = buf.readInt16BE(p);
        p += 2;
        const fields: StatementResponse['fields'] = [];
        for (let i = 0; i < n; i++) {
          const z = buf.indexOf(0, p);
          const name = buf.toString('utf8', p, z);
          p = z + 1 + 4 + 2;
          fields.push({ name, dataTypeID: buf.readInt32BE(p) });
          p += 4 + 2 + 4 + 2;
        }
        out.fields = fields;
        break;
      }
      case 0x44: {
        // 'D' DataRow
        const n = buf.readInt16BE(p);
        p += 2;
        const row = new Array<string | null>(n);
        for (let i = 0; i < n; i++) {
          const len = buf.readInt32BE(p);
          p += 4;
          if (len < 0) row[i] = null;
          else {
            row[i] = buf.toString('utf8', p, p + len);
            p += len;
          }
        }
        out.rows.push(row);
        break;
      }
      case 0x43: // 'C' CommandComplete
        out.command ??= buf.toString('utf8', p, end - 1);
        break;
      case 0x45: // 'E' ErrorResponse
        out.error ??= errorOf(buf, p, end, errorClass);
        break;
      default: // BindComplete, NoData, ReadyForQuery, notices, …: nothing to keep
    }
    o = end;
  }
  return out;
}

function errorOf(buf: Buffer, p: number, end: number, errorClass: ErrorClass): Error {
  const fields: Record<string, string> = {};
  while (p < end && buf[p] !== 0) {
    const code = String.fromCharCode(buf[p]!);
    const z = buf.indexOf(0, p + 1);
    fields[code] = buf.toString('utf8', p + 1, z);
    p = z + 1;
  }
  const err = new errorClass(fields.M ?? 'unknown database error', end - p, 'error') as Error &
    Record<string, unknown>;
  for (const [code, name] of Object.entries(ERROR_FIELDS)) err[name] = fields[code];
  return err;
}
