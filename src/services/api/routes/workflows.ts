/**
 * Workflows: `/api/v1/workflows`. A workflow belongs to a pack and is also an action (same ref,
 * runner `workflow`) so that it can be executed like any other; this module writes both rows in one
 * transaction and keeps the action in step with the workflow.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import semver from 'semver';
import { type Static, Type } from 'typebox';
import { AppError, conflict, notFound, unprocessable, validationError } from '../../../domain/errors.ts';
import { isRef } from '../../../domain/refs.ts';
import { workflowFilePath } from '../../../packs/loader.ts';
import { MAX_YAML_BYTES, YamlSource } from '../../../packs/yaml-source.ts';
import type { Db, Tx } from '../../../store/database.ts';
import { actions, packs, workflows } from '../../../store/schema.ts';
import {
  type ActionLookup,
  DEFAULT_INQUIRY_ACTIONS,
  parseRehearsalSpec,
  type RehearsalOptions,
  type RehearsalReport,
  rehearse,
  runRehearsalSpec,
  validateWorkflow,
  validateWorkflowResource,
  type WorkflowProblem,
} from '../../../workflow/index.ts';
import {
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
  parseIsoTime,
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
const writeErrors = { ...readErrors, 409: E, 422: E };

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

// ───────────────────────────── semantic validation ─────────────────────────────

/** One problem of a workflow, as the API reports it. */
export const WorkflowProblemOut = Type.Object({
  task: Type.Union([Type.String(), Type.Null()], { description: 'The task concerned, when there is one' }),
  path: Type.String({
    description:
      'Where: `definition.tasks[2].next[0].do[1]`, `param_schema.x`, a top-level field, or a path of the YAML text',
  }),
  message: Type.String(),
  severity: Type.Union([Type.Literal('error'), Type.Literal('warning')]),
  line: Type.Optional(
    Type.Integer({ description: 'Line in the YAML text (when the workflow was given as YAML)' }),
  ),
});
export type WorkflowProblemOut = Static<typeof WorkflowProblemOut>;

const WrittenWorkflow = Type.Object({
  data: Workflow,
  warnings: Type.Array(WorkflowProblemOut, {
    description: 'What the validator found worth a look (the workflow was saved)',
  }),
});

const toProblem = (p: WorkflowProblem, line?: number): WorkflowProblemOut => ({
  task: p.task ?? null,
  path: p.path,
  message: p.message,
  severity: p.severity,
  ...(line !== undefined && { line }),
});

interface Checked {
  errors: WorkflowProblemOut[];
  warnings: WorkflowProblemOut[];
}

const split = (list: WorkflowProblemOut[]): Checked => ({
  errors: list.filter((p) => p.severity === 'error'),
  warnings: list.filter((p) => p.severity === 'warning'),
});

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The action refs named by the tasks of a raw definition (tasks as a list or as a mapping). */
function taskActionRefs(raw: unknown): string[] {
  const tasks = isObj(raw) ? raw.tasks : undefined;
  const list: unknown[] = Array.isArray(tasks) ? tasks : isObj(tasks) ? Object.values(tasks) : [];
  const refs = new Set<string>();
  for (const t of list) if (isObj(t) && typeof t.action === 'string' && isRef(t.action)) refs.add(t.action);
  return [...refs];
}

export interface StoreLookup {
  lookup: ActionLookup;
  /** `core.ask` and every action run by the inquiry runner. */
  inquiryActions: string[];
}

/**
 * What the validator needs to know about the actions a workflow names, read from the store: the
 * parameter schema of each one that exists. An action missing from an installed pack is unknown (an
 * error); one of a pack that is not installed is only a warning, since the pack may arrive later.
 * `self` is the workflow being written, which may run itself before its action exists.
 */
