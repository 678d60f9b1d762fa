/**
 * Rules: `/api/v1/rules`. A rule belongs to a pack and says: when an event of `trigger_ref` matches
 * `criteria`, run `action_ref` with `action_params` (templates over the event). `POST …/test` tries
 * a rule on a payload without side effects. Every write announces itself on the bus
 * (`notify.definitions.changed`) so that the rule caches of every process reload.
 */
import { eq, sql } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { conflict, notFound, type Problem, unprocessable, validationError } from '../../../domain/errors.ts';
import { validateAgainst } from '../../../domain/json-schema.ts';
import { CRITERIA_OPERATORS, criteriaProblems, SEARCH_CONDITIONS } from '../../../rules/operators-list.ts';
import type { Db } from '../../../store/database.ts';
import { actions, rules, triggers } from '../../../store/schema.ts';
import { KeyStore } from '../../keys/key-store.ts';
import { type DryRunEvent, type DryRunRule, dryRun, loadEvent } from '../../rules-engine/dry-run.ts';
import { criteriaTemplateProblems, paramTemplateProblems } from '../../rules-engine/template-check.ts';
import { hasPermission } from '../auth.ts';
import {
  announceDefinitionsChanged,
  listDefinitions,
  packForRef,
  registerDefinitionReads,
} from '../definitions.ts';
import { Data, DefinitionListQuery, iso, JsonObject, Ref, RefParams, Tags, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';

const Criteria = Type.Record(Type.String(), Type.Unknown(), {
  description:
    'Conditions that must all hold. Keys are dotted paths into the event ("trigger.severity", ' +
    '"payload.items.0.name") mapping to `{type, pattern}` where type is one of ' +
    `${CRITERIA_OPERATORS.join(', ')} (\`search\` also takes \`condition\`: ${SEARCH_CONDITIONS.join('|')} ` +
    'and a pattern of item criteria); the optional key `expression` holds a "{{ … }}" template for ' +
    'anything else (OR, arithmetic).',
});

const Rule = Type.Object({
  id: Type.Integer(),
  ref: Type.String(),
  pack_ref: Type.String(),
  name: Type.String(),
  label: Type.String(),
  description: Type.String(),
  trigger_ref: Type.String(),
  trigger_params: JsonObject,
  criteria: JsonObject,
  action_ref: Type.String(),
  action_params: JsonObject,
  tags: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  owner_login: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const writable = {
  label: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  description: Type.Optional(Type.String({ maxLength: 10_000 })),
  trigger_ref: Type.Optional(Ref),
  trigger_params: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      description: "Parameters of the trigger (validated against the trigger's param_schema)",
    }),
  ),
  criteria: Type.Optional(Criteria),
  action_ref: Type.Optional(Ref),
  action_params: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      description: 'Parameters of the action; values may be templates ("{{ trigger.host }}")',
    }),
  ),
  tags: Type.Optional(Tags),
  enabled: Type.Optional(Type.Boolean()),
};
const CreateRule = Type.Object(
  {
    ref: Ref,
    pack_ref: Type.Optional(Type.String({ maxLength: 100 })),
    ...writable,
    trigger_ref: Ref,
    action_ref: Ref,
  },
  { additionalProperties: false },
);
const UpdateRule = Type.Object(writable, { additionalProperties: false, minProperties: 1 });

const InlineRule = Type.Object(
  {
    ref: Type.Optional({
      ...Ref,
      description: "The rule's ref as templates see it (`rule.ref`); default `test.inline`",
    }),
    trigger_ref: Ref,
    trigger_params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: 'Parameters of the trigger instance' }),
    ),
    criteria: Type.Optional(Criteria),
    action_ref: Ref,
    action_params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: 'Parameters of the action (templates)' }),
    ),
  },
  { additionalProperties: false, description: 'A rule that is not stored' },
);
const RuleTestBody = Type.Object(
  {
    rule: Type.Union([
      Type.String({ minLength: 1, maxLength: 300, description: 'Ref of a stored rule' }),
      InlineRule,
    ]),
    payload: Type.Optional(Type.Unknown({ description: 'The event payload to try (instead of event_id)' })),
    event_id: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'A stored event to try (instead of payload)',
      }),
    ),
  },
  { additionalProperties: false },
);
const DryRunProblem = Type.Object({ stage: Type.String(), message: Type.String() });
const RuleTestResult = Type.Object({
  matched: Type.Boolean({ description: 'Whether the criteria hold' }),
  would_execute: Type.Boolean({ description: 'Whether the rules engine would request an execution' }),
  criteria: Type.Array(Type.Record(Type.String(), Type.Unknown()), {
    description: 'One result per criterion',
  }),
  parameters: Type.Union([JsonObject, Type.Null()], {
    description: 'Rendered action parameters (secret ones as {"$secret": true}); null when unmatched',
  }),
  secret_parameters: Type.Array(Type.String()),
  errors: Type.Array(DryRunProblem),
  notes: Type.Array(Type.String()),
});

