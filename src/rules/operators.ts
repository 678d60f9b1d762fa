/**
 * The rule-criteria operators: StackStorm's full set with its aliases, as one table. Each entry
 * says what pattern it takes and how it compares a payload value with the (rendered) pattern.
 *
 * Semantics, where StackStorm leaves room:
 * - A missing field reads as `undefined`; `equals`/`inside` treat it like null.
 * - Numbers and numeric strings compare as numbers (`"5" equals 5`, `"10" greaterthan 9`);
 *   booleans equal `"true"`/`"false"`. Lists and dicts compare deeply.
 * - String operators (`startswith`, `regex`, `matchwildcard` …) accept numbers and booleans by
 *   their text; anything else (missing, null, list, dict) does not match.
 * - `contains` looks into lists (element), strings (substring) and dicts (key); a missing field
 *   contains nothing, so `ncontains` matches it.
 * - `regex`/`iregex` search anywhere (Python `re.search`); `matchregex` must match at the start
 *   (Python `re.match`, dot matches newlines). Patterns use Python syntax (see expr/regex.ts).
 * - `timediff_lt`/`timediff_gt` compare the age of a timestamp (ISO 8601, or epoch seconds; a
 *   timestamp without offset is UTC) with a number of seconds, against the caller's `now`.
 * - `exists` means present and not null.
 * No I/O; `now` comes from the caller.
 */
import {
  compileRegex,
  ExprError,
  looseEquals,
  numeric,
  regexMatchStart,
  regexSearch,
  toText,
  typeName,
} from '../expr/index.ts';

/** What a criterion's `pattern` must be. */
export type PatternKind = 'none' | 'any' | 'string' | 'number' | 'container' | 'criteria';

/** Outcome of one comparison: matched, or not with a reason, or an error (bad pattern or data). */
export interface OperatorOutcome {
  matched: boolean;
  reason?: string;
  error?: string;
}

export interface OperatorEnv {
  now: Date;
}

export interface OperatorSpec {
  /** Canonical name. */
  readonly name: string;
  readonly aliases: readonly string[];
  readonly pattern: PatternKind;
  readonly description: string;
  /** Compare; `search` is evaluated by the matcher instead. */
  readonly test: (value: unknown, pattern: unknown, env: OperatorEnv) => OperatorOutcome;
}

const yes: OperatorOutcome = { matched: true };
const no = (reason?: string): OperatorOutcome => (reason ? { matched: false, reason } : { matched: false });
const fail = (error: string): OperatorOutcome => ({ matched: false, error });
const outcome = (b: boolean, reason?: string): OperatorOutcome => (b ? yes : no(reason));

const unwrapText = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;

const describe = (v: unknown): string => {
  if (v === undefined) return 'missing';
  const t = typeName(v);
  const text = t === 'string' ? JSON.stringify(v) : toText(v);
  return `${t} ${text.length > 60 ? `${text.slice(0, 57)}…` : text}`;
};

function textOp(
  value: unknown,
  pattern: unknown,
  op: (v: string, p: string) => boolean,
  fold = false,
): OperatorOutcome {
  const v = unwrapText(value);
  if (v === undefined) return no(`the value is ${describe(value)}, not text`);
  const p = unwrapText(pattern);
  if (p === undefined) return fail(`the pattern must be text, got ${describe(pattern)}`);
  return outcome(fold ? op(v.toLowerCase(), p.toLowerCase()) : op(v, p));
}

function ordered(value: unknown, pattern: unknown, want: (c: number) => boolean): OperatorOutcome {
  if (value === undefined || value === null) return no(`the value is ${describe(value)}`);
  const nv = typeof value === 'boolean' ? undefined : numeric(value);
  const np = typeof pattern === 'boolean' ? undefined : numeric(pattern);
  if (nv !== undefined && np !== undefined) return outcome(want(nv - np));
  if (typeof value === 'string' && typeof pattern === 'string')
    return outcome(want(value < pattern ? -1 : value > pattern ? 1 : 0));
  if (np === undefined && typeof pattern !== 'string')
    return fail(`the pattern must be a number or a string, got ${describe(pattern)}`);
  return no(`cannot compare ${describe(value)} with ${describe(pattern)}`);
}

