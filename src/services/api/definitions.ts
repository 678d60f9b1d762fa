/**
 * Helpers shared by the routes of pack-owned definitions (actions, workflows, triggers, sensors,
 * rules): pack lookup, ref checks, JSON-Schema checks and the common list query.
 */
import { and, count, desc, eq, type SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import { notFound, validationError } from '../../domain/errors.ts';
import { schemaProblems } from '../../domain/json-schema.ts';
import { parseRef } from '../../domain/refs.ts';
import type { Db } from '../../store/database.ts';
import { packs } from '../../store/schema.ts';
import { type DefinitionListQuery, definitionFilters, listBody, pageOf } from './http.ts';

/** The pack named `packRef`, or a 404. */
export async function requirePack(db: Db, packRef: string): Promise<{ id: number; ref: string }> {
  const [p] = await db.select({ id: packs.id, ref: packs.ref }).from(packs).where(eq(packs.ref, packRef));
  if (!p) throw notFound('pack', packRef);
  return p;
}

/** The pack of a new definition: must exist (404) and match the ref's prefix (400). */
export async function packForRef(
  db: Db,
  ref: string,
  packRef?: string,
): Promise<{ id: number; ref: string; name: string }> {
  const parsed = parseRef(ref);
  if (packRef !== undefined && packRef !== parsed.pack)
    throw validationError(`ref '${ref}' does not belong to pack '${packRef}'`, { ref, pack_ref: packRef });
  const p = await requirePack(db, parsed.pack);
  return { id: p.id, ref: p.ref, name: parsed.name };
}

/** Throws a 400 naming the field when `doc` is present and is not a valid JSON Schema. */
export function assertJsonSchema(field: string, doc: unknown): void {
  if (doc === undefined || doc === null) return;
  const problems = schemaProblems(doc);
  if (problems.length)
    throw validationError(
      `${field} is not a valid JSON Schema: ${problems[0]!.path} ${problems[0]!.message}`,
      {
        field,
        problems,
      },
    );
}

export interface DefinitionColumns {
  id: PgColumn;
  tags: PgColumn;
  enabled: PgColumn;
  packRef: PgColumn;
  search: PgColumn[];
}

/** One page of a definition table, newest first, with the common filters and the total. */
export async function listDefinitions<Row>(
  db: Db,
  table: PgTable,
  cols: DefinitionColumns,
  q: DefinitionListQuery,
  extra: SQL[] = [],
) {
  const page = pageOf(q);
  const where = and(...definitionFilters(q, cols), ...extra);
  const [rows, [total]] = await Promise.all([
    db.select().from(table).where(where).orderBy(desc(cols.id)).limit(page.limit).offset(page.offset),
    db.select({ n: count() }).from(table).where(where),
  ]);
  return {
    rows: rows as Row[],
    page,
    total: total?.n ?? 0,
    body: <T>(map: (r: Row) => T) => listBody((rows as Row[]).map(map), page, total?.n ?? 0),
  };
}
