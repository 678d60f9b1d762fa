/**
 * Attribute and item access for templates — the heart of the sandbox.
 *
 * A template may read: own properties of dicts, items of lists (negative indexes count from the
 * end), characters of strings, `length`, and a fixed allowlist of side-effect-free methods on
 * strings, lists and dicts (Python's names and the common JavaScript ones). Everything else is
 * out of reach: inherited properties read as undefined, attributes of functions and the names
 * `constructor`, `__proto__`, `prototype` and `__define/lookupGetter/Setter__` raise an ExprError.
 * That closes the classic escape `range.constructor("return process")()` and its variants, and
 * since no method that mutates is reachable, templates cannot change the data they are given.
 */
import { forbidden, runtimeError } from './errors.ts';
import { burn, capString, checkLength, checkListLength, LIMITS } from './limits.ts';
import { SafeString } from './nunjucks.ts';
import { isDict, looseEquals, ownKeys, str, toText, typeName } from './values.ts';

/** Names no template may read, as attribute or subscript, on anything. */
export const BLOCKED_NAMES: ReadonlySet<string> = new Set([
  'constructor',
  '__proto__',
  'prototype',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

export const blockedName = (name: string) => forbidden(`access to '${name}' is not allowed in templates`);

/** Drop a trailing keyword-arguments object (`f(a, key=1)`), returning positional args and keywords. */
export function splitArgs(args: unknown[]): { pos: unknown[]; kw: Record<string, unknown> } {
  const last = args[args.length - 1];
  if (
    typeof last === 'object' &&
    last !== null &&
    Object.hasOwn(last, '__keywords') &&
    (last as { __keywords: unknown }).__keywords === true
  ) {
    const kw: Record<string, unknown> = Object.create(null);
    for (const k of ownKeys(last)) if (k !== '__keywords') kw[k] = (last as Record<string, unknown>)[k];
    return { pos: args.slice(0, -1), kw };
  }
  return { pos: args, kw: Object.create(null) };
}

const toInt = (v: unknown, what: string): number => {
  const n = typeof v === 'boolean' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw runtimeError(`${what} must be an integer`);
  return n;
};

function pyStrip(s: string, chars: unknown, left: boolean, right: boolean): string {
  if (chars === undefined || chars === null) {
    if (left && right) return s.trim();
    return left ? s.trimStart() : s.trimEnd();
  }
  const set = new Set(str(chars));
  let a = 0;
  let b = s.length;
  if (left) while (a < b && set.has(s[a]!)) a++;
  if (right) while (b > a && set.has(s[b - 1]!)) b--;
  return s.slice(a, b);
}

/** Python `str.split(sep=None, maxsplit=-1)`. */
export function pySplit(s: string, sep: unknown, maxsplit: unknown): string[] {
  const max = maxsplit === undefined || maxsplit === null ? -1 : toInt(maxsplit, 'maxsplit');
  burn(1 + (s.length >> 6));
  if (sep === undefined || sep === null) {
    const out: string[] = [];
    let rest = s.trimStart();
    while (rest !== '') {
      if (max >= 0 && out.length >= max) {
        out.push(rest.trimEnd());
        break;
      }
      const m = /\s+/.exec(rest);
      if (!m) {
        out.push(rest);
        break;
      }
      out.push(rest.slice(0, m.index));
      rest = rest.slice(m.index + m[0].length);
    }
    return out;
  }
  const d = str(sep);
  if (d === '') throw runtimeError('empty separator');
  const parts = s.split(d);
  if (max < 0 || parts.length <= max + 1) return parts;
  return [...parts.slice(0, max), parts.slice(max).join(d)];
}

function pad(s: string, width: unknown, fill: unknown, where: 'center' | 'left' | 'right'): string {
  const w = toInt(width, 'width');
  const f = fill === undefined ? ' ' : str(fill);
  if (f.length !== 1) throw runtimeError('the fill character must be exactly one character long');
  if (w <= s.length) return s;
  checkLength(w);
  const total = w - s.length;
  if (where === 'left') return s + f.repeat(total);
  if (where === 'right') return f.repeat(total) + s;
  const left = Math.floor(total / 2) + (total % 2 && w % 2 ? 1 : 0);
  return f.repeat(left) + s + f.repeat(total - left);
}

const titleCase = (s: string) =>
  s.replace(/[A-Za-z\u00C0-\u024F]+/g, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase());

export function pyReplace(s: string, old: unknown, rep: unknown, count: unknown): string {
  const o = str(old);
  const r = str(rep);
  let n = count === undefined || count === null ? -1 : toInt(count, 'count');
  burn(1 + (s.length >> 6));
  if (o === '') {
    // Python: the replacement goes between every character (and at both ends).
    const chars = [...s];
    const slots = n < 0 ? chars.length + 1 : Math.min(n, chars.length + 1);
    checkLength(s.length + slots * r.length);
    let out = '';
    for (let i = 0; i < chars.length; i++) out += (i < slots ? r : '') + chars[i];
    return out + (chars.length < slots ? r : '');
  }
  let out = '';
  let pos = 0;
  for (;;) {
    if (n === 0) break;
    const i = s.indexOf(o, pos);
    if (i < 0) break;
    out += s.slice(pos, i) + r;
    pos = i + o.length;
    n--;
    if (out.length > LIMITS.string) capString(out);
  }
  return out + s.slice(pos);
}

const startsOrEnds = (s: string, x: unknown, ends: boolean): boolean => {
  const list = Array.isArray(x) ? x : [x];
  return list.some((p) => (ends ? s.endsWith(str(p)) : s.startsWith(str(p))));
};

function countOf(s: string, sub: unknown): number {
  const t = str(sub);
  if (t === '') return s.length + 1;
  let n = 0;
  for (let i = s.indexOf(t); i >= 0; i = s.indexOf(t, i + t.length)) n++;
  return n;
}

const isClass = (re: RegExp) => (s: string) => s.length > 0 && re.test(s);

const STRING_METHODS: Record<string, (s: string, ...a: unknown[]) => unknown> = {
  upper: (s) => s.toUpperCase(),
  lower: (s) => s.toLowerCase(),
  strip: (s, c) => pyStrip(s, c, true, true),
  lstrip: (s, c) => pyStrip(s, c, true, false),
  rstrip: (s, c) => pyStrip(s, c, false, true),
  split: (s, sep, max) => pySplit(s, sep, max),
  splitlines: (s) => s.split(/\r\n|\r|\n/).filter((l, i, a) => i < a.length - 1 || l !== ''),
  startswith: (s, p) => startsOrEnds(s, p, false),
  endswith: (s, p) => startsOrEnds(s, p, true),
  replace: (s, o, r, c) => pyReplace(s, o, r, c),
  find: (s, sub) => s.indexOf(str(sub)),
  rfind: (s, sub) => s.lastIndexOf(str(sub)),
  index: (s, sub) => {
    const i = s.indexOf(str(sub));
    if (i < 0) throw runtimeError('substring not found');
    return i;
  },
  count: (s, sub) => countOf(s, sub),
  join: (s, items) => {
    if (!Array.isArray(items)) throw runtimeError(`join() needs a list, got ${typeName(items)}`);
    burn(1 + items.length);
    return capString(items.map(toText).join(s));
  },
  title: (s) => titleCase(s),
  capitalize: (s) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase(),
  isdigit: (s) => isClass(/^\d+$/)(s),
  isalpha: (s) => isClass(/^\p{L}+$/u)(s),
  isalnum: (s) => isClass(/^[\p{L}\p{N}]+$/u)(s),
  isspace: (s) => isClass(/^\s+$/)(s),
  islower: (s) => /\p{Ll}/u.test(s) && s === s.toLowerCase(),
  isupper: (s) => /\p{Lu}/u.test(s) && s === s.toUpperCase(),
  center: (s, w, f) => pad(s, w, f, 'center'),
  ljust: (s, w, f) => pad(s, w, f, 'left'),
  rjust: (s, w, f) => pad(s, w, f, 'right'),
  zfill: (s, w) => {
    const sign = s[0] === '-' || s[0] === '+' ? s[0] : '';
    return sign + pad(s.slice(sign.length), toInt(w, 'width') - sign.length, '0', 'right');
  },
  // JavaScript names people reach for.
  toUpperCase: (s) => s.toUpperCase(),
  toLowerCase: (s) => s.toLowerCase(),
  trim: (s) => s.trim(),
  trimStart: (s) => s.trimStart(),
  trimEnd: (s) => s.trimEnd(),
  startsWith: (s, p) => s.startsWith(str(p)),
  endsWith: (s, p) => s.endsWith(str(p)),
  includes: (s, p) => s.includes(str(p)),
  indexOf: (s, p) => s.indexOf(str(p)),
  lastIndexOf: (s, p) => s.lastIndexOf(str(p)),
  slice: (s, a, b) =>
    s.slice(a === undefined ? undefined : Number(a), b === undefined ? undefined : Number(b)),
  substring: (s, a, b) => s.substring(Number(a), b === undefined ? undefined : Number(b)),
  charAt: (s, i) => s.charAt(Number(i)),
  at: (s, i) => s.at(Number(i)),
  padStart: (s, w, f) => pad(s, w, f ?? ' ', 'right'),
  padEnd: (s, w, f) => pad(s, w, f ?? ' ', 'left'),
};

const LIST_METHODS: Record<string, (l: unknown[], ...a: unknown[]) => unknown> = {
  index: (l, x) => {
    burn(1 + l.length);
    const i = l.findIndex((v) => looseEquals(v, x));
    if (i < 0) throw runtimeError(`${toText(x)} is not in the list`);
    return i;
  },
  count: (l, x) => {
    burn(1 + l.length);
    return l.filter((v) => looseEquals(v, x)).length;
  },
  includes: (l, x) => {
    burn(1 + l.length);
    return l.some((v) => looseEquals(v, x));
  },
  indexOf: (l, x) => {
    burn(1 + l.length);
    return l.findIndex((v) => looseEquals(v, x));
  },
  join: (l, sep) => {
    burn(1 + l.length);
    return capString(l.map(toText).join(sep === undefined ? ',' : str(sep)));
  },
  slice: (l, a, b) => {
    burn(1 + l.length);
    return l.slice(a === undefined ? undefined : Number(a), b === undefined ? undefined : Number(b));
  },
  concat: (l, ...more) => {
    let n = l.length;
    for (const m of more) n += Array.isArray(m) ? m.length : 1;
    checkListLength(n);
    burn(1 + n);
    return l.concat(...more);
  },
  at: (l, i) => l.at(Number(i)),
};

const DICT_METHODS: Record<string, (d: Record<string, unknown>, ...a: unknown[]) => unknown> = {
  keys: (d) => ownKeys(d),
  values: (d) => ownKeys(d).map((k) => d[k]),
  items: (d) => ownKeys(d).map((k) => [k, d[k]]),
  get: (d, k, dflt) => {
    const key = typeof k === 'number' ? String(k) : str(k);
    if (BLOCKED_NAMES.has(key)) throw blockedName(key);
    return Object.hasOwn(d, key) && d[key] !== undefined ? d[key] : (dflt ?? null);
  },
};

const MUTATORS = new Set([
  'append',
  'extend',
  'insert',
  'pop',
  'remove',
  'sort',
  'reverse',
  'clear',
  'update',
  'setdefault',
  'popitem',
  'push',
  'splice',
  'shift',
  'unshift',
  'fill',
  'copyWithin',
]);

function bind<T>(method: (self: T, ...a: unknown[]) => unknown, self: T): (...a: unknown[]) => unknown {
  return (...args: unknown[]) => {
    const { pos } = splitArgs(args);
    return method(self, ...pos);
  };
}

function missingMethod(obj: unknown, key: string): undefined {
  if (MUTATORS.has(key) && (Array.isArray(obj) || isDict(obj)))
    throw runtimeError(
      `${typeName(obj)}.${key}() would modify data, which templates cannot do; ` +
        'build a new value instead (e.g. `items + [x]`, `d | combine({...})`)',
    );
  return undefined;
}

const own = <T>(table: Record<string, T>, key: string): T | undefined =>
  Object.hasOwn(table, key) ? table[key] : undefined;

/** Index into a list or string, Python style (negative from the end). */
function indexOf(len: number, key: number | string): number | undefined {
  let i: number;
  if (typeof key === 'number') i = key;
  else if (/^-?\d+$/.test(key)) i = Number(key);
  else return undefined;
  if (!Number.isInteger(i)) return undefined;
  if (i < 0) i += len;
  return i >= 0 && i < len ? i : undefined;
}

function stringMember(s: string, key: string | number): unknown {
  if (key === 'length') return s.length;
  const i = indexOf(s.length, key);
  if (i !== undefined) return s[i];
  if (typeof key === 'number') return undefined;
  const m = own(STRING_METHODS, key);
  return m ? bind(m, s) : undefined;
}

/**
 * `obj.key` / `obj[key]` for templates. Throws for blocked names and for attributes of functions;
 * returns undefined for anything not readable.
 */
export function getMember(obj: unknown, key: unknown): unknown {
  if (obj === undefined || obj === null) return undefined;
  let k: string | number;
  if (typeof key === 'string') {
    if (BLOCKED_NAMES.has(key)) throw blockedName(key);
    k = key;
  } else if (typeof key === 'number') k = key;
  else if (key instanceof SafeString) return getMember(obj, key.val);
  else if (key === undefined || key === null || typeof key === 'boolean') return undefined;
  else throw runtimeError(`a ${typeName(key)} cannot be used as a key`);

  switch (typeof obj) {
    case 'string':
      return stringMember(obj, k);
    case 'function':
      throw forbidden(`cannot read attribute '${k}' of a function`);
    case 'object':
      break;
    default:
      return undefined;
  }
  if (Array.isArray(obj)) {
    if (k === 'length') return obj.length;
    const i = indexOf(obj.length, k);
    if (i !== undefined) return obj[i];
    if (typeof k === 'string' && Object.hasOwn(obj, k)) return (obj as unknown as Record<string, unknown>)[k];
    if (typeof k === 'number') return undefined;
    const m = own(LIST_METHODS, k);
    return m ? bind(m, obj) : missingMethod(obj, k);
  }
  if (obj instanceof SafeString) return stringMember(obj.val, k);
  if (Object.hasOwn(obj, k)) {
    const v = (obj as Record<string | number, unknown>)[k];
    if (typeof v === 'function') {
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => fn.apply(obj, args);
    }
    return v;
  }
  if (typeof k === 'number' || obj instanceof Date) return undefined;
  const m = own(DICT_METHODS, k);
  return m ? bind(m, obj as Record<string, unknown>) : missingMethod(obj, k);
}

/** `x[start:stop:step]` with Python semantics on lists and strings. */
export function getSlice(obj: unknown, start: unknown, stop: unknown, step: unknown): unknown {
  const target = obj instanceof SafeString ? obj.val : obj;
  if (target === undefined || target === null) return undefined;
  if (typeof target !== 'string' && !Array.isArray(target))
    throw runtimeError(`cannot slice a ${typeName(target)}`);
  const len = target.length;
  const st = step === null || step === undefined ? 1 : toInt(step, 'slice step');
  if (st === 0) throw runtimeError('slice step cannot be zero');
  const norm = (v: unknown, dflt: number, lo: number, hi: number): number => {
    if (v === null || v === undefined) return dflt;
    let n = toInt(v, 'slice index');
    if (n < 0) n += len;
    return Math.min(Math.max(n, lo), hi);
  };
  const a = st > 0 ? norm(start, 0, 0, len) : norm(start, len - 1, -1, len - 1);
  const b = st > 0 ? norm(stop, len, 0, len) : norm(stop, -1, -1, len - 1);
  const idx: number[] = [];
  if (st > 0) for (let i = a; i < b; i += st) idx.push(i);
  else for (let i = a; i > b; i += st) idx.push(i);
  burn(1 + idx.length);
  if (typeof target === 'string') return idx.map((i) => target[i]).join('');
  return idx.map((i) => target[i]);
}

/** Follow a dotted attribute path (`user.address.city`, `items.0`) the way templates do. */
export function getPath(obj: unknown, path: unknown): unknown {
  if (typeof path === 'number') return getMember(obj, path);
  const p = str(path);
  if (p === '') return obj;
  let cur = obj;
  for (const part of p.split('.')) {
    cur = getMember(cur, /^-?\d+$/.test(part) && Array.isArray(cur) ? Number(part) : part);
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Methods of a plain value whose name a template used (for documentation and tests). */
export const METHOD_NAMES = {
  string: Object.keys(STRING_METHODS),
  list: Object.keys(LIST_METHODS),
  dict: Object.keys(DICT_METHODS),
} as const;
