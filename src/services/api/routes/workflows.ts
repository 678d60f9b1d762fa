/**
 * Workflows: `/api/v1/workflows`. A workflow belongs to a pack and is also an action (same ref,
 * runner `workflow`) so that it can be executed like any other; this module writes both rows in one
 * transaction and keeps the action in step with the workflow.
 */
import { and, eq, sql } from 'drizzle-orm';
import semver from 'semver';
import { type Static, Type } from 'typebox';
import { conflict, notFound, validationError } from '../../../domain/errors.ts';
import type { Tx } from '../../../store/database.ts';
import { actions, workflows } from '../../../store/schema.ts';
import {
  assertJsonSchema,
  assertParamSchema,
  listDefinitions,
  packForRef,
  requirePack,
} from '../definitions.ts';
import {
  Data,
  DefinitionListQuery,
  iso,
  JsonSchemaDoc,
  List,
  Ref,
  RefParams,
  Tags,
  Timestamp,
} from '../http.ts';
import type { ApiApp } from '../server.ts';
import { assertNotUsedByRules } from './actions.ts';

const Task = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200, description: 'Unique within the workflow' }) },
  { additionalProperties: true, description: 'A task; its other fields belong to the workflow language' },
);
const Definition = Type.Object(
  {
    tasks: Type.Array(Task, { minItems: 1, maxItems: 5000 }),
  },
  {
    additionalProperties: true,
    description: 'The workflow body: `{tasks: [{name, action, input, next, …}], vars, output, …}`',
  },
);
const Label = Type.String({ minLength: 1, maxLength: 255 });
const Version = Type.String({ minLength: 1, maxLength: 64, description: 'Semantic version, e.g. 1.2.0' });

