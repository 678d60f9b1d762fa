/**
 * Sensors: `/api/v1/sensors`. A sensor belongs to a pack: a process (script) that watches something
 * and emits events of the trigger types it names.
 */
import { eq, sql } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { conflict, notFound, unprocessable, validationError } from '../../../domain/errors.ts';
import { sensors, triggers } from '../../../store/schema.ts';
import { assertEntryPoint, listDefinitions, missingRefs, packForRef, requirePack } from '../definitions.ts';
import {
  Data,
  DefinitionListQuery,
  iso,
  JsonObject,
  List,
  Ref,
  RefParams,
  Tags,
  Timestamp,
} from '../http.ts';
import type { ApiApp } from '../server.ts';

/** The runners a sensor process can be started with. */
export const SENSOR_RUNNERS = [
  'local-shell-script',
  'local-shell-cmd',
  'python-script',
  'node-script',
] as const;

const Runner = Type.String({
  maxLength: 100,
  description: `How the sensor process is started: ${SENSOR_RUNNERS.join(', ')}`,
});
const TriggerRefs = Type.Array(Ref, {
  minItems: 1,
  maxItems: 100,
  uniqueItems: true,
  description: 'Trigger types whose events this sensor emits (each must exist)',
});
const PollInterval = Type.Integer({
  minimum: 1,
  maximum: 86_400,
  description: 'For polling sensors: seconds between polls',
});

