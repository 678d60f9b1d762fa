/**
 * Regular expressions for templates and rule criteria, written in Python's `re` syntax (what
 * StackStorm users know) and run without catastrophic backtracking.
 *
 * - Syntax: JavaScript's, plus Python's `(?P<name>…)`, `(?P=name)`, `\A`, `\Z`, `{,n}`, `(?#…)`,
 *   leading inline flags `(?i)`, `(?m)`, `(?s)`, and a `]` first in a class taken literally.
 * - Execution: V8's linear-time engine whenever the pattern allows it (no backreferences, no
 *   lookaround), with case-insensitivity expanded into the pattern since that engine lacks the
 *   `i` flag. Other patterns run on the backtracking engine, but only if they have no nested
 *   unbounded quantifiers — the shape behind exponential blow-ups such as `(a+)+$` — and only on
 *   shorter subjects.
 * - Bounds: pattern length, subject length, and fuel per character scanned.
 */
import v8 from 'node:v8';
import { ExprError, limitError } from './errors.ts';
import { burn, LIMITS } from './limits.ts';

export interface RegexOptions {
  ignoreCase?: boolean;
  multiline?: boolean;
  dotAll?: boolean;
}

export interface SafeRegex {
  /** The pattern as written. */
  readonly pattern: string;
  /** Whether the linear-time engine runs it. */
  readonly linear: boolean;
  /** Number of capture groups. */
  readonly groups: number;
  /** Non-global regex (search / test). */
  readonly search: RegExp;
  /** Sticky regex (Python `re.match`: anchored at the start). */
  readonly sticky: RegExp;
  /** Global regex (replace / findall). */
  readonly global: RegExp;
  readonly subjectLimit: number;
}

const linearAvailable: boolean = (() => {
  try {
    v8.setFlagsFromString('--enable-experimental-regexp-engine');
    // Built at run time on purpose: a literal with the `l` flag would not even parse without the flag.
    // biome-ignore lint/complexity/useRegexLiterals: see above
    return new RegExp('a', 'l').test('a');
  } catch {
    return false;
  }
})();

/** Whether the linear-time engine is in use on this Node.js (reported by diagnostics and tests). */
export const LINEAR_REGEX_ENGINE = linearAvailable;

const regexError = (reason: string, pattern: string) =>
  new ExprError(`invalid regular expression ${JSON.stringify(pattern)}: ${reason}`, '', { kind: 'runtime' });

// ---------------------------------------------------------------------------------------------
// Parsing: a small tree of the pattern, enough to translate Python syntax, expand case and check
// the shape.

type RNode =
  | { t: 'char'; ch: string; src: string }
  | { t: 'raw'; src: string }
  | { t: 'class'; negated: boolean; items: ClassItem[] }
  | { t: 'group'; open: string; kind: 'capture' | 'plain' | 'look'; alts: RNode[][] }
  | { t: 'quant'; node: RNode; min: number; max: number; suffix: string; src: string }
  | { t: 'backref'; src: string };

type ClassItem = { lo: string; hi: string; src: string } | { raw: string };

interface Parsed {
  alts: RNode[][];
  flags: { i: boolean; m: boolean; s: boolean };
  groups: number;
  needsBacktracking: boolean;
}

class PatternParser {
  private i = 0;
  groups = 0;
  needsBacktracking = false;
  constructor(private readonly src: string) {}

  private fail(reason: string): never {
    throw regexError(`${reason} at position ${this.i}`, this.src);
  }

  parse(): Parsed {
    const flags = { i: false, m: false, s: false };
    const lead = /^\(\?([aiLmsux]+)\)/.exec(this.src);
    if (lead) {
      for (const f of lead[1]!) {
        if (f === 'i' || f === 'm' || f === 's') flags[f] = true;
        else if (f === 'x') this.fail('the verbose flag (?x) is not supported');
        else if (f === 'L') this.fail('the locale flag (?L) is not supported');
      }
      this.i = lead[0].length;
    }
    const alts = this.alternatives();
    if (this.i < this.src.length) this.fail("unbalanced ')'");
    return { alts, flags, groups: this.groups, needsBacktracking: this.needsBacktracking };
  }

