/**
 * Sensors: `/api/v1/sensors`. A sensor belongs to a pack: a process (script) that watches something
 * and emits events of the trigger types it names. `…/{ref}/status` and `…/{ref}/logs` show how its
 * process runs (see services/sensors/sensor-manager.ts).
 */
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { conflict, notFound, unprocessable, validationError } from '../../../domain/errors.ts';
import { rules, sensorLogs, sensorProcesses, sensors, triggers } from '../../../store/schema.ts';
import {
  assertEntryPoint,
  listDefinitions,
  missingRefs,
  packForRef,
  registerDefinitionReads,
} from '../definitions.ts';
import { Data, DefinitionListQuery, iso, JsonObject, Ref, RefParams, Tags, Timestamp } from '../http.ts';
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

const SensorStatus = Type.Object({
  sensor_ref: Type.String(),
  enabled: Type.Boolean(),
  needed: Type.Boolean({ description: 'an enabled rule uses one of its triggers' }),
  status: Type.String({ description: 'starting | running | backoff | failed | stopped' }),
  owner: Type.Union([Type.String(), Type.Null()], { description: 'the node running it' }),
  lease_active: Type.Boolean(),
  lease_expires_at: Type.Union([Timestamp, Type.Null()]),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  restarts: Type.Integer(),
  last_exit_code: Type.Union([Type.Integer(), Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()]),
  next_restart_at: Type.Union([Timestamp, Type.Null()]),
  started_at: Type.Union([Timestamp, Type.Null()]),
  updated_at: Type.Union([Timestamp, Type.Null()]),
});
const SensorLogLine = Type.Object({
  id: Type.Integer(),
  stream: Type.String({ description: 'stderr | invalid | system' }),
  line: Type.String(),
  created_at: Timestamp,
});
const SensorLogsQuery = Type.Object(
  {
    tail: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'How many of the last lines' }),
    ),
    stream: Type.Optional(
      Type.Union([Type.Literal('stderr'), Type.Literal('invalid'), Type.Literal('system')], {
        description: 'Only lines of this stream',
      }),
    ),
  },
  { additionalProperties: false },
);

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

  registerDefinitionReads(app, {
    resource: 'sensors',
    one: 'sensor',
    many: 'sensors',
    kind: 'sensor',
    filters: '`trigger`',
    item: Sensor,
    query: SensorListQuery,
    list: list,
    get: async (ref) => (await db().select().from(sensors).where(eq(sensors.ref, ref)))[0],
    toApi: sensorToApi,
  });

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
  app.get(
    '/api/v1/sensors/:ref/status',
    {
      config: { permission: ['sensors', 'read'] },
      schema: {
        tags,
        summary: "A sensor's process",
        description:
          'Where and how the sensor runs: `status` (starting, running, backoff, failed, stopped), the node ' +
          'holding it (`owner`, under a lease until `lease_expires_at`; `lease_active` false means that node ' +
          'stopped renewing it), its pid, restarts, last exit code and error, and when it restarts. ' +
          '`needed` tells whether an enabled rule uses one of its triggers (it runs only then).',
        params: RefParams,
        response: { 200: Data(SensorStatus), ...readErrors },
      },
    },
    async (req) => {
      const ref = req.params.ref;
      const [s] = await db().select().from(sensors).where(eq(sensors.ref, ref));
      if (!s) throw notFound('sensor', ref);
      const [p] = await db()
        .select({
          row: sensorProcesses,
          active: sql<boolean>`coalesce(${sensorProcesses.leaseExpiresAt} >= now(), false)`,
        })
        .from(sensorProcesses)
        .where(eq(sensorProcesses.sensorRef, ref));
      const used = s.triggerRefs.length
        ? await db()
            .select({ id: rules.id })
            .from(rules)
            .innerJoin(triggers, eq(triggers.ref, rules.triggerRef))
            .where(
              and(
                eq(rules.enabled, true),
                eq(triggers.enabled, true),
                inArray(rules.triggerRef, s.triggerRefs),
              ),
            )
            .limit(1)
        : [];
      const r = p?.row;
      return {
        data: {
          sensor_ref: ref,
          enabled: s.enabled,
          needed: s.enabled && used.length > 0,
          status: r?.status ?? 'stopped',
          owner: r?.owner ?? null,
          lease_active: !!p?.active && !!r?.owner,
          lease_expires_at: iso(r?.leaseExpiresAt),
          pid: r?.pid ?? null,
          restarts: r?.restarts ?? 0,
          last_exit_code: r?.lastExitCode ?? null,
          last_error: r?.lastError ?? null,
          next_restart_at: iso(r?.nextRestartAt),
          started_at: iso(r?.startedAt),
          updated_at: iso(r?.updatedAt),
        },
      };
    },
  );

  app.get(
    '/api/v1/sensors/:ref/logs',
    {
      config: { permission: ['sensors', 'read'] },
      schema: {
        tags,
        summary: "A sensor's log",
        description:
          "The last `tail` lines (default 100, at most 1000), oldest first: the process's stderr " +
          '(`stderr`), stdout lines that were not valid events with the reason (`invalid`), and what the ' +
          'platform did — started, exited, restarting, stopped (`system`). Filter: `stream`. The newest ' +
          'lines of each sensor are kept (1000 by default).',
        params: RefParams,
        querystring: SensorLogsQuery,
        response: { 200: Data(Type.Array(SensorLogLine)), ...readErrors },
      },
    },
    async (req) => {
      const ref = req.params.ref;
      const [s] = await db().select({ id: sensors.id }).from(sensors).where(eq(sensors.ref, ref));
      if (!s) throw notFound('sensor', ref);
      const rows = await db()
        .select()
        .from(sensorLogs)
        .where(
          and(
            eq(sensorLogs.sensorRef, ref),
            req.query.stream ? eq(sensorLogs.stream, req.query.stream) : undefined,
          ),
        )
        .orderBy(desc(sensorLogs.id))
        .limit(req.query.tail ?? 100);
      return {
        data: rows
          .reverse()
          .map((l) => ({ id: l.id, stream: l.stream, line: l.line, created_at: iso(l.createdAt)! })),
      };
    },
  );
}
