/**
 * Packs: `/api/v1/packs`. A pack is a versioned bundle of actions, workflows, triggers, sensors and
 * rules. Lists and details show the counts of its entities; `DELETE` uninstalls it (its entities go
 * with it, and its installed files). Installing from files is `POST /api/v1/packs/install`
 * (pack-install.ts).
 */
import { and, count, desc, eq, inArray, ne, type SQL, sql } from 'drizzle-orm';
import semver from 'semver';
import { type Static, Type } from 'typebox';
import { conflict, notFound, validationError } from '../../../domain/errors.ts';
import { validateAgainst } from '../../../domain/json-schema.ts';
import { NAME_PATTERN } from '../../../domain/refs.ts';
import { removeInstalled } from '../../../packs/installed-files.ts';
import type { PackSource } from '../../../packs/register.ts';
import { contentsOf, countColumns, countsOf, packToApi } from '../../../packs/summary.ts';
import type { Db } from '../../../store/database.ts';
import { actions, packs, rules, sensors, triggers } from '../../../store/schema.ts';
import { announceDefinitionsChanged, assertParamSchema } from '../definitions.ts';
import {
  Data,
  JsonObject,
  JsonSchemaDoc,
  List,
  likeEscape,
  listBody,
  PageQuery,
  pageOf,
  RefParams,
  splitTags,
  Tags,
  Timestamp,
} from '../http.ts';
import type { ApiApp } from '../server.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const PackCounts = Type.Object(
  {
    actions: Type.Integer({ description: 'Actions, not counting the workflows' }),
    workflows: Type.Integer(),
    rules: Type.Integer(),
    triggers: Type.Integer(),
    sensors: Type.Integer(),
  },
  { description: "Numbers of the pack's entities" },
);
export const RefsByKind = Type.Object({
  actions: Type.Array(Type.String()),
  workflows: Type.Array(Type.String()),
  rules: Type.Array(Type.String()),
  triggers: Type.Array(Type.String()),
  sensors: Type.Array(Type.String()),
});

export const Pack = Type.Object({
  id: Type.Integer(),
  ref: Type.String(),
  label: Type.String(),
  description: Type.String(),
  version: Type.String(),
  author: Nullable(Type.String()),
  email: Nullable(Type.String()),
  tags: Type.Array(Type.String()),
  dependencies: Type.Array(Type.String(), { description: "Other packs it needs: 'pack' or 'pack@range'" }),
  config_schema: Nullable(JsonSchemaDoc),
  config: JsonObject,
  system: Type.Boolean({ description: 'Shipped with Attune (core); cannot be changed or uninstalled' }),
  source: Type.Record(Type.String(), Type.String(), {
    description:
      'Where it came from: type (path, git, upload, builtin, api), location, ref, commit, checksum',
  }),
  installed_by: Nullable(Type.String()),
  counts: PackCounts,
  created_at: Timestamp,
  updated_at: Timestamp,
});
const PackDetail = Type.Object({
  ...Pack.properties,
  contents: Type.Object(RefsByKind.properties, { description: 'Refs of its entities, by kind' }),
});

const Label = Type.String({ minLength: 1, maxLength: 255 });
const Version = Type.String({ minLength: 1, maxLength: 64, description: 'Semantic version, e.g. 1.2.0' });
const Email = Type.String({ maxLength: 255, format: 'email' });
const CreatePack = Type.Object(
  {
    ref: Type.String({ pattern: NAME_PATTERN, maxLength: 100, description: 'Lowercase name, e.g. my_pack' }),
    label: Type.Optional(Label),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    version: Type.Optional(Version),
    author: Type.Optional(Type.String({ maxLength: 255 })),
    email: Type.Optional(Email),
    tags: Type.Optional(Tags),
    config_schema: Type.Optional(Nullable(JsonSchemaDoc)),
    config: Type.Optional(JsonObject),
  },
  { additionalProperties: false },
);
const UpdatePack = Type.Object(
  {
    label: Type.Optional(Label),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    version: Type.Optional(Version),
    author: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
    email: Type.Optional(Nullable(Email)),
    tags: Type.Optional(Tags),
    config: Type.Optional(JsonObject),
  },
  { additionalProperties: false, minProperties: 1 },
);
const PackListQuery = Type.Object(
  {
    ...PageQuery,
    tags: Type.Optional(Type.String({ maxLength: 2000, description: 'comma-separated; matches any' })),
    search: Type.Optional(Type.String({ maxLength: 200, description: 'in ref, label and description' })),
  },
  { additionalProperties: false },
);
const DeleteQuery = Type.Object(
  {
    force: Type.Optional(
      Type.Boolean({
        description: 'Uninstall even when rules or sensors of other packs use it (they are disabled)',
      }),
    ),
  },
  { additionalProperties: false },
);

