/**
 * The filters and tests templates can use: Jinja2's built-ins, plus the Ansible and StackStorm
 * filters automation authors reach for (JSON/YAML, regex, base64, sets of lists, dict helpers,
 * versions). Every filter is pure, bounded (it burns fuel in proportion to its input and refuses
 * results above the size limits) and never mutates its input. The tables are null-prototype
 * objects: a name is a filter only if it is listed here.
 */
import { createHash, getHashes } from 'node:crypto';
import { posix } from 'node:path';
import semver from 'semver';
import YAML from 'yaml';
import { getMember, getPath, pyReplace, pySplit, splitArgs } from './access.ts';
import { ExprError, limitError, runtimeError } from './errors.ts';
import { burn, capString, checkLength, checkListLength, LIMITS } from './limits.ts';
import {
  compileRegex,
  regexEscape,
  regexFindAll,
  regexMatchAll,
  regexMatchStart,
  regexReplace,
  regexSearch,
} from './regex.ts';
import {
  defineKey,
  isDict,
  isTruthy,
  looseEquals,
  numeric,
  ownKeys,
  str,
  toJson,
  toPlain,
  toText,
  typeName,
  unwrap,
} from './values.ts';

export type Filter = (this: unknown, value: unknown, ...args: unknown[]) => unknown;
export type Test = (this: unknown, value: unknown, ...args: unknown[]) => boolean;

// ---------------------------------------------------------------------------------------------
// Helpers

/** Positional and keyword arguments, Jinja style: `f(a, b)` or `f(name=a)`. */
function args(raw: unknown[], names: readonly string[]): unknown[] {
  const { pos, kw } = splitArgs(raw);
  const out = names.map((n, i) => (Object.hasOwn(kw, n) ? kw[n] : pos[i]));
  for (const k of Object.keys(kw))
    if (!names.includes(k)) throw runtimeError(`unexpected keyword argument '${k}'`);
  return out;
}

function list(v: unknown, filter: string): unknown[] {
  const x = unwrap(v);
  if (Array.isArray(x)) {
    burn(1 + x.length);
    return x;
  }
  if (x === undefined || x === null) return [];
  if (typeof x === 'string') return [...x];
  if (isDict(x)) return ownKeys(x);
  throw runtimeError(`${filter}: expected a list, got ${typeName(x)}`);
}

function dict(v: unknown, filter: string): Record<string, unknown> {
  const x = unwrap(v);
  if (isDict(x)) {
    burn(1);
    return x;
  }
  throw runtimeError(`${filter}: expected a dict, got ${typeName(x)}`);
}

function int(v: unknown, what: string, dflt?: number): number {
  const x = unwrap(v);
  if (x === undefined || x === null) {
    if (dflt !== undefined) return dflt;
    throw runtimeError(`${what} is required`);
  }
  const n = typeof x === 'boolean' ? Number(x) : numeric(x);
  if (n === undefined || !Number.isInteger(n))
    throw runtimeError(`${what} must be an integer, got ${toText(x)}`);
  return n;
}

function num(v: unknown, filter: string): number {
  const x = unwrap(v);
  const n = typeof x === 'boolean' ? Number(x) : numeric(x);
  if (n === undefined) throw runtimeError(`${filter}: expected a number, got ${typeName(x)} ${toText(x)}`);
  return n;
}

const bool = (v: unknown): boolean => {
  const x = unwrap(v);
  if (typeof x === 'string') return ['yes', 'on', '1', 'true', 'y', 't'].includes(x.trim().toLowerCase());
  if (typeof x === 'number') return x === 1;
  return x === true;
};

const TYPE_RANK: Record<string, number> = {
  null: 0,
  undefined: 0,
  boolean: 1,
  number: 2,
  string: 3,
  date: 4,
  list: 5,
  dict: 6,
};

/** A total order for sort/min/max: by type first, then naturally; strings optionally case-folded. */
export function compareValues(a: unknown, b: unknown, caseSensitive = false): number {
  a = unwrap(a);
  b = unwrap(b);
  const ta = typeName(a);
  const tb = typeName(b);
  if (ta !== tb) return (TYPE_RANK[ta] ?? 9) - (TYPE_RANK[tb] ?? 9);
  if (typeof a === 'string' && typeof b === 'string') {
    const x = caseSensitive ? a : a.toLowerCase();
    const y = caseSensitive ? b : b.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'number' || typeof a === 'boolean') return Number(a) - Number(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compareValues(a[i], b[i], caseSensitive);
      if (c !== 0) return c;
    }
    return a.length - b.length;
  }
  return 0;
}

/** A key identifying a value for unique/union/intersect (numbers and numeric strings stay distinct). */
function identity(v: unknown, caseSensitive: boolean): string {
  const x = unwrap(v);
  if (typeof x === 'string') return `s:${caseSensitive ? x : x.toLowerCase()}`;
  if (typeof x === 'object' && x !== null) return `o:${toJson(x, undefined, true)}`;
  return `${typeof x}:${String(x)}`;
}

