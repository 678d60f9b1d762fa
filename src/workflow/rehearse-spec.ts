/**
 * The rehearsal test-spec format: a YAML (or JSON) file naming a workflow and listing cases, each
 * with parameters, mocked task results and expectations. `attune workflow test` reads these files;
 * the conformance suite is written in it.
 *
 *   workflow: ../workflows/deploy.yaml     # a path, resolved by the caller; or inline:
 *   definition: {tasks: [...]}
 *   workflows: {ops.child: {tasks: [...]}} # sub-workflows rehearsed in place (optional)
 *   cases:
 *     - name: happy path
 *       parameters: {app: web}
 *       mocks: {build: [{result: {code: 0}}]}
 *       operations: [{op: pause, at: 5}, {op: resume, at: 20}]
 *       expect: {tasks: [build, deploy], status: succeeded, output: {...}}
 */
import { parse as parseYaml } from 'yaml';
import { isPlainObject, suggest, type WorkflowProblem } from './definition.ts';
import { type RehearsalOptions, type RehearsalReport, rehearse } from './rehearse.ts';
import type { ActionLookup } from './validate.ts';

export interface RehearsalCase {
  name: string;
  description?: string;
  options: RehearsalOptions;
}

export interface RehearsalSpec {
  description?: string;
  /** A path to the workflow file (resolved by the caller), when the definition is not inline. */
  workflow?: string;
  definition?: unknown;
  workflows?: Record<string, unknown>;
  cases: RehearsalCase[];
}

export type SpecParseResult = { ok: true; spec: RehearsalSpec } | { ok: false; problems: WorkflowProblem[] };

const TOP_KEYS = ['description', 'workflow', 'definition', 'workflows', 'cases'];
const CASE_KEYS = [
  'name',
  'description',
  'parameters',
  'mocks',
  'operations',
  'expect',
  'start_time',
  'max_task_runs',
  'inquiry_actions',
  'user',
  'keys',
  'config',
];
const EXPECT_KEYS = [
  'tasks',
  'status',
  'output',
  'error',
  'vars',
  'calls',
  'inputs',
  'rejections',
  'started_at',
  'duration_seconds',
];
const OPERATION_KEYS = ['op', 'at', 'tasks', 'reset_items'];