export async function storeActionLookup(
  db: Db,
  refs: readonly string[],
  self?: { ref: string; paramSchema: Record<string, unknown> | null },
): Promise<StoreLookup> {
  const found = new Map<string, { paramSchema: Record<string, unknown>; runner: string }>();
  const installed = new Set<string>();
  const packOf = (ref: string) => ref.slice(0, ref.indexOf('.'));
  if (refs.length) {
    const [rows, packRows] = await Promise.all([
      db
        .select({ ref: actions.ref, paramSchema: actions.paramSchema, runner: actions.runner })
        .from(actions)
        .where(inArray(actions.ref, [...refs])),
      db
        .select({ ref: packs.ref })
        .from(packs)
        .where(inArray(packs.ref, [...new Set(refs.map(packOf))])),
    ]);
    for (const r of rows) found.set(r.ref, r);
    for (const r of packRows) installed.add(r.ref);
  }
  const lookup: ActionLookup = (ref) => {
    if (self && ref === self.ref) return { paramSchema: self.paramSchema ?? {} };
    const a = found.get(ref);
    if (a) return { paramSchema: a.runner === 'inquiry' ? withAssignees(a.paramSchema) : a.paramSchema };
    return installed.has(packOf(ref)) ? undefined : 'unknown-pack';
  };
  const inquiryActions = new Set(DEFAULT_INQUIRY_ACTIONS);
  for (const [ref, a] of found) if (a.runner === 'inquiry') inquiryActions.add(ref);
  return { lookup, inquiryActions: [...inquiryActions] };
}

/**
 * The parameters of an inquiry action as a workflow task may give them: who may answer can also be
 * written `users: [...]` and `roles: [...]` at the top of the input (folded into `assignees`).
 */
function withAssignees(schema: Record<string, unknown>): Record<string, unknown> {
  if (!isObj(schema.properties)) return schema;
  const names = { type: 'array', items: { type: 'string' } };
  return { ...schema, properties: { users: names, roles: names, ...schema.properties } };
}

/** Validates a workflow resource (`definition` with its `param_schema`) against the store. */
export async function checkWorkflowResource(
  db: Db,
  w: { ref?: string | undefined; param_schema: Record<string, unknown> | null; definition: unknown },
): Promise<Checked> {
  const { lookup, inquiryActions } = await storeActionLookup(
    db,
    taskActionRefs(w.definition),
    w.ref === undefined ? undefined : { ref: w.ref, paramSchema: w.param_schema },
  );
  const definition =
    w.ref !== undefined && isObj(w.definition) && w.definition.ref === undefined
      ? { ...w.definition, ref: w.ref }
      : w.definition;
  const r = validateWorkflowResource(
    { param_schema: w.param_schema, definition },
    { lookupAction: lookup, inquiryActions },
  );
  return split(r.problems.map((p) => toProblem(p)));
}

/** A workflow given as YAML text (the file format), parsed and validated against the store. */
async function checkWorkflowYaml(
  db: Db,
  text: string,
): Promise<Checked & { doc: Record<string, unknown> | undefined }> {
  const src = new YamlSource('workflow.yaml', text);
  if (src.problems.length)
    return {
      doc: undefined,
      warnings: [],
      errors: src.problems.map((p) => ({
        task: null,
        path: '',
        message: `not valid YAML: ${p.message}`,
        severity: 'error' as const,
        ...(p.line !== undefined && { line: p.line }),
      })),
    };
  const doc = src.value;
  if (!isObj(doc))
    return {
      doc: undefined,
      warnings: [],
      errors: [
        {
          task: null,
          path: '',
          message: 'a workflow file must be a mapping (ref, label, parameters, vars, tasks, output_map…)',
          severity: 'error',
          line: 1,
        },
      ],
    };
  const self = typeof doc.ref === 'string' && isRef(doc.ref) ? doc.ref : undefined;
  const { lookup, inquiryActions } = await storeActionLookup(
    db,
    taskActionRefs(doc),
    self === undefined ? undefined : { ref: self, paramSchema: null },
  );
  const r = validateWorkflow(doc, { lookupAction: lookup, inquiryActions });
  return {
    doc,
    ...split(r.problems.map((p) => toProblem(p, src.lineOf(workflowFilePath(p.path, doc))))),
  };
}

