/**
 * Value semantics shared by the template engine and the rule operators: type names, truthiness,
 * equality, text conversion, and the conversion of template values back to plain JSON data.
 */
import { limitError, runtimeError } from './errors.ts';
import { LIMITS } from './limits.ts';
import { SafeString } from './nunjucks.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** A dict for the template language: any non-array object that is not a string wrapper or a date. */
export const isDict = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  !(v instanceof SafeString) &&
  !(v instanceof Date);

export const isSafeString = (v: unknown): v is { val: string } => v instanceof SafeString;

/** The template-language name of a value's type, for messages. */
export function typeName(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'string' || v instanceof SafeString) return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'function') return 'function';
  if (v instanceof Date) return 'date';
  return 'dict';
}

/** Python/Jinja truthiness: false, 0, '', null, undefined, [] and {} are false. */
export function isTruthy(v: unknown): boolean {
  if (!v) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof SafeString) return v.val.length > 0;
  if (typeof v === 'object') {
    if (v instanceof Date) return true;
    for (const k in v) if (Object.hasOwn(v, k)) return true;
    return false;
  }
  return true;
}

/** Unwrap string wrappers produced by macros and `safe`. */
export const unwrap = (v: unknown): unknown => (v instanceof SafeString ? v.val : v);

/** A number from a number or a numeric string (`"42"`, `" 4.5 "`, `"-1e3"`), else undefined. */
export function numeric(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isNaN(v) ? undefined : v;
  if (typeof v === 'string') {
    const t = v.trim();
    if (t === '' || !NUMERIC_RE.test(t)) return undefined;
    const n = Number(t);
    return Number.isNaN(n) ? undefined : n;
  }
  return undefined;
}
const NUMERIC_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?Infinity$/;

/**
 * Equality as templates and rule criteria use it: deep for lists and dicts (key order ignored),
 * and lenient where event payloads are stringly typed — a number equals its numeric string
 * (`5 == "5"`, `5 == "5.0"`) and a boolean equals `"true"`/`"false"`. Missing (undefined) equals null.
 */
export function looseEquals(a: unknown, b: unknown, depth = 0): boolean {
  a = unwrap(a);
  b = unwrap(b);
  if (a === b) return true;
  if (a === undefined || a === null) return b === undefined || b === null;
  if (b === undefined || b === null) return false;
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number' || tb === 'number') {
    if (ta === 'number' && tb === 'number') return false; // NaN, or simply different
    if (ta === 'boolean' || tb === 'boolean') return false;
    const na = numeric(a);
    const nb = numeric(b);
    return na !== undefined && nb !== undefined && na === nb;
  }
  if (ta === 'boolean' || tb === 'boolean') {
    if (ta === 'boolean' && tb === 'string') return (b as string) === String(a);
    if (tb === 'boolean' && ta === 'string') return (a as string) === String(b);
    return false;
  }
  if (ta !== 'object' || tb !== 'object') return false;
  if (depth > LIMITS.valueDepth) throw limitError('values nested too deeply to compare');
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!looseEquals(a[i], b[i], depth + 1)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = ownKeys(ra);
  const kb = ownKeys(rb);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(rb, k)) return false;
    if (!looseEquals(ra[k], rb[k], depth + 1)) return false;
  }
  return true;
}

export function ownKeys(o: object): string[] {
  const out: string[] = [];
  for (const k in o) if (Object.hasOwn(o, k)) out.push(k);
  return out;
}

/** Set `obj[key] = value` as an own data property, even for `__proto__`. */
export function defineKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/**
 * Convert a template value to plain JSON data: a new value sharing nothing with the context.
 * `undefined` becomes null (and is dropped from dicts), dates become ISO strings, non-finite
 * numbers become null. Functions are refused: they are not data.
 */
export function toPlain(value: unknown): JsonValue {
  const budget = { nodes: LIMITS.collectionNodes };
  return plain(value, 0, budget);
}

function plain(v: unknown, depth: number, budget: { nodes: number }): JsonValue {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return Number.isFinite(v) ? v : null;
    case 'undefined':
      return null;
    case 'function':
      throw runtimeError('the expression evaluated to a function, which is not data');
    case 'bigint':
      return Number(v);
    case 'symbol':
      throw runtimeError('the expression evaluated to a symbol, which is not data');
  }
  if (v === null) return null;
  if (v instanceof SafeString) return v.val;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (--budget.nodes < 0)
    throw limitError(`value too large: more than ${LIMITS.collectionNodes.toLocaleString('en-US')} elements`);
  if (depth >= LIMITS.valueDepth)
    throw limitError(`value nested more than ${LIMITS.valueDepth} levels deep (or cyclic)`);
  if (Array.isArray(v)) {
    const out: JsonValue[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = plain(v[i], depth + 1, budget);
    return out;
  }
  if (v instanceof Map) {
    const out: Record<string, JsonValue> = {};
    for (const [k, val] of v) if (val !== undefined) defineKey(out, String(k), plain(val, depth + 1, budget));
    return out;
  }
  if (v instanceof Set) return [...v].map((x) => plain(x, depth + 1, budget));
  const out: Record<string, JsonValue> = {};
  const src = v as Record<string, unknown>;
  for (const k in src) {
    if (!Object.hasOwn(src, k)) continue;
    const val = src[k];
    if (val === undefined) continue;
    defineKey(out, k, plain(val, depth + 1, budget));
  }
  return out;
}

/** JSON text of a value (bounded like `toPlain`). */
export function toJson(value: unknown, indent?: number | string, sortKeys = false): string {
  let data = toPlain(value);
  if (sortKeys) data = sortDeep(data);
  const text = JSON.stringify(data, null, indent);
  return text;
}

function sortDeep(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const k of Object.keys(v).sort()) defineKey(out, k, sortDeep(v[k] as JsonValue));
    return out;
  }
  return v;
}

/**
 * How a value prints inside text: null/undefined as '', strings as themselves, numbers and
 * booleans as in JSON, lists and dicts as compact JSON. Functions cannot be printed.
 */
export function toText(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
      return '';
    case 'function':
      throw runtimeError('cannot print a function (did you forget to call it?)');
  }
  if (v === null) return '';
  if (v instanceof SafeString) return v.val;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? '' : v.toISOString();
  return toJson(v);
}

/** Coerce a filter argument that should be a string: null/undefined → '' and scalars → their text. */
export function str(v: unknown): string {
  if (typeof v === 'string') return v;
  return toText(v);
}