const Workflow = Type.Object({
  id: Type.Integer(),
  ref: Type.String(),
  pack_ref: Type.String(),
  label: Type.String(),
  description: Type.String(),
  version: Type.String(),
  param_schema: Type.Union([JsonSchemaDoc, Type.Null()]),
  out_schema: Type.Union([JsonSchemaDoc, Type.Null()]),
  definition: Type.Record(Type.String(), Type.Unknown()),
  tags: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const writable = {
  description: Type.Optional(Type.String({ maxLength: 10_000 })),
  version: Type.Optional(Version),
  param_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
  out_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
  tags: Type.Optional(Tags),
  enabled: Type.Optional(Type.Boolean()),
};
const CreateWorkflow = Type.Object(
  {
    ref: Ref,
    pack_ref: Type.Optional(Type.String({ maxLength: 100 })),
    label: Label,
    ...writable,
    definition: Definition,
  },
  { additionalProperties: false },
);
const UpdateWorkflow = Type.Object(
  { label: Type.Optional(Label), ...writable, definition: Type.Optional(Definition) },
  { additionalProperties: false, minProperties: 1 },
);

type Row = typeof workflows.$inferSelect;
export const workflowToApi = (r: Row): Static<typeof Workflow> => ({
  id: r.id,
  ref: r.ref,
  pack_ref: r.packRef,
  label: r.label,
  description: r.description,
  version: r.version,
  param_schema: r.paramSchema ?? null,
  out_schema: r.outSchema ?? null,
  definition: r.definition,
  tags: r.tags,
  enabled: r.enabled,
  created_at: iso(r.createdAt)!,
  updated_at: iso(r.updatedAt)!,
});

const cols = {
  id: workflows.id,
  tags: workflows.tags,
  enabled: workflows.enabled,
  packRef: workflows.packRef,
  search: [workflows.ref, workflows.label, workflows.description],
};
const tags = ['workflows'];
const E = { $ref: 'ErrorBody#' };
const readErrors = { 400: E, 404: E };
const writeErrors = { ...readErrors, 409: E };

/** The checks the body schema cannot express (400 on the first problem). */
function checkFields(b: {
  label?: string | undefined;
  version?: string | undefined;
  param_schema?: Record<string, unknown> | null | undefined;
  out_schema?: Record<string, unknown> | null | undefined;
  definition?: Static<typeof Definition> | undefined;
}): void {
  if (b.label !== undefined && !b.label.trim())
    throw validationError('label must not be blank', { field: 'label' });
  if (b.version !== undefined && semver.valid(b.version) !== b.version)
    throw validationError(`version '${b.version}' is not a semantic version (e.g. 1.0.0)`, {
      field: 'version',
      version: b.version,
    });
  assertParamSchema('param_schema', b.param_schema);
  assertJsonSchema('out_schema', b.out_schema);
  if (b.definition) {
    const seen = new Set<string>();
    const dups = new Set<string>();
    for (const t of b.definition.tasks) {
      if (seen.has(t.name)) dups.add(t.name);
      seen.add(t.name);
    }
    if (dups.size)
      throw validationError(
        `definition has more than one task named ${[...dups].map((d) => `'${d}'`).join(', ')}`,
        {
          field: 'definition.tasks',
          duplicates: [...dups],
        },
      );
  }
}

/**
 * Writes the workflow's action (same ref, runner `workflow`) from the workflow row: creates it, or
 * updates the one that exists. An action of that ref with another runner is a 409.
 */
async function syncAction(tx: Tx, w: Row): Promise<number> {
  const fields = {
    label: w.label,
    description: w.description,
    paramSchema: w.paramSchema ?? {},
    outSchema: w.outSchema ?? null,
    tags: w.tags,
    enabled: w.enabled,
  };
  const [a] = await tx
    .insert(actions)
    .values({
      ref: w.ref,
      packId: w.packId,
      packRef: w.packRef,
      name: w.ref.slice(w.packRef.length + 1),
      runner: 'workflow',
      ...fields,
    })
    .onConflictDoUpdate({
      target: actions.ref,
      set: { ...fields, updatedAt: sql`now()` },
      setWhere: eq(actions.runner, 'workflow'),
    })
    .returning({ id: actions.id });
  if (!a)
    throw conflict(`an action '${w.ref}' already exists and is not a workflow; choose another ref`, {
      ref: w.ref,
    });
  return a.id;
}

export function registerWorkflowRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  app.get(
    '/api/v1/workflows',
    {
      config: { permission: ['workflows', 'read'] },
      schema: {
        tags,
        summary: 'List workflows',
        description:
          'Filters: `tags` (comma-separated, matches any), `enabled`, `search` (ref, label, description), ' +
          '`pack`. Newest first.',
        querystring: DefinitionListQuery,
        response: { 200: List(Workflow), ...readErrors },
      },
    },
    async (req) => (await listDefinitions<Row>(db(), workflows, cols, req.query)).body(workflowToApi),
  );

  app.get(
    '/api/v1/packs/:ref/workflows',
    {
      config: { permission: ['workflows', 'read'] },
      schema: {
        tags,
        summary: "List a pack's workflows",
        params: RefParams,
        querystring: DefinitionListQuery,
        response: { 200: List(Workflow), ...readErrors },
      },
    },
    async (req) => {
      await requirePack(db(), req.params.ref);
      return (await listDefinitions<Row>(db(), workflows, cols, { ...req.query, pack: req.params.ref })).body(
        workflowToApi,
      );
    },
  );

  app.get(
    '/api/v1/workflows/:ref',
    {
      config: { permission: ['workflows', 'read'] },
      schema: {
        tags,
        summary: 'Get a workflow',
        params: RefParams,
        response: { 200: Data(Workflow), ...readErrors },
      },
    },
    async (req) => {
      const [r] = await db().select().from(workflows).where(eq(workflows.ref, req.params.ref));
      if (!r) throw notFound('workflow', req.params.ref);
      return { data: workflowToApi(r) };
    },
  );

  app.post(
    '/api/v1/workflows',
    {
      config: { permission: ['workflows', 'create'] },
      schema: {
        tags,
        summary: 'Create a workflow',
        description: "Also creates its action (same ref, runner 'workflow'), in the same transaction.",
        body: CreateWorkflow,
        response: { 201: Data(Workflow), ...writeErrors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      checkFields(b);
      const row = await app.ctx.store.transaction(async (tx) => {
        const pack = await packForRef(tx, b.ref, b.pack_ref);
        const [w] = await tx
          .insert(workflows)
          .values({
            ref: b.ref,
            packId: pack.id,
            packRef: pack.ref,
            label: b.label,
            description: b.description ?? '',
            version: b.version ?? '1.0.0',
            paramSchema: b.param_schema ?? null,
            outSchema: b.out_schema ?? null,
            definition: b.definition,
            tags: b.tags ?? [],
            enabled: b.enabled ?? true,
          })
          .onConflictDoNothing()
          .returning();
        if (!w) throw conflict(`workflow '${b.ref}' already exists`, { ref: b.ref });
        const actionId = await syncAction(tx, w);
        const [linked] = await tx
          .update(workflows)
          .set({ actionId })
          .where(eq(workflows.id, w.id))
          .returning();
        return linked!;
      });
      return reply.code(201).send({ data: workflowToApi(row) });
    },
  );

  app.put(
    '/api/v1/workflows/:ref',
    {
      config: { permission: ['workflows', 'update'] },
      schema: {
        tags,
        summary: 'Update a workflow (partial)',
        description: 'Its action follows (label, description, parameters, output schema, tags, enabled).',
        params: RefParams,
        body: UpdateWorkflow,
        response: { 200: Data(Workflow), ...writeErrors },
      },
    },
    async (req) => {
      const b = req.body;
      checkFields(b);
      const row = await app.ctx.store.transaction(async (tx) => {
        const [w] = await tx
          .update(workflows)
          .set({
            ...(b.label !== undefined && { label: b.label }),
            ...(b.description !== undefined && { description: b.description }),
            ...(b.version !== undefined && { version: b.version }),
            ...(b.param_schema !== undefined && { paramSchema: b.param_schema }),
            ...(b.out_schema !== undefined && { outSchema: b.out_schema }),
            ...(b.definition !== undefined && { definition: b.definition }),
            ...(b.tags !== undefined && { tags: b.tags }),
            ...(b.enabled !== undefined && { enabled: b.enabled }),
            updatedAt: sql`now()`,
          })
          .where(eq(workflows.ref, req.params.ref))
          .returning();
        if (!w) throw notFound('workflow', req.params.ref);
        const actionId = await syncAction(tx, w);
        if (actionId === w.actionId) return w;
        const [linked] = await tx
          .update(workflows)
          .set({ actionId })
          .where(eq(workflows.id, w.id))
          .returning();
        return linked!;
      });
      return { data: workflowToApi(row) };
    },
  );

  app.delete(
    '/api/v1/workflows/:ref',
    {
      config: { permission: ['workflows', 'delete'] },
      schema: {
        tags,
        summary: 'Delete a workflow',
        description: 'Deletes its action too. Refused (409) while rules use it.',
        params: RefParams,
        response: { 204: Type.Null(), ...writeErrors },
      },
    },
    async (req, reply) => {
      const ref = req.params.ref;
      await app.ctx.store.transaction(async (tx) => {
        const [w] = await tx
          .select({ id: workflows.id })
          .from(workflows)
          .where(eq(workflows.ref, ref))
          .for('update');
        if (!w) throw notFound('workflow', ref);
        await assertNotUsedByRules(tx, 'workflow', ref);
        await tx.delete(workflows).where(eq(workflows.id, w.id));
        await tx.delete(actions).where(and(eq(actions.ref, ref), eq(actions.runner, 'workflow')));
      });
      return reply.code(204).send(null);
    },
  );
}
