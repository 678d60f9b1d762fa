/**
 * From a parameter JSON Schema to form fields and back: which input each parameter gets, what it
 * starts with (the schema's default), and how the typed-in text becomes a typed value — with a
 * message per field for what does not fit. The server validates again; its problems map back onto
 * the fields with `problemsToErrors`.
 */
import type { JsonObject } from '../api/types.ts';

export type FieldKind = 'string' | 'text' | 'integer' | 'number' | 'boolean' | 'enum' | 'list' | 'json';

export interface FieldSpec {
  name: string;
  label: string;
  description: string;
  kind: FieldKind;
  required: boolean;
  secret: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
  /** For `enum`: the allowed values (any JSON type). */
  options: unknown[];
  /** For `list`: the type of the items. */
  itemType: 'string' | 'integer' | 'number';
  schema: JsonObject;
}

/** Form values are what the inputs hold: text (enums hold the option's index, booleans 'true'/'false'). */
export type FormValues = Record<string, string>;
export type FieldErrors = Record<string, string>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

const SCHEMA_KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'default',
  'description',
  'title',
  'items',
  'properties',
  'format',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'required',
  'secret',
  'anyOf',
  'oneOf',
]);

/**
 * The schema as a JSON Schema of an object. Accepts the flat form of pack files
 * (`{name: {type, required: true, secret: true}}`) as well.
 */
export function normalizeSchema(raw: unknown): JsonObject {
  if (!isObject(raw) || Object.keys(raw).length === 0) return { type: 'object', properties: {} };
  if (raw.type === 'object' || isObject(raw.properties)) return raw;
  const entries = Object.entries(raw);
  const flat = entries.every(([, v]) => isObject(v) && Object.keys(v).some((k) => SCHEMA_KEYWORDS.has(k)));
  if (!flat) return raw;
  const properties: JsonObject = {};
  const required: string[] = [];
  for (const [name, v] of entries) {
    const { required: req, ...rest } = v as JsonObject;
    if (req === true) required.push(name);
    properties[name] = rest;
  }
  return { type: 'object', properties, required };
}

const typeOf = (s: JsonObject): string | undefined => {
  if (typeof s.type === 'string') return s.type;
  if (Array.isArray(s.type)) return s.type.find((t) => t !== 'null') as string | undefined;
  if (Array.isArray(s.enum)) return undefined;
  return undefined;
};

function kindOf(s: JsonObject): FieldKind {
  if (Array.isArray(s.enum) && s.enum.length > 0) return 'enum';
  const t = typeOf(s);
  switch (t) {
    case 'string': {
      // Long texts (a message, a script) get a multi-line box; names and the like one line.
      const long = typeof s.maxLength === 'number' && s.maxLength > 1000;
      return s.format === 'textarea' || s.format === 'multiline' || (long && !s.secret && !s.format)
        ? 'text'
        : 'string';
    }
    case 'integer':
      return 'integer';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array': {
      const it = isObject(s.items) ? typeOf(s.items) : undefined;
      if (it === 'string' || it === 'integer' || it === 'number')
        return isObject(s.items) && Array.isArray(s.items.enum) ? 'json' : 'list';
      return 'json';
    }
    default:
      return 'json';
  }
}

const humanize = (name: string): string => {
  const s = name.replace(/[_-]+/g, ' ').trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
};

/** The fields of a parameter schema, required ones first, otherwise in declaration order. */
export function fieldsOf(rawSchema: unknown): FieldSpec[] {
  const schema = normalizeSchema(rawSchema);
  const props = isObject(schema.properties) ? schema.properties : {};
  const required = new Set(
    Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === 'string') : [],
  );
  const fields = Object.entries(props).map(([name, p]): FieldSpec => {
    const s = isObject(p) ? p : {};
    const kind = kindOf(s);
    const items = isObject(s.items) ? s.items : {};
    const it = typeOf(items);
    return {
      name,
      label: typeof s.title === 'string' && s.title ? s.title : humanize(name),
      description: typeof s.description === 'string' ? s.description : '',
      kind,
      required: required.has(name),
      secret: s.secret === true,
      hasDefault: 'default' in s,
      defaultValue: s.default,
      options: Array.isArray(s.enum) ? s.enum : [],
      itemType: it === 'integer' || it === 'number' ? it : 'string',
      schema: s,
    };
  });
  return [...fields.filter((f) => f.required), ...fields.filter((f) => !f.required)];
}

const json = (v: unknown): string => JSON.stringify(v, null, 2) ?? '';

/** What an input shows for a value of the field. */
export function toInput(f: FieldSpec, v: unknown): string {
  if (v === undefined) return '';
  switch (f.kind) {
    case 'enum': {
      const i = f.options.findIndex((o) => JSON.stringify(o) === JSON.stringify(v));
      return i >= 0 ? String(i) : '';
    }
    case 'boolean':
      return v === true ? 'true' : v === false ? 'false' : '';
    case 'list':
      return Array.isArray(v) ? v.map((x) => String(x)).join('\n') : '';
    case 'json':
      return json(v);
    default:
      return v === null ? '' : String(v);
  }
}

