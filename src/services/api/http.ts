/**
 * Shared pieces of every route: the response envelopes of DESIGN.md §5, the error body, pagination
 * and the common list filters.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { type Static, type TSchema, Type } from 'typebox';
import { validationError } from '../../domain/errors.ts';
import { NAME_PATTERN, REF_PATTERN } from '../../domain/refs.ts';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorBody' },
);

export const Pagination = Type.Object({
  page: Type.Integer(),
  page_size: Type.Integer(),
  total_items: Type.Integer(),
  total_pages: Type.Integer(),
});

export const Data = <T extends TSchema>(item: T) => Type.Object({ data: item });
export const List = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), pagination: Pagination });

/** A free-form JSON object (schemas, parameters, definitions). */
export const JsonObject = Type.Record(Type.String(), Type.Unknown());
/** A JSON Schema document (validated as such by the routes that accept one). */
export const JsonSchemaDoc = Type.Record(Type.String(), Type.Unknown(), {
  description: 'A JSON Schema (draft 2020-12 / draft-07 keywords)',
});
export const Ref = Type.String({ pattern: REF_PATTERN, maxLength: 300, description: "'pack.name'" });
export const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 100 });
export const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 100 });
export const Timestamp = Type.String({ format: 'date-time' });

export const RefParams = Type.Object({ ref: Type.String({ maxLength: 300 }) });
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });

export const MAX_PAGE_SIZE = 1000;
export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, default: 1 })),
  page_size: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: 50 })),
};
/** `tags` (comma-separated, matches any), `enabled`, `search` (label/ref/description), `pack`. */
export const DefinitionListQuery = Type.Object(
  {
    ...PageQuery,
    tags: Type.Optional(Type.String({ maxLength: 2000, description: 'comma-separated; matches any' })),
    enabled: Type.Optional(Type.Boolean()),
    search: Type.Optional(Type.String({ maxLength: 200 })),
    pack: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);
export type DefinitionListQuery = Static<typeof DefinitionListQuery>;

export interface Page {
  page: number;
  pageSize: number;
  limit: number;
  offset: number;
}

export function pageOf(q: { page?: number | undefined; page_size?: number | undefined }): Page {
  const page = q.page ?? 1;
  const pageSize = q.page_size ?? 50;
  return { page, pageSize, limit: pageSize, offset: (page - 1) * pageSize };
}

export function listBody<T>(data: T[], page: Page, total: number) {
  return {
    data,
    pagination: {
      page: page.page,
      page_size: page.pageSize,
      total_items: total,
      total_pages: Math.ceil(total / page.pageSize),
    },
  };
}

/** Escapes `%`, `_` and `\` for use inside ILIKE. */
export const likeEscape = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export const splitTags = (s: string | undefined): string[] =>
  (s ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);

/** The SQL conditions for the common definition filters, given the columns of one table. */
export function definitionFilters(
  q: DefinitionListQuery,
  cols: { tags: PgColumn; enabled: PgColumn; packRef: PgColumn; search: PgColumn[] },
): SQL[] {
  const where: SQL[] = [];
  const t = splitTags(q.tags);
  if (t.length) where.push(sql`${cols.tags} && ${sql.param(t)}::text[]`);
  if (q.enabled !== undefined) where.push(sql`${cols.enabled} = ${q.enabled}`);
  if (q.pack) where.push(sql`${cols.packRef} = ${q.pack}`);
  if (q.search) {
    const pat = `%${likeEscape(q.search)}%`;
    where.push(
      sql`(${sql.join(
        cols.search.map((c) => sql`${c} ILIKE ${pat}`),
        sql` OR `,
      )})`,
    );
  }
  return where;
}

/** ISO string of a Date, or null. */
export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/** `since` (inclusive) and `until` (exclusive) bounds on a creation time, for runtime listings. */
export const TimeRangeQuery = {
  since: Type.Optional(
    Type.String({
      maxLength: 64,
      description: 'Created at or after this time (ISO 8601 date or date-time; UTC when no zone is given)',
    }),
  ),
  until: Type.Optional(
    Type.String({
      maxLength: 64,
      description: 'Created before this time (ISO 8601 date or date-time; UTC when no zone is given)',
    }),
  ),
};

// date, then optionally time (seconds and fraction optional) and zone. A space as the zone's sign is
// a `+` that came through a query string unencoded.
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|([+\- ])(\d{2}):?(\d{2}))?)?$/i;

/** A strict ISO 8601 date or date-time as an instant; `undefined` when it is not one (or not a real date). */
export function parseIsoTime(s: string): Date | undefined {
  const m = ISO_TIME.exec(s);
  if (!m) return undefined;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = m
    .slice(1, 7)
    .map((x) => Number(x ?? 0));
  if (month < 1 || month > 12 || day < 1) return undefined;
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const pad = (n: number) => String(n).padStart(2, '0');
  const zone = m[9] ? `${m[9] === '-' ? '-' : '+'}${m[10]}:${m[11]}` : 'Z';
  if (m[9] && (Number(m[10]) > 23 || Number(m[11]) > 59)) return undefined;
  const frac = (m[7] ?? '').slice(0, 4); // milliseconds are all a Date keeps
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${pad(hour)}:${pad(minute)}:${pad(second)}${frac}${zone}`);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** The SQL conditions for `since`/`until` on `col`; 400 for an unreadable time or an empty range. */
export function timeRangeFilters(
  q: { since?: string | undefined; until?: string | undefined },
  col: PgColumn,
): SQL[] {
  const where: SQL[] = [];
  const bound = (name: 'since' | 'until'): Date | undefined => {
    const raw = q[name];
    if (raw === undefined) return undefined;
    const d = parseIsoTime(raw);
    if (!d)
      throw validationError(`querystring.${name} is not an ISO 8601 date or date-time: '${raw}'`, {
        in: 'querystring',
        path: `/${name}`,
      });
    return d;
  };
  const since = bound('since');
  const until = bound('until');
  if (since && until && since.getTime() > until.getTime())
    throw validationError('querystring.since is after querystring.until', {
      since: since.toISOString(),
      until: until.toISOString(),
    });
  if (since) where.push(sql`${col} >= ${since.toISOString()}::timestamptz`);
  if (until) where.push(sql`${col} < ${until.toISOString()}::timestamptz`);
  return where;
}
