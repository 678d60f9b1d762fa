/**
 * Rule criteria matching. A criteria document maps payload paths to criteria, all of which must
 * hold, plus an optional free `expression`:
 *
 *   { "trigger.severity": { "type": "equals", "pattern": "critical" },
 *     "trigger.count":    { "type": "gt", "pattern": "{{ keys.threshold }}" },
 *     "trigger.tags":     { "type": "search", "condition": "any",
 *                           "pattern": { "item.name": { "type": "startswith", "pattern": "prod" } } },
 *     "expression":       "{{ trigger.source == 'ci' or trigger.force }}" }
 *
 * Paths: `trigger.…` and `payload.…` both address the event payload; other first segments name a
 * variable of the context (`item` inside search, `event`), and a name that is not one falls back
 * to the payload. Patterns that contain `{{ … }}`/`{% … %}` are rendered first (a single
 * expression keeps its type). Pure: no I/O, `now` comes from the caller.
 */
import { type ExprContext, ExprError, evaluate, isTemplate, isTruthy, render } from '../expr/index.ts';
import {
  findOperator,
  type OperatorOutcome,
  type OperatorSpec,
  SEARCH_CONDITIONS,
  type SearchCondition,
} from './operators.ts';
import { type ParsedPath, PathError, parsePath, resolveSegments } from './paths.ts';

/** The key of the free expression criterion. */
export const EXPRESSION_KEY = 'expression';

export interface CriterionResult {
  /** The criteria key as written (`trigger.count#low`, `expression`). */
  key: string;
  /** The operator as written, or `expression`. */
  type: string;
  matched: boolean;
  /** The pattern after rendering (absent for `exists`/`nexists` and expressions). */
  pattern?: unknown;
  /** Whether the path resolved to a value, and the value. */
  found?: boolean;
  value?: unknown;
  /** Why it did not match (type mismatch, missing field …). */
  reason?: string;
  /** Why it could not be evaluated (invalid criterion, bad regex, template error …). */
  error?: string;
  /** For `search`: the condition and the items evaluated (the first 50). */
  condition?: SearchCondition;
  items?: SearchItemResult[];
}

export interface SearchItemResult {
  index: number;
  matched: boolean;
  details: CriterionResult[];
}

export interface MatchResult {
  matched: boolean;
  details: CriterionResult[];
}

export interface MatchOptions {
  /** The current time, for timediff operators. */
  now: Date;
  /**
   * Renders a pattern or expression template. Defaults to the expression engine over the payload
   * context (with `trigger` and `payload` both set to the payload, and `item` inside search).
   */
  render?: (template: string) => unknown;
}

type Compiled =
  | { kind: 'expression'; key: string; source: string }
  | { kind: 'invalid'; key: string; type: string; error: string }
  | {
      kind: 'op';
      key: string;
      type: string;
      op: OperatorSpec;
      path: ParsedPath;
      pattern: unknown;
      templated: boolean;
      condition?: SearchCondition;
      children?: Compiled[];
    };

const MAX_SEARCH_DEPTH = 8;
const MAX_ITEM_DETAILS = 50;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function hasTemplate(v: unknown, depth = 0): boolean {
  if (typeof v === 'string') return isTemplate(v);
  if (depth > 32 || typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return v.some((x) => hasTemplate(x, depth + 1));
  return Object.values(v).some((x) => hasTemplate(x, depth + 1));
}

function compileOne(key: string, spec: unknown, depth: number): Compiled {
  if (key === EXPRESSION_KEY && depth === 0) {
    if (typeof spec !== 'string' || spec.trim() === '')
      return { kind: 'invalid', key, type: 'expression', error: 'the expression must be a non-empty string' };
    return { kind: 'expression', key, source: spec };
  }
  if (!isObject(spec))
    return { kind: 'invalid', key, type: '', error: 'a criterion must be an object {type, pattern}' };
  const type = typeof spec.type === 'string' ? spec.type : '';
  const op = findOperator(spec.type);
  if (!op)
    return {
      kind: 'invalid',
      key,
      type,
      error:
        spec.type === undefined
          ? 'the operator (type) is missing'
          : `unknown operator '${String(spec.type)}'`,
    };
  let path: ParsedPath;
  try {
    path = parsePath(key);
  } catch (e) {
    if (e instanceof PathError)
      return { kind: 'invalid', key, type, error: `invalid path '${key}': ${e.message}` };
    throw e;
  }
  const pattern = spec.pattern;
  if (op.pattern !== 'none' && !Object.hasOwn(spec, 'pattern'))
    return { kind: 'invalid', key, type, error: `'${type}' needs a pattern` };
  if (op.name !== 'search')
    return { kind: 'op', key, type, op, path, pattern, templated: hasTemplate(pattern) };

  const condition = spec.condition;
  if (!(SEARCH_CONDITIONS as readonly unknown[]).includes(condition))
    return {
      kind: 'invalid',
      key,
      type,
      error: `search needs a condition: ${SEARCH_CONDITIONS.join(', ')}`,
    };
  if (!isObject(pattern) || Object.keys(pattern).length === 0)
    return { kind: 'invalid', key, type, error: 'a search pattern maps item paths to criteria' };
  if (depth >= MAX_SEARCH_DEPTH)
    return { kind: 'invalid', key, type, error: `search criteria nest at most ${MAX_SEARCH_DEPTH} deep` };
  const children = Object.keys(pattern).map((k) => compileOne(k, pattern[k], depth + 1));
  return {
    kind: 'op',
    key,
    type,
    op,
    path,
    pattern,
    templated: false,
    condition: condition as SearchCondition,
    children,
  };
}

const compiledCache = new WeakMap<object, Compiled[]>();

function compileCriteria(criteria: Record<string, unknown>): Compiled[] {
  let c = compiledCache.get(criteria);
  if (!c) {
    c = Object.keys(criteria).map((k) => compileOne(k, criteria[k], 0));
    compiledCache.set(criteria, c);
  }
  return c;
}

/** Python-ish truthiness of a rendered expression: text "false", "0", "none", "null" is false too. */
function expressionTruthy(v: unknown): boolean {
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    return t !== '' && t !== 'false' && t !== '0' && t !== 'none' && t !== 'null';
  }
  return isTruthy(v);
}