function contains(value: unknown, pattern: unknown, fold: boolean): boolean {
  if (value === undefined || value === null) return false;
  const p = fold && typeof pattern === 'string' ? pattern.toLowerCase() : pattern;
  if (Array.isArray(value))
    return value.some((el) =>
      fold && typeof el === 'string' && typeof p === 'string' ? el.toLowerCase() === p : looseEquals(el, p),
    );
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    const k = unwrapText(p);
    if (k === undefined) return false;
    return fold ? keys.some((x) => x.toLowerCase() === k) : keys.includes(k);
  }
  const v = unwrapText(value);
  const t = unwrapText(p);
  if (v === undefined || t === undefined) return false;
  return fold ? v.toLowerCase().includes(t) : v.includes(t);
}

function containsOp(value: unknown, pattern: unknown, fold: boolean, negate: boolean): OperatorOutcome {
  if (pattern === undefined) return fail('a pattern is required');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string' || value == null)
    if (typeof pattern === 'object' && pattern !== null)
      return fail(`the pattern must be text or a number, got ${describe(pattern)}`);
  const found = contains(value, pattern, fold);
  return outcome(negate ? !found : found);
}

function inside(value: unknown, pattern: unknown, negate: boolean): OperatorOutcome {
  let found: boolean;
  if (Array.isArray(pattern)) found = pattern.some((el) => looseEquals(el, value));
  else if (typeof pattern === 'string') {
    const v = unwrapText(value);
    found = v !== undefined && pattern.includes(v);
  } else if (pattern !== null && typeof pattern === 'object') {
    const v = unwrapText(value);
    found = v !== undefined && Object.hasOwn(pattern, v);
  } else return fail(`the pattern must be a list (or a string), got ${describe(pattern)}`);
  return outcome(negate ? !found : found);
}

/** Shell-style wildcard match (`*`, `?`, `[abc]`, `[!a-z]`) in O(n·m), without regular expressions. */
export function wildcardMatch(text: string, pattern: string): boolean {
  type Tok =
    | { k: 'star' }
    | { k: 'any' }
    | { k: 'char'; c: string }
    | { k: 'set'; neg: boolean; parts: [string, string][] };
  const toks: Tok[] = [];
  const p = [...pattern];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (toks[toks.length - 1]?.k !== 'star') toks.push({ k: 'star' });
    } else if (c === '?') toks.push({ k: 'any' });
    else if (c === '[') {
      let j = i + 1;
      let neg = false;
      if (p[j] === '!' || p[j] === '^') {
        neg = true;
        j++;
      }
      const parts: [string, string][] = [];
      let first = true;
      let closed = false;
      while (j < p.length) {
        if (p[j] === ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        const lo = p[j]!;
        if (p[j + 1] === '-' && p[j + 2] !== undefined && p[j + 2] !== ']') {
          parts.push([lo, p[j + 2]!]);
          j += 3;
        } else {
          parts.push([lo, lo]);
          j++;
        }
      }
      if (!closed) toks.push({ k: 'char', c: '[' });
      else {
        toks.push({ k: 'set', neg, parts });
        i = j;
      }
    } else toks.push({ k: 'char', c });
  }
  const s = [...text];
  const one = (t: Tok, ch: string): boolean => {
    if (t.k === 'any') return true;
    if (t.k === 'char') return t.c === ch;
    if (t.k === 'set') return t.parts.some(([lo, hi]) => ch >= lo && ch <= hi) !== t.neg;
    return false;
  };
  let si = 0;
  let ti = 0;
  let starTi = -1;
  let starSi = 0;
  while (si < s.length) {
    const t = toks[ti];
    if (t && t.k !== 'star' && one(t, s[si]!)) {
      si++;
      ti++;
    } else if (t && t.k === 'star') {
      starTi = ti++;
      starSi = si;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      si = ++starSi;
    } else return false;
  }
  while (toks[ti]?.k === 'star') ti++;
  return ti === toks.length;
}

