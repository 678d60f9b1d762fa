/**
 * The workflow file format: how a workflow YAML document (in a pack's `workflows/` folder, or given to
 * a tool) maps onto the fields of the workflow resource of the API.
 *
 *   ref, label, description, version, tags, enabled   →  the same fields
 *   parameters (JSON Schema or the flat form)          →  param_schema
 *   output     (JSON Schema or the flat form)          →  out_schema
 *   vars, tasks, output_map                            →  definition
 *
 * Also home of the flat parameter form shared by every definition file (actions, triggers, pack
 * config): `{name: {type, description, required, default, enum, secret, immutable, …}}`, converted
 * here to a JSON Schema. Pure: no I/O, no clock.
 */
import semver from 'semver';
import { schemaProblems, validateAgainst } from '../domain/json-schema.ts';
import { isRef } from '../domain/refs.ts';

export type JsonSchema = Record<string, unknown>;
export type PathSegment = string | number;

/** One problem in a document, located by the path of segments from its root. */
export interface FormatProblem {
  path: PathSegment[];
  message: string;
}

/** `['tasks', 2, 'name']` → `/tasks/2/name` (JSON pointer). */
export const pointer = (path: readonly PathSegment[]): string =>
  path.length ? path.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('') : '/';

/** `/tasks/2/name` → `['tasks', '2', 'name']`. */
export const fromPointer = (p: string): string[] =>
  p === '' || p === '/'
    ? []
    : p
        .replace(/^\//, '')
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const JSON_TYPES = ['string', 'number', 'integer', 'boolean', 'array', 'object', 'null'];

/** Keys of a flat parameter declaration that are copied into the property's JSON Schema as they are. */
const SCHEMA_KEYWORDS = new Set([
  'type',
  'title',
  'description',
  'default',
  'enum',
  'const',
  'examples',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'uniqueItems',
  'contains',
  'properties',
  'patternProperties',
  'additionalProperties',
  'propertyNames',
  'minProperties',
  'maxProperties',
  'dependentRequired',
  'oneOf',
  'anyOf',
  'allOf',
  'not',
  'if',
  'then',
  'else',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$comment',
]);
/** Keys that only the flat form knows. */
const FLAT_KEYWORDS = ['required', 'secret', 'immutable'];

/** Closest of `candidates` to `word` (a small edit distance), for "did you mean" hints. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  const w = word.toLowerCase();
  if (w.length < 3) return undefined;
  // one edit for short words, two from six letters on
  let bestD = Math.min(2, Math.max(1, Math.floor(w.length / 3))) + 1;
  let bestShared = -1;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    const shared = d <= bestD ? sharedLetters(w, c.toLowerCase()) : 0;
    // on a tie, the candidate that holds more of the word's letters (taks → tasks, not tags)
    if (d < bestD || (d === bestD && best !== undefined && shared > bestShared)) {
      bestD = d;
      best = c;
      bestShared = shared;
    }
  }
  return best;
}

function sharedLetters(a: string, b: string): number {
  const pool = [...b];
  let n = 0;
  for (const ch of a) {
    const i = pool.indexOf(ch);
    if (i >= 0) {
      pool.splice(i, 1);
      n++;
    }
  }
  return n;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export const unknownKeyMessage = (key: string, known: Iterable<string>, what = 'field'): string => {
  const hint = suggest(key, known);
  return `unknown ${what} '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}`;
};

/**
 * True when `doc` is written as a JSON Schema rather than in the flat form: it names a `$schema`,
 * or its `type` is a string or a list of strings (in the flat form every value is a declaration).
 */
export function isJsonSchemaForm(doc: Record<string, unknown>): boolean {
  if (typeof doc.$schema === 'string') return true;
  const t = doc.type;
  return typeof t === 'string' || (Array.isArray(t) && t.every((x) => typeof x === 'string'));
}

/** True when `doc` looks like the flat form: a mapping of names to declaration mappings. */
export function isFlatForm(doc: unknown): doc is Record<string, Record<string, unknown>> {
  return isObject(doc) && !isJsonSchemaForm(doc) && Object.values(doc).every(isObject);
}

export interface SchemaResult {
  /** The JSON Schema, or null when the document was absent or null. */
  schema: JsonSchema | null;
  problems: FormatProblem[];
}

export interface ParametersOptions {
  /** Where the document sits in its file (prefix of every problem path). */
  at?: PathSegment[];
  /** The schema must describe an object (parameters and configs always arrive as one object). */
  object?: boolean;
  /**
   * In the flat form, refuse names that are not declared (`additionalProperties: false`). True by
   * default (parameters, config); payload and output schemas pass false.
   */
  closed?: boolean;
}

/**
 * Reads a parameter document — a JSON Schema, or the flat form — as a JSON Schema.
 *
 * The flat form `{name: {type, description, required, default, enum, secret, immutable, …}}` becomes
 * `{type: object, properties: {…}, required: [names with required: true], additionalProperties: false}`
 * (without `additionalProperties` when `closed` is false).
 * Other keys of a declaration are JSON Schema keywords of the property. `secret: true` is kept on the
 * property (values are redacted wherever they are shown); `immutable: true` pins the value to its
 * `default` (`const`). A default must satisfy its own declaration.
 */
export function parametersToSchema(doc: unknown, opts: ParametersOptions = {}): SchemaResult {
  const at = opts.at ?? [];
  if (doc === undefined || doc === null) return { schema: null, problems: [] };
  if (!isObject(doc))
    return {
      schema: null,
      problems: [
        {
          path: at,
          message:
            'must be a mapping: a JSON Schema, or parameter declarations {name: {type, description, required, default, …}}',
        },
      ],
    };
  if (isJsonSchemaForm(doc)) {
    const problems = schemaProblems(doc).map((p) => ({
      path: [...at, ...fromPointer(p.path)],
      message: `not a valid JSON Schema: ${p.message}`,
    }));
    if (!problems.length && opts.object) {
      const t = doc.type;
      if (t !== 'object' && !(Array.isArray(t) && t.includes('object')))
        problems.push({ path: [...at, 'type'], message: 'must describe an object (type: object)' });
    }
    return { schema: problems.length ? null : doc, problems };
  }
  return flatToSchema(doc, at, opts.closed ?? true);
}

function flatToSchema(doc: Record<string, unknown>, at: PathSegment[], closed: boolean): SchemaResult {
  const problems: FormatProblem[] = [];
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, decl] of Object.entries(doc)) {
    const here = [...at, name];
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,99}$/.test(name))
      problems.push({
        path: here,
        message: `parameter name '${name}' must start with a letter or '_' and hold only letters, digits, '_' and '-'`,
      });
    if (!isObject(decl)) {
      problems.push({
        path: here,
        message: `parameter '${name}' must be a mapping such as {type: string, description: …}`,
      });
      continue;
    }
    const prop: JsonSchema = {};
    let ok = true;
    for (const [k, v] of Object.entries(decl)) {
      if (SCHEMA_KEYWORDS.has(k)) prop[k] = v;
      else if (!FLAT_KEYWORDS.includes(k)) {
        problems.push({
          path: [...here, k],
          message: unknownKeyMessage(k, [...SCHEMA_KEYWORDS, ...FLAT_KEYWORDS], 'keyword'),
        });
        ok = false;
      }
    }
    if (decl.type === undefined) {
      problems.push({ path: here, message: `parameter '${name}' needs a type (${JSON_TYPES.join(', ')})` });
      ok = false;
    } else {
      const types = Array.isArray(decl.type) ? decl.type : [decl.type];
      const bad = types.filter((t) => typeof t !== 'string' || !JSON_TYPES.includes(t));
      if (bad.length || !types.length) {
        problems.push({
          path: [...here, 'type'],
          message: `unknown type ${bad.map((b) => `'${String(b)}'`).join(', ') || '[]'}; expected ${JSON_TYPES.join(', ')}`,
        });
        ok = false;
      }
    }
    if (decl.required !== undefined) {
      // true/false: is this parameter required; a list: the JSON Schema keyword of an object parameter
      if (Array.isArray(decl.required)) prop.required = decl.required;
      else if (typeof decl.required !== 'boolean') {
        problems.push({
          path: [...here, 'required'],
          message: 'required must be true or false (or, for an object, the list of its required properties)',
        });
        ok = false;
      } else if (decl.required) required.push(name);
    }
    if (decl.secret !== undefined) {
      if (typeof decl.secret !== 'boolean') {
        problems.push({ path: [...here, 'secret'], message: 'secret must be true or false' });
        ok = false;
      } else if (decl.secret) prop.secret = true;
    }
    if (decl.immutable !== undefined) {
      if (typeof decl.immutable !== 'boolean') {
        problems.push({ path: [...here, 'immutable'], message: 'immutable must be true or false' });
        ok = false;
      } else if (decl.immutable) {
        if (!Object.hasOwn(decl, 'default')) {
          problems.push({ path: [...here, 'immutable'], message: 'an immutable parameter needs a default' });
          ok = false;
        } else prop.const = decl.default;
      }
    }
    if (ok) properties[name] = prop;
  }
  const schema: JsonSchema = { type: 'object', properties };
  if (closed) schema.additionalProperties = false;
  if (required.length) schema.required = required;
  if (problems.length) return { schema: null, problems };
  // the declarations as one JSON Schema (one compilation for all), then every default against its own
  for (const i of schemaProblems(schema)) {
    const seg = fromPointer(i.path);
    const where = seg[0] === 'properties' && seg.length > 1 ? seg.slice(1) : [];
    problems.push({ path: [...at, ...where], message: `not a valid declaration: ${i.message}` });
  }
  if (problems.length) return { schema: null, problems };
  // the defaults, validated by the schema just compiled (no second compilation): only the errors
  // under a name that has a default count
  const withDefaults = Object.entries(properties).filter(([, p]) => Object.hasOwn(p, 'default'));
  if (withDefaults.length) {
    const data = Object.fromEntries(withDefaults.map(([n, p]) => [n, structuredClone(p.default)]));
    for (const e of validateAgainst(schema, data)) {
      const [name, ...rest] = fromPointer(e.path);
      if (
        name === undefined ||
        !Object.hasOwn(data, name) ||
        (e.message.startsWith('must have required') && !rest.length)
      )
        continue;
      problems.push({
        path: [...at, name, 'default', ...rest],
        message: `the default does not fit the declaration: ${rest.length ? `${rest.join('.')} ` : ''}${e.message}`,
      });
    }
  }
  return { schema: problems.length ? null : schema, problems };
}

