/**
 * The shapes of a pack's YAML files (pack.yaml and one definition per file in actions/, triggers/,
 * sensors/, rules/), as JSON Schemas, and the checker that reports every deviation with a readable
 * message. Fields that take a schema (`parameters`, `payload_schema`, …) are only typed here; they are
 * read by `parametersToSchema`. Workflow files are read by `src/workflow/file-format.ts`.
 */
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { NAME_PATTERN } from '../domain/refs.ts';
import { ConcurrencyPolicy, RetryPolicy } from '../services/api/routes/actions.ts';
import {
  type FormatProblem,
  fromPointer,
  type PathSegment,
  unknownKeyMessage,
} from '../workflow/file-format.ts';

type Schema = Record<string, unknown>;

const str = (max: number, extra: Schema = {}): Schema => ({ type: 'string', maxLength: max, ...extra });
const label = str(255, { minLength: 1 });
const description = str(10_000);
const tags: Schema = { type: 'array', maxItems: 100, items: str(100, { minLength: 1 }) };
const enabled: Schema = { type: 'boolean' };
const object: Schema = { type: 'object' };
const anyDoc: Schema = {};
/** Name of an entity inside its pack (the part after `pack.`). */
const entityName = str(200, {
  pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$',
  'x-message': "must start with a letter, digit or '_' and hold only letters, digits, '_', '-' and '.'",
});
const refOrName = str(300, {
  minLength: 1,
  pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$',
  'x-message': "must be a ref ('pack.name') or the name of an entity of this pack",
});

export const PACK_FILE: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['ref', 'version'],
  properties: {
    ref: str(100, {
      pattern: NAME_PATTERN,
      'x-message': "must be lowercase, start with a letter and hold only letters, digits, '_' and '-'",
    }),
    label,
    description,
    version: str(64, { minLength: 1 }),
    author: str(255),
    email: str(255, { format: 'email' }),
    tags,
    dependencies: { type: 'array', maxItems: 100, items: str(200, { minLength: 1 }) },
    config_schema: anyDoc,
    config: object,
    system: { type: 'boolean' },
  },
};

export const ACTION_FILE: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: entityName,
    ref: str(300),
    label,
    description,
    runner: str(100, { minLength: 1 }),
    runner_type: str(100, { minLength: 1 }),
    entry_point: str(10_000),
    parameters: anyDoc,
    output_schema: anyDoc,
    timeout: { type: 'integer', minimum: 1, maximum: 604_800 },
    retry: RetryPolicy,
    concurrency: ConcurrencyPolicy,
    tags,
    enabled,
    meta: object,
  },
};

export const TRIGGER_FILE: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: entityName,
    ref: str(300),
    label,
    description,
    parameters: anyDoc,
    payload_schema: anyDoc,
    tags,
    enabled,
  },
};

export const SENSOR_FILE: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['triggers'],
  properties: {
    name: entityName,
    ref: str(300),
    label,
    description,
    runner: str(100, { minLength: 1 }),
    runner_type: str(100, { minLength: 1 }),
    entry_point: str(10_000),
    triggers: { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: refOrName },
    config: object,
    poll_interval: { type: 'integer', minimum: 1, maximum: 86_400 },
    tags,
    enabled,
  },
};

export const RULE_FILE: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['trigger', 'action'],
  properties: {
    name: entityName,
    ref: str(300),
    label,
    description,
    trigger: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: { type: refOrName, parameters: object },
    },
    criteria: object,
    action: {
      type: 'object',
      additionalProperties: false,
      required: ['ref'],
      properties: { ref: refOrName, parameters: object },
    },
    tags,
    enabled,
  },
};

/** Specific advice for fields people bring from elsewhere. */
const HINTS: Record<string, string> = {
  name: "use 'ref' for the pack's identifier and 'label' for its display name",
  keywords: "use 'tags'",
  conf_schema: "use 'config_schema'",
  runner_type: "give either 'runner' or 'runner_type', not both",
  output: "use 'output_schema'",
  trigger_types: "use 'triggers'",
  workflow_file: "workflows live in the pack's workflows/ folder",
};

const ajv = new Ajv2020({ allErrors: true, strict: false, verbose: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
const compiled = new Map<Schema, ReturnType<typeof ajv.compile>>();

/** Every way `value` deviates from `schema`, as located, readable problems. */
export function shapeProblems(schema: Schema, value: unknown, at: PathSegment[] = []): FormatProblem[] {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  if (fn(value)) return [];
  const out: FormatProblem[] = [];
  const seen = new Set<string>();
  for (const e of fn.errors ?? []) {
    const p = describe(e, at);
    const key = `${p.path.join('/')}|${p.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(p);
    }
  }
  return out;
}

const a = (t: string): string => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);
const typeName = (t: unknown): string =>
  Array.isArray(t)
    ? t.map(typeName).join(' or ')
    : t === 'object'
      ? 'mapping'
      : t === 'array'
        ? 'list'
        : String(t);

function describe(e: ErrorObject, at: PathSegment[]): FormatProblem {
  const path: PathSegment[] = [...at, ...fromPointer(e.instancePath)];
  const name = path.length ? path.map(String).join('.') : 'the file';
  const parent = (e.parentSchema ?? {}) as Schema;
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path, message: `missing required field '${String(params.missingProperty)}'` };
    case 'additionalProperties': {
      const k = String(params.additionalProperty);
      const known = Object.keys((parent.properties as Schema | undefined) ?? {});
      const hint = HINTS[k] && !known.includes(k) ? ` (${HINTS[k]})` : '';
      return {
        path: [...path, k],
        message: hint ? `unknown field '${k}'${hint}` : unknownKeyMessage(k, known),
      };
    }
    case 'type': {
      const quoted =
        parent.type === 'string' && (typeof e.data === 'number' || typeof e.data === 'boolean')
          ? ` (quote it: "${String(e.data)}")`
          : '';
      return { path, message: `${name} must be ${a(typeName(params.type))}${quoted}` };
    }
    case 'enum':
      return {
        path,
        message: `${name} must be one of ${((params.allowedValues as unknown[]) ?? []).map(String).join(', ')}`,
      };
    case 'pattern':
      return { path, message: `${name} ${String(parent['x-message'] ?? e.message)}` };
    case 'format':
      return { path, message: `${name} is not a valid ${String(params.format)}` };
    default:
      return { path, message: `${name} ${e.message ?? 'is invalid'}` };
  }
}