function regexOp(value: unknown, pattern: unknown, mode: 'search' | 'isearch' | 'match'): OperatorOutcome {
  const v = unwrapText(value);
  if (typeof pattern !== 'string')
    return fail(`the pattern must be a regular expression, got ${describe(pattern)}`);
  try {
    const re = compileRegex(pattern, { ignoreCase: mode === 'isearch', dotAll: mode === 'match' });
    if (v === undefined) return no(`the value is ${describe(value)}, not text`);
    return outcome((mode === 'match' ? regexMatchStart(re, v) : regexSearch(re, v)) !== null);
  } catch (e) {
    if (e instanceof ExprError) return fail(e.reason);
    throw e;
  }
}

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** A timestamp from a Date, epoch seconds (or milliseconds, when ≥ 1e11), or ISO 8601 text. */
export function parseTimestamp(v: unknown): number | undefined {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.getTime();
  const n = typeof v === 'boolean' ? undefined : numeric(v);
  if (n !== undefined) return Number.isFinite(n) ? (Math.abs(n) >= 1e11 ? n : n * 1000) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = ISO_RE.exec(v.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '0', off] = m;
  const ms = Number(`0.${frac}`) * 1000;
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  const check = new Date(t);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23)
    return undefined;
  if (off && off.toUpperCase() !== 'Z') {
    const om = /^([+-])(\d{2}):?(\d{2})?$/.exec(off)!;
    const minutes = Number(om[2]) * 60 + Number(om[3] ?? 0);
    t -= (om[1] === '-' ? -1 : 1) * minutes * 60_000;
  }
  return t;
}

function timediff(value: unknown, pattern: unknown, env: OperatorEnv, lt: boolean): OperatorOutcome {
  const seconds = typeof pattern === 'boolean' ? undefined : numeric(pattern);
  if (seconds === undefined || seconds < 0)
    return fail(`the pattern must be a number of seconds ≥ 0, got ${describe(pattern)}`);
  const t = parseTimestamp(value);
  if (t === undefined) return no(`the value is ${describe(value)}, not a timestamp`);
  const age = (env.now.getTime() - t) / 1000;
  return outcome(lt ? age < seconds : age > seconds);
}

const exists = (v: unknown) => v !== undefined && v !== null;