const tags = ['packs'];
const E = { $ref: 'ErrorBody#' };
const readErrors = { 400: E, 401: E, 403: E, 404: E };
const writeErrors = { ...readErrors, 409: E };

function checkVersion(v: string | undefined): void {
  if (v !== undefined && semver.valid(v) !== v)
    throw validationError(`version '${v}' is not a semantic version (e.g. 1.0.0)`, {
      field: 'version',
      version: v,
    });
}

/** `config` with the schema's defaults applied, or a 400 listing what does not fit. */
function checkedConfig(schema: Record<string, unknown> | null, config: Record<string, unknown>) {
  if (!schema) return config;
  const out = structuredClone(config);
  const problems = validateAgainst(schema, out);
  if (problems.length)
    throw validationError(`config does not fit config_schema: ${problems[0]!.path} ${problems[0]!.message}`, {
      field: 'config',
      problems,
    });
  return out;
}

/** Rules, sensors and packs outside `packId` that use it. */
async function dependentsOf(db: Db, packId: number, ref: string) {
  const ownActions = db.select({ ref: actions.ref }).from(actions).where(eq(actions.packId, packId));
  const ownTriggers = db.select({ ref: triggers.ref }).from(triggers).where(eq(triggers.packId, packId));
  // one after the other: inside a transaction there is one connection
  const ruleRows = await db
    .select({ id: rules.id, ref: rules.ref })
    .from(rules)
    .where(
      and(
        ne(rules.packId, packId),
        sql`(${rules.actionRef} in ${ownActions} or ${rules.triggerRef} in ${ownTriggers})`,
      ),
    )
    .orderBy(rules.ref);
  const sensorRows = await db
    .select({ id: sensors.id, ref: sensors.ref })
    .from(sensors)
    .where(
      and(
        ne(sensors.packId, packId),
        sql`${sensors.triggerRefs} && array(select t.ref from ${triggers} t where t.pack_id = ${packId})`,
      ),
    )
    .orderBy(sensors.ref);
  const packRows = await db
    .select({ ref: packs.ref, dependencies: packs.dependencies })
    .from(packs)
    .where(ne(packs.id, packId));
  const dependentPacks = packRows
    .filter((p) => p.dependencies.some((d) => d.split('@')[0]!.trim() === ref))
    .map((p) => p.ref)
    .sort();
  return { rules: ruleRows, sensors: sensorRows, packs: dependentPacks };
}