// ───────────────────────────── workflow files ─────────────────────────────

/** Top-level keys of a workflow file that describe the resource. */
export const WORKFLOW_RESOURCE_KEYS = [
  'ref',
  'name',
  'label',
  'description',
  'version',
  'tags',
  'enabled',
  'parameters',
  'output',
] as const;
/** Top-level keys that make up the `definition` (the body the engine runs). */
export const WORKFLOW_DEFINITION_KEYS = ['vars', 'tasks', 'output_map'] as const;
/** Targets of `next[].do` that are not tasks. */
export const SPECIAL_TARGETS = ['fail', 'noop', 'retry'] as const;

export interface WorkflowDefinition {
  tasks: Record<string, unknown>[];
  vars?: Record<string, unknown>;
  output_map?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The workflow resource fields a file gives (absent fields are left to the caller's defaults). */
export interface WorkflowFileFields {
  ref?: string;
  /** The name part of the ref, when the file names itself that way (inside a pack). */
  name?: string;
  label?: string;
  description?: string;
  version?: string;
  tags?: string[];
  enabled?: boolean;
  param_schema: JsonSchema | null;
  out_schema: JsonSchema | null;
  definition: WorkflowDefinition;
}

export interface WorkflowFileResult {
  fields: WorkflowFileFields;
  problems: FormatProblem[];
}

/**
 * Maps a parsed workflow file onto the resource fields, with every problem found (not just the first).
 *
 * `tasks` may be a list of tasks (each with a unique `name`) or a mapping of names to tasks; it
 * becomes a list. `vars` may be a mapping or a list of one-key mappings; it becomes a mapping.
 * `output` is the output schema; written as a mapping of expressions (values that are not parameter
 * declarations) and with no `output_map`, it is read as the `output_map` instead.
 */
export function workflowFileToResource(doc: unknown): WorkflowFileResult {
  const problems: FormatProblem[] = [];
  const fields: WorkflowFileFields = { param_schema: null, out_schema: null, definition: { tasks: [] } };
  if (!isObject(doc)) {
    problems.push({
      path: [],
      message: 'a workflow file must be a mapping (ref, label, parameters, tasks, …)',
    });
    return { fields, problems };
  }
  const known = [...WORKFLOW_RESOURCE_KEYS, ...WORKFLOW_DEFINITION_KEYS];
  for (const k of Object.keys(doc))
    if (!(known as readonly string[]).includes(k))
      problems.push({ path: [k], message: unknownKeyMessage(k, known) });

  const str = (
    key: 'ref' | 'name' | 'label' | 'description' | 'version',
    max: number,
  ): string | undefined => {
    const v = doc[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      problems.push({
        path: [key],
        message: `${key} must be a string${typeof v === 'number' ? ` (quote it: "${v}")` : ''}`,
      });
      return undefined;
    }
    if (v.length > max) problems.push({ path: [key], message: `${key} is longer than ${max} characters` });
    return v;
  };
  const ref = str('ref', 300);
  if (ref !== undefined) {
    if (!isRef(ref))
      problems.push({ path: ['ref'], message: `'${ref}' is not a valid ref (expected 'pack.name')` });
    else fields.ref = ref;
  }
  const name = str('name', 200);
  if (name !== undefined) fields.name = name;
  const label = str('label', 255);
  if (label !== undefined) {
    if (!label.trim()) problems.push({ path: ['label'], message: 'label must not be blank' });
    else fields.label = label;
  }
  const description = str('description', 10_000);
  if (description !== undefined) fields.description = description;
  const version = str('version', 64);
  if (version !== undefined) {
    if (semver.valid(version) !== version)
      problems.push({
        path: ['version'],
        message: `version '${version}' is not a semantic version (e.g. 1.0.0)`,
      });
    else fields.version = version;
  }
  if (doc.tags !== undefined && doc.tags !== null) {
    const tags = doc.tags;
    if (!Array.isArray(tags)) problems.push({ path: ['tags'], message: 'tags must be a list of strings' });
    else {
      tags.forEach((t, i) => {
        if (typeof t !== 'string' || !t.length || t.length > 100)
          problems.push({
            path: ['tags', i],
            message: 'a tag must be a non-empty string of at most 100 characters',
          });
      });
      fields.tags = tags.filter((t): t is string => typeof t === 'string');
    }
  }
  if (doc.enabled !== undefined && doc.enabled !== null) {
    if (typeof doc.enabled !== 'boolean')
      problems.push({ path: ['enabled'], message: 'enabled must be true or false' });
    else fields.enabled = doc.enabled;
  }

  const params = parametersToSchema(doc.parameters, { at: ['parameters'], object: true });
  problems.push(...params.problems);
  fields.param_schema = params.schema;

  let outputMap: unknown = doc.output_map;
  let outputMapKey = 'output_map';
  if (doc.output !== undefined && doc.output !== null) {
    if (outputMap === undefined && looksLikeOutputMap(doc.output)) {
      outputMap = doc.output;
      outputMapKey = 'output';
    } else {
      const out = parametersToSchema(doc.output, { at: ['output'], closed: false });
      problems.push(...out.problems);
      fields.out_schema = out.schema;
    }
  }

  const definition: WorkflowDefinition = { tasks: [] };
  const vars = readVars(doc.vars, problems);
  if (vars) definition.vars = vars;
  definition.tasks = readTasks(doc.tasks, problems);
  if (outputMap !== undefined && outputMap !== null) {
    if (!isObject(outputMap))
      problems.push({
        path: [outputMapKey],
        message: `${outputMapKey} must be a mapping of names to expressions`,
      });
    else definition.output_map = outputMap;
  }
  fields.definition = definition;
  return { fields, problems };
}

/** An `output` written as expressions (`{result: "{{ vars.x }}"}`) rather than as declarations. */
function looksLikeOutputMap(v: unknown): boolean {
  if (!isObject(v) || isJsonSchemaForm(v)) return false;
  return !Object.values(v).every(
    (d) => isObject(d) && Object.keys(d).every((k) => SCHEMA_KEYWORDS.has(k) || FLAT_KEYWORDS.includes(k)),
  );
}

function readVars(v: unknown, problems: FormatProblem[]): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObject(v)) return v;
  if (Array.isArray(v)) {
    const out: Record<string, unknown> = {};
    v.forEach((item, i) => {
      if (!isObject(item) || Object.keys(item).length !== 1) {
        problems.push({
          path: ['vars', i],
          message: 'each item of a vars list must be a one-key mapping {name: value}',
        });
        return;
      }
      const [k, val] = Object.entries(item)[0]!;
      if (Object.hasOwn(out, k))
        problems.push({ path: ['vars', i, k], message: `variable '${k}' is declared twice` });
      out[k] = val;
    });
    return out;
  }
  problems.push({ path: ['vars'], message: 'vars must be a mapping {name: initial value}' });
  return undefined;
}

