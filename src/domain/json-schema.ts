/**
 * User-supplied JSON Schemas (action and workflow parameters, outputs, trigger payloads, inquiry
 * responses): checking that a document is a valid schema, and validating data against one.
 * Draft 2020-12 by default; a `$schema` naming draft-07 is honoured. Compiled schemas are cached.
 */
import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const opts = { allErrors: true, strict: false, validateSchema: true, useDefaults: true } as const;
const ajv7 = new Ajv(opts);
const ajv2020 = new Ajv2020(opts);
(addFormats as unknown as (a: Ajv) => void)(ajv7);
(addFormats as unknown as (a: Ajv2020) => void)(ajv2020);

const pick = (schema: Record<string, unknown>): Ajv | Ajv2020 =>
  typeof schema.$schema === 'string' && schema.$schema.includes('draft-07') ? ajv7 : ajv2020;

export interface SchemaIssue {
  path: string;
  message: string;
}

const toIssues = (errs: ErrorObject[] | null | undefined): SchemaIssue[] =>
  (errs ?? []).map((e) => {
    let path = e.instancePath || '';
    if (e.keyword === 'required')
      path += `/${String((e.params as { missingProperty?: string }).missingProperty)}`;
    if (e.keyword === 'additionalProperties')
      path += `/${String((e.params as { additionalProperty?: string }).additionalProperty)}`;
    return { path: path || '/', message: e.message ?? 'invalid' };
  });

/** Problems that make `doc` not a usable JSON Schema; empty when it is fine. */
export function schemaProblems(doc: unknown): SchemaIssue[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return [{ path: '/', message: 'a JSON Schema must be an object' }];
  const a = pick(doc as Record<string, unknown>);
  try {
    if (!a.validateSchema(doc)) return toIssues(a.errors);
    compile(doc as Record<string, unknown>);
    return [];
  } catch (e) {
    return [{ path: '/', message: (e as Error).message }];
  }
}

const cache = new Map<string, ValidateFunction>();

function compile(schema: Record<string, unknown>): ValidateFunction {
  const key = createHash('sha1').update(JSON.stringify(schema)).digest('base64');
  let fn = cache.get(key);
  if (!fn) {
    const { $id: _ignored, ...rest } = schema; // a user $id must not collide across schemas
    fn = pick(schema).compile(rest);
    if (cache.size > 5000) cache.clear();
    cache.set(key, fn);
  }
  return fn;
}

/**
 * Validates `data` against `schema` (applying defaults into `data` when it is an object).
 * Returns the problems; empty when valid.
 */
export function validateAgainst(schema: Record<string, unknown>, data: unknown): SchemaIssue[] {
  const fn = compile(schema);
  return fn(data) ? [] : toIssues(fn.errors);
}