export const OPERATORS: readonly OperatorSpec[] = [
  {
    name: 'equals',
    aliases: ['eq'],
    pattern: 'any',
    description: 'equal (deep for lists and dicts; a number equals its numeric string)',
    test: (v, p) => outcome(looseEquals(v, p)),
  },
  {
    name: 'nequals',
    aliases: ['neq'],
    pattern: 'any',
    description: 'not equal',
    test: (v, p) => outcome(!looseEquals(v, p)),
  },
  {
    name: 'iequals',
    aliases: ['ieq'],
    pattern: 'any',
    description: 'equal, ignoring case for text',
    test: (v, p) =>
      typeof v === 'string' && typeof p === 'string'
        ? outcome(v.toLowerCase() === p.toLowerCase())
        : outcome(looseEquals(v, p)),
  },
  {
    name: 'lessthan',
    aliases: ['lt'],
    pattern: 'number',
    description: 'less than (numbers, numeric strings, or text compared alphabetically)',
    test: (v, p) => ordered(v, p, (c) => c < 0),
  },
  {
    name: 'greaterthan',
    aliases: ['gt'],
    pattern: 'number',
    description: 'greater than',
    test: (v, p) => ordered(v, p, (c) => c > 0),
  },
  {
    name: 'matchwildcard',
    aliases: [],
    pattern: 'string',
    description: 'shell wildcard match of the whole value: * ? [abc] [!abc]',
    test: (v, p) => textOp(v, p, (a, b) => wildcardMatch(a, b)),
  },
  {
    name: 'regex',
    aliases: [],
    pattern: 'string',
    description: 'a regular expression matches somewhere in the value (Python re.search)',
    test: (v, p) => regexOp(v, p, 'search'),
  },
  {
    name: 'iregex',
    aliases: [],
    pattern: 'string',
    description: 'like regex, ignoring case',
    test: (v, p) => regexOp(v, p, 'isearch'),
  },
  {
    name: 'matchregex',
    aliases: [],
    pattern: 'string',
    description:
      'a regular expression matches at the start of the value (Python re.match, dot matches newlines)',
    test: (v, p) => regexOp(v, p, 'match'),
  },
  {
    name: 'contains',
    aliases: [],
    pattern: 'any',
    description: 'the list has the element / the text has the substring / the dict has the key',
    test: (v, p) => containsOp(v, p, false, false),
  },
  {
    name: 'ncontains',
    aliases: [],
    pattern: 'any',
    description: 'does not contain (a missing value contains nothing)',
    test: (v, p) => containsOp(v, p, false, true),
  },
  {
    name: 'icontains',
    aliases: [],
    pattern: 'any',
    description: 'contains, ignoring case',
    test: (v, p) => containsOp(v, p, true, false),
  },
  {
    name: 'incontains',
    aliases: [],
    pattern: 'any',
    description: 'does not contain, ignoring case',
    test: (v, p) => containsOp(v, p, true, true),
  },
  {
    name: 'startswith',
    aliases: [],
    pattern: 'string',
    description: 'the text starts with the pattern',
    test: (v, p) => textOp(v, p, (a, b) => a.startsWith(b)),
  },
  {
    name: 'istartswith',
    aliases: [],
    pattern: 'string',
    description: 'starts with, ignoring case',
    test: (v, p) => textOp(v, p, (a, b) => a.startsWith(b), true),
  },
  {
    name: 'endswith',
    aliases: [],
    pattern: 'string',
    description: 'the text ends with the pattern',
    test: (v, p) => textOp(v, p, (a, b) => a.endsWith(b)),
  },
  {
    name: 'iendswith',
    aliases: [],
    pattern: 'string',
    description: 'ends with, ignoring case',
    test: (v, p) => textOp(v, p, (a, b) => a.endsWith(b), true),
  },
  {
    name: 'timediff_lt',
    aliases: ['td_lt'],
    pattern: 'number',
    description: 'the timestamp is less than N seconds old',
    test: (v, p, env) => timediff(v, p, env, true),
  },
  {
    name: 'timediff_gt',
    aliases: ['td_gt'],
    pattern: 'number',
    description: 'the timestamp is more than N seconds old',
    test: (v, p, env) => timediff(v, p, env, false),
  },
  {
    name: 'exists',
    aliases: [],
    pattern: 'none',
    description: 'the field is present and not null',
    test: (v) => outcome(exists(v), v === null ? 'the value is null' : 'the field is missing'),
  },
  {
    name: 'nexists',
    aliases: [],
    pattern: 'none',
    description: 'the field is missing or null',
    test: (v) => outcome(!exists(v)),
  },
  {
    name: 'inside',
    aliases: ['in'],
    pattern: 'container',
    description: 'the value is an element of the list (or a substring of the text, or a key of the dict)',
    test: (v, p) => inside(v, p, false),
  },
  {
    name: 'ninside',
    aliases: ['nin'],
    pattern: 'container',
    description: 'the value is not inside the pattern',
    test: (v, p) => inside(v, p, true),
  },
  {
    name: 'search',
    aliases: [],
    pattern: 'criteria',
    description:
      'items of a list matched against nested criteria on item.*; condition any|all|any2any|all2any',
    test: () => fail('search is evaluated by the matcher'),
  },
];

/** Every operator name accepted in a criterion's `type`, aliases included. */
export const OPERATOR_NAMES = [
  'equals',
  'eq',
  'nequals',
  'neq',
  'iequals',
  'ieq',
  'lessthan',
  'lt',
  'greaterthan',
  'gt',
  'matchwildcard',
  'regex',
  'iregex',
  'matchregex',
  'contains',
  'ncontains',
  'icontains',
  'incontains',
  'startswith',
  'istartswith',
  'endswith',
  'iendswith',
  'timediff_lt',
  'td_lt',
  'timediff_gt',
  'td_gt',
  'exists',
  'nexists',
  'inside',
  'in',
  'ninside',
  'nin',
  'search',
] as const;
export type OperatorName = (typeof OPERATOR_NAMES)[number];

/** How `search` combines item results. */
export const SEARCH_CONDITIONS = ['any', 'all', 'any2any', 'all2any'] as const;
export type SearchCondition = (typeof SEARCH_CONDITIONS)[number];

const BY_NAME = new Map<string, OperatorSpec>();
for (const op of OPERATORS) for (const n of [op.name, ...op.aliases]) BY_NAME.set(n, op);

/** The operator for a name or alias (case-sensitive, as StackStorm). */
export function findOperator(name: unknown): OperatorSpec | undefined {
  return typeof name === 'string' ? BY_NAME.get(name) : undefined;
}
