/** Trigger types: `/api/v1/triggers`. A trigger belongs to a pack and describes an event's payload. */
import { eq, sql } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { conflict, notFound } from '../../../domain/errors.ts';
import { triggers } from '../../../store/schema.ts';
import { assertJsonSchema, listDefinitions, packForRef, registerDefinitionReads } from '../definitions.ts';
import { Data, DefinitionListQuery, iso, JsonSchemaDoc, Ref, RefParams, Tags, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';

const Trigger = Type.Object({
  id: Type.Integer(),
  ref: Type.String(),
  pack_ref: Type.String(),
  name: Type.String(),
  label: Type.String(),
  description: Type.String(),
  param_schema: Type.Union([JsonSchemaDoc, Type.Null()]),
  payload_schema: Type.Union([JsonSchemaDoc, Type.Null()]),
  tags: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const CreateTrigger = Type.Object(
  {
    ref: Ref,
    pack_ref: Type.Optional(Type.String({ maxLength: 100 })),
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    param_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
    payload_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
    tags: Type.Optional(Tags),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const UpdateTrigger = Type.Object(
  {
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    param_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
    payload_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
    tags: Type.Optional(Tags),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

type Row = typeof triggers.$inferSelect;
export const triggerToApi = (r: Row): Static<typeof Trigger> => ({
  id: r.id,
  ref: r.ref,
  pack_ref: r.packRef,
  name: r.name,
  label: r.label,
  description: r.description,
  param_schema: r.paramSchema ?? null,
  payload_schema: r.payloadSchema ?? null,
  tags: r.tags,
  enabled: r.enabled,
  created_at: iso(r.createdAt)!,
  updated_at: iso(r.updatedAt)!,
});

const cols = {
  id: triggers.id,
  tags: triggers.tags,
  enabled: triggers.enabled,
  packRef: triggers.packRef,
  search: [triggers.ref, triggers.label, triggers.description],
};
const tags = ['triggers'];
const errors = { 400: { $ref: 'ErrorBody#' }, 404: { $ref: 'ErrorBody#' } };

export function registerTriggerRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  registerDefinitionReads(app, {
    resource: 'triggers',
    one: 'trigger type',
    many: 'trigger types',
    kind: 'trigger',
    item: Trigger,
    query: DefinitionListQuery,
    list: (q) => listDefinitions<Row>(db(), triggers, cols, q),
    get: async (ref) => (await db().select().from(triggers).where(eq(triggers.ref, ref)))[0],
    toApi: triggerToApi,
  });

  app.post(
    '/api/v1/triggers',
    {
      config: { permission: ['triggers', 'create'] },
      schema: {
        tags,
        summary: 'Create a trigger type',
        body: CreateTrigger,
        response: { 201: Data(Trigger), ...errors, 409: { $ref: 'ErrorBody#' } },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const pack = await packForRef(db(), b.ref, b.pack_ref);
      assertJsonSchema('param_schema', b.param_schema);
      assertJsonSchema('payload_schema', b.payload_schema);
      const [r] = await db()
        .insert(triggers)
        .values({
          ref: b.ref,
          packId: pack.id,
          packRef: pack.ref,
          name: pack.name,
          label: b.label ?? pack.name,
          description: b.description ?? '',
          paramSchema: b.param_schema ?? null,
          payloadSchema: b.payload_schema ?? null,
          tags: b.tags ?? [],
          enabled: b.enabled ?? true,
        })
        .onConflictDoNothing()
        .returning();
      if (!r) throw conflict(`trigger '${b.ref}' already exists`, { ref: b.ref });
      return reply.code(201).send({ data: triggerToApi(r) });
    },
  );

  app.put(
    '/api/v1/triggers/:ref',
    {
      config: { permission: ['triggers', 'update'] },
      schema: {
        tags,
        summary: 'Update a trigger type (partial)',
        params: RefParams,
        body: UpdateTrigger,
        response: { 200: Data(Trigger), ...errors },
      },
    },
    async (req) => {
      const b = req.body;
      assertJsonSchema('param_schema', b.param_schema);
      assertJsonSchema('payload_schema', b.payload_schema);
      const [r] = await db()
        .update(triggers)
        .set({
          ...(b.label !== undefined && { label: b.label }),
          ...(b.description !== undefined && { description: b.description }),
          ...(b.param_schema !== undefined && { paramSchema: b.param_schema }),
          ...(b.payload_schema !== undefined && { payloadSchema: b.payload_schema }),
          ...(b.tags !== undefined && { tags: b.tags }),
          ...(b.enabled !== undefined && { enabled: b.enabled }),
          updatedAt: sql`now()`,
        })
        .where(eq(triggers.ref, req.params.ref))
        .returning();
      if (!r) throw notFound('trigger', req.params.ref);
      return { data: triggerToApi(r) };
    },
  );

  app.delete(
    '/api/v1/triggers/:ref',
    {
      config: { permission: ['triggers', 'delete'] },
      schema: {
        tags,
        summary: 'Delete a trigger type',
        params: RefParams,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const r = await db()
        .delete(triggers)
        .where(eq(triggers.ref, req.params.ref))
        .returning({ id: triggers.id });
      if (!r.length) throw notFound('trigger', req.params.ref);
      return reply.code(204).send(null);
    },
  );
}
