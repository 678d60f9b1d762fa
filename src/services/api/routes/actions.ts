/**
 * Actions: `/api/v1/actions`. An action belongs to a pack and names the runner that carries it out.
 * Workflows are actions too (runner `workflow`), but they are written through `/api/v1/workflows`,
 * which keeps the workflow and its action in step; this module refuses to write them.
 */
import { eq, sql } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { conflict, notFound, validationError } from '../../../domain/errors.ts';
import { RUNNER_REFS } from '../../../domain/runners.ts';
import type { Db } from '../../../store/database.ts';
import { actions, rules } from '../../../store/schema.ts';
import {
  assertEntryPoint,
  assertJsonSchema,
  assertParamSchema,
  listDefinitions,
  packForRef,
  registerDefinitionReads,
} from '../definitions.ts';
import {
  Data,
  DefinitionListQuery,
  iso,
  JsonObject,
  JsonSchemaDoc,
  Ref,
  RefParams,
  Tags,
  Timestamp,
} from '../http.ts';
import type { ApiApp } from '../server.ts';

const Runner = Type.String({
  maxLength: 100,
  description: `The runner that carries the action out: ${RUNNER_REFS.filter((r) => r !== 'workflow').join(', ')} (workflows are created through /api/v1/workflows)`,
});
const TimeoutSeconds = Type.Integer({
  minimum: 1,
  maximum: 604_800,
  description: 'Default timeout of its executions, in seconds (at most 7 days)',
});

export const RetryPolicy = Type.Object(
  {
    count: Type.Integer({ minimum: 0, maximum: 100, description: 'How many times to retry' }),
    delay: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400, description: 'Seconds before a retry' })),
    backoff: Type.Optional(Type.Enum(['constant', 'linear', 'exponential'])),
    max_delay: Type.Optional(
      Type.Number({ minimum: 0, maximum: 604_800, description: 'Upper bound of the delay, in seconds' }),
    ),
    on: Type.Optional(
      Type.Array(Type.Enum(['failed', 'timeout', 'abandoned']), {
        minItems: 1,
        uniqueItems: true,
        description:
          "Which outcomes are retried (default failed and timeout; 'abandoned' retries executions whose worker vanished)",
      }),
    ),
  },
  { additionalProperties: false, description: 'Retry on failure/timeout' },
);
export const ConcurrencyPolicy = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100_000, description: 'Executions allowed at once' }),
    action: Type.Optional(
      Type.Enum(['delay', 'cancel'], { description: 'What happens to executions beyond the limit' }),
    ),
    group_by: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
        maxItems: 20,
        uniqueItems: true,
        description: 'Parameter names; the limit applies per distinct combination of their values',
      }),
    ),
  },
  { additionalProperties: false, description: 'Limits concurrent executions of the action' },
);

const Action = Type.Object({
  id: Type.Integer(),
  ref: Type.String(),
  pack_ref: Type.String(),
  name: Type.String(),
  label: Type.String(),
  description: Type.String(),
  runner: Type.String(),
  entry_point: Type.String(),
  param_schema: JsonSchemaDoc,
  out_schema: Type.Union([JsonSchemaDoc, Type.Null()]),
  tags: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  timeout_seconds: Type.Union([Type.Integer(), Type.Null()]),
  retry_policy: Type.Union([Type.Partial(RetryPolicy), Type.Null()]),
  concurrency_policy: Type.Union([Type.Partial(ConcurrencyPolicy), Type.Null()]),
  meta: JsonObject,
  created_at: Timestamp,
  updated_at: Timestamp,
});

const writable = {
  label: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  description: Type.Optional(Type.String({ maxLength: 10_000 })),
  runner: Type.Optional(Runner),
  entry_point: Type.Optional(
    Type.String({
      maxLength: 10_000,
      description: "Script path relative to the pack's actions/ folder (script runners)",
    }),
  ),
  param_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
  out_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
  tags: Type.Optional(Tags),
  enabled: Type.Optional(Type.Boolean()),
  timeout_seconds: Type.Optional(Type.Union([TimeoutSeconds, Type.Null()])),
  retry_policy: Type.Optional(Type.Union([RetryPolicy, Type.Null()])),
  concurrency_policy: Type.Optional(Type.Union([ConcurrencyPolicy, Type.Null()])),
  meta: Type.Optional(JsonObject),
};
const CreateAction = Type.Object(
  { ref: Ref, pack_ref: Type.Optional(Type.String({ maxLength: 100 })), ...writable, runner: Runner },
  { additionalProperties: false },
);
const UpdateAction = Type.Object(writable, { additionalProperties: false, minProperties: 1 });
type Writable = Static<typeof UpdateAction>;

const ActionListQuery = Type.Object(
  {
    ...DefinitionListQuery.properties,
    runner: Type.Optional(Type.String({ maxLength: 100, description: 'only actions of this runner' })),
  },
  { additionalProperties: false },
);