const TASK_NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,199}$/;

function readTasks(v: unknown, problems: FormatProblem[]): Record<string, unknown>[] {
  if (v === undefined || v === null) {
    problems.push({ path: ['tasks'], message: 'a workflow needs tasks' });
    return [];
  }
  let tasks: { task: unknown; at: PathSegment[] }[];
  if (Array.isArray(v)) tasks = v.map((task, i) => ({ task, at: ['tasks', i] }));
  else if (isObject(v))
    tasks = Object.entries(v).map(([name, task]) => {
      const at: PathSegment[] = ['tasks', name];
      if (isObject(task) && task.name !== undefined && task.name !== name)
        problems.push({
          path: [...at, 'name'],
          message: `task '${name}' names itself '${String(task.name)}'`,
        });
      return { task: isObject(task) ? { name, ...task } : task === null ? { name } : task, at };
    });
  else {
    problems.push({
      path: ['tasks'],
      message: 'tasks must be a list of tasks (or a mapping of names to tasks)',
    });
    return [];
  }
  if (!tasks.length) problems.push({ path: ['tasks'], message: 'a workflow needs at least one task' });
  const out: Record<string, unknown>[] = [];
  const seen = new Map<string, PathSegment[]>();
  for (const { task, at } of tasks) {
    if (!isObject(task)) {
      problems.push({ path: at, message: 'a task must be a mapping {name, action, input, next, …}' });
      continue;
    }
    const name = task.name;
    if (typeof name !== 'string' || !TASK_NAME_RE.test(name)) {
      problems.push({
        path: Array.isArray(v) ? [...at, 'name'] : at,
        message:
          name === undefined
            ? 'a task needs a name'
            : `task name '${String(name)}' must start with a letter or '_' and hold only letters, digits, '_' and '-'`,
      });
    } else if (seen.has(name))
      problems.push({ path: [...at, 'name'], message: `there is more than one task named '${name}'` });
    else seen.set(name, at);
    if (task.action !== undefined && (typeof task.action !== 'string' || !task.action.trim()))
      problems.push({ path: [...at, 'action'], message: "action must be an action ref such as 'core.echo'" });
    out.push(task);
  }
  // `next[].do` must name tasks of this workflow (or fail, noop, retry)
  for (const { task, at } of tasks) {
    if (!isObject(task) || task.next === undefined) continue;
    if (!Array.isArray(task.next)) {
      problems.push({
        path: [...at, 'next'],
        message: 'next must be a list of transitions [{when, publish, do}]',
      });
      continue;
    }
    task.next.forEach((tr, i) => {
      const here = [...at, 'next', i];
      if (!isObject(tr)) {
        problems.push({ path: here, message: 'a transition must be a mapping {when, publish, do}' });
        return;
      }
      for (const target of doTargets(tr.do, [...here, 'do'], problems))
        if (!seen.has(target) && !(SPECIAL_TARGETS as readonly string[]).includes(target))
          problems.push({
            path: [...here, 'do'],
            message: `'${target}' is not a task of this workflow${suggestHint(target, [...seen.keys(), ...SPECIAL_TARGETS])}`,
          });
    });
  }
  return out;
}