/** Parses a spec from YAML/JSON text or a parsed object, reporting every problem with its path. */
export function parseRehearsalSpec(source: unknown): SpecParseResult {
  const problems: WorkflowProblem[] = [];
  const err = (path: string, message: string) => problems.push({ path, message, severity: 'error' });
  let raw: unknown = source;
  if (typeof source === 'string') {
    try {
      raw = parseYaml(source);
    } catch (e) {
      err('', `not valid YAML: ${(e as Error).message}`);
      return { ok: false, problems };
    }
  }
  if (!isPlainObject(raw)) {
    err('', `a rehearsal spec must be a mapping with 'cases'`);
    return { ok: false, problems };
  }
  const unknown = (obj: Record<string, unknown>, known: string[], path: string) => {
    for (const k of Object.keys(obj))
      if (!known.includes(k)) {
        const s = suggest(k, known);
        err(
          path ? `${path}.${k}` : k,
          `unknown key '${k}'${s ? ` (did you mean '${s}'?)` : ''}; allowed: ${known.join(', ')}`,
        );
      }
  };
  unknown(raw, TOP_KEYS, '');
  const spec: RehearsalSpec = { cases: [] };
  if (typeof raw.description === 'string') spec.description = raw.description;
  if (raw.workflow !== undefined) {
    if (typeof raw.workflow === 'string') spec.workflow = raw.workflow;
    else err('workflow', 'must be the path of a workflow file');
  }
  if (raw.definition !== undefined) spec.definition = raw.definition;
  if (spec.workflow === undefined && spec.definition === undefined)
    err('', `give the workflow: 'workflow' (a file path) or 'definition' (inline)`);
  if (spec.workflow !== undefined && spec.definition !== undefined)
    err('definition', `give either 'workflow' or 'definition', not both`);
  if (raw.workflows !== undefined) {
    if (isPlainObject(raw.workflows)) spec.workflows = raw.workflows;
    else err('workflows', 'must be a mapping of action refs to workflow definitions');
  }
  if (!Array.isArray(raw.cases) || raw.cases.length === 0) err('cases', 'must be a non-empty list of cases');
  else
    raw.cases.forEach((c, i) => {
      const path = `cases[${i}]`;
      if (!isPlainObject(c)) {
        err(path, 'a case must be a mapping with a name');
        return;
      }
      unknown(c, CASE_KEYS, path);
      const name = typeof c.name === 'string' && c.name.trim() ? c.name : undefined;
      if (!name) err(`${path}.name`, 'every case needs a name');
      if (name && spec.cases.some((x) => x.name === name))
        err(`${path}.name`, `duplicate case name '${name}'`);
      const o: RehearsalOptions = {};
      if (c.parameters !== undefined) {
        if (isPlainObject(c.parameters)) o.parameters = c.parameters;
        else err(`${path}.parameters`, 'must be a mapping');
      }
      if (c.mocks !== undefined) {
        if (isPlainObject(c.mocks)) o.mocks = c.mocks;
        else err(`${path}.mocks`, 'must be a mapping of task names to results');
      }
      if (c.operations !== undefined) {
        if (!Array.isArray(c.operations)) err(`${path}.operations`, 'must be a list');
        else {
          c.operations.forEach((op, j) => {
            if (isPlainObject(op)) unknown(op, OPERATION_KEYS, `${path}.operations[${j}]`);
          });
          o.operations = c.operations as RehearsalOptions['operations'];
        }
      }
      if (c.expect !== undefined) {
        if (!isPlainObject(c.expect)) err(`${path}.expect`, 'must be a mapping');
        else {
          unknown(c.expect, EXPECT_KEYS, `${path}.expect`);
          const e = c.expect;
          if (
            e.tasks !== undefined &&
            !(Array.isArray(e.tasks) && e.tasks.every((t) => typeof t === 'string'))
          )
            err(`${path}.expect.tasks`, 'must be a list of task names');
          if (e.status !== undefined && typeof e.status !== 'string')
            err(`${path}.expect.status`, 'must be a status');
          if (e.error !== undefined && typeof e.error !== 'string')
            err(`${path}.expect.error`, 'must be a text');
          if (e.rejections !== undefined && typeof e.rejections !== 'number')
            err(`${path}.expect.rejections`, 'must be a number');
          for (const k of ['vars', 'calls', 'inputs', 'started_at'])
            if (e[k] !== undefined && !isPlainObject(e[k])) err(`${path}.expect.${k}`, 'must be a mapping');
          o.expect = e as RehearsalOptions['expect'];
        }
      }
      if (c.start_time !== undefined) {
        if (typeof c.start_time === 'string' && Number.isFinite(Date.parse(c.start_time)))
          o.start_time = c.start_time;
        else err(`${path}.start_time`, 'must be an ISO 8601 time');
      }
      if (c.max_task_runs !== undefined) {
        if (typeof c.max_task_runs === 'number' && Number.isInteger(c.max_task_runs) && c.max_task_runs > 0)
          o.max_task_runs = c.max_task_runs;
        else err(`${path}.max_task_runs`, 'must be a whole number of 1 or more');
      }
      if (c.inquiry_actions !== undefined) {
        if (Array.isArray(c.inquiry_actions) && c.inquiry_actions.every((a) => typeof a === 'string'))
          o.inquiry_actions = c.inquiry_actions;
        else err(`${path}.inquiry_actions`, 'must be a list of action refs');
      }
      if (typeof c.user === 'string') o.user = c.user;
      if (isPlainObject(c.keys)) o.keys = c.keys;
      if (isPlainObject(c.config)) o.config = c.config;
      const rc: RehearsalCase = { name: name ?? `#${i}`, options: o };
      if (typeof c.description === 'string') rc.description = c.description;
      spec.cases.push(rc);
    });
  return problems.length ? { ok: false, problems } : { ok: true, spec };
}

export interface SpecRunOptions {
  /** The workflow when the spec names it by path (`workflow:`), already read by the caller. */
  definition?: unknown;
  /** Serialise the engine state to JSON and back between steps. */
  round_trip?: boolean;
  lookup_action?: ActionLookup;
}

export interface SpecRunResult {
  passed: boolean;
  cases: { name: string; passed: boolean; report: RehearsalReport }[];
}

/** Runs every case of a spec. */
export function runRehearsalSpec(spec: RehearsalSpec, opts: SpecRunOptions = {}): SpecRunResult {
  const definition = spec.definition ?? opts.definition;
  const cases = spec.cases.map((c) => {
    const o: RehearsalOptions = { ...c.options };
    if (spec.workflows) o.workflows = spec.workflows;
    if (opts.round_trip) o.round_trip = true;
    if (opts.lookup_action) o.lookup_action = opts.lookup_action;
    const report = rehearse(definition, o);
    return { name: c.name, passed: report.passed, report };
  });
  return { passed: cases.every((c) => c.passed), cases };
}