const Sensor = Type.Object({
  id: Type.Integer(),
  ref: Type.String(),
  pack_ref: Type.String(),
  name: Type.String(),
  label: Type.String(),
  description: Type.String(),
  runner: Type.String(),
  entry_point: Type.String(),
  trigger_refs: Type.Array(Type.String()),
  config: JsonObject,
  poll_interval_seconds: Type.Union([Type.Integer(), Type.Null()]),
  tags: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const writable = {
  label: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  description: Type.Optional(Type.String({ maxLength: 10_000 })),
  runner: Type.Optional(Runner),
  entry_point: Type.Optional(
    Type.String({ maxLength: 10_000, description: "Script path relative to the pack's sensors/ folder" }),
  ),
  trigger_refs: Type.Optional(TriggerRefs),
  config: Type.Optional(JsonObject),
  poll_interval_seconds: Type.Optional(Type.Union([PollInterval, Type.Null()])),
  tags: Type.Optional(Tags),
  enabled: Type.Optional(Type.Boolean()),
};
const CreateSensor = Type.Object(
  {
    ref: Ref,
    pack_ref: Type.Optional(Type.String({ maxLength: 100 })),
    ...writable,
    trigger_refs: TriggerRefs,
  },
  { additionalProperties: false },
);
const UpdateSensor = Type.Object(writable, { additionalProperties: false, minProperties: 1 });

const SensorListQuery = Type.Object(
  {
    ...DefinitionListQuery.properties,
    trigger: Type.Optional(
      Type.String({ maxLength: 300, description: 'only sensors emitting this trigger' }),
    ),
  },
  { additionalProperties: false },
);

type Row = typeof sensors.$inferSelect;
export const sensorToApi = (r: Row): Static<typeof Sensor> => ({
  id: r.id,
  ref: r.ref,
  pack_ref: r.packRef,
  name: r.name,
  label: r.label,
  description: r.description,
  runner: r.runner,
  entry_point: r.entryPoint,
  trigger_refs: r.triggerRefs,
  config: r.config,
  poll_interval_seconds: r.pollIntervalSeconds ?? null,
  tags: r.tags,
  enabled: r.enabled,
  created_at: iso(r.createdAt)!,
  updated_at: iso(r.updatedAt)!,
});

const cols = {
  id: sensors.id,
  tags: sensors.tags,
  enabled: sensors.enabled,
  packRef: sensors.packRef,
  search: [sensors.ref, sensors.label, sensors.description],
};
const tags = ['sensors'];
const E = { $ref: 'ErrorBody#' };
const readErrors = { 400: E, 404: E };
const writeErrors = { ...readErrors, 409: E, 422: E };

function checkRunner(runner: string, entryPoint: string): void {
  if (!(SENSOR_RUNNERS as readonly string[]).includes(runner))
    throw validationError(`unknown sensor runner '${runner}'; expected one of ${SENSOR_RUNNERS.join(', ')}`, {
      field: 'runner',
      runner,
      allowed: SENSOR_RUNNERS,
    });
  if (runner === 'local-shell-cmd' && !entryPoint.trim())
    throw validationError("entry_point (the command) is required for runner 'local-shell-cmd'", {
      field: 'entry_point',
    });
  assertEntryPoint(runner, entryPoint);
}

export function registerSensorRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  const list = (q: Static<typeof SensorListQuery>) =>
    listDefinitions<Row>(
      db(),
      sensors,
      cols,
      q,
      q.trigger ? [sql`${sensors.triggerRefs} @> ${sql.param([q.trigger])}::text[]`] : [],
    );
  const assertTriggersExist = async (refs: string[]) => {
    const missing = await missingRefs(db(), triggers, refs);
    if (missing.length)
      throw unprocessable(
        `unknown trigger type${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}`,
        { field: 'trigger_refs', missing },
      );
  };

  app.get(
    '/api/v1/sensors',
    {
      config: { permission: ['sensors', 'read'] },
      schema: {
        tags,
        summary: 'List sensors',
        description:
          'Filters: `tags` (comma-separated, matches any), `enabled`, `search` (ref, label, description), ' +
          '`pack`, `trigger`. Newest first.',
        querystring: SensorListQuery,
        response: { 200: List(Sensor), ...readErrors },
      },
    },
    async (req) => (await list(req.query)).body(sensorToApi),
  );

  app.get(
    '/api/v1/packs/:ref/sensors',
    {
      config: { permission: ['sensors', 'read'] },
      schema: {
        tags,
        summary: "List a pack's sensors",
        params: RefParams,
        querystring: SensorListQuery,
        response: { 200: List(Sensor), ...readErrors },
      },
    },
    async (req) => {
      await requirePack(db(), req.params.ref);
      return (await list({ ...req.query, pack: req.params.ref })).body(sensorToApi);
    },
  );

  app.get(
    '/api/v1/sensors/:ref',
    {
      config: { permission: ['sensors', 'read'] },
      schema: {
        tags,
        summary: 'Get a sensor',
        params: RefParams,
        response: { 200: Data(Sensor), ...readErrors },
      },
    },
    async (req) => {
      const [r] = await db().select().from(sensors).where(eq(sensors.ref, req.params.ref));
      if (!r) throw notFound('sensor', req.params.ref);
      return { data: sensorToApi(r) };
    },
  );

  app.post(
    '/api/v1/sensors',
    {
      config: { permission: ['sensors', 'create'] },
      schema: {
        tags,
        summary: 'Create a sensor',
        description: 'Every trigger in `trigger_refs` must exist (422 naming the missing ones).',
        body: CreateSensor,
        response: { 201: Data(Sensor), ...writeErrors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const runner = b.runner ?? 'local-shell-script';
      checkRunner(runner, b.entry_point ?? '');
      const pack = await packForRef(db(), b.ref, b.pack_ref);
      await assertTriggersExist(b.trigger_refs);
      const [r] = await db()
        .insert(sensors)
        .values({
          ref: b.ref,
          packId: pack.id,
          packRef: pack.ref,
          name: pack.name,
          label: b.label ?? pack.name,
          description: b.description ?? '',
          runner,
          entryPoint: b.entry_point ?? '',
          triggerRefs: b.trigger_refs,
          config: b.config ?? {},
          pollIntervalSeconds: b.poll_interval_seconds ?? null,
          tags: b.tags ?? [],
          enabled: b.enabled ?? true,
        })
        .onConflictDoNothing()
        .returning();
      if (!r) throw conflict(`sensor '${b.ref}' already exists`, { ref: b.ref });
      return reply.code(201).send({ data: sensorToApi(r) });
    },
  );

  app.put(
    '/api/v1/sensors/:ref',
    {
      config: { permission: ['sensors', 'update'] },
      schema: {
        tags,
        summary: 'Update a sensor (partial)',
        params: RefParams,
        body: UpdateSensor,
        response: { 200: Data(Sensor), ...writeErrors },
      },
    },
    async (req) => {
      const b = req.body;
      const ref = req.params.ref;
      const [cur] = await db().select().from(sensors).where(eq(sensors.ref, ref));
      if (!cur) throw notFound('sensor', ref);
      if (b.runner !== undefined || b.entry_point !== undefined)
        checkRunner(b.runner ?? cur.runner, b.entry_point ?? cur.entryPoint);
      if (b.trigger_refs) await assertTriggersExist(b.trigger_refs);
      const [r] = await db()
        .update(sensors)
        .set({
          ...(b.label !== undefined && { label: b.label }),
          ...(b.description !== undefined && { description: b.description }),
          ...(b.runner !== undefined && { runner: b.runner }),
          ...(b.entry_point !== undefined && { entryPoint: b.entry_point }),
          ...(b.trigger_refs !== undefined && { triggerRefs: b.trigger_refs }),
          ...(b.config !== undefined && { config: b.config }),
          ...(b.poll_interval_seconds !== undefined && { pollIntervalSeconds: b.poll_interval_seconds }),
          ...(b.tags !== undefined && { tags: b.tags }),
          ...(b.enabled !== undefined && { enabled: b.enabled }),
          updatedAt: sql`now()`,
        })
        .where(eq(sensors.id, cur.id))
        .returning();
      if (!r) throw notFound('sensor', ref);
      return { data: sensorToApi(r) };
    },
  );

  app.delete(
    '/api/v1/sensors/:ref',
    {
      config: { permission: ['sensors', 'delete'] },
      schema: {
        tags,
        summary: 'Delete a sensor',
        params: RefParams,
        response: { 204: Type.Null(), ...readErrors },
      },
    },
    async (req, reply) => {
      const r = await db()
        .delete(sensors)
        .where(eq(sensors.ref, req.params.ref))
        .returning({ id: sensors.id });
      if (!r.length) throw notFound('sensor', req.params.ref);
      return reply.code(204).send(null);
    },
  );
}