  private alternatives(): RNode[][] {
    const alts: RNode[][] = [[]];
    while (this.i < this.src.length) {
      const c = this.src[this.i]!;
      if (c === ')') break;
      if (c === '|') {
        this.i++;
        alts.push([]);
        continue;
      }
      const seq = alts[alts.length - 1]!;
      if ((c === '*' || c === '+' || c === '?') && seq[seq.length - 1]?.t === 'quant')
        this.fail('multiple repeat');
      const atom = this.atom();
      if (atom === null) continue;
      alts[alts.length - 1]!.push(this.quantified(atom));
    }
    return alts;
  }

  private quantified(atom: RNode): RNode {
    const s = this.src;
    const start = this.i;
    let min: number;
    let max: number;
    const c = s[this.i];
    if (c === '*') [min, max] = [0, Number.POSITIVE_INFINITY];
    else if (c === '+') [min, max] = [1, Number.POSITIVE_INFINITY];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d*)(,?)(\d*)\}/.exec(s.slice(this.i));
      if (!m || (m[1] === '' && m[3] === '') || (m[1] === '' && m[2] === '')) return atom; // a literal '{'
      min = m[1] === '' ? 0 : Number(m[1]);
      max = m[2] === '' ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
      if (max < min) this.fail('quantifier range out of order');
      if (min > 1000 || (max !== Number.POSITIVE_INFINITY && max > 1000))
        this.fail('counted repetition above 1000 is not supported');
      this.i += m[0].length - 1;
    } else return atom;
    if (atom.t === 'raw' && /^[\^$]$|^\\[bB]$/.test(atom.src)) this.fail('nothing to repeat');
    if (atom.t === 'quant') this.fail('multiple repeat');
    this.i++;
    let suffix = '';
    if (s[this.i] === '?') {
      suffix = '?';
      this.i++;
    } else if (s[this.i] === '+') this.fail('possessive quantifiers are not supported');
    const body = s.slice(start, this.i - suffix.length);
    const src = body.startsWith('{,') ? `{0${body.slice(1)}` : body;
    return { t: 'quant', node: atom, min, max, suffix, src };
  }

  private atom(): RNode | null {
    const s = this.src;
    const c = s[this.i]!;
    switch (c) {
      case '(':
        return this.group();
      case '[':
        return this.charClass();
      case '\\':
        return this.escape();
      case '.':
      case '^':
      case '$':
        this.i++;
        return { t: 'raw', src: c };
      case '*':
      case '+':
      case '?':
        this.fail('nothing to repeat');
        break;
      case '{': {
        if (/^\{(?:\d+,?\d*|,\d+)\}/.test(s.slice(this.i))) this.fail('nothing to repeat');
        this.i++;
        return { t: 'char', ch: '{', src: '\\{' };
      }
      case '}':
      case ']':
        this.i++;
        return { t: 'char', ch: c, src: `\\${c}` };
    }
    const cp = s.codePointAt(this.i)!;
    const ch = String.fromCodePoint(cp);
    this.i += ch.length;
    return { t: 'char', ch, src: ch };
  }

  private escape(): RNode {
    const s = this.src;
    const n = s[this.i + 1];
    if (n === undefined) this.fail('bad escape (end of pattern)');
    this.i += 2;
    if ('dDwWsSbB'.includes(n)) return { t: 'raw', src: `\\${n}` };
    if (n === 'A') return { t: 'raw', src: '^' };
    if (n === 'Z' || n === 'z') return { t: 'raw', src: '$' };
    if (n >= '1' && n <= '9') {
      let digits = n;
      while (/\d/.test(s[this.i] ?? '') && digits.length < 2) digits += s[this.i++];
      this.needsBacktracking = true;
      return { t: 'backref', src: `\\${digits}` };
    }
    if (n === 'k') {
      const m = /^<([A-Za-z_]\w*)>/.exec(s.slice(this.i));
      if (!m) this.fail('bad \\k escape');
      this.i += m[0].length;
      this.needsBacktracking = true;
      return { t: 'backref', src: `\\k<${m[1]}>` };
    }
    if (n === 'x') return this.hexEscape(2);
    if (n === 'u') return this.hexEscape(4);
    if (n === 'U') {
      const m = /^[0-9a-fA-F]{8}/.exec(s.slice(this.i));
      if (!m) this.fail('bad \\U escape');
      this.i += 8;
      const ch = String.fromCodePoint(Number.parseInt(m[0], 16));
      return { t: 'char', ch, src: escapeChar(ch) };
    }
    if (n === 'n' || n === 'r' || n === 't' || n === 'f' || n === 'v' || n === '0')
      return { t: 'raw', src: `\\${n}` };
    if (/[A-Za-z]/.test(n)) this.fail(`bad escape \\${n}`);
    return { t: 'char', ch: n, src: escapeChar(n) };
  }

  private hexEscape(len: number): RNode {
    const m = new RegExp(`^[0-9a-fA-F]{${len}}`).exec(this.src.slice(this.i));
    if (!m) this.fail('bad hex escape');
    this.i += len;
    const ch = String.fromCharCode(Number.parseInt(m[0], 16));
    return { t: 'char', ch, src: escapeChar(ch) };
  }

  private group(): RNode {
    const s = this.src;
    const rest = s.slice(this.i);
    const named = /^\(\?P?<([A-Za-z_]\w*)>/.exec(rest);
    const backref = /^\(\?P=([A-Za-z_]\w*)\)/.exec(rest);
    const comment = /^\(\?#[^)]*\)/.exec(rest);
    const special = /^\(\?(?::|=|!|<=|<!)/.exec(rest);
    let open: string;
    let kind: 'capture' | 'plain' | 'look';
    if (backref) {
      this.i += backref[0].length;
      this.needsBacktracking = true;
      return { t: 'backref', src: `\\k<${backref[1]}>` };
    }
    if (comment) {
      this.i += comment[0].length;
      return { t: 'raw', src: '' };
    }
    if (named) {
      open = `(?<${named[1]}>`;
      kind = 'capture';
      this.groups++;
      this.i += named[0].length;
    } else if (special) {
      open = special[0];
      kind = open === '(?:' ? 'plain' : 'look';
      if (kind === 'look') this.needsBacktracking = true;
      this.i += open.length;
    } else if (rest.startsWith('(?')) {
      this.fail('inline flags are only supported at the start of the pattern, e.g. (?i)');
    } else {
      open = '(';
      kind = 'capture';
      this.groups++;
      this.i += 1;
    }
    const alts = this.alternatives();
    if (s[this.i] !== ')') this.fail("missing ')'");
    this.i++;
    return { t: 'group', open, kind, alts };
  }

  private charClass(): RNode {
    const s = this.src;
    this.i++;
    let negated = false;
    if (s[this.i] === '^') {
      negated = true;
      this.i++;
    }
    const items: ClassItem[] = [];
    let first = true;
    for (;;) {
      if (this.i >= s.length) this.fail("unterminated character set '['");
      const c = s[this.i]!;
      if (c === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      const lo = this.classAtom();
      if (typeof lo !== 'string') {
        items.push(lo);
        continue;
      }
      if (s[this.i] === '-' && s[this.i + 1] !== undefined && s[this.i + 1] !== ']') {
        this.i++;
        const hi = this.classAtom();
        if (typeof hi !== 'string') this.fail('bad character range');
        if (hi < lo) this.fail(`bad character range ${lo}-${hi}`);
        items.push({ lo, hi, src: `${escapeClassChar(lo)}-${escapeClassChar(hi)}` });
      } else items.push({ lo, hi: lo, src: escapeClassChar(lo) });
    }
    return { t: 'class', negated, items };
  }

  /** One member of a class: a char (string) or a raw class escape such as `\d`. */
  private classAtom(): string | { raw: string } {
    const s = this.src;
    const c = s[this.i]!;
    if (c !== '\\') {
      const ch = String.fromCodePoint(s.codePointAt(this.i)!);
      this.i += ch.length;
      return ch;
    }
    const n = s[this.i + 1];
    if (n === undefined) this.fail('bad escape (end of pattern)');
    this.i += 2;
    if ('dDwWsS'.includes(n)) return { raw: `\\${n}` };
    if (n === 'b') return '\b';
    if (n === 'n') return '\n';
    if (n === 'r') return '\r';
    if (n === 't') return '\t';
    if (n === 'f') return '\f';
    if (n === 'v') return '\v';
    if (n === '0') return '\0';
    if (n === 'x' || n === 'u') {
      const len = n === 'x' ? 2 : 4;
      const m = new RegExp(`^[0-9a-fA-F]{${len}}`).exec(s.slice(this.i));
      if (!m) this.fail('bad hex escape');
      this.i += len;
      return String.fromCharCode(Number.parseInt(m[0], 16));
    }
    if (/[A-Za-z0-9]/.test(n)) this.fail(`bad escape \\${n} in a character set`);
    return n;
  }
}

function escapeChar(ch: string): string {
  if (/[\\^$.*+?()[\]{}|/]/.test(ch)) return `\\${ch}`;
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  if (ch === '\t') return '\\t';
  const code = ch.charCodeAt(0);
  if (ch.length === 1 && (code < 0x20 || code === 0x7f)) return `\\x${code.toString(16).padStart(2, '0')}`;
  return ch;
}

function escapeClassChar(ch: string): string {
  if (/[\\\]^[-]/.test(ch)) return `\\${ch}`;
  const code = ch.charCodeAt(0);
  if (ch.length === 1 && (code < 0x20 || code === 0x7f)) return `\\x${code.toString(16).padStart(2, '0')}`;
  return ch;
}

// ---------------------------------------------------------------------------------------------
// Emission (with optional case expansion) and shape analysis.

function otherCase(ch: string): string | null {
  const u = ch.toUpperCase();
  const l = ch.toLowerCase();
  if (u !== ch && u.length === ch.length) return u;
  if (l !== ch && l.length === ch.length) return l;
  return null;
}

function emit(alts: RNode[][], fold: boolean): string {
  return alts.map((seq) => seq.map((n) => emitNode(n, fold)).join('')).join('|');
}

function emitNode(n: RNode, fold: boolean): string {
  switch (n.t) {
    case 'char': {
      if (!fold) return n.src;
      const o = otherCase(n.ch);
      return o === null ? n.src : `[${escapeClassChar(n.ch)}${escapeClassChar(o)}]`;
    }
    case 'raw':
    case 'backref':
      return n.src;
    case 'class': {
      let body = '';
      for (const it of n.items) {
        if ('raw' in it) {
          body += it.raw;
          continue;
        }
        body += it.src;
        if (fold) body += foldRange(it.lo, it.hi);
      }
      return `[${n.negated ? '^' : ''}${body}]`;
    }
    case 'group':
      return `${n.open}${emit(n.alts, fold)})`;
    case 'quant':
      return `${emitNode(n.node, fold)}${n.src}${n.suffix}`;
  }
}

/** The other-case counterparts of a class range, as class source. */
function foldRange(lo: string, hi: string): string {
  if (lo === hi) {
    const o = otherCase(lo);
    return o === null ? '' : escapeClassChar(o);
  }
  let out = '';
  const a = lo.codePointAt(0)!;
  const b = hi.codePointAt(0)!;
  const span = (from: number, to: number, shift: number) => {
    const x = Math.max(a, from);
    const y = Math.min(b, to);
    if (x <= y) out += `${String.fromCharCode(x + shift)}-${String.fromCharCode(y + shift)}`;
  };
  span(0x61, 0x7a, -0x20); // a-z → A-Z
  span(0x41, 0x5a, 0x20); // A-Z → a-z
  span(0xe0, 0xfe, -0x20); // à-þ → À-Þ (Latin-1, except ÷/×, harmless in a class)
  span(0xc0, 0xde, 0x20);
  return out;
}

/** Whether a node can repeat without bound (contains `*`, `+`, `{n,}` or a large count). */
function unbounded(n: RNode): boolean {
  switch (n.t) {
    case 'quant':
      return n.max > 16 || unbounded(n.node);
    case 'group':
      return n.alts.some((seq) => seq.some(unbounded));
    default:
      return false;
  }
}

/** A repeated group that itself contains unbounded repetition: the exponential-backtracking shape. */
function nestedQuantifier(alts: RNode[][]): boolean {
  for (const seq of alts)
    for (const n of seq) {
      if (n.t === 'quant' && n.max > 1 && unbounded(n.node)) return true;
      if (n.t === 'quant' && nestedQuantifier([[n.node]])) return true;
      if (n.t === 'group' && nestedQuantifier(n.alts)) return true;
    }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Compilation with caching.

const cacheYoung = new Map<string, SafeRegex | ExprError>();
let cacheOld = new Map<string, SafeRegex | ExprError>();
const CACHE = 1000;

export function compileRegex(pattern: string, options: RegexOptions = {}): SafeRegex {
  if (typeof pattern !== 'string') throw regexError('the pattern must be a string', String(pattern));
  const key = `${options.ignoreCase ? 'i' : ''}${options.multiline ? 'm' : ''}${options.dotAll ? 's' : ''}\u0000${pattern}`;
  let hit = cacheYoung.get(key);
  if (hit === undefined) {
    hit = cacheOld.get(key);
    if (hit === undefined) {
      try {
        hit = build(pattern, options);
      } catch (e) {
        if (!(e instanceof ExprError)) throw e;
        hit = e;
      }
    }
    if (cacheYoung.size >= CACHE) {
      cacheOld = new Map(cacheYoung);
      cacheYoung.clear();
    }
    cacheYoung.set(key, hit);
  }
  if (hit instanceof ExprError) throw new ExprError(hit.reason, '', { kind: hit.kind });
  return hit;
}

function build(pattern: string, options: RegexOptions): SafeRegex {
  if (pattern.length > LIMITS.regexPattern)
    throw regexError(`longer than ${LIMITS.regexPattern} characters`, pattern.slice(0, 60));
  const parsed = new PatternParser(pattern).parse();
  const ignoreCase = options.ignoreCase === true || parsed.flags.i;
  let flags = '';
  if (options.multiline || parsed.flags.m) flags += 'm';
  if (options.dotAll || parsed.flags.s) flags += 's';

  if (linearAvailable && !parsed.needsBacktracking) {
    const source = emit(parsed.alts, ignoreCase);
    try {
      return {
        pattern,
        linear: true,
        groups: parsed.groups,
        search: new RegExp(source, `${flags}l`),
        sticky: new RegExp(source, `${flags}ly`),
        global: new RegExp(source, `${flags}lg`),
        subjectLimit: LIMITS.regexSubject,
      };
    } catch {
      // Not expressible in the linear engine: fall through to the checked backtracking engine.
    }
  }
  if (nestedQuantifier(parsed.alts))
    throw regexError(
      'nested repetition such as (a+)+ can take exponential time on some inputs; ' +
        'rewrite it without a repeated group that itself repeats',
      pattern,
    );
  const source = emit(parsed.alts, false);
  if (ignoreCase) flags += 'i';
  try {
    return {
      pattern,
      linear: false,
      groups: parsed.groups,
      search: new RegExp(source, flags),
      sticky: new RegExp(source, `${flags}y`),
      global: new RegExp(source, `${flags}g`),
      subjectLimit: LIMITS.regexSubjectBacktracking,
    };
  } catch (e) {
    throw regexError((e as Error).message.replace(/^Invalid regular expression: /, ''), pattern);
  }
}

/** Check that a pattern compiles; returns the problem, or null. */
export function regexProblem(pattern: string, options: RegexOptions = {}): string | null {
  try {
    compileRegex(pattern, options);
    return null;
  } catch (e) {
    if (e instanceof ExprError) return e.reason;
    throw e;
  }
}

function subject(re: SafeRegex, value: string): string {
  if (value.length > re.subjectLimit)
    throw limitError(
      `regular expression subject of ${value.length.toLocaleString('en-US')} characters exceeds ` +
        `the limit of ${re.subjectLimit.toLocaleString('en-US')}` +
        (re.linear ? '' : ' for patterns with backreferences or lookaround'),
    );
  burn(1 + (value.length >> 3));
  return value;
}

/** Python `re.search`: the first match anywhere. */
export function regexSearch(re: SafeRegex, value: string): RegExpExecArray | null {
  subject(re, value);
  re.search.lastIndex = 0;
  return re.search.exec(value);
}

/** Python `re.match`: a match that starts at the beginning. */
export function regexMatchStart(re: SafeRegex, value: string): RegExpExecArray | null {
  subject(re, value);
  re.sticky.lastIndex = 0;
  return re.sticky.exec(value);
}

/** All non-overlapping matches, in order. */
export function regexMatchAll(re: SafeRegex, value: string): RegExpExecArray[] {
  subject(re, value);
  const out: RegExpExecArray[] = [];
  const g = re.global;
  g.lastIndex = 0;
  for (;;) {
    const m = g.exec(value);
    if (m === null) break;
    out.push(m);
    if (m[0] === '') g.lastIndex++;
    if (out.length > LIMITS.collectionNodes)
      throw limitError('more regular expression matches than the limit allows');
  }
  g.lastIndex = 0;
  return out;
}

/** Python `re.findall`: full matches without groups, the group with one, tuples (lists) with several. */
export function regexFindAll(re: SafeRegex, value: string): unknown[] {
  return regexMatchAll(re, value).map((m) => {
    if (re.groups === 0) return m[0];
    if (re.groups === 1) return m[1] ?? '';
    return m.slice(1).map((g) => g ?? '');
  });
}

/**
 * Python `re.sub`: replacement text may use `\1`, `\g<1>`, `\g<name>`; a `count` of 0 replaces all.
 */
export function regexReplace(re: SafeRegex, value: string, replacement: string, count = 0): string {
  const parts = parseReplacement(replacement, re);
  const matches = regexMatchAll(re, value);
  let out = '';
  let pos = 0;
  let done = 0;
  for (const m of matches) {
    if (count > 0 && done >= count) break;
    out += value.slice(pos, m.index);
    for (const p of parts) {
      if (typeof p === 'string') out += p;
      else out += (typeof p.group === 'number' ? m[p.group] : m.groups?.[p.group]) ?? '';
    }
    pos = m.index + m[0].length;
    done++;
    if (out.length > LIMITS.string) throw limitError('regex_replace result exceeds the string limit');
  }
  return out + value.slice(pos);
}

type ReplacementPart = string | { group: number | string };

function parseReplacement(rep: string, re: SafeRegex): ReplacementPart[] {
  const parts: ReplacementPart[] = [];
  let lit = '';
  for (let i = 0; i < rep.length; i++) {
    const c = rep[i]!;
    if (c !== '\\') {
      lit += c;
      continue;
    }
    const n = rep[i + 1];
    if (n === undefined) {
      lit += '\\';
      break;
    }
    let group: number | string | undefined;
    if (/\d/.test(n)) {
      let d = n;
      if (/\d/.test(rep[i + 2] ?? '')) d += rep[i + 2];
      group = Number(d);
      i += d.length;
    } else if (n === 'g') {
      const m = /^<(\w+)>/.exec(rep.slice(i + 2));
      if (!m) throw regexError('bad \\g<…> group reference in the replacement', re.pattern);
      group = /^\d+$/.test(m[1]!) ? Number(m[1]) : m[1]!;
      i += 1 + m[0].length;
    } else {
      lit += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n === '\\' ? '\\' : `\\${n}`;
      i++;
      continue;
    }
    if (typeof group === 'number' && group > re.groups)
      throw regexError(`the replacement refers to group ${group}, which does not exist`, re.pattern);
    if (lit) parts.push(lit);
    lit = '';
    parts.push({ group });
  }
  if (lit) parts.push(lit);
  return parts;
}

/** Escape text so it matches literally. */
export function regexEscape(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}
