/**
 * Bounds on the work one render may do, and the per-render accounting that enforces them. Every
 * loop iteration, assignment, call and collection step burns fuel; text output, built strings and
 * the logical size of values bound to variables are capped. A template that exceeds a bound fails
 * with an ExprError of kind `limit` — deterministically, without reading a clock.
 */
import { limitError } from './errors.ts';

export const LIMITS = {
  /** Longest template source accepted. */
  templateLength: 256 * 1024,
  /** Characters of text one render may produce, across all its buffers (macros, filter blocks). */
  output: 16 * 1024 * 1024,
  /** Longest string an operator, method or filter may build. */
  string: 16 * 1024 * 1024,
  /** Work units per render: ~1 per loop step, assignment, call, collection element or char scanned. */
  fuel: 2_000_000,
  /** Longest list `range()` may produce. */
  rangeLength: 100_000,
  /** Logical size (elements + entries, shared parts counted each time) of a value held in a variable. */
  collectionNodes: 1_000_000,
  /** Nested macro calls. */
  macroDepth: 100,
  /** Nesting depth of values converted to data (typed results, rendered documents). */
  valueDepth: 512,
  /** Longest regular expression accepted. */
  regexPattern: 2_000,
  /** Longest subject a regular expression runs on (linear-time engine). */
  regexSubject: 100_000,
  /** Longest subject for patterns that need the backtracking engine (backreferences, lookaround). */
  regexSubjectBacktracking: 10_000,
  /** Compiled templates kept in the cache (two generations of this size at most). */
  cacheSize: 5_000,
} as const;

export interface RenderState {
  fuel: number;
  output: number;
  macroDepth: number;
  /** Logical sizes of objects already measured in this render. */
  sizes: WeakMap<object, number> | null;
  typed: unknown;
}

let current: RenderState | null = null;

const fresh = (): RenderState => ({
  fuel: LIMITS.fuel,
  output: 0,
  macroDepth: 0,
  sizes: null,
  typed: undefined,
});

/** Start a render; returns the state to hand back to `end` (renders may nest through context functions). */
export function begin(): { state: RenderState; previous: RenderState | null } {
  const previous = current;
  const state = fresh();
  current = state;
  return { state, previous };
}

export function end(previous: RenderState | null): void {
  current = previous;
}

/** The state of the render in progress (a throwaway one outside renders, e.g. filters in unit tests). */
export function state(): RenderState {
  if (current === null) current = fresh();
  return current;
}

/** Consume `n` units of work. */
export function burn(n = 1): void {
  const s = state();
  s.fuel -= n;
  if (s.fuel < 0)
    throw limitError(
      `template does too much work (more than ${LIMITS.fuel.toLocaleString('en-US')} steps); ` +
        'reduce loop sizes or nesting',
    );
}

/** Account for `n` characters of produced text. */
export function chargeOutput(n: number): void {
  const s = state();
  s.output += n;
  if (s.output > LIMITS.output)
    throw limitError(`template output exceeds ${LIMITS.output.toLocaleString('en-US')} characters`);
}

/** Refuse strings longer than the cap; returns the string for chaining. */
export function capString(s: string): string {
  if (s.length > LIMITS.string)
    throw limitError(`string of ${s.length.toLocaleString('en-US')} characters exceeds the limit`);
  return s;
}

/** Refuse a list that would have more than the allowed number of elements. */
export function checkListLength(n: number, what = 'list'): void {
  if (!(n <= LIMITS.collectionNodes))
    throw limitError(
      `${what} of ${Math.round(n).toLocaleString('en-US')} elements would exceed the limit of ` +
        `${LIMITS.collectionNodes.toLocaleString('en-US')}`,
    );
}

/** Refuse a string that *would* be longer than the cap, before building it. */
export function checkLength(n: number, what = 'string'): void {
  if (!(n <= LIMITS.string))
    throw limitError(`${what} of ${Math.round(n).toLocaleString('en-US')} characters would exceed the limit`);
}

/**
 * Check the logical size of a value about to be held in a variable: lists and dicts count their
 * elements, recursively, shared parts once per reference. This catches templates that double a
 * structure in a loop (`{% set l = [l, l] %}`), which stays small in memory but explodes when
 * printed or serialised.
 */
export function checkValueSize(value: unknown): void {
  if (typeof value === 'string') {
    if (value.length > LIMITS.string) capString(value);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const size = measure(value, 0);
  if (size > LIMITS.collectionNodes)
    throw limitError(
      `value too large: more than ${LIMITS.collectionNodes.toLocaleString('en-US')} elements ` +
        '(counting nested and repeated parts)',
    );
}

function measure(value: object, depth: number): number {
  const s = state();
  if (s.sizes === null) s.sizes = new WeakMap();
  const known = s.sizes.get(value);
  if (known !== undefined) return known;
  if (depth > LIMITS.valueDepth) throw limitError(`value nested more than ${LIMITS.valueDepth} levels deep`);
  let size = 1;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && size <= LIMITS.collectionNodes; i++) {
      const v: unknown = value[i];
      size += typeof v === 'object' && v !== null ? measure(v, depth + 1) : 1;
    }
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    for (const k in value) {
      if (!Object.hasOwn(value, k)) continue;
      const v: unknown = (value as Record<string, unknown>)[k];
      size += typeof v === 'object' && v !== null ? measure(v, depth + 1) : 1;
      if (size > LIMITS.collectionNodes) break;
    }
  }
  burn(Math.ceil(size / 16));
  s.sizes.set(value, size);
  return size;
}