/** The 422 of a workflow with semantic problems: every error in `details`. */
function invalidWorkflow(what: string, errors: WorkflowProblemOut[]): AppError {
  const n = errors.length;
  const first = errors[0]!;
  return unprocessable(
    `${what} has ${n} problem${n === 1 ? '' : 's'}: ${first.task === null ? '' : `task '${first.task}': `}${first.path ? `${first.path}: ` : ''}${first.message}${n > 1 ? ` (and ${n - 1} more)` : ''}`,
    errors,
  );
}

/** The field checks of `checkFields` as problems instead of a 400 (for `validate`). */
function fieldProblems(b: {
  label?: string | undefined;
  version?: string | undefined;
  param_schema?: Record<string, unknown> | null | undefined;
  out_schema?: Record<string, unknown> | null | undefined;
}): WorkflowProblemOut[] {
  const out: WorkflowProblemOut[] = [];
  const run = (path: string, check: () => void) => {
    try {
      check();
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      out.push({ task: null, path, message: e.message, severity: 'error' });
    }
  };
  run('label', () => checkFields({ label: b.label }));
  run('version', () => checkFields({ version: b.version }));
  run('param_schema', () => checkFields({ param_schema: b.param_schema }));
  run('out_schema', () => checkFields({ out_schema: b.out_schema }));
  return out;
}

const ValidateWorkflow = Type.Object(
  {
    yaml: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_YAML_BYTES,
        description: 'A whole workflow file (instead of the other fields)',
      }),
    ),
    ref: Type.Optional(Ref),
    pack_ref: Type.Optional(Type.String({ maxLength: 100 })),
    label: Type.Optional(Type.String({ maxLength: 255 })),
    ...writable,
    definition: Type.Optional(JsonObject),
  },
  {
    additionalProperties: false,
    description:
      'The body of a create (`ref` and `label` optional here), or `{yaml}` with the text of a workflow file',
  },
);

const ValidationReport = Type.Object({
  valid: Type.Boolean({ description: 'No error (warnings allowed)' }),
  errors: Type.Array(WorkflowProblemOut),
  warnings: Type.Array(WorkflowProblemOut),
});

// ───────────────────────────── rehearsal ─────────────────────────────

/** Upper bound of engine steps of one rehearsal through the API (the CLI has none). */
export const REHEARSAL_MAX_EVENTS = 200_000;

const Operation = Type.Object(
  {
    op: Type.Union([
      Type.Literal('pause'),
      Type.Literal('resume'),
      Type.Literal('cancel'),
      Type.Literal('rerun'),
    ]),
    at: Type.Optional(
      Type.Number({ minimum: 0, maximum: 315_360_000, description: 'Simulated seconds since the start' }),
    ),
    tasks: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 5000 })),
    reset_items: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 5000 })),
  },
  { additionalProperties: false },
);