class Matcher {
  constructor(
    private readonly opts: MatchOptions,
    private readonly payload: unknown,
  ) {}

  private renderTemplate(value: unknown, ctx: ExprContext): unknown {
    if (this.opts.render) {
      const r = this.opts.render;
      const walk = (v: unknown): unknown => {
        if (typeof v === 'string') return isTemplate(v) ? r(v) : v;
        if (Array.isArray(v)) return v.map(walk);
        if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
        return v;
      };
      return walk(value);
    }
    return render(value, ctx);
  }

  private resolve(c: { path: ParsedPath }, ctx: ExprContext): unknown {
    const segs = c.path.segments;
    const first = segs[0];
    if (first === 'trigger' || first === 'payload') return resolveSegments(this.payload, segs, 1);
    if (typeof first === 'string' && Object.hasOwn(ctx, first)) return resolveSegments(ctx, segs, 0);
    return resolveSegments(this.payload, segs, 0);
  }

  evaluate(c: Compiled, ctx: ExprContext): CriterionResult {
    if (c.kind === 'invalid') return { key: c.key, type: c.type, matched: false, error: c.error };
    if (c.kind === 'expression') return this.expression(c, ctx);
    const value = this.resolve(c, ctx);
    const result: CriterionResult = { key: c.key, type: c.type, matched: false, found: value !== undefined };
    if (value !== undefined) result.value = value;
    if (c.op.name === 'search') return this.search(c, value, ctx, result);
    let pattern = c.pattern;
    if (c.templated) {
      try {
        pattern = this.renderTemplate(c.pattern, ctx);
      } catch (e) {
        if (!(e instanceof ExprError)) throw e;
        result.error = `pattern: ${e.message}`;
        return result;
      }
    }
    if (c.op.pattern !== 'none') result.pattern = pattern;
    const out: OperatorOutcome = c.op.test(value, pattern, { now: this.opts.now });
    result.matched = out.matched;
    if (out.reason !== undefined && !out.matched) result.reason = out.reason;
    if (out.error !== undefined) result.error = out.error;
    return result;
  }

  private expression(c: { key: string; source: string }, ctx: ExprContext): CriterionResult {
    const result: CriterionResult = { key: c.key, type: 'expression', matched: false };
    try {
      const v = this.opts.render
        ? this.opts.render(c.source)
        : isTemplate(c.source)
          ? render(c.source, ctx)
          : evaluate(c.source, ctx);
      result.value = v;
      result.matched = expressionTruthy(v);
    } catch (e) {
      if (!(e instanceof ExprError)) throw e;
      result.error = e.message;
    }
    return result;
  }

  private search(
    c: Extract<Compiled, { kind: 'op' }>,
    value: unknown,
    ctx: ExprContext,
    result: CriterionResult,
  ): CriterionResult {
    const condition = c.condition!;
    result.condition = condition;
    if (!Array.isArray(value)) {
      result.reason = value === undefined ? 'the field is missing' : 'the value is not a list';
      return result;
    }
    const items: SearchItemResult[] = [];
    const needAll = condition === 'all' || condition === 'all2any';
    const perItemAll = condition === 'any' || condition === 'all';
    let matched = needAll;
    for (let i = 0; i < value.length; i++) {
      const itemCtx: ExprContext = { ...ctx, item: value[i] };
      const details = c.children!.map((ch) => this.evaluate(ch, itemCtx));
      const ok = perItemAll ? details.every((d) => d.matched) : details.some((d) => d.matched);
      if (items.length < MAX_ITEM_DETAILS) items.push({ index: i, matched: ok, details });
      if (needAll && !ok) {
        matched = false;
        break;
      }
      if (!needAll && ok) {
        matched = true;
        break;
      }
    }
    const firstError = items.flatMap((it) => it.details).find((d) => d.error !== undefined);
    if (firstError) result.error = `item criterion ${firstError.key}: ${firstError.error}`;
    result.items = items;
    result.matched = matched && result.error === undefined;
    return result;
  }
}

/**
 * Match criteria against an event. `payloadContext` is the template context: the payload under
 * `trigger` (or `payload`), plus whatever else templates may read (`keys`, `event` …). Every
 * criterion is evaluated (for complete details); the result matches when all of them do. Never
 * throws for bad criteria or data: problems are reported in the details as `error`.
 */
export function matchCriteria(
  criteria: unknown,
  payloadContext: ExprContext,
  opts: MatchOptions,
): MatchResult {
  if (criteria === undefined || criteria === null) return { matched: true, details: [] };
  if (!isObject(criteria))
    return {
      matched: false,
      details: [{ key: '', type: '', matched: false, error: 'criteria must be an object' }],
    };
  const compiled = compileCriteria(criteria);
  if (compiled.length === 0) return { matched: true, details: [] };
  const base = isObject(payloadContext) ? payloadContext : {};
  const payload = Object.hasOwn(base, 'trigger') ? base.trigger : base.payload;
  const ctx: ExprContext = { ...base, trigger: payload, payload };
  const m = new Matcher(opts, payload);
  const details = compiled.map((c) => m.evaluate(c, ctx));
  return { matched: details.every((d) => d.matched), details };
}