function uniqueBy(items: unknown[], caseSensitive: boolean, key?: (v: unknown) => unknown): unknown[] {
  const seen = new Set<string>();
  const out: unknown[] = [];
  for (const v of items) {
    const id = identity(key ? key(v) : v, caseSensitive);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(v);
  }
  return out;
}

const attrGetter = (attribute: unknown) =>
  attribute === undefined || attribute === null ? (v: unknown) => v : (v: unknown) => getPath(v, attribute);

function checkCount(n: number, what: string): void {
  checkListLength(n, `${what} result`);
}

const htmlEscape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c]!);

/** Python `%`-formatting: `%s %r %d %i %f %e %g %x %X %o %%`, flags, width, precision, `%(name)s`. */
export function pyFormat(fmt: string, values: unknown): string {
  const positional = Array.isArray(values) ? values : [values];
  const named = isDict(values) ? values : null;
  let i = 0;
  const out = fmt.replace(
    /%(?:\((\w+)\))?([-+ 0#]*)(\d+|\*)?(?:\.(\d+))?([sridfFeEgGxXoc%])/g,
    (
      _m,
      name: string | undefined,
      flags: string,
      width: string | undefined,
      prec: string | undefined,
      conv: string,
    ) => {
      if (conv === '%') return '%';
      let v: unknown;
      if (name !== undefined) {
        if (!named) throw runtimeError('format requires a dict for %(name) specifiers');
        if (!Object.hasOwn(named, name)) throw runtimeError(`format: missing key '${name}'`);
        v = named[name];
      } else {
        if (i >= positional.length) throw runtimeError('not enough arguments for format string');
        v = positional[i++];
      }
      let s: string;
      const p = prec === undefined ? undefined : Number(prec);
      switch (conv) {
        case 's':
          s = toText(v);
          if (p !== undefined) s = s.slice(0, p);
          break;
        case 'r':
          s = toJson(v);
          break;
        case 'd':
        case 'i':
          s = String(Math.trunc(num(v, 'format')));
          break;
        case 'f':
        case 'F':
          s = num(v, 'format').toFixed(Math.min(p ?? 6, 100));
          break;
        case 'e':
        case 'E':
          s = num(v, 'format')
            .toExponential(Math.min(p ?? 6, 100))
            .replace(/e([+-])(\d)$/, 'e$10$2');
          if (conv === 'E') s = s.toUpperCase();
          break;
        case 'g':
        case 'G':
          s = String(Number(num(v, 'format').toPrecision(Math.min(Math.max(p ?? 6, 1), 100))));
          break;
        case 'x':
        case 'X':
        case 'o': {
          const n = Math.trunc(num(v, 'format'));
          s = Math.abs(n).toString(conv === 'o' ? 8 : 16);
          if (conv === 'X') s = s.toUpperCase();
          if (flags.includes('#')) s = (conv === 'o' ? '0o' : conv === 'x' ? '0x' : '0X') + s;
          if (n < 0) s = `-${s}`;
          break;
        }
        default:
          s = String.fromCodePoint(typeof v === 'number' ? v : (str(v).codePointAt(0) ?? 32));
      }
      if (/[difFeEgGxXo]/.test(conv) && !s.startsWith('-')) {
        if (flags.includes('+')) s = `+${s}`;
        else if (flags.includes(' ')) s = ` ${s}`;
      }
      const w = width === undefined ? 0 : Number(width);
      if (s.length < w) {
        checkLength(w);
        if (flags.includes('-')) s = s.padEnd(w);
        else if (flags.includes('0') && /[difFeEgGxXo]/.test(conv)) {
          const sign = /^[-+ ]/.test(s) ? s[0]! : '';
          s = sign + s.slice(sign.length).padStart(w - sign.length, '0');
        } else s = s.padStart(w);
      }
      return s;
    },
  );
  return capString(out);
}

function yamlParse(text: string): unknown {
  burn(1 + (text.length >> 4));
  try {
    return YAML.parse(text, { maxAliasCount: 100, uniqueKeys: false });
  } catch (e) {
    throw runtimeError(`from_yaml: ${(e as Error).message.split('\n')[0]}`);
  }
}

function yamlDump(value: unknown, indent: number): string {
  const data = toPlain(value);
  burn(1);
  return capString(YAML.stringify(data, { indent: Math.min(Math.max(indent, 1), 16), lineWidth: 0 }));
}

function jsonParse(text: unknown): unknown {
  const s = str(text);
  burn(1 + (s.length >> 4));
  try {
    return JSON.parse(s);
  } catch (e) {
    throw runtimeError(`from_json: ${(e as Error).message}`);
  }
}

function version(v: unknown, filter: string): semver.SemVer {
  const s = str(v).trim();
  const parsed = semver.parse(s, { loose: true }) ?? semver.coerce(s);
  if (!parsed) throw runtimeError(`${filter}: '${s}' is not a version`);
  return parsed;
}

function humanTime(seconds: unknown): string {
  let s = Math.round(num(seconds, 'to_human_time_from_seconds'));
  if (s < 0) throw runtimeError('to_human_time_from_seconds: seconds must be ≥ 0');
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join('');
}

function truncate(v: unknown, a: unknown[]): string {
  const [length, killwords, end, leeway] = args(a, ['length', 'killwords', 'end', 'leeway']);
  const s = str(v);
  const n = int(length, 'truncate length', 255);
  const e = end === undefined ? '...' : str(end);
  const lw = int(leeway, 'leeway', 5);
  if (s.length <= n + lw) return s;
  if (isTruthy(killwords)) return s.slice(0, Math.max(n - e.length, 0)) + e;
  const cut = s.slice(0, Math.max(n - e.length, 0));
  const space = cut.lastIndexOf(' ');
  return (space > 0 ? cut.slice(0, space) : cut) + e;
}

function indent(v: unknown, a: unknown[]): string {
  const [width, first, blank] = args(a, ['width', 'first', 'blank']);
  const s = str(v);
  const pad = typeof width === 'string' ? width : ' '.repeat(Math.min(int(width, 'indent width', 4), 1000));
  const lines = s.split('\n');
  checkLength(s.length + lines.length * pad.length);
  burn(1 + lines.length);
  return lines
    .map((l, i) => ((i === 0 && !isTruthy(first)) || (l.trim() === '' && !isTruthy(blank)) ? l : pad + l))
    .join('\n');
}

function groupby(v: unknown, a: unknown[]): unknown[] {
  const [attribute, dflt, caseSensitive] = args(a, ['attribute', 'default', 'case_sensitive']);
  const items = list(v, 'groupby');
  const get = attrGetter(attribute);
  const key = (x: unknown) => {
    const k = get(x);
    return k === undefined ? dflt : k;
  };
  const sorted = [...items].sort((x, y) => compareValues(key(x), key(y), isTruthy(caseSensitive)));
  burn(sorted.length * 4);
  const groups: unknown[][] = [];
  for (const item of sorted) {
    const k = key(item);
    const last = groups[groups.length - 1];
    if (last && compareValues(last[0], k, isTruthy(caseSensitive)) === 0) (last[1] as unknown[]).push(item);
    else groups.push([k, [item]]);
  }
  return groups.map((g) => {
    // A pair that also answers to `.grouper` and `.list`, like Jinja's namedtuple.
    Object.defineProperty(g, 'grouper', { value: g[0], enumerable: false });
    Object.defineProperty(g, 'list', { value: g[1], enumerable: false });
    return g;
  });
}

function sortFilter(v: unknown, a: unknown[]): unknown[] {
  const [reverse, caseSensitive, attribute] = args(a, ['reverse', 'case_sensitive', 'attribute']);
  const items = [...list(v, 'sort')];
  const get = attrGetter(attribute);
  burn(items.length * Math.ceil(Math.log2(items.length + 2)));
  const dir = isTruthy(reverse) ? -1 : 1;
  return items.sort((x, y) => dir * compareValues(get(x), get(y), isTruthy(caseSensitive)));
}

function minmax(v: unknown, a: unknown[], sign: 1 | -1, name: string): unknown {
  const [caseSensitive, attribute] = args(a, ['case_sensitive', 'attribute']);
  const items = list(v, name);
  const get = attrGetter(attribute);
  let best: unknown;
  let first = true;
  for (const x of items) {
    if (first || sign * compareValues(get(x), get(best), isTruthy(caseSensitive)) > 0) best = x;
    first = false;
  }
  return best;
}

function selectOrReject(
  ctx: unknown,
  v: unknown,
  a: unknown[],
  keep: boolean,
  byAttr: boolean,
  name: string,
): unknown[] {
  const { pos, kw } = splitArgs(a);
  if (Object.keys(kw).length) throw runtimeError(`${name}: unexpected keyword arguments`);
  const items = list(v, name);
  let get = (x: unknown) => x;
  let rest = pos;
  if (byAttr) {
    if (pos[0] === undefined) throw runtimeError(`${name}: an attribute name is required`);
    get = attrGetter(pos[0]);
    rest = pos.slice(1);
  }
  let test: Test = (x) => isTruthy(x);
  if (rest.length > 0) {
    const tname = str(rest[0]);
    const t = Object.hasOwn(TESTS, tname) ? TESTS[tname] : undefined;
    if (!t) throw new ExprError(`${name}: no test named '${tname}'`, '', { kind: 'unknown_filter' });
    test = t;
  }
  const targs = rest.slice(1);
  return items.filter((x) => test.call(ctx, get(x), ...targs) === keep);
}

function mapFilter(ctx: unknown, v: unknown, a: unknown[]): unknown[] {
  const { pos, kw } = splitArgs(a);
  const items = list(v, 'map');
  if (pos.length === 0) {
    if (!Object.hasOwn(kw, 'attribute')) throw runtimeError("map: give a filter name or attribute='…'");
    const get = attrGetter(kw.attribute);
    const dflt = kw.default;
    return items.map((x) => {
      const r = get(x);
      return r === undefined ? dflt : r;
    });
  }
  const fname = str(pos[0]);
  const f = Object.hasOwn(FILTERS, fname) ? FILTERS[fname] : undefined;
  if (!f) throw new ExprError(`map: no filter named '${fname}'`, '', { kind: 'unknown_filter' });
  const rest = pos.slice(1);
  const kwArgs = Object.keys(kw).length ? [{ ...kw, __keywords: true }] : [];
  return items.map((x) => f.call(ctx, x, ...rest, ...kwArgs));
}

function flatten(
  v: unknown,
  levels: number | undefined,
  skipNulls: boolean,
  out: unknown[],
  depth = 0,
): unknown[] {
  for (const x of list(v, 'flatten')) {
    if (Array.isArray(x) && (levels === undefined || depth < levels))
      flatten(x, levels, skipNulls, out, depth + 1);
    else if (!(skipNulls && (x === null || x === undefined))) out.push(x);
    checkCount(out.length, 'flatten');
  }
  return out;
}

function combine(values: unknown[], recursive: boolean): Record<string, unknown> {
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>, depth: number) => {
    if (depth > LIMITS.valueDepth) throw limitError('combine: dicts nested too deeply');
    const out: Record<string, unknown> = {};
    for (const k of ownKeys(a)) defineKey(out, k, a[k]);
    for (const k of ownKeys(b)) {
      const prev = out[k];
      const next = b[k];
      defineKey(
        out,
        k,
        recursive && Object.hasOwn(out, k) && isDict(prev) && isDict(next)
          ? merge(prev, next, depth + 1)
          : next,
      );
    }
    burn(1 + ownKeys(b).length);
    return out;
  };
  let acc: Record<string, unknown> = {};
  for (const v of values) {
    const items = Array.isArray(v) ? v : [v];
    for (const d of items) acc = merge(acc, dict(d, 'combine'), 0);
  }
  return acc;
}

function urlencode(v: unknown): string {
  const x = unwrap(v);
  const enc = (s: unknown) => encodeURIComponent(toText(s));
  if (isDict(x))
    return ownKeys(x)
      .map((k) => `${enc(k)}=${enc(x[k])}`)
      .join('&');
  if (Array.isArray(x))
    return x
      .map((pair) => {
        if (!Array.isArray(pair) || pair.length !== 2)
          throw runtimeError('urlencode: expected [key, value] pairs');
        return `${enc(pair[0])}=${enc(pair[1])}`;
      })
      .join('&');
  return encodeURIComponent(str(x)).replace(/%2F/g, '/');
}

function shellQuote(v: unknown): string {
  const s = str(v);
  if (s === '') return "''";
  if (/^[\w@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'"'"'`)}'`;
}

const HASHES = new Set(getHashes());

function regexOpts(kw: { ignorecase?: unknown; multiline?: unknown }) {
  return { ignoreCase: isTruthy(kw.ignorecase), multiline: isTruthy(kw.multiline) };
}

// ---------------------------------------------------------------------------------------------
// Filters

const F: Record<string, Filter> = Object.create(null);

F.abs = (v) => Math.abs(num(v, 'abs'));
F.attr = (v, name) => getMember(v, name);
F.batch = (v, ...a) => {
  const [size, fill] = args(a, ['linecount', 'fill_with']);
  const items = list(v, 'batch');
  const n = int(size, 'batch size');
  if (n < 1) throw runtimeError('batch size must be at least 1');
  const out: unknown[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  const last = out[out.length - 1];
  if (last && fill !== undefined && n <= items.length) while (last.length < n) last.push(fill);
  return out;
};
F.capitalize = (v) => {
  const s = str(v);
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
};
F.center = (v, ...a) => {
  const [width] = args(a, ['width']);
  const s = str(v);
  const w = int(width, 'width', 80);
  if (w <= s.length) return s;
  checkLength(w);
  const left = Math.floor((w - s.length) / 2);
  return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
};
F.default = (v, ...a) => {
  const [dflt, boolean] = args(a, ['default_value', 'boolean']);
  if (isTruthy(boolean)) return isTruthy(v) ? v : (dflt ?? '');
  return v === undefined ? (dflt ?? '') : v;
};
F.d = F.default;
F.dictsort = (v, ...a) => {
  const [caseSensitive, by, reverse] = args(a, ['case_sensitive', 'by', 'reverse']);
  const d = dict(v, 'dictsort');
  if (by !== undefined && by !== 'key' && by !== 'value')
    throw runtimeError("dictsort: 'by' must be 'key' or 'value'");
  const idx = by === 'value' ? 1 : 0;
  const pairs = ownKeys(d).map((k) => [k, d[k]] as [string, unknown]);
  burn(pairs.length * 4);
  const dir = isTruthy(reverse) ? -1 : 1;
  return pairs.sort((x, y) => dir * compareValues(x[idx], y[idx], isTruthy(caseSensitive)));
};
F.escape = (v) => htmlEscape(str(v));
F.e = F.escape;
F.forceescape = F.escape;
F.first = (v) => {
  const x = unwrap(v);
  if (typeof x === 'string') return x[0];
  return list(x, 'first')[0];
};
F.last = (v) => {
  const x = unwrap(v);
  if (typeof x === 'string') return x[x.length - 1];
  const l = list(x, 'last');
  return l[l.length - 1];
};
F.float = (v, ...a) => {
  const [dflt] = args(a, ['default']);
  const x = unwrap(v);
  const n = typeof x === 'boolean' ? Number(x) : numeric(x);
  return n === undefined ? (dflt ?? 0) : n;
};
F.int = (v, ...a) => {
  const [dflt, base] = args(a, ['default', 'base']);
  const x = unwrap(v);
  const fallback = dflt ?? 0;
  if (typeof x === 'boolean') return Number(x);
  if (typeof x === 'number') return Number.isFinite(x) ? Math.trunc(x) : fallback;
  if (typeof x !== 'string') return fallback;
  const b = base === undefined ? 10 : int(base, 'base');
  const t = x.trim().replace(/_/g, '');
  if (b === 10) {
    const n = numeric(t);
    return n === undefined || !Number.isFinite(n) ? fallback : Math.trunc(n);
  }
  const digits = t.replace(/^([+-]?)0[xob]/i, '$1');
  const n = Number.parseInt(digits, b);
  return Number.isNaN(n) || !/^[+-]?[0-9a-z]+$/i.test(digits) ? fallback : n;
};
F.bool = (v) => bool(v);
F.string = (v) => toText(v);
F.format = (v, ...a) => {
  const { pos, kw } = splitArgs(a);
  return pyFormat(str(v), Object.keys(kw).length ? kw : pos);
};
F.groupby = (v, ...a) => groupby(v, a);
F.indent = (v, ...a) => indent(v, a);
F.join = (v, ...a) => {
  const [sep, attribute] = args(a, ['d', 'attribute']);
  const get = attrGetter(attribute);
  return capString(
    list(v, 'join')
      .map((x) => toText(get(x)))
      .join(sep === undefined ? '' : str(sep)),
  );
};
F.length = (v) => {
  const x = unwrap(v);
  if (x === undefined || x === null) return 0;
  if (typeof x === 'string' || Array.isArray(x)) return x.length;
  if (isDict(x)) return ownKeys(x).length;
  throw runtimeError(`length: a ${typeName(x)} has no length`);
};
F.count = F.length;
F.list = (v) => [...list(v, 'list')];
F.lower = (v) => str(v).toLowerCase();
F.upper = (v) => str(v).toUpperCase();
F.title = (v) =>
  str(v).replace(/[\p{L}\p{N}]+/gu, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase());
F.trim = (v, chars) => {
  const s = str(v);
  if (chars === undefined || chars === null) return s.trim();
  const set = new Set(str(chars));
  let a = 0;
  let b = s.length;
  while (a < b && set.has(s[a]!)) a++;
  while (b > a && set.has(s[b - 1]!)) b--;
  return s.slice(a, b);
};
F.striptags = (v) =>
  str(v)
    .replace(/<!--[\s\S]*?-->|<\/?[a-zA-Z][^>]*>/g, '')
    .replace(/\s+/g, ' ')
    .trim();
F.truncate = (v, ...a) => truncate(v, a);
F.wordcount = (v) => (str(v).match(/[\p{L}\p{N}_]+/gu) ?? []).length;
F.nl2br = (v) => str(v).replace(/\r\n|\n/g, '<br />\n');
F.map = function (v, ...a) {
  return mapFilter(this, v, a);
};
F.max = (v, ...a) => minmax(v, a, 1, 'max');
F.min = (v, ...a) => minmax(v, a, -1, 'min');
F.select = function (v, ...a) {
  return selectOrReject(this, v, a, true, false, 'select');
};
F.reject = function (v, ...a) {
  return selectOrReject(this, v, a, false, false, 'reject');
};
F.selectattr = function (v, ...a) {
  return selectOrReject(this, v, a, true, true, 'selectattr');
};
F.rejectattr = function (v, ...a) {
  return selectOrReject(this, v, a, false, true, 'rejectattr');
};
F.replace = (v, ...a) => {
  const [old, rep, count] = args(a, ['old', 'new', 'count']);
  return pyReplace(str(v), old, rep, count);
};
F.reverse = (v) => {
  const x = unwrap(v);
  if (typeof x === 'string') return [...x].reverse().join('');
  return [...list(x, 'reverse')].reverse();
};
F.round = (v, ...a) => {
  const [precision, method] = args(a, ['precision', 'method']);
  const n = num(v, 'round');
  const p = int(precision, 'precision', 0);
  const f = 10 ** p;
  const m = method === undefined ? 'common' : str(method);
  if (m === 'ceil') return Math.ceil(n * f) / f;
  if (m === 'floor') return Math.floor(n * f) / f;
  if (m !== 'common') throw runtimeError("round: method must be 'common', 'ceil' or 'floor'");
  return (Math.sign(n) * Math.round(Math.abs(n) * f)) / f;
};
F.safe = (v) => v;
F.slice = (v, ...a) => {
  const [slices, fill] = args(a, ['slices', 'fill_with']);
  const items = list(v, 'slice');
  const n = int(slices, 'slices');
  if (n < 1) throw runtimeError('slice: the number of slices must be at least 1');
  checkListLength(n, 'slice: a list of slices');
  const per = Math.floor(items.length / n);
  const extra = items.length % n;
  const out: unknown[][] = [];
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const size = per + (i < extra ? 1 : 0);
    const part = items.slice(offset, offset + size);
    offset += size;
    if (fill !== undefined && i >= extra && extra > 0) part.push(fill);
    out.push(part);
  }
  return out;
};
F.sort = (v, ...a) => sortFilter(v, a);
F.sum = (v, ...a) => {
  const [attribute, start] = args(a, ['attribute', 'start']);
  const get = attrGetter(attribute);
  let total = start === undefined ? 0 : num(start, 'sum');
  for (const x of list(v, 'sum')) total += num(get(x), 'sum');
  return total;
};
F.unique = (v, ...a) => {
  const [caseSensitive, attribute] = args(a, ['case_sensitive', 'attribute']);
  return uniqueBy(list(v, 'unique'), isTruthy(caseSensitive), attribute ? attrGetter(attribute) : undefined);
};
F.urlencode = (v) => urlencode(v);
F.urldecode = (v) => {
  try {
    return decodeURIComponent(str(v).replace(/\+/g, ' '));
  } catch {
    throw runtimeError('urldecode: malformed percent-encoding');
  }
};
F.items = (v) => {
  const d = dict(v, 'items');
  return ownKeys(d).map((k) => [k, d[k]]);
};
F.keys = (v) => ownKeys(dict(v, 'keys'));
F.values = (v) => {
  const d = dict(v, 'values');
  return ownKeys(d).map((k) => d[k]);
};

// JSON and YAML
F.tojson = (v, ...a) => {
  const [indentArg] = args(a, ['indent']);
  return capString(
    toJson(v, indentArg === undefined || indentArg === null ? undefined : int(indentArg, 'indent')),
  );
};
F.to_json = F.tojson;
F.dump = F.tojson;
F.to_complex = F.tojson;
F.to_json_string = (v, ...a) => {
  const [ind, sortKeys] = args(a, ['indent', 'sort_keys']);
  return capString(toJson(v, ind === undefined ? 4 : int(ind, 'indent'), isTruthy(sortKeys)));
};
F.to_nice_json = (v, ...a) => {
  const [ind] = args(a, ['indent']);
  return capString(toJson(v, ind === undefined ? 4 : int(ind, 'indent'), true));
};
F.pprint = (v) => capString(toJson(v, 2, true));
F.from_json = (v) => jsonParse(v);
F.from_json_string = F.from_json;
F.json_escape = (v) => JSON.stringify(str(v)).slice(1, -1);
F.to_yaml = (v, ...a) => {
  const [ind] = args(a, ['indent']);
  return yamlDump(v, ind === undefined ? 2 : int(ind, 'indent'));
};
F.to_yaml_string = F.to_yaml;
F.to_nice_yaml = (v, ...a) => {
  const [ind] = args(a, ['indent']);
  return yamlDump(v, ind === undefined ? 4 : int(ind, 'indent'));
};
F.from_yaml = (v) => yamlParse(str(v));
F.from_yaml_string = F.from_yaml;

// Regular expressions (Python syntax; see regex.ts)
F.regex_match = (v, ...a) => {
  const [pattern, ignorecase] = args(a, ['pattern', 'ignorecase']);
  return regexMatchStart(compileRegex(str(pattern), { ignoreCase: isTruthy(ignorecase) }), str(v)) !== null;
};
F.regex_search = (v, ...a) => {
  const [pattern, ignorecase] = args(a, ['pattern', 'ignorecase']);
  return regexSearch(compileRegex(str(pattern), { ignoreCase: isTruthy(ignorecase) }), str(v)) !== null;
};
F.regex_replace = (v, ...a) => {
  const [pattern, replacement, ignorecase, multiline, count] = args(a, [
    'pattern',
    'replacement',
    'ignorecase',
    'multiline',
    'count',
  ]);
  const re = compileRegex(str(pattern), regexOpts({ ignorecase, multiline }));
  return regexReplace(re, str(v), replacement === undefined ? '' : str(replacement), int(count, 'count', 0));
};
F.regex_substring = (v, ...a) => {
  const [pattern, index, ignorecase] = args(a, ['pattern', 'result_index', 'ignorecase']);
  const found = regexFindAll(compileRegex(str(pattern), { ignoreCase: isTruthy(ignorecase) }), str(v));
  const i = int(index, 'result_index', 0);
  return found.at(i) ?? null;
};
F.regex_findall = (v, ...a) => {
  const [pattern, ignorecase, multiline] = args(a, ['pattern', 'ignorecase', 'multiline']);
  return regexFindAll(compileRegex(str(pattern), regexOpts({ ignorecase, multiline })), str(v));
};
F.regex_escape = (v) => regexEscape(str(v));
F.regex_count = (v, ...a) => {
  const [pattern, ignorecase] = args(a, ['pattern', 'ignorecase']);
  return regexMatchAll(compileRegex(str(pattern), { ignoreCase: isTruthy(ignorecase) }), str(v)).length;
};

// Encodings and hashes
F.b64encode = (v) => {
  const s = str(v);
  checkLength(Math.ceil(s.length / 3) * 4 * 3);
  burn(1 + (s.length >> 6));
  return Buffer.from(s, 'utf8').toString('base64');
};
F.b64decode = (v) => {
  const s = str(v).trim();
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw runtimeError('b64decode: not base64 text');
  burn(1 + (s.length >> 6));
  return Buffer.from(s, 'base64').toString('utf8');
};
F.hash = (v, ...a) => {
  const [algorithm] = args(a, ['hashtype']);
  const alg = algorithm === undefined ? 'sha1' : str(algorithm).toLowerCase();
  if (!HASHES.has(alg)) throw runtimeError(`hash: unknown algorithm '${alg}'`);
  const s = str(v);
  burn(1 + (s.length >> 6));
  return createHash(alg).update(s, 'utf8').digest('hex');
};
F.quote = (v) => shellQuote(v);

// Lists and sets
F.flatten = (v, ...a) => {
  const [levels, skipNulls] = args(a, ['levels', 'skip_nulls']);
  return flatten(
    v,
    levels === undefined || levels === null ? undefined : int(levels, 'levels'),
    skipNulls === undefined ? true : isTruthy(skipNulls),
    [],
  );
};
F.union = (v, other) => uniqueBy([...list(v, 'union'), ...list(other, 'union')], true);
F.intersect = (v, other) => {
  const ids = new Set(list(other, 'intersect').map((x) => identity(x, true)));
  return uniqueBy(
    list(v, 'intersect').filter((x) => ids.has(identity(x, true))),
    true,
  );
};
F.difference = (v, other) => {
  const ids = new Set(list(other, 'difference').map((x) => identity(x, true)));
  return uniqueBy(
    list(v, 'difference').filter((x) => !ids.has(identity(x, true))),
    true,
  );
};
F.symmetric_difference = (v, other) => {
  const a = list(v, 'symmetric_difference');
  const b = list(other, 'symmetric_difference');
  const ia = new Set(a.map((x) => identity(x, true)));
  const ib = new Set(b.map((x) => identity(x, true)));
  return uniqueBy(
    [...a.filter((x) => !ib.has(identity(x, true))), ...b.filter((x) => !ia.has(identity(x, true)))],
    true,
  );
};
F.zip = (v, ...others) => {
  const lists = [list(v, 'zip'), ...others.map((o) => list(o, 'zip'))];
  const n = Math.min(...lists.map((l) => l.length));
  return Array.from({ length: n }, (_, i) => lists.map((l) => l[i]));
};

// Dicts
F.combine = (v, ...a) => {
  const { pos, kw } = splitArgs(a);
  return combine([v, ...pos], isTruthy(kw.recursive));
};
F.dict2items = (v, ...a) => {
  const [keyName, valueName] = args(a, ['key_name', 'value_name']);
  const d = dict(v, 'dict2items');
  const kn = keyName === undefined ? 'key' : str(keyName);
  const vn = valueName === undefined ? 'value' : str(valueName);
  return ownKeys(d).map((k) => {
    const o: Record<string, unknown> = {};
    defineKey(o, kn, k);
    defineKey(o, vn, d[k]);
    return o;
  });
};
F.items2dict = (v, ...a) => {
  const [keyName, valueName] = args(a, ['key_name', 'value_name']);
  const kn = keyName === undefined ? 'key' : str(keyName);
  const vn = valueName === undefined ? 'value' : str(valueName);
  const out: Record<string, unknown> = {};
  for (const item of list(v, 'items2dict')) {
    if (!isDict(item) || !Object.hasOwn(item, kn))
      throw runtimeError(`items2dict: every item needs a '${kn}' key`);
    defineKey(out, toText(item[kn]), item[vn]);
  }
  return out;
};

// Conditionals and checks
F.ternary = (v, ...a) => {
  const [t, f, none] = args(a, ['true_val', 'false_val', 'none_val']);
  if ((v === null || v === undefined) && none !== undefined) return none;
  return isTruthy(v) ? t : f;
};
F.mandatory = (v, msg) => {
  if (v === undefined) throw runtimeError(msg === undefined ? 'mandatory value is not defined' : str(msg));
  return v;
};
F.use_none = (v) => (v === undefined ? null : v);
F.type_debug = (v) => typeName(v);

// Paths
F.basename = (v) => posix.basename(str(v));
F.dirname = (v) => posix.dirname(str(v));
F.split = (v, ...a) => {
  const [sep, maxsplit] = args(a, ['sep', 'maxsplit']);
  return pySplit(str(v), sep, maxsplit);
};

// Time and versions (StackStorm)
F.to_human_time_from_seconds = (v) => humanTime(v);
F.version_compare = (v, other) =>
  semver.compare(version(v, 'version_compare'), version(other, 'version_compare'));
F.version_more_than = (v, other) =>
  semver.gt(version(v, 'version_more_than'), version(other, 'version_more_than'));
F.version_less_than = (v, other) =>
  semver.lt(version(v, 'version_less_than'), version(other, 'version_less_than'));
F.version_equal = (v, other) => semver.eq(version(v, 'version_equal'), version(other, 'version_equal'));
F.version_match = (v, range) => {
  const r = semver.validRange(str(range), { loose: true });
  if (r === null) throw runtimeError(`version_match: '${str(range)}' is not a version range`);
  return semver.satisfies(version(v, 'version_match'), r);
};
F.version_bump_major = (v) => semver.inc(version(v, 'version_bump_major'), 'major');
F.version_bump_minor = (v) => semver.inc(version(v, 'version_bump_minor'), 'minor');
F.version_bump_patch = (v) => semver.inc(version(v, 'version_bump_patch'), 'patch');
F.version_strip_patch = (v) => {
  const p = version(v, 'version_strip_patch');
  return `${p.major}.${p.minor}`;
};

export const FILTERS: Readonly<Record<string, Filter>> = F;

// ---------------------------------------------------------------------------------------------
// Tests (`x is odd`, `select('equalto', 3)`)

const T: Record<string, Test> = Object.create(null);

const cmpTest = (op: (c: number) => boolean) => (v: unknown, other: unknown) => {
  const a = unwrap(v);
  const b = unwrap(other);
  if (typeName(a) !== typeName(b)) {
    const na = numeric(a);
    const nb = numeric(b);
    if (na === undefined || nb === undefined) return false;
    return op(na - nb);
  }
  return op(compareValues(a, b, true));
};

T.defined = (v) => v !== undefined;
T.undefined = (v) => v === undefined;
T.none = (v) => v === null;
T.null = T.none;
T.boolean = (v) => typeof v === 'boolean';
T.true = (v) => v === true;
T.false = (v) => v === false;
T.number = (v) => typeof v === 'number';
T.integer = (v) => Number.isInteger(v);
T.float = (v) => typeof v === 'number' && !Number.isInteger(v);
T.string = (v) => typeof unwrap(v) === 'string';
T.mapping = (v) => isDict(v);
T.dict = T.mapping;
T.list = (v) => Array.isArray(v);
T.sequence = (v) => Array.isArray(v) || typeof unwrap(v) === 'string' || isDict(v);
T.iterable = T.sequence;
T.callable = (v) => typeof v === 'function';
T.odd = (v) => Number.isInteger(v) && Math.abs(v as number) % 2 === 1;
T.even = (v) => Number.isInteger(v) && (v as number) % 2 === 0;
T.divisibleby = (v, n) => {
  const d = num(n, 'divisibleby');
  return d !== 0 && typeof v === 'number' && v % d === 0;
};
T.eq = (v, o) => looseEquals(v, o);
T.equalto = T.eq;
T.sameas = (v, o) => v === o;
T.ne = (v, o) => !looseEquals(v, o);
T.lt = cmpTest((c) => c < 0);
T.lessthan = T.lt;
T.le = cmpTest((c) => c <= 0);
T.gt = cmpTest((c) => c > 0);
T.greaterthan = T.gt;
T.ge = cmpTest((c) => c >= 0);
T.in = (v, container) => membership(container, v);
T.contains = (v, item) => membership(v, item);
T.lower = (v) => typeof unwrap(v) === 'string' && str(v) === str(v).toLowerCase();
T.upper = (v) => typeof unwrap(v) === 'string' && str(v) === str(v).toUpperCase();
T.truthy = (v) => isTruthy(v);
T.falsy = (v) => !isTruthy(v);
T.empty = (v) => {
  const x = unwrap(v);
  if (x === undefined || x === null) return true;
  if (typeof x === 'string' || Array.isArray(x)) return x.length === 0;
  if (isDict(x)) return ownKeys(x).length === 0;
  return false;
};
T.match = (v, ...a) => {
  const [pattern, ignorecase] = args(a, ['pattern', 'ignorecase']);
  return regexMatchStart(compileRegex(str(pattern), { ignoreCase: isTruthy(ignorecase) }), str(v)) !== null;
};
T.search = (v, ...a) => {
  const [pattern, ignorecase] = args(a, ['pattern', 'ignorecase']);
  return regexSearch(compileRegex(str(pattern), { ignoreCase: isTruthy(ignorecase) }), str(v)) !== null;
};
T.regex = T.search;
T.version = (v, ...a) => {
  const [range] = args(a, ['range']);
  return Boolean(FILTERS.version_match!.call(null, v, range));
};

export const TESTS: Readonly<Record<string, Test>> = T;

/** `item in container` for templates: list membership, substring, dict key. */
export function membership(container: unknown, item: unknown): boolean {
  const c = unwrap(container);
  if (c === undefined || c === null) return false;
  if (Array.isArray(c)) {
    burn(1 + c.length);
    return c.some((x) => looseEquals(x, item));
  }
  if (typeof c === 'string') return c.includes(toText(unwrap(item)));
  if (isDict(c)) {
    const k = unwrap(item);
    return (typeof k === 'string' || typeof k === 'number') && Object.hasOwn(c, k);
  }
  throw runtimeError(`cannot test membership in a ${typeName(c)}`);
}