const Expectation = Type.Object(
  {
    tasks: Type.Optional(Type.Array(Type.String(), { description: 'The exact sequence of task entries' })),
    status: Type.Optional(Type.String({ maxLength: 50 })),
    output: Type.Optional(Type.Unknown({ description: 'The exact output' })),
    error: Type.Optional(Type.String({ description: 'Text the error must contain' })),
    vars: Type.Optional(JsonObject),
    calls: Type.Optional(Type.Record(Type.String(), Type.Integer({ minimum: 0 }))),
    inputs: Type.Optional(Type.Record(Type.String(), Type.Array(Type.Unknown()))),
    started_at: Type.Optional(Type.Record(Type.String(), Type.Array(Type.Number()))),
    duration_seconds: Type.Optional(Type.Number()),
    rejections: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

const caseFields = {
  parameters: Type.Optional(JsonObject),
  mocks: Type.Optional({
    ...JsonObject,
    description:
      'Results per task, one per call (`{task: [result, {status: failed, result}, …]}`); the last repeats',
  }),
  operations: Type.Optional(Type.Array(Operation, { maxItems: 1000 })),
  expect: Type.Optional(Expectation),
  workflows: Type.Optional(
    Type.Record(Type.String(), JsonObject, {
      description: 'Sub-workflow definitions by action ref, rehearsed in place of unmocked tasks',
    }),
  ),
  start_time: Type.Optional(Type.String({ maxLength: 64, description: 'Simulated start (ISO time)' })),
  max_task_runs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  user: Type.Optional(Type.String({ maxLength: 200 })),
  keys: Type.Optional(JsonObject),
  config: Type.Optional(JsonObject),
};
const CASE_FIELDS = Object.keys(caseFields);

const RehearseWorkflow = Type.Object(
  {
    definition: Type.Optional({ ...JsonObject, description: 'The workflow body, as in a create' }),
    param_schema: Type.Optional(Type.Union([JsonSchemaDoc, Type.Null()])),
    ref: Type.Optional({ ...Ref, description: 'A stored workflow' }),
    yaml: Type.Optional(
      Type.String({ minLength: 1, maxLength: MAX_YAML_BYTES, description: 'A workflow file' }),
    ),
    spec: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_YAML_BYTES,
        description: 'A test spec (YAML) with its cases; the other case fields are then not given',
      }),
    ),
    ...caseFields,
  },
  { additionalProperties: false },
);

const RehearsedRunOut = Type.Object({
  run_key: Type.String(),
  task: Type.String(),
  item: Type.Union([Type.Integer(), Type.Null()]),
  attempt: Type.Integer(),
  action: Type.String(),
  input: Type.Unknown(),
  status: Type.String(),
  result: Type.Unknown(),
  started_at: Type.Number({ description: 'Simulated seconds since the start' }),
  finished_at: Type.Union([Type.Number(), Type.Null()]),
  kind: Type.String(),
});

const RehearsalReportOut = Type.Object({
  passed: Type.Boolean({ description: 'No mismatch with `expect` (true when nothing was expected)' }),
  mismatches: Type.Array(Type.String()),
  tasks: Type.Array(Type.String(), { description: 'Task entries in order' }),
  status: Type.String(),
  output: Type.Unknown(),
  error: Type.Union([Type.String(), Type.Null()]),
  vars: JsonObject,
  runs: Type.Array(RehearsedRunOut),
  rejections: Type.Array(
    Type.Object({
      at: Type.Number(),
      run_key: Type.Union([Type.String(), Type.Null()]),
      reason: Type.String(),
    }),
  ),
  waiting: Type.Array(Type.String(), { description: 'What an unfinished workflow still waits for' }),
  problems: Type.Array(WorkflowProblemOut, { description: 'Warnings about the workflow' }),
  duration_seconds: Type.Number(),
  children: Type.Record(Type.String(), Type.Unknown(), {
    description: 'Reports of the sub-workflows rehearsed in place, by run key',
  }),
});

const SpecResultOut = Type.Object({
  passed: Type.Boolean(),
  cases: Type.Array(Type.Object({ name: Type.String(), passed: Type.Boolean(), report: RehearsalReportOut })),
});

const reportToApi = (
  r: RehearsalReport,
  problems: WorkflowProblemOut[],
): Static<typeof RehearsalReportOut> => ({
  passed: r.passed,
  mismatches: r.mismatches,
  tasks: r.tasks,
  status: r.status,
  output: r.output ?? null,
  error: r.error,
  vars: r.vars,
  runs: r.runs.map((x) => ({ ...x, input: x.input ?? null, result: x.result ?? null })),
  rejections: r.rejections,
  waiting: r.waiting,
  problems,
  duration_seconds: r.duration_seconds,
  children: r.children,
});