const suggestHint = (word: string, candidates: string[]): string => {
  const s = suggest(word, candidates);
  return s ? ` (did you mean '${s}'?)` : '';
};

/** The task names of a `do`: a name, a comma-separated string of names, or a list of names. */
export function doTargets(v: unknown, at: PathSegment[], problems: FormatProblem[]): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string')
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (Array.isArray(v)) {
    const out: string[] = [];
    v.forEach((t, i) => {
      if (typeof t === 'string' && t.trim()) out.push(t.trim());
      else problems.push({ path: [...at, i], message: 'a do target must be a task name' });
    });
    return out;
  }
  problems.push({ path: at, message: 'do must be a task name or a list of task names' });
  return [];
}

/**
 * The file form of a workflow resource (for export and editing): the inverse of
 * `workflowFileToResource`. Schemas are written as JSON Schemas.
 */
export function resourceToWorkflowFile(w: {
  ref: string;
  label?: string;
  description?: string;
  version?: string;
  tags?: string[];
  enabled?: boolean;
  param_schema?: JsonSchema | null;
  out_schema?: JsonSchema | null;
  definition: Record<string, unknown>;
}): Record<string, unknown> {
  const out: Record<string, unknown> = { ref: w.ref };
  if (w.label !== undefined) out.label = w.label;
  if (w.description) out.description = w.description;
  if (w.version !== undefined) out.version = w.version;
  if (w.tags?.length) out.tags = w.tags;
  if (w.enabled === false) out.enabled = false;
  if (w.param_schema) out.parameters = w.param_schema;
  if (w.out_schema) out.output = w.out_schema;
  const { vars, tasks, output_map, ...rest } = w.definition;
  if (vars !== undefined) out.vars = vars;
  out.tasks = tasks;
  if (output_map !== undefined) out.output_map = output_map;
  return { ...out, ...rest };
}