const RuleListQuery = Type.Object(
  {
    ...DefinitionListQuery.properties,
    trigger: Type.Optional(Type.String({ maxLength: 300, description: 'only rules of this trigger' })),
    action: Type.Optional(Type.String({ maxLength: 300, description: 'only rules running this action' })),
  },
  { additionalProperties: false },
);

type Row = typeof rules.$inferSelect;
export const ruleToApi = (r: Row): Static<typeof Rule> => ({
  id: r.id,
  ref: r.ref,
  pack_ref: r.packRef,
  name: r.name,
  label: r.label,
  description: r.description,
  trigger_ref: r.triggerRef,
  trigger_params: r.triggerParams,
  criteria: r.criteria,
  action_ref: r.actionRef,
  action_params: r.actionParams,
  tags: r.tags,
  enabled: r.enabled,
  owner_login: r.ownerLogin ?? null,
  created_at: iso(r.createdAt)!,
  updated_at: iso(r.updatedAt)!,
});

const cols = {
  id: rules.id,
  tags: rules.tags,
  enabled: rules.enabled,
  packRef: rules.packRef,
  search: [rules.ref, rules.label, rules.description],
};
const tags = ['rules'];
const E = { $ref: 'ErrorBody#' };
const readErrors = { 400: E, 404: E };
const writeErrors = { ...readErrors, 409: E, 422: E };

function assertCriteria(criteria: Record<string, unknown> | undefined): void {
  if (criteria === undefined) return;
  const problems = criteriaProblems(criteria);
  if (problems.length)
    throw validationError(
      `criteria${problems[0]!.path === '/' ? '' : ` at ${problems[0]!.path}`}: ${problems[0]!.message}`,
      {
        field: 'criteria',
        problems,
      },
    );
  assertTemplates('criteria', criteriaTemplateProblems(criteria));
}

/** Templates that cannot compile are refused when the rule is saved (400 naming the place). */
function assertTemplates(field: 'criteria' | 'action_params', problems: Problem[]): void {
  if (problems.length)
    throw validationError(`template at ${problems[0]!.path}: ${problems[0]!.message}`, { field, problems });
}

/**
 * The trigger and the action must exist (422 naming what is missing); `trigger_params` must satisfy
 * the trigger's param_schema when it has one (400 with the problems).
 */
async function checkReferences(
  db: Db,
  triggerRef: string,
  actionRef: string,
  triggerParams: Record<string, unknown>,
): Promise<void> {
  const [[trigger], [action]] = await Promise.all([
    db.select({ paramSchema: triggers.paramSchema }).from(triggers).where(eq(triggers.ref, triggerRef)),
    db.select({ id: actions.id }).from(actions).where(eq(actions.ref, actionRef)),
  ]);
  const missing: Problem[] = [];
  if (!trigger)
    missing.push({ path: '/trigger_ref', message: `trigger type '${triggerRef}' does not exist` });
  if (!action) missing.push({ path: '/action_ref', message: `action '${actionRef}' does not exist` });
  if (missing.length)
    throw unprocessable(missing.map((m) => m.message).join('; '), {
      problems: missing,
      ...(!trigger && { trigger_ref: triggerRef }),
      ...(!action && { action_ref: actionRef }),
    });
  const schema = trigger!.paramSchema;
  if (schema) {
    const problems = validateAgainst(schema, structuredClone(triggerParams));
    if (problems.length)
      throw validationError(
        `trigger_params do not fit trigger '${triggerRef}': ${problems[0]!.path} ${problems[0]!.message}`,
        { field: 'trigger_params', trigger_ref: triggerRef, problems },
      );
  }
}