/** The rehearsal options of a request (or of a spec case), checked where the engine would not. */
function caseOptions(b: Partial<Record<(typeof CASE_FIELDS)[number], unknown>>, at = ''): RehearsalOptions {
  if (typeof b.start_time === 'string' && !parseIsoTime(b.start_time))
    throw validationError(`${at}start_time is not an ISO 8601 time: '${b.start_time}'`, {
      path: `${at}start_time`,
    });
  const o: RehearsalOptions = { max_events: REHEARSAL_MAX_EVENTS };
  if (b.parameters !== undefined) o.parameters = b.parameters as Record<string, unknown>;
  if (b.mocks !== undefined) o.mocks = b.mocks as Record<string, unknown>;
  if (b.operations !== undefined) o.operations = b.operations as RehearsalOptions['operations'];
  if (b.expect !== undefined) o.expect = b.expect as RehearsalOptions['expect'];
  if (b.workflows !== undefined) o.workflows = b.workflows as Record<string, unknown>;
  if (typeof b.start_time === 'string') o.start_time = parseIsoTime(b.start_time)!.toISOString();
  if (typeof b.max_task_runs === 'number') o.max_task_runs = b.max_task_runs;
  if (typeof b.user === 'string') o.user = b.user;
  if (b.keys !== undefined) o.keys = b.keys as Record<string, unknown>;
  if (b.config !== undefined) o.config = b.config as Record<string, unknown>;
  return o;
}

/** The 400 of a rehearsal request whose options (or spec) do not fit the workflow. */
function badRehearsal(what: string, problems: WorkflowProblemOut[]): AppError {
  const n = problems.length;
  const first = problems[0]!;
  return validationError(
    `${what} has ${n} problem${n === 1 ? '' : 's'}: ${first.path ? `${first.path}: ` : ''}${first.message}${n > 1 ? ` (and ${n - 1} more)` : ''}`,
    problems,
  );
}

interface WorkflowSource {
  /** The workflow as a document the engine reads (definition with `parameters`). */
  raw: Record<string, unknown>;
  warnings: WorkflowProblemOut[];
  lookup: StoreLookup;
  /** The pack's configuration, for a stored workflow. */
  config?: Record<string, unknown>;
}

/** The workflow of a rehearsal (`definition`, `ref` or `yaml`), validated: 404/422 otherwise. */
async function workflowSource(
  db: Db,
  b: {
    definition?: Record<string, unknown>;
    param_schema?: Record<string, unknown> | null;
    ref?: string;
    yaml?: string;
  },
): Promise<WorkflowSource> {
  let raw: Record<string, unknown>;
  let checked: Checked;
  let config: Record<string, unknown> | undefined;
  let self: { ref: string; paramSchema: Record<string, unknown> | null } | undefined;
  if (b.yaml !== undefined) {
    const y = await checkWorkflowYaml(db, b.yaml);
    if (y.errors.length || !y.doc) throw invalidWorkflow('the workflow', y.errors);
    raw = y.doc;
    checked = y;
    if (typeof raw.ref === 'string' && isRef(raw.ref)) self = { ref: raw.ref, paramSchema: null };
  } else {
    let resource: {
      ref?: string;
      param_schema: Record<string, unknown> | null;
      definition: Record<string, unknown>;
    };
    if (b.ref !== undefined) {
      const [w] = await db.select().from(workflows).where(eq(workflows.ref, b.ref));
      if (!w) throw notFound('workflow', b.ref);
      const [p] = await db.select({ config: packs.config }).from(packs).where(eq(packs.id, w.packId));
      config = p?.config;
      resource = { ref: w.ref, param_schema: w.paramSchema ?? null, definition: w.definition };
      self = { ref: w.ref, paramSchema: w.paramSchema ?? null };
    } else resource = { param_schema: b.param_schema ?? null, definition: b.definition ?? {} };
    checked = await checkWorkflowResource(db, resource);
    if (checked.errors.length)
      throw invalidWorkflow(b.ref ? `workflow '${b.ref}'` : 'the workflow', checked.errors);
    raw = { ...resource.definition };
    delete raw.parameters;
    if (resource.param_schema) raw.parameters = resource.param_schema;
    if (resource.ref !== undefined && raw.ref === undefined) raw.ref = resource.ref;
  }
  const lookup = await storeActionLookup(db, taskActionRefs(raw), self);
  return { raw, warnings: checked.warnings, lookup, ...(config !== undefined && { config }) };
}

