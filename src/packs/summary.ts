/**
 * What the API shows of a pack: its fields, the counts of its entities, and (for one pack) the refs
 * of its entities. Counts of `actions` leave out the workflows' own actions: they are counted as
 * `workflows`.
 */
import { and, asc, eq, ne, sql } from 'drizzle-orm';
import type { Db } from '../store/database.ts';
import { actions, packs, rules, sensors, triggers, workflows } from '../store/schema.ts';
import { ENTITY_KINDS, type RefsByKind } from './register.ts';

export type PackRow = typeof packs.$inferSelect;
export interface PackCounts {
  actions: number;
  workflows: number;
  rules: number;
  triggers: number;
  sensors: number;
}

/** SQL expressions that count a pack's entities (for use in a select over `packs`). */
const packId = sql.raw('"packs"."id"');
export const countColumns = {
  actions: sql<number>`(select count(*)::int from ${actions} a where a.pack_id = ${packId} and a.runner <> 'workflow')`,
  workflows: sql<number>`(select count(*)::int from ${workflows} w where w.pack_id = ${packId})`,
  rules: sql<number>`(select count(*)::int from ${rules} r where r.pack_id = ${packId})`,
  triggers: sql<number>`(select count(*)::int from ${triggers} t where t.pack_id = ${packId})`,
  sensors: sql<number>`(select count(*)::int from ${sensors} s where s.pack_id = ${packId})`,
};

export async function countsOf(db: Db, packId: number): Promise<PackCounts> {
  const [row] = await db.select(countColumns).from(packs).where(eq(packs.id, packId));
  return row ?? { actions: 0, workflows: 0, rules: 0, triggers: 0, sensors: 0 };
}

/** The refs of every entity of the pack, by kind, sorted. */
export async function contentsOf(db: Db, packId: number): Promise<RefsByKind> {
  const [a, w, r, t, s] = await Promise.all([
    db
      .select({ ref: actions.ref })
      .from(actions)
      .where(and(eq(actions.packId, packId), ne(actions.runner, 'workflow')))
      .orderBy(asc(actions.ref)),
    db
      .select({ ref: workflows.ref })
      .from(workflows)
      .where(eq(workflows.packId, packId))
      .orderBy(asc(workflows.ref)),
    db.select({ ref: rules.ref }).from(rules).where(eq(rules.packId, packId)).orderBy(asc(rules.ref)),
    db
      .select({ ref: triggers.ref })
      .from(triggers)
      .where(eq(triggers.packId, packId))
      .orderBy(asc(triggers.ref)),
    db.select({ ref: sensors.ref }).from(sensors).where(eq(sensors.packId, packId)).orderBy(asc(sensors.ref)),
  ]);
  const refs = (rows: { ref: string }[]) => rows.map((x) => x.ref);
  const out: RefsByKind = {
    actions: refs(a),
    workflows: refs(w),
    rules: refs(r),
    triggers: refs(t),
    sensors: refs(s),
  };
  for (const k of ENTITY_KINDS) out[k].sort();
  return out;
}

/** The public part of `packs.source` (never credentials; the flags are internal). */
export function sourceToApi(src: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['type', 'location', 'ref', 'commit', 'checksum'])
    if (typeof src[k] === 'string') out[k] = src[k] as string;
  return out;
}

export function packToApi(r: PackRow, counts: PackCounts) {
  return {
    id: r.id,
    ref: r.ref,
    label: r.label,
    description: r.description,
    version: r.version,
    author: r.author ?? null,
    email: r.email ?? null,
    tags: r.tags,
    dependencies: r.dependencies,
    config_schema: r.confSchema ?? null,
    config: r.config,
    system: r.system,
    source: sourceToApi(r.source),
    installed_by: r.installedBy ?? null,
    counts,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}
export type PackApi = ReturnType<typeof packToApi>;
