/**
 * Helpers shared by the routes of pack-owned definitions (actions, workflows, triggers, sensors,
 * rules): pack lookup, ref checks, JSON-Schema checks, the common list query and the read routes.
 */
import { and, count, desc, eq, inArray, type SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Static, TSchema } from 'typebox';
import { notFound, validationError } from '../../domain/errors.ts';
import { schemaProblems } from '../../domain/json-schema.ts';
import { parseRef } from '../../domain/refs.ts';
import type { Db } from '../../store/database.ts';
import { packs } from '../../store/schema.ts';
import type { DefinitionsChanged } from '../rules-engine/rule-index.ts';
import { TOPICS } from '../runtime/messages.ts';
import type { ApiContext } from './context.ts';
import {
  Data,
  type DefinitionListQuery,
  definitionFilters,
  List,
  listBody,
  pageOf,
  RefParams,
} from './http.ts';
import type { ApiApp } from './server.ts';

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

/**
 * Throws a 400 unless `doc` (when present) is a valid JSON Schema describing an object: parameters
 * always arrive as one JSON object, so `type`, when given, must be (or include) `object`.
 */
export function assertParamSchema(field: string, doc: unknown): void {
  assertJsonSchema(field, doc);
  if (doc === undefined || doc === null) return;
  const type = (doc as Record<string, unknown>).type;
  if (type === undefined) return;
  const ok = type === 'object' || (Array.isArray(type) && type.includes('object'));
  if (!ok)
    throw validationError(`${field} must describe an object (its "type" must be "object")`, {
      field,
      type,
    });
}

/** Runners whose `entry_point` names a script file inside the pack. */
export const SCRIPT_RUNNERS: readonly string[] = ['local-shell-script', 'python-script', 'node-script'];

/**
 * For script runners, `entry_point` is required and must be a relative path that stays inside the
 * pack (no absolute path, no `..` segment, no backslash, no NUL). Throws a 400 otherwise.
 */
export function assertEntryPoint(runner: string, entryPoint: string | undefined): void {
  if (!SCRIPT_RUNNERS.includes(runner)) return;
  const ep = entryPoint ?? '';
  const bad = (why: string) =>
    validationError(`entry_point ${why} (runner '${runner}' runs a script file of the pack)`, {
      field: 'entry_point',
      entry_point: ep,
    });
  if (!ep.trim()) throw bad('is required');
  if (ep.startsWith('/') || /^[A-Za-z]:/.test(ep)) throw bad('must be a path relative to the pack');
  if (ep.includes('\\') || ep.includes('\0')) throw bad('must not contain backslashes or NUL characters');
  if (ep.split('/').some((seg) => seg === '..')) throw bad("must not contain '..' segments");
}

/** The distinct refs among `refs` that have no row in `table` (matched on its `ref` column). */
export async function missingRefs(
  db: Db,
  table: PgTable & { ref: PgColumn },
  refs: readonly string[],
): Promise<string[]> {
  const wanted = [...new Set(refs)];
  if (!wanted.length) return [];
  const rows = (await db.select({ ref: table.ref }).from(table).where(inArray(table.ref, wanted))) as {
    ref: string;
  }[];
  const have = new Set(rows.map((r) => r.ref));
  return wanted.filter((r) => !have.has(r));
}

/**
 * Tells every process that definitions changed, so rule, trigger and action caches reload now rather
 * than when their time-to-live runs out. A broadcast after the commit: losing it only delays.
 */
export function announceDefinitionsChanged(ctx: ApiContext, payload: DefinitionsChanged): void {
  ctx.bus?.publish(TOPICS.definitionsChanged, { ...payload }).catch((err: unknown) => {
    ctx.log.warn({ err, payload }, 'could not announce a definition change; caches reload within seconds');
  });
}

/** What the read routes of one kind of definition need (see `registerDefinitionReads`). */
export interface DefinitionReads<Row, Q extends TSchema> {
  /** The path segment, the tag and the permission's resource. */
  resource: 'actions' | 'workflows' | 'triggers' | 'sensors' | 'rules';
  /** One and several of them in summaries: 'action' / 'actions', 'trigger type' / 'trigger types'. */
  one: string;
  many: string;
  /** What a missing one is called in the 404 (`notFound`). */
  kind: string;
  /** The kind's own list filters, as the description names them (e.g. "`runner`"). */
  filters?: string;
  item: TSchema;
  query: Q;
  list(
    q: Static<Q> & { pack?: string },
  ): Promise<{ body<T>(map: (r: Row) => T): ReturnType<typeof listBody<T>> }>;
  get(ref: string): Promise<Row | undefined>;
  toApi(r: Row): unknown;
}

/**
 * The three read routes every kind of definition has: `GET /api/v1/<resource>` (the list, with the
 * common filters and the kind's own), `GET /api/v1/packs/{ref}/<resource>` (the same, one pack's)
 * and `GET /api/v1/<resource>/{ref}`.
 */
export function registerDefinitionReads<Row, Q extends TSchema>(
  app: ApiApp,
  d: DefinitionReads<Row, Q>,
): void {
  const E = { $ref: 'ErrorBody#' };
  const errors = { 400: E, 404: E };
  const config = { permission: [d.resource, 'read'] as [typeof d.resource, 'read'] };
  const tags = [d.resource];
  const article = /^[aeiou]/.test(d.one) ? 'an' : 'a';
  app.get(
    `/api/v1/${d.resource}`,
    {
      config,
      schema: {
        tags,
        summary: `List ${d.many}`,
        description:
          'Filters: `tags` (comma-separated, matches any), `enabled`, `search` (ref, label, description), ' +
          `\`pack\`${d.filters ? `, ${d.filters}` : ''}. Newest first.`,
        querystring: d.query,
        response: { 200: List(d.item), ...errors },
      },
    },
    async (req) => (await d.list(req.query as Static<Q>)).body(d.toApi),
  );
  app.get(
    `/api/v1/packs/:ref/${d.resource}`,
    {
      config,
      schema: {
        tags,
        summary: `List a pack's ${d.many}`,
        params: RefParams,
        querystring: d.query,
        response: { 200: List(d.item), ...errors },
      },
    },
    async (req) => {
      const { ref } = req.params as Static<typeof RefParams>;
      await requirePack(app.ctx.store.db, ref);
      return (await d.list({ ...(req.query as Static<Q>), pack: ref })).body(d.toApi);
    },
  );
  app.get(
    `/api/v1/${d.resource}/:ref`,
    {
      config,
      schema: {
        tags,
        summary: `Get ${article} ${d.one}`,
        params: RefParams,
        response: { 200: Data(d.item), ...errors },
      },
    },
    async (req) => {
      const { ref } = req.params as Static<typeof RefParams>;
      const r = await d.get(ref);
      if (!r) throw notFound(d.kind, ref);
      return { data: d.toApi(r) };
    },
  );
}