function notifyRulesChanged(app: ApiApp, refs: string[], triggerRefs: string[]): void {
  announceDefinitionsChanged(app.ctx, { resource: 'rules', refs, trigger_refs: [...new Set(triggerRefs)] });
}

export function registerRuleRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  const list = (q: Static<typeof RuleListQuery>) => {
    const extra = [];
    if (q.trigger) extra.push(eq(rules.triggerRef, q.trigger));
    if (q.action) extra.push(eq(rules.actionRef, q.action));
    return listDefinitions<Row>(db(), rules, cols, q, extra);
  };

  registerDefinitionReads(app, {
    resource: 'rules',
    one: 'rule',
    many: 'rules',
    kind: 'rule',
    filters: '`trigger`, `action`',
    item: Rule,
    query: RuleListQuery,
    list,
    get: async (ref) => (await db().select().from(rules).where(eq(rules.ref, ref)))[0],
    toApi: ruleToApi,
  });

  app.post(
    '/api/v1/rules/test',
    {
      config: { permission: ['rules', 'read'] },
      schema: {
        tags,
        summary: 'Try a rule on an event (dry run)',
        description:
          'Evaluates a stored rule (`rule: "<ref>"`) or an inline one (`rule: {trigger_ref, criteria, ' +
          'action_ref, action_params}`) against a `payload` or a stored event (`event_id`), exactly as the ' +
          'rules engine would, and changes nothing. Answers whether the criteria match (with a result per ' +
          'criterion), the parameters the action would get (secret ones redacted) and every error. ' +
          'Encrypted keys are decrypted for the templates only when the caller has the decrypt permission ' +
          'on keys.',
        body: RuleTestBody,
        response: { 200: Data(RuleTestResult), ...readErrors },
      },
    },
    async (req) => {
      const b = req.body;
      if ((b.payload === undefined) === (b.event_id === undefined))
        throw validationError('give either `payload` or `event_id`', { fields: ['payload', 'event_id'] });
      let rule: DryRunRule;
      if (typeof b.rule === 'string') {
        const [r] = await db().select().from(rules).where(eq(rules.ref, b.rule));
        if (!r) throw notFound('rule', b.rule);
        rule = r;
      } else {
        assertCriteria(b.rule.criteria);
        assertTemplates('action_params', paramTemplateProblems(b.rule.action_params));
        const ref = b.rule.ref ?? 'test.inline';
        rule = {
          ref,
          packRef: ref.slice(0, ref.indexOf('.')),
          triggerRef: b.rule.trigger_ref,
          triggerParams: b.rule.trigger_params ?? {},
          criteria: b.rule.criteria ?? {},
          actionRef: b.rule.action_ref,
          actionParams: b.rule.action_params ?? {},
        };
      }
      let ev: DryRunEvent | undefined;
      if (b.event_id !== undefined) {
        ev = await loadEvent(db(), b.event_id);
        if (!ev) throw notFound('event', b.event_id);
      } else
        ev = {
          id: null,
          triggerRef: rule.triggerRef,
          triggerParams: rule.triggerParams,
          source: 'test',
          createdAt: new Date(),
          payload: b.payload,
        };
      const data = await dryRun(db(), new KeyStore(app.ctx.store, app.ctx.cipher), rule, ev, {
        decryptKeys: hasPermission(req, 'keys', 'decrypt'),
      });
      return { data };
    },
  );

  app.post(
    '/api/v1/rules',
    {
      config: { permission: ['rules', 'create'] },
      schema: {
        tags,
        summary: 'Create a rule',
        description:
          'The trigger and the action must exist (422); `trigger_params` must fit the trigger (400).',
        body: CreateRule,
        response: { 201: Data(Rule), ...writeErrors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      assertCriteria(b.criteria);
      assertTemplates('action_params', paramTemplateProblems(b.action_params));
      const pack = await packForRef(db(), b.ref, b.pack_ref);
      await checkReferences(db(), b.trigger_ref, b.action_ref, b.trigger_params ?? {});
      const [r] = await db()
        .insert(rules)
        .values({
          ref: b.ref,
          packId: pack.id,
          packRef: pack.ref,
          name: pack.name,
          label: b.label ?? pack.name,
          description: b.description ?? '',
          triggerRef: b.trigger_ref,
          triggerParams: b.trigger_params ?? {},
          criteria: b.criteria ?? {},
          actionRef: b.action_ref,
          actionParams: b.action_params ?? {},
          tags: b.tags ?? [],
          enabled: b.enabled ?? true,
          ownerLogin: req.principal?.login ?? null,
        })
        .onConflictDoNothing()
        .returning();
      if (!r) throw conflict(`rule '${b.ref}' already exists`, { ref: b.ref });
      notifyRulesChanged(app, [r.ref], [r.triggerRef]);
      return reply.code(201).send({ data: ruleToApi(r) });
    },
  );

  app.put(
    '/api/v1/rules/:ref',
    {
      config: { permission: ['rules', 'update'] },
      schema: {
        tags,
        summary: 'Update a rule (partial)',
        params: RefParams,
        body: UpdateRule,
        response: { 200: Data(Rule), ...writeErrors },
      },
    },
    async (req) => {
      const b = req.body;
      const ref = req.params.ref;
      assertCriteria(b.criteria);
      assertTemplates('action_params', paramTemplateProblems(b.action_params));
      const [cur] = await db().select().from(rules).where(eq(rules.ref, ref));
      if (!cur) throw notFound('rule', ref);
      if (b.trigger_ref !== undefined || b.action_ref !== undefined || b.trigger_params !== undefined)
        await checkReferences(
          db(),
          b.trigger_ref ?? cur.triggerRef,
          b.action_ref ?? cur.actionRef,
          b.trigger_params ?? cur.triggerParams,
        );
      const [r] = await db()
        .update(rules)
        .set({
          ...(b.label !== undefined && { label: b.label }),
          ...(b.description !== undefined && { description: b.description }),
          ...(b.trigger_ref !== undefined && { triggerRef: b.trigger_ref }),
          ...(b.trigger_params !== undefined && { triggerParams: b.trigger_params }),
          ...(b.criteria !== undefined && { criteria: b.criteria }),
          ...(b.action_ref !== undefined && { actionRef: b.action_ref }),
          ...(b.action_params !== undefined && { actionParams: b.action_params }),
          ...(b.tags !== undefined && { tags: b.tags }),
          ...(b.enabled !== undefined && { enabled: b.enabled }),
          updatedAt: sql`now()`,
        })
        .where(eq(rules.id, cur.id))
        .returning();
      if (!r) throw notFound('rule', ref);
      notifyRulesChanged(app, [r.ref], [cur.triggerRef, r.triggerRef]);
      return { data: ruleToApi(r) };
    },
  );

  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    app.post(
      `/api/v1/rules/:ref/${verb}`,
      {
        config: { permission: ['rules', 'update'] },
        schema: {
          tags,
          summary: `${verb === 'enable' ? 'Enable' : 'Disable'} a rule`,
          description: 'Idempotent; answers the rule.',
          params: RefParams,
          response: { 200: Data(Rule), ...readErrors },
        },
      },
      async (req) => {
        const [r] = await db()
          .update(rules)
          .set({ enabled, updatedAt: sql`now()` })
          .where(eq(rules.ref, req.params.ref))
          .returning();
        if (!r) throw notFound('rule', req.params.ref);
        notifyRulesChanged(app, [r.ref], [r.triggerRef]);
        return { data: ruleToApi(r) };
      },
    );
  }

  app.delete(
    '/api/v1/rules/:ref',
    {
      config: { permission: ['rules', 'delete'] },
      schema: {
        tags,
        summary: 'Delete a rule',
        params: RefParams,
        response: { 204: Type.Null(), ...readErrors },
      },
    },
    async (req, reply) => {
      const r = await db()
        .delete(rules)
        .where(eq(rules.ref, req.params.ref))
        .returning({ id: rules.id, triggerRef: rules.triggerRef });
      if (!r.length) throw notFound('rule', req.params.ref);
      notifyRulesChanged(app, [req.params.ref], [r[0]!.triggerRef]);
      return reply.code(204).send(null);
    },
  );
}