export function registerWorkflowRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  registerDefinitionReads(app, {
    resource: 'workflows',
    one: 'workflow',
    many: 'workflows',
    kind: 'workflow',
    item: Workflow,
    query: DefinitionListQuery,
    list: (q) => listDefinitions<Row>(db(), workflows, cols, q),
    get: async (ref) => (await db().select().from(workflows).where(eq(workflows.ref, ref)))[0],
    toApi: workflowToApi,
  });

  app.post(
    '/api/v1/workflows',
    {
      config: { permission: ['workflows', 'create'] },
      schema: {
        tags,
        summary: 'Create a workflow',
        description:
          "Also creates its action (same ref, runner 'workflow'), in the same transaction. The workflow is " +
          'validated first: a body that does not fit the schema is a 400; a workflow with semantic problems ' +
          '(unknown targets or actions, invalid expressions, inputs that do not fit the action, unreachable ' +
          'tasks, endless loops, impossible joins…) is a 422 listing every error in `details` as ' +
          '`[{task, path, message, severity}]`. Warnings come back in `warnings`.',
        body: CreateWorkflow,
        response: { 201: WrittenWorkflow, ...writeErrors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      checkFields(b);
      let warnings: WorkflowProblemOut[] = [];
      const row = await app.ctx.store.transaction(async (tx) => {
        const pack = await packForRef(tx, b.ref, b.pack_ref);
        const checked = await checkWorkflowResource(tx, {
          ref: b.ref,
          param_schema: b.param_schema ?? null,
          definition: b.definition,
        });
        if (checked.errors.length) throw invalidWorkflow(`workflow '${b.ref}'`, checked.errors);
        warnings = checked.warnings;
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
      return reply.code(201).send({ data: workflowToApi(row), warnings });
    },
  );

  app.post(
    '/api/v1/workflows/validate',
    {
      config: { permission: ['workflows', 'read'] },
      schema: {
        tags,
        summary: 'Validate a workflow without saving it',
        description:
          'Give the body of a create (`ref` and `label` may be left out) or `{yaml}` with the text of a ' +
          'workflow file. The answer is 200 whatever the verdict: `{valid, errors, warnings}`, each problem ' +
          'with its task, path and message (and line, for YAML). Actions are looked up in the store: an ' +
          'unknown action is an error, one of a pack that is not installed a warning. A body that does not ' +
          'fit this schema is a 400.',
        body: ValidateWorkflow,
        response: { 200: Data(ValidationReport), 400: E },
      },
    },
    async (req) => {
      const b = req.body;
      let checked: Checked;
      if (b.yaml !== undefined) {
        const others = Object.keys(b).filter((k) => k !== 'yaml');
        if (others.length)
          throw validationError(
            `'yaml' holds the whole workflow: give no other field (got ${others.map((k) => `'${k}'`).join(', ')})`,
            { fields: others },
          );
        checked = await checkWorkflowYaml(db(), b.yaml);
      } else {
        if (b.definition === undefined)
          throw validationError(
            `give the workflow: 'definition' (and the other fields of a create), or 'yaml'`,
            {
              field: 'definition',
            },
          );
        const fields = fieldProblems(b);
        const extra: WorkflowProblemOut[] = [];
        if (b.ref !== undefined) {
          const pack = b.ref.slice(0, b.ref.indexOf('.'));
          if (b.pack_ref !== undefined && b.pack_ref !== pack)
            extra.push({
              task: null,
              path: 'pack_ref',
              message: `ref '${b.ref}' does not belong to pack '${b.pack_ref}'`,
              severity: 'error',
            });
          const [p] = await db().select({ id: packs.id }).from(packs).where(eq(packs.ref, pack));
          if (!p)
            extra.push({
              task: null,
              path: 'ref',
              message: `pack '${pack}' does not exist: a workflow belongs to an installed pack`,
              severity: 'error',
            });
        }
        const badSchema = fields.some((f) => f.path === 'param_schema');
        const r = await checkWorkflowResource(db(), {
          ref: b.ref,
          param_schema: badSchema ? null : (b.param_schema ?? null),
          definition: b.definition,
        });
        checked = { errors: [...extra, ...fields, ...r.errors], warnings: r.warnings };
      }
      return {
        data: { valid: checked.errors.length === 0, errors: checked.errors, warnings: checked.warnings },
      };
    },
  );

  app.post(
    '/api/v1/workflows/rehearse',
    {
      config: { permission: ['workflows', 'read'] },
      schema: {
        tags,
        summary: 'Rehearse a workflow with mocked task results',
        description:
          'Runs the workflow through the real engine on a simulated clock with mocked task results: ' +
          'nothing is executed, nothing is stored, no time passes. Give the workflow as `definition` ' +
          '(with `param_schema`), `ref` (a stored workflow) or `yaml`, with `parameters`, `mocks` ' +
          '(`{task: [result per call]}`), `operations` and `expect`; the answer is the report: task ' +
          'sequence, status, output, runs, and `passed`/`mismatches` against `expect`. Or give `spec`, the ' +
          'text of a test spec with its cases (its `workflow:` path may be supplied as `definition`, `ref` ' +
          'or `yaml`, or name a stored workflow by ref); the answer is then `{passed, cases: [{name, passed, ' +
          'report}]}`. An invalid workflow is a 422; a spec or options that do not fit it (mocks of unknown ' +
          'tasks, bad operations) a 400 listing every problem. See docs/workflows.md.',
        body: RehearseWorkflow,
        response: { 200: Data(Type.Union([RehearsalReportOut, SpecResultOut])), 400: E, 404: E, 422: E },
      },
    },
    async (req) => {
      const b = req.body;
      const given = (['definition', 'ref', 'yaml'] as const).filter((k) => b[k] !== undefined);
      if (given.length > 1)
        throw validationError(
          `give the workflow once: ${given.map((k) => `'${k}'`).join(' and ')} were both given`,
          { fields: given },
        );
      if (b.param_schema !== undefined && b.definition === undefined)
        throw validationError(`'param_schema' goes with 'definition'`, { field: 'param_schema' });

      if (b.spec !== undefined) {
        const misplaced = CASE_FIELDS.filter((k) => (b as Record<string, unknown>)[k] !== undefined);
        if (misplaced.length)
          throw validationError(
            `with 'spec', the cases of the spec hold ${misplaced.map((k) => `'${k}'`).join(', ')}`,
            { fields: misplaced },
          );
        const parsed = parseRehearsalSpec(b.spec);
        if (!parsed.ok)
          throw badRehearsal(
            'the test spec',
            parsed.problems.map((p) => toProblem(p)),
          );
        const spec = parsed.spec;
        let source: WorkflowSource;
        if (spec.definition !== undefined) {
          if (given.length)
            throw validationError(
              `the spec holds its workflow ('definition'): give no ${given.map((k) => `'${k}'`).join(', ')}`,
              { fields: given },
            );
          if (!isObj(spec.definition))
            throw badRehearsal('the test spec', [
              {
                task: null,
                path: 'definition',
                message: 'must be a workflow (a mapping with tasks)',
                severity: 'error',
              },
            ]);
          const { lookup, inquiryActions } = await storeActionLookup(db(), taskActionRefs(spec.definition));
          const r = validateWorkflow(spec.definition, { lookupAction: lookup, inquiryActions });
          const problems = r.problems.map((p) =>
            toProblem({ ...p, path: p.path ? `definition.${p.path}` : 'definition' }),
          );
          const c = split(problems);
          if (c.errors.length) throw invalidWorkflow('the workflow of the spec', c.errors);
          source = { raw: spec.definition, warnings: c.warnings, lookup: { lookup, inquiryActions } };
        } else if (given.length) source = await workflowSource(db(), b);
        else if (spec.workflow !== undefined && isRef(spec.workflow)) {
          const [w] = await db()
            .select({ id: workflows.id })
            .from(workflows)
            .where(eq(workflows.ref, spec.workflow));
          if (!w)
            throw validationError(
              `the spec names the workflow '${spec.workflow}', which is neither a stored workflow nor a file the API can read: give it as 'definition', 'ref' or 'yaml' with the spec`,
              { path: 'workflow' },
            );
          source = await workflowSource(db(), { ref: spec.workflow });
        } else
          throw validationError(
            `the spec names the workflow file '${spec.workflow ?? ''}', which the API cannot read: give the workflow as 'definition', 'ref' or 'yaml' with the spec`,
            { path: 'workflow' },
          );
        for (const c of spec.cases) {
          c.options.max_events = REHEARSAL_MAX_EVENTS;
          if (source.config !== undefined && c.options.config === undefined) c.options.config = source.config;
          c.options.inquiry_actions ??= source.lookup.inquiryActions;
        }
        const result = runRehearsalSpec(
          spec.definition !== undefined ? spec : { ...spec, definition: source.raw },
          {
            lookup_action: source.lookup.lookup,
          },
        );
        const bad: WorkflowProblemOut[] = [];
        result.cases.forEach((c, i) => {
          if (c.report.status !== 'invalid') return;
          for (const p of c.report.problems)
            if (p.severity === 'error') bad.push(toProblem({ ...p, path: `cases[${i}].${p.path}` }));
        });
        if (bad.length) throw badRehearsal('the test spec', bad);
        return {
          data: {
            passed: result.passed,
            cases: result.cases.map((c) => ({
              name: c.name,
              passed: c.passed,
              report: reportToApi(c.report, source.warnings),
            })),
          },
        };
      }

      if (!given.length)
        throw validationError(
          `give the workflow to rehearse: 'definition', 'ref' or 'yaml' (or a test spec in 'spec')`,
          {
            fields: ['definition', 'ref', 'yaml', 'spec'],
          },
        );
      const source = await workflowSource(db(), b);
      const options = caseOptions(b);
      if (source.config !== undefined && options.config === undefined) options.config = source.config;
      options.lookup_action = source.lookup.lookup;
      options.inquiry_actions = source.lookup.inquiryActions;
      const report = rehearse(source.raw, options);
      if (report.status === 'invalid')
        throw badRehearsal(
          'the rehearsal request',
          report.problems.filter((p) => p.severity === 'error').map((p) => toProblem(p)),
        );
      return { data: reportToApi(report, source.warnings) };
    },
  );

  app.put(
    '/api/v1/workflows/:ref',
    {
      config: { permission: ['workflows', 'update'] },
      schema: {
        tags,
        summary: 'Update a workflow (partial)',
        description:
          'Its action follows (label, description, parameters, output schema, tags, enabled). A new ' +
          '`definition` or `param_schema` is validated with the rest of the workflow as for a create (422 ' +
          'with every error; warnings in `warnings`).',
        params: RefParams,
        body: UpdateWorkflow,
        response: { 200: WrittenWorkflow, ...writeErrors },
      },
    },
    async (req) => {
      const b = req.body;
      checkFields(b);
      let warnings: WorkflowProblemOut[] = [];
      const row = await app.ctx.store.transaction(async (tx) => {
        if (b.definition !== undefined || b.param_schema !== undefined) {
          const [old] = await tx
            .select()
            .from(workflows)
            .where(eq(workflows.ref, req.params.ref))
            .for('update');
          if (!old) throw notFound('workflow', req.params.ref);
          const checked = await checkWorkflowResource(tx, {
            ref: old.ref,
            param_schema: b.param_schema !== undefined ? b.param_schema : (old.paramSchema ?? null),
            definition: b.definition ?? old.definition,
          });
          if (checked.errors.length) throw invalidWorkflow(`workflow '${old.ref}'`, checked.errors);
          warnings = checked.warnings;
        }
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
      return { data: workflowToApi(row), warnings };
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
