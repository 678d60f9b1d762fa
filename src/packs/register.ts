/**
 * Writing a loaded pack into the store, inside the caller's transaction: the pack row and every
 * entity, created, updated (only when something changed) or removed (what the new version no longer
 * has). A workflow is written with its action (same ref, runner `workflow`), as the workflows API does.
 * Rules created through the API inside the pack (they have an owner) are left alone.
 */
import { and, eq, inArray, ne, or, sql } from 'drizzle-orm';
import { conflict } from '../domain/errors.ts';
import { validateAgainst } from '../domain/json-schema.ts';
import type { Tx } from '../store/database.ts';
import { actions, packs, rules, sensors, triggers, workflows } from '../store/schema.ts';
import type { LoadedPack } from './loader.ts';

export const ENTITY_KINDS = ['actions', 'workflows', 'triggers', 'sensors', 'rules'] as const;
export type EntityKind = (typeof ENTITY_KINDS)[number];
export type RefsByKind = Record<EntityKind, string[]>;

export interface Changes {
  created: RefsByKind;
  updated: RefsByKind;
  removed: RefsByKind;
  unchanged: number;
}

/** Where a pack came from (stored in `packs.source`). */
export interface PackSource {
  type: 'path' | 'git' | 'upload' | 'builtin' | 'api';
  location?: string;
  ref?: string;
  commit?: string;
  checksum?: string;
  /** The configuration was changed through the API; an upgrade keeps it. */
  custom_config?: boolean;
  [key: string]: unknown;
}

export interface RegisterResult {
  packId: number;
  created: boolean;
  previousVersion: string | null;
  changes: Changes;
  /** Rules and sensors of other packs disabled because what they used went away (with `force`). */
  disabled: { rules: string[]; sensors: string[] };
  warnings: string[];
}

export const emptyRefs = (): RefsByKind => ({
  actions: [],
  workflows: [],
  triggers: [],
  sensors: [],
  rules: [],
});

/** JSON with object keys sorted, so that jsonb's reordering does not look like a change. */
function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : x,
  );
}

interface Diff<V> {
  insert: V[];
  update: { id: number; values: V }[];
  unchanged: number;
  remove: { id: number; ref: string }[];
}

function diff<V extends { ref: string }>(
  existing: readonly ({ id: number; ref: string } & Record<string, unknown>)[],
  desired: readonly V[],
  removable: (row: Record<string, unknown>) => boolean = () => true,
): Diff<V> {
  const byRef = new Map(existing.map((r) => [r.ref, r]));
  const out: Diff<V> = { insert: [], update: [], unchanged: 0, remove: [] };
  const wanted = new Set<string>();
  for (const d of desired) {
    wanted.add(d.ref);
    const cur = byRef.get(d.ref);
    if (!cur) out.insert.push(d);
    else if (Object.entries(d).some(([k, v]) => canon(cur[k] ?? null) !== canon(v ?? null)))
      out.update.push({ id: cur.id, values: d });
    else out.unchanged++;
  }
  for (const r of existing) if (!wanted.has(r.ref) && removable(r)) out.remove.push({ id: r.id, ref: r.ref });
  return out;
}