export function registerPackRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  app.get(
    '/api/v1/packs',
    {
      config: { permission: ['packs', 'read'] },
      schema: {
        tags,
        summary: 'List packs',
        description:
          'Filters: `tags` (comma-separated, matches any), `search` (ref, label, description). ' +
          'Ordered by ref. Each pack shows the counts of its entities.',
        querystring: PackListQuery,
        response: { 200: List(Pack), ...readErrors },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageOf(q);
      const where: SQL[] = [];
      const t = splitTags(q.tags);
      if (t.length) where.push(sql`${packs.tags} && ${sql.param(t)}::text[]`);
      if (q.search) {
        const pat = `%${likeEscape(q.search)}%`;
        where.push(
          sql`(${packs.ref} ILIKE ${pat} OR ${packs.label} ILIKE ${pat} OR ${packs.description} ILIKE ${pat})`,
        );
      }
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        db()
          .select({ pack: packs, ...countColumns })
          .from(packs)
          .where(cond)
          .orderBy(packs.ref, desc(packs.id))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(packs).where(cond),
      ]);
      return listBody(
        rows.map(({ pack, ...counts }) => packToApi(pack, counts)),
        page,
        total?.n ?? 0,
      );
    },
  );

  app.get(
    '/api/v1/packs/:ref',
    {
      config: { permission: ['packs', 'read'] },
      schema: {
        tags,
        summary: 'Get a pack, with the refs of its entities',
        params: RefParams,
        response: { 200: Data(PackDetail), ...readErrors },
      },
    },
    async (req) => {
      const [r] = await db().select().from(packs).where(eq(packs.ref, req.params.ref));
      if (!r) throw notFound('pack', req.params.ref);
      const [counts, contents] = await Promise.all([countsOf(db(), r.id), contentsOf(db(), r.id)]);
      return { data: { ...packToApi(r, counts), contents } };
    },
  );

  app.post(
    '/api/v1/packs',
    {
      config: { permission: ['packs', 'create'] },
      schema: {
        tags,
        summary: 'Create an empty pack',
        description:
          'A pack to hold actions, workflows, rules… created through the API. `config` must fit ' +
          '`config_schema` (its defaults are applied). To install a pack from files, use POST /api/v1/packs/install.',
        body: CreatePack,
        response: { 201: Data(Pack), ...writeErrors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      checkVersion(b.version);
      if (b.label !== undefined && !b.label.trim())
        throw validationError('label must not be blank', { field: 'label' });
      assertParamSchema('config_schema', b.config_schema);
      const config = checkedConfig(b.config_schema ?? null, b.config ?? {});
      const source: PackSource = { type: 'api' };
      const [r] = await db()
        .insert(packs)
        .values({
          ref: b.ref,
          label: b.label ?? b.ref,
          description: b.description ?? '',
          version: b.version ?? '1.0.0',
          author: b.author ?? null,
          email: b.email ?? null,
          tags: b.tags ?? [],
          confSchema: b.config_schema ?? null,
          config,
          source,
          installedBy: req.principal?.login ?? null,
        })
        .onConflictDoNothing()
        .returning();
      if (!r) throw conflict(`pack '${b.ref}' already exists`, { ref: b.ref });
      await app.ctx.audit({
        action: 'pack.create',
        actor: req.principal?.login,
        resourceType: 'packs',
        resourceRef: r.ref,
        requestId: req.id,
        ip: req.ip,
      });
      return reply.code(201).send({ data: packToApi(r, await countsOf(db(), r.id)) });
    },
  );

  app.put(
    '/api/v1/packs/:ref',
    {
      config: { permission: ['packs', 'update'] },
      schema: {
        tags,
        summary: 'Update a pack (partial)',
        description:
          "`config` must fit the pack's `config_schema` (its defaults are applied); a configuration set " +
          'here is kept when the pack is upgraded (as long as it fits the new schema). System packs cannot be changed.',
        params: RefParams,
        body: UpdatePack,
        response: { 200: Data(Pack), ...writeErrors },
      },
    },
    async (req) => {
      const b = req.body;
      checkVersion(b.version);
      if (b.label !== undefined && !b.label.trim())
        throw validationError('label must not be blank', { field: 'label' });
      const row = await app.ctx.store.transaction(async (tx) => {
        const [cur] = await tx.select().from(packs).where(eq(packs.ref, req.params.ref)).for('update');
        if (!cur) throw notFound('pack', req.params.ref);
        if (cur.system)
          throw conflict(`pack '${cur.ref}' is a system pack; it cannot be changed`, { ref: cur.ref });
        const config = b.config === undefined ? undefined : checkedConfig(cur.confSchema ?? null, b.config);
        const [r] = await tx
          .update(packs)
          .set({
            ...(b.label !== undefined && { label: b.label }),
            ...(b.description !== undefined && { description: b.description }),
            ...(b.version !== undefined && { version: b.version }),
            ...(b.author !== undefined && { author: b.author }),
            ...(b.email !== undefined && { email: b.email }),
            ...(b.tags !== undefined && { tags: b.tags }),
            ...(config !== undefined && { config, source: { ...cur.source, custom_config: true } }),
            updatedAt: sql`now()`,
          })
          .where(eq(packs.id, cur.id))
          .returning();
        return r!;
      });
      await app.ctx.audit({
        action: 'pack.update',
        actor: req.principal?.login,
        resourceType: 'packs',
        resourceRef: row.ref,
        requestId: req.id,
        ip: req.ip,
        details: { fields: Object.keys(b) },
      });
      return { data: packToApi(row, await countsOf(db(), row.id)) };
    },
  );

  app.delete(
    '/api/v1/packs/:ref',
    {
      config: { permission: ['packs', 'delete'] },
      schema: {
        tags,
        summary: 'Uninstall a pack',
        description:
          'Removes the pack, all its actions, workflows, triggers, sensors and rules, and its installed files. ' +
          'Refused (409) for the system pack and while rules or sensors of other packs use it, or other ' +
          'packs depend on it — unless `force=true`, which disables those rules and sensors.',
        params: RefParams,
        querystring: DeleteQuery,
        response: { 204: Type.Null(), ...writeErrors },
      },
    },
    async (req, reply) => {
      const ref = req.params.ref;
      const force = req.query.force ?? false;
      const result = await app.ctx.store.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`attune.pack:${ref}`}))`);
        const [cur] = await tx.select().from(packs).where(eq(packs.ref, ref)).for('update');
        if (!cur) throw notFound('pack', ref);
        if (cur.system)
          throw conflict(`pack '${ref}' is a system pack shipped with Attune; it cannot be uninstalled`, {
            ref,
          });
        const deps = await dependentsOf(tx, cur.id, ref);
        const used = deps.rules.length + deps.sensors.length + deps.packs.length > 0;
        if (used && !force)
          throw conflict(
            `pack '${ref}' is still in use by ${[
              ...deps.rules.map((r) => `rule '${r.ref}'`),
              ...deps.sensors.map((s) => `sensor '${s.ref}'`),
              ...deps.packs.map((p) => `pack '${p}'`),
            ].join(', ')}; change them first, or pass force=true (their rules and sensors are then disabled)`,
            {
              rules: deps.rules.map((r) => r.ref),
              sensors: deps.sensors.map((s) => s.ref),
              packs: deps.packs,
            },
          );
        if (deps.rules.length)
          await tx
            .update(rules)
            .set({ enabled: false, updatedAt: sql`now()` })
            .where(
              inArray(
                rules.id,
                deps.rules.map((r) => r.id),
              ),
            );
        if (deps.sensors.length)
          await tx
            .update(sensors)
            .set({ enabled: false, updatedAt: sql`now()` })
            .where(
              inArray(
                sensors.id,
                deps.sensors.map((s) => s.id),
              ),
            );
        await tx.delete(packs).where(eq(packs.id, cur.id));
        return { version: cur.version, deps };
      });
      announceDefinitionsChanged(app.ctx, { resource: 'packs', refs: [ref] });
      try {
        removeInstalled(app.ctx.packsDir, ref);
      } catch (err) {
        req.log.warn({ err, pack: ref }, 'could not remove the files of the uninstalled pack');
      }
      await app.ctx.audit({
        action: 'pack.uninstall',
        actor: req.principal?.login,
        resourceType: 'packs',
        resourceRef: ref,
        requestId: req.id,
        ip: req.ip,
        details: {
          version: result.version,
          force,
          disabled: {
            rules: result.deps.rules.map((r) => r.ref),
            sensors: result.deps.sensors.map((s) => s.ref),
          },
          dependent_packs: result.deps.packs,
        },
      });
      return reply.code(204).send(null);
    },
  );
}

export type PackBody = Static<typeof Pack>;
