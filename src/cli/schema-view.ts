/**
 * A JSON Schema of parameters (actions, workflows, triggers, inquiry answers) as a readable table:
 * one row per property with its type, whether it is required, its default, and a description that
 * also tells the allowed values, bounds, patterns, and whether it is secret or immutable.
 */
import type { Ctx } from './context.ts';
import { oneLine } from './format.ts';

type Schema = Record<string, unknown>;

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `string`, `integer|null`, `array of string`, `object`, `one of a|b`… */
export function typeOf(p: Schema): string {
  const t = p.type;
  let s = Array.isArray(t) ? t.join('|') : typeof t === 'string' ? t : '';
  if (s === 'array' && isObject(p.items) && typeof p.items.type === 'string') s = `array of ${p.items.type}`;
  if (!s && Array.isArray(p.enum)) s = 'enum';
  if (!s && (p.oneOf || p.anyOf)) s = 'one of several';
  if (!s && p.const !== undefined) s = 'constant';
  return s || 'any';
}

/** The constraints of a property in words. */
export function constraintsOf(p: Schema): string[] {
  const out: string[] = [];
  if (Array.isArray(p.enum)) out.push(`one of: ${p.enum.map((v) => oneLine(v, 40)).join(', ')}`);
  if (p.const !== undefined) out.push(`always ${oneLine(p.const, 40)}`);
  if (typeof p.minimum === 'number' || typeof p.maximum === 'number')
    out.push(`${p.minimum ?? '…'}–${p.maximum ?? '…'}`);
  if (typeof p.minLength === 'number' || typeof p.maxLength === 'number')
    out.push(`${p.minLength ?? 0}–${p.maxLength ?? '…'} characters`);
  if (typeof p.pattern === 'string') out.push(`matches ${p.pattern}`);
  if (typeof p.format === 'string') out.push(`format ${p.format}`);
  if (p.secret === true) out.push('secret');
  if (p.immutable === true) out.push('immutable');
  return out;
}

export interface ParamRow {
  name: string;
  type: string;
  required: boolean;
  default: string;
  description: string;
}

export function paramRows(schema: unknown): ParamRow[] {
  if (!isObject(schema) || !isObject(schema.properties)) return [];
  const required = new Set(
    Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === 'string') : [],
  );
  return Object.entries(schema.properties).map(([name, raw]) => {
    const p = isObject(raw) ? raw : {};
    const desc = [typeof p.description === 'string' ? p.description : '', ...constraintsOf(p)]
      .filter(Boolean)
      .join('; ');
    return {
      name,
      type: typeOf(p),
      required: required.has(name),
      default: p.default === undefined ? '' : oneLine(p.default, 40),
      description: desc,
    };
  });
}

/** Prints the parameter table of a schema (or a note when it takes none). */
export function printParams(ctx: Ctx, schema: unknown, none = 'no parameters'): void {
  const rows = paramRows(schema);
  if (!rows.length) {
    ctx.out.print(`  ${ctx.out.c.dim(none)}`);
    return;
  }
  const c = ctx.out.c;
  // required first, then in declaration order
  rows.sort((a, b) => Number(b.required) - Number(a.required));
  ctx.out.table(rows, [
    { header: 'NAME', value: (r) => r.name, color: (t, r) => (r.required ? c.bold(t) : t) },
    { header: 'TYPE', value: (r) => r.type },
    { header: 'REQUIRED', value: (r) => (r.required ? 'yes' : '') },
    { header: 'DEFAULT', value: (r) => r.default, flex: true },
    { header: 'DESCRIPTION', value: (r) => r.description, flex: true },
  ]);
}