export async function registerPack(
  tx: Tx,
  pack: LoadedPack,
  opts: { source: PackSource; installedBy: string | null; force?: boolean },
): Promise<RegisterResult> {
  const m = pack.meta;
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`attune.pack:${m.ref}`}))`);
  const [existing] = await tx.select().from(packs).where(eq(packs.ref, m.ref)).for('update');
  const warnings: string[] = [];

  // an upgrade keeps a configuration changed through the API, when it still fits the new schema
  let config = m.config;
  let customConfig = false;
  if (existing && (existing.source as PackSource).custom_config) {
    const merged = structuredClone({ ...m.config, ...existing.config });
    const problems = m.confSchema ? validateAgainst(m.confSchema, merged) : [];
    if (problems.length)
      warnings.push(
        `the configuration set through the API no longer fits config_schema (${problems[0]!.path} ${problems[0]!.message}); it was reset to the pack's`,
      );
    else {
      config = merged;
      customConfig = true;
    }
  }
  const source: PackSource = { ...opts.source, ...(customConfig && { custom_config: true }) };
  const packValues = {
    ref: m.ref,
    label: m.label,
    description: m.description,
    version: m.version,
    author: m.author,
    email: m.email,
    tags: m.tags,
    dependencies: m.dependencies,
    confSchema: m.confSchema,
    config,
    source,
    system: m.system,
    installedBy: opts.installedBy,
  };
  let packId: number;
  if (existing) {
    await tx
      .update(packs)
      .set({ ...packValues, updatedAt: sql`now()` })
      .where(eq(packs.id, existing.id));
    packId = existing.id;
  } else {
    const [row] = await tx.insert(packs).values(packValues).returning({ id: packs.id });
    packId = row!.id;
  }
  const base = { packId, packRef: m.ref };
  const changes: Changes = { created: emptyRefs(), updated: emptyRefs(), removed: emptyRefs(), unchanged: 0 };
  const note = (kind: EntityKind, d: Diff<{ ref: string }>) => {
    changes.created[kind].push(...d.insert.map((x) => x.ref));
    changes.updated[kind].push(...d.update.map((x) => x.values.ref));
    changes.removed[kind].push(...d.remove.map((x) => x.ref));
  };

  // ── what goes away, and who still uses it ──
  // one after the other: a transaction is one connection, which runs one query at a time
  const curActions = await tx.select().from(actions).where(eq(actions.packId, packId));
  const curWorkflows = await tx.select().from(workflows).where(eq(workflows.packId, packId));
  const curTriggers = await tx.select().from(triggers).where(eq(triggers.packId, packId));
  const curSensors = await tx.select().from(sensors).where(eq(sensors.packId, packId));
  const curRules = await tx.select().from(rules).where(eq(rules.packId, packId));

  const desiredActions = [
    ...pack.actions.map((a) => ({
      ...base,
      ref: a.ref,
      name: a.name,
      label: a.label,
      description: a.description,
      runner: a.runner,
      entryPoint: a.entryPoint,
      paramSchema: a.paramSchema,
      outSchema: a.outSchema,
      tags: a.tags,
      enabled: a.enabled,
      timeoutSeconds: a.timeoutSeconds,
      retryPolicy: a.retryPolicy,
      concurrencyPolicy: a.concurrencyPolicy,
      meta: a.meta,
    })),
    ...pack.workflows.map((w) => ({
      ...base,
      ref: w.ref,
      name: w.name,
      label: w.label,
      description: w.description,
      runner: 'workflow',
      entryPoint: '',
      paramSchema: w.paramSchema ?? {},
      outSchema: w.outSchema,
      tags: w.tags,
      enabled: w.enabled,
      timeoutSeconds: null,
      retryPolicy: null,
      concurrencyPolicy: null,
      meta: {},
    })),
  ];
  const actionDiff = diff(curActions, desiredActions);
  const workflowRefs = new Set(pack.workflows.map((w) => w.ref));
  const triggerDiffPre = new Set(pack.triggers.map((t) => t.ref));
  const goneActions = actionDiff.remove.map((r) => r.ref);
  const goneTriggers = curTriggers.filter((t) => !triggerDiffPre.has(t.ref)).map((t) => t.ref);
  const managedRuleRefs = new Set(pack.rules.map((r) => r.ref));
  const disabled = await handleDependents(
    tx,
    packId,
    goneActions,
    goneTriggers,
    managedRuleRefs,
    opts.force ?? false,
  );

  // ── actions (workflow actions included) ──
  const goneWorkflows = curWorkflows.filter((w) => !workflowRefs.has(w.ref));
  if (goneWorkflows.length)
    await tx.delete(workflows).where(
      inArray(
        workflows.id,
        goneWorkflows.map((w) => w.id),
      ),
    );
  if (actionDiff.remove.length)
    await tx.delete(actions).where(
      inArray(
        actions.id,
        actionDiff.remove.map((r) => r.id),
      ),
    );
  for (const u of actionDiff.update)
    await tx
      .update(actions)
      .set({ ...u.values, updatedAt: sql`now()` })
      .where(eq(actions.id, u.id));
  if (actionDiff.insert.length) await tx.insert(actions).values(actionDiff.insert);
  const wasWorkflow = new Set(curWorkflows.map((w) => w.ref));
  const plain = (refs: string[]) => refs.filter((r) => !workflowRefs.has(r) && !wasWorkflow.has(r));
  changes.created.actions.push(...plain(actionDiff.insert.map((a) => a.ref)));
  changes.updated.actions.push(...plain(actionDiff.update.map((a) => a.values.ref)));
  changes.removed.actions.push(...plain(actionDiff.remove.map((a) => a.ref)));

  // ── workflows, linked to their actions ──
  const actionIds = new Map(
    (
      await tx
        .select({ id: actions.id, ref: actions.ref })
        .from(actions)
        .where(and(eq(actions.packId, packId), eq(actions.runner, 'workflow')))
    ).map((a) => [a.ref, a.id]),
  );
  const workflowDiff = diff(
    curWorkflows,
    pack.workflows.map((w) => ({
      ...base,
      ref: w.ref,
      actionId: actionIds.get(w.ref) ?? null,
      label: w.label,
      description: w.description,
      version: w.version,
      paramSchema: w.paramSchema,
      outSchema: w.outSchema,
      definition: w.definition,
      tags: w.tags,
      enabled: w.enabled,
    })),
  );
  for (const u of workflowDiff.update)
    await tx
      .update(workflows)
      .set({ ...u.values, updatedAt: sql`now()` })
      .where(eq(workflows.id, u.id));
  if (workflowDiff.insert.length) await tx.insert(workflows).values(workflowDiff.insert);
  note('workflows', workflowDiff);
  // a workflow whose action alone changed (e.g. re-enabled through the actions API) is updated too
  for (const u of actionDiff.update)
    if (
      workflowRefs.has(u.values.ref) &&
      wasWorkflow.has(u.values.ref) &&
      !changes.updated.workflows.includes(u.values.ref)
    )
      changes.updated.workflows.push(u.values.ref);

  // ── triggers ──
  const triggerDiff = diff(
    curTriggers,
    pack.triggers.map((t) => ({
      ...base,
      ref: t.ref,
      name: t.name,
      label: t.label,
      description: t.description,
      paramSchema: t.paramSchema,
      payloadSchema: t.payloadSchema,
      tags: t.tags,
      enabled: t.enabled,
    })),
  );
  if (triggerDiff.remove.length)
    await tx.delete(triggers).where(
      inArray(
        triggers.id,
        triggerDiff.remove.map((r) => r.id),
      ),
    );
  for (const u of triggerDiff.update)
    await tx
      .update(triggers)
      .set({ ...u.values, updatedAt: sql`now()` })
      .where(eq(triggers.id, u.id));
  if (triggerDiff.insert.length) await tx.insert(triggers).values(triggerDiff.insert);
  note('triggers', triggerDiff);

  // ── sensors ──
  const sensorDiff = diff(
    curSensors,
    pack.sensors.map((s) => ({
      ...base,
      ref: s.ref,
      name: s.name,
      label: s.label,
      description: s.description,
      runner: s.runner,
      entryPoint: s.entryPoint,
      triggerRefs: s.triggerRefs,
      config: s.config,
      pollIntervalSeconds: s.pollIntervalSeconds,
      tags: s.tags,
      enabled: s.enabled,
    })),
  );
  if (sensorDiff.remove.length)
    await tx.delete(sensors).where(
      inArray(
        sensors.id,
        sensorDiff.remove.map((r) => r.id),
      ),
    );
  for (const u of sensorDiff.update)
    await tx
      .update(sensors)
      .set({ ...u.values, updatedAt: sql`now()` })
      .where(eq(sensors.id, u.id));
  if (sensorDiff.insert.length) await tx.insert(sensors).values(sensorDiff.insert);
  note('sensors', sensorDiff);

  // ── rules (those of the pack's files; rules with an owner were made through the API) ──
  const ruleDiff = diff(
    curRules,
    pack.rules.map((r) => ({
      ...base,
      ref: r.ref,
      name: r.name,
      label: r.label,
      description: r.description,
      triggerRef: r.triggerRef,
      triggerParams: r.triggerParams,
      criteria: r.criteria,
      actionRef: r.actionRef,
      actionParams: r.actionParams,
      tags: r.tags,
      enabled: r.enabled,
      ownerLogin: null,
    })),
    (row) => row.ownerLogin === null,
  );
  if (ruleDiff.remove.length)
    await tx.delete(rules).where(
      inArray(
        rules.id,
        ruleDiff.remove.map((r) => r.id),
      ),
    );
  for (const u of ruleDiff.update)
    await tx
      .update(rules)
      .set({ ...u.values, updatedAt: sql`now()` })
      .where(eq(rules.id, u.id));
  if (ruleDiff.insert.length) await tx.insert(rules).values(ruleDiff.insert);
  note('rules', ruleDiff);
  changes.removed.workflows.push(
    ...goneWorkflows.map((w) => w.ref).filter((r) => !changes.removed.workflows.includes(r)),
  );

  const total =
    pack.actions.length +
    pack.workflows.length +
    pack.triggers.length +
    pack.sensors.length +
    pack.rules.length;
  const touched = ENTITY_KINDS.reduce((n, k) => n + changes.created[k].length + changes.updated[k].length, 0);
  changes.unchanged = total - touched;

  return {
    packId,
    created: !existing,
    previousVersion: existing?.version ?? null,
    changes,
    disabled,
    warnings,
  };
}