type Row = typeof actions.$inferSelect;
export const actionToApi = (r: Row): Static<typeof Action> => ({
  id: r.id,
  ref: r.ref,
  pack_ref: r.packRef,
  name: r.name,
  label: r.label,
  description: r.description,
  runner: r.runner,
  entry_point: r.entryPoint,
  param_schema: r.paramSchema,
  out_schema: r.outSchema ?? null,
  tags: r.tags,
  enabled: r.enabled,
  timeout_seconds: r.timeoutSeconds ?? null,
  retry_policy: r.retryPolicy ?? null,
  concurrency_policy: r.concurrencyPolicy ?? null,
  meta: r.meta,
  created_at: iso(r.createdAt)!,
  updated_at: iso(r.updatedAt)!,
});

const cols = {
  id: actions.id,
  tags: actions.tags,
  enabled: actions.enabled,
  packRef: actions.packRef,
  search: [actions.ref, actions.label, actions.description],
};
const tags = ['actions'];
const E = { $ref: 'ErrorBody#' };
const readErrors = { 400: E, 404: E };
const writeErrors = { ...readErrors, 409: E };

const workflowsOnly = (ref: string) =>
  conflict(`'${ref}' is a workflow action; create, change and delete workflows through /api/v1/workflows`, {
    ref,
    runner: 'workflow',
    use: '/api/v1/workflows',
  });

/** Checks the fields of an action as they will be after the write (400 on the first problem). */
function checkAction(a: {
  ref: string;
  runner: string;
  entryPoint: string;
  paramSchema: Record<string, unknown>;
  concurrencyPolicy: Static<typeof ConcurrencyPolicy> | null;
  retryPolicy: Static<typeof RetryPolicy> | null;
}): void {
  if (a.runner === 'workflow') throw workflowsOnly(a.ref);
  if (!(RUNNER_REFS as readonly string[]).includes(a.runner))
    throw validationError(
      `unknown runner '${a.runner}'; expected one of ${RUNNER_REFS.filter((r) => r !== 'workflow').join(', ')}`,
      { field: 'runner', runner: a.runner, allowed: RUNNER_REFS.filter((r) => r !== 'workflow') },
    );
  assertEntryPoint(a.runner, a.entryPoint);
  const rp = a.retryPolicy;
  if (rp?.max_delay !== undefined && rp.delay !== undefined && rp.max_delay < rp.delay)
    throw validationError('retry_policy.max_delay must not be smaller than retry_policy.delay', {
      field: 'retry_policy',
    });
  const groupBy = a.concurrencyPolicy?.group_by ?? [];
  const props = a.paramSchema.properties;
  if (groupBy.length && typeof props === 'object' && props !== null) {
    const unknown = groupBy.filter((p) => !Object.hasOwn(props, p));
    if (unknown.length)
      throw validationError(
        `concurrency_policy.group_by names parameters the action does not declare: ${unknown.join(', ')}`,
        { field: 'concurrency_policy.group_by', unknown },
      );
  }
}

/** Rules that would be left pointing at nothing if `ref` went away: a 409 naming them. */
export async function assertNotUsedByRules(db: Db, what: string, ref: string): Promise<void> {
  const users = await db.select({ ref: rules.ref }).from(rules).where(eq(rules.actionRef, ref)).limit(20);
  if (users.length)
    throw conflict(
      `${what} '${ref}' is used by rule(s) ${users.map((u) => u.ref).join(', ')}; change or delete them first`,
      { ref, rules: users.map((u) => u.ref) },
    );
}