/** The starting values: each field's default, or empty. */
export function initialValues(fields: FieldSpec[], given: JsonObject = {}): FormValues {
  const out: FormValues = {};
  for (const f of fields) {
    const v = f.name in given ? given[f.name] : f.hasDefault ? f.defaultValue : undefined;
    out[f.name] = toInput(f, v);
    if (f.kind === 'boolean' && out[f.name] === '' && f.required) out[f.name] = 'false';
  }
  return out;
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

function checkNumber(f: FieldSpec, n: number): string | undefined {
  const s = f.schema;
  if (typeof s.minimum === 'number' && n < s.minimum) return `Must be at least ${s.minimum}`;
  if (typeof s.maximum === 'number' && n > s.maximum) return `Must be at most ${s.maximum}`;
  if (typeof s.exclusiveMinimum === 'number' && n <= s.exclusiveMinimum)
    return `Must be more than ${s.exclusiveMinimum}`;
  if (typeof s.exclusiveMaximum === 'number' && n >= s.exclusiveMaximum)
    return `Must be less than ${s.exclusiveMaximum}`;
  if (
    typeof s.multipleOf === 'number' &&
    s.multipleOf > 0 &&
    Math.abs(n / s.multipleOf - Math.round(n / s.multipleOf)) > 1e-9
  )
    return `Must be a multiple of ${s.multipleOf}`;
  return undefined;
}

function checkString(f: FieldSpec, v: string, s: JsonObject = f.schema): string | undefined {
  if (typeof s.minLength === 'number' && v.length < s.minLength)
    return `Must be at least ${plural(s.minLength, 'character')}`;
  if (typeof s.maxLength === 'number' && v.length > s.maxLength)
    return `Must be at most ${plural(s.maxLength, 'character')}`;
  if (typeof s.pattern === 'string') {
    try {
      if (!new RegExp(s.pattern, 'u').test(v)) return `Must match the pattern ${s.pattern}`;
    } catch {
      /* a pattern JavaScript cannot read: leave it to the server */
    }
  }
  return undefined;
}

function parseScalar(type: 'integer' | 'number', text: string): number | string {
  const t = text.trim();
  if (type === 'integer') {
    if (!/^[-+]?\d+$/.test(t)) return 'Must be a whole number';
    const n = Number(t);
    return Number.isSafeInteger(n) ? n : 'The number is too large';
  }
  const n = Number(t);
  return t !== '' && Number.isFinite(n) ? n : 'Must be a number';
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/**
 * The parameters the form describes, and a message per field that does not fit. Empty optional
 * fields are left out (the server then applies the schema's defaults).
 */
export function collect(fields: FieldSpec[], values: FormValues): { value: JsonObject; errors: FieldErrors } {
  const value: JsonObject = {};
  const errors: FieldErrors = {};
  for (const f of fields) {
    const raw = values[f.name] ?? '';
    const empty = f.kind === 'string' || f.kind === 'text' ? raw === '' : raw.trim() === '';
    if (empty) {
      if (f.required) errors[f.name] = 'Required';
      continue;
    }
    switch (f.kind) {
      case 'string':
      case 'text': {
        const e = checkString(f, raw);
        if (e) errors[f.name] = e;
        else value[f.name] = raw;
        break;
      }
      case 'integer':
      case 'number': {
        const n = parseScalar(f.kind, raw);
        if (typeof n === 'string') errors[f.name] = n;
        else {
          const e = checkNumber(f, n);
          if (e) errors[f.name] = e;
          else value[f.name] = n;
        }
        break;
      }
      case 'boolean':
        value[f.name] = raw === 'true';
        break;
      case 'enum': {
        const i = Number(raw);
        if (!Number.isInteger(i) || i < 0 || i >= f.options.length)
          errors[f.name] = 'Choose one of the options';
        else value[f.name] = f.options[i];
        break;
      }
      case 'list': {
        const lines = raw
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '');
        const items: unknown[] = [];
        let err: string | undefined;
        lines.forEach((l, i) => {
          if (err) return;
          if (f.itemType === 'string') {
            const e = checkString(f, l, isObject(f.schema.items) ? f.schema.items : {});
            if (e) err = `Line ${i + 1}: ${e.charAt(0).toLowerCase()}${e.slice(1)}`;
            else items.push(l);
          } else {
            const n = parseScalar(f.itemType, l);
            if (typeof n === 'string') err = `Line ${i + 1}: ${n.charAt(0).toLowerCase()}${n.slice(1)}`;
            else items.push(n);
          }
        });
        const s = f.schema;
        if (!err && typeof s.minItems === 'number' && items.length < s.minItems)
          err = `Needs at least ${plural(s.minItems, 'item')}, one per line`;
        if (!err && typeof s.maxItems === 'number' && items.length > s.maxItems)
          err = `Takes at most ${plural(s.maxItems, 'item')}`;
        if (err) errors[f.name] = err;
        else value[f.name] = items;
        break;
      }
      case 'json': {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch (e) {
          errors[f.name] = `Not valid JSON: ${(e as Error).message}`;
          break;
        }
        const want = typeOf(f.schema);
        const got = jsonType(parsed);
        if (want && want !== got && !(want === 'number' && got === 'integer'))
          errors[f.name] =
            `Must be ${want === 'array' || want === 'object' ? 'an' : 'a'} ${want} (got ${got})`;
        else value[f.name] = parsed;
        break;
      }
    }
  }
  return { value, errors };
}

/**
 * Server-side problems (`{path: '/name/0', message}`) as field errors; problems that name no field
 * of the form are returned apart.
 */
export function problemsToErrors(
  fields: FieldSpec[],
  problems: { path: string; message: string }[],
): { errors: FieldErrors; other: string[] } {
  const names = new Set(fields.map((f) => f.name));
  const errors: FieldErrors = {};
  const other: string[] = [];
  for (const p of problems) {
    const name = p.path.replace(/^\/?(?:parameters\/|response\/)?/, '').split(/[/.[]/)[0] ?? '';
    if (names.has(name) && !errors[name]) errors[name] = p.message;
    else other.push(p.path && p.path !== '/' ? `${p.path}: ${p.message}` : p.message);
  }
  return { errors, other };
}