/**
 * Rules and sensors outside this pack's files that use actions or trigger types about to go away:
 * a 409 naming them, or, with `force`, they are disabled.
 */
async function handleDependents(
  tx: Tx,
  packId: number,
  goneActions: string[],
  goneTriggers: string[],
  managedRuleRefs: Set<string>,
  force: boolean,
): Promise<{ rules: string[]; sensors: string[] }> {
  if (!goneActions.length && !goneTriggers.length) return { rules: [], sensors: [] };
  const uses = [];
  if (goneActions.length) uses.push(inArray(rules.actionRef, goneActions));
  if (goneTriggers.length) uses.push(inArray(rules.triggerRef, goneTriggers));
  const ruleRows = (
    await tx
      .select({ id: rules.id, ref: rules.ref, packId: rules.packId, ownerLogin: rules.ownerLogin })
      .from(rules)
      .where(and(or(...uses), or(ne(rules.packId, packId), sql`${rules.ownerLogin} is not null`)))
  ).filter((r) => r.packId !== packId || !managedRuleRefs.has(r.ref));
  const sensorRows = goneTriggers.length
    ? await tx
        .select({ id: sensors.id, ref: sensors.ref })
        .from(sensors)
        .where(
          and(ne(sensors.packId, packId), sql`${sensors.triggerRefs} && ${sql.param(goneTriggers)}::text[]`),
        )
    : [];
  if (!ruleRows.length && !sensorRows.length) return { rules: [], sensors: [] };
  if (!force)
    throw conflict(
      `still in use: ${[
        ...ruleRows.map((r) => `rule '${r.ref}'`),
        ...sensorRows.map((s) => `sensor '${s.ref}'`),
      ].join(
        ', ',
      )} use actions or trigger types this change removes (${[...goneActions, ...goneTriggers].join(', ')}); change them first, or pass force=true to disable them`,
      {
        rules: ruleRows.map((r) => r.ref),
        sensors: sensorRows.map((s) => s.ref),
        removed: { actions: goneActions, triggers: goneTriggers },
      },
    );
  if (ruleRows.length)
    await tx
      .update(rules)
      .set({ enabled: false, updatedAt: sql`now()` })
      .where(
        inArray(
          rules.id,
          ruleRows.map((r) => r.id),
        ),
      );
  if (sensorRows.length)
    await tx
      .update(sensors)
      .set({ enabled: false, updatedAt: sql`now()` })
      .where(
        inArray(
          sensors.id,
          sensorRows.map((s) => s.id),
        ),
      );
  return { rules: ruleRows.map((r) => r.ref), sensors: sensorRows.map((s) => s.ref) };
}