export function registerActionRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  const list = (q: Static<typeof ActionListQuery>) =>
    listDefinitions<Row>(db(), actions, cols, q, q.runner ? [eq(actions.runner, q.runner)] : []);

  registerDefinitionReads(app, {
    resource: 'actions',
    one: 'action',
    many: 'actions',
    kind: 'action',
    filters: '`runner`',
    item: Action,
    query: ActionListQuery,
    list: list,
    get: async (ref) => (await db().select().from(actions).where(eq(actions.ref, ref)))[0],
    toApi: actionToApi,
  });

  app.post(
    '/api/v1/actions',
    {
      config: { permission: ['actions', 'create'] },
      schema: {
        tags,
        summary: 'Create an action',
        description: "Runner 'workflow' is refused (409): workflows are created through /api/v1/workflows.",
        body: CreateAction,
        response: { 201: Data(Action), ...writeErrors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (b.runner === 'workflow') throw workflowsOnly(b.ref);
      assertParamSchema('param_schema', b.param_schema);
      assertJsonSchema('out_schema', b.out_schema);
      const paramSchema = b.param_schema ?? {};
      checkAction({
        ref: b.ref,
        runner: b.runner,
        entryPoint: b.entry_point ?? '',
        paramSchema,
        retryPolicy: b.retry_policy ?? null,
        concurrencyPolicy: b.concurrency_policy ?? null,
      });
      const pack = await packForRef(db(), b.ref, b.pack_ref);
      const [r] = await db()
        .insert(actions)
        .values({
          ref: b.ref,
          packId: pack.id,
          packRef: pack.ref,
          name: pack.name,
          label: b.label ?? pack.name,
          description: b.description ?? '',
          runner: b.runner,
          entryPoint: b.entry_point ?? '',
          paramSchema,
          outSchema: b.out_schema ?? null,
          tags: b.tags ?? [],
          enabled: b.enabled ?? true,
          timeoutSeconds: b.timeout_seconds ?? null,
          retryPolicy: b.retry_policy ?? null,
          concurrencyPolicy: b.concurrency_policy ?? null,
          meta: b.meta ?? {},
        })
        .onConflictDoNothing()
        .returning();
      if (!r) throw conflict(`action '${b.ref}' already exists`, { ref: b.ref });
      return reply.code(201).send({ data: actionToApi(r) });
    },
  );

  app.put(
    '/api/v1/actions/:ref',
    {
      config: { permission: ['actions', 'update'] },
      schema: {
        tags,
        summary: 'Update an action (partial)',
        description: 'Workflow actions are refused (409): change them through /api/v1/workflows.',
        params: RefParams,
        body: UpdateAction,
        response: { 200: Data(Action), ...writeErrors },
      },
    },
    async (req) => {
      const b: Writable = req.body;
      const ref = req.params.ref;
      assertParamSchema('param_schema', b.param_schema);
      assertJsonSchema('out_schema', b.out_schema);
      return app.ctx.store.transaction(async (tx) => {
        const [cur] = await tx.select().from(actions).where(eq(actions.ref, ref)).for('update');
        if (!cur) throw notFound('action', ref);
        if (cur.runner === 'workflow') throw workflowsOnly(ref);
        const paramSchema = b.param_schema === undefined ? cur.paramSchema : (b.param_schema ?? {});
        const retryPolicy = b.retry_policy === undefined ? cur.retryPolicy : b.retry_policy;
        const concurrencyPolicy =
          b.concurrency_policy === undefined ? cur.concurrencyPolicy : b.concurrency_policy;
        checkAction({
          ref,
          runner: b.runner ?? cur.runner,
          entryPoint: b.entry_point ?? cur.entryPoint,
          paramSchema,
          retryPolicy: retryPolicy as Static<typeof RetryPolicy> | null,
          concurrencyPolicy: concurrencyPolicy as Static<typeof ConcurrencyPolicy> | null,
        });
        const [r] = await tx
          .update(actions)
          .set({
            ...(b.label !== undefined && { label: b.label }),
            ...(b.description !== undefined && { description: b.description }),
            ...(b.runner !== undefined && { runner: b.runner }),
            ...(b.entry_point !== undefined && { entryPoint: b.entry_point }),
            ...(b.param_schema !== undefined && { paramSchema }),
            ...(b.out_schema !== undefined && { outSchema: b.out_schema }),
            ...(b.tags !== undefined && { tags: b.tags }),
            ...(b.enabled !== undefined && { enabled: b.enabled }),
            ...(b.timeout_seconds !== undefined && { timeoutSeconds: b.timeout_seconds }),
            ...(b.retry_policy !== undefined && { retryPolicy: b.retry_policy }),
            ...(b.concurrency_policy !== undefined && { concurrencyPolicy: b.concurrency_policy }),
            ...(b.meta !== undefined && { meta: b.meta }),
            updatedAt: sql`now()`,
          })
          .where(eq(actions.id, cur.id))
          .returning();
        return { data: actionToApi(r!) };
      });
    },
  );

  app.delete(
    '/api/v1/actions/:ref',
    {
      config: { permission: ['actions', 'delete'] },
      schema: {
        tags,
        summary: 'Delete an action',
        description:
          'Refused (409) while rules use the action, and for workflow actions (delete the workflow instead).',
        params: RefParams,
        response: { 204: Type.Null(), ...writeErrors },
      },
    },
    async (req, reply) => {
      const ref = req.params.ref;
      await app.ctx.store.transaction(async (tx) => {
        const [cur] = await tx
          .select({ id: actions.id, runner: actions.runner })
          .from(actions)
          .where(eq(actions.ref, ref))
          .for('update');
        if (!cur) throw notFound('action', ref);
        if (cur.runner === 'workflow') throw workflowsOnly(ref);
        await assertNotUsedByRules(tx, 'action', ref);
        await tx.delete(actions).where(eq(actions.id, cur.id));
      });
      return reply.code(204).send(null);
    },
  );
}
