/**
 * Compile-once, render-many: the template cache and the render loop.
 */
import { compileSource, type RootRender } from './compiler.ts';
import { ExprError, limitError, runtimeError, syntaxError } from './errors.ts';
import { begin, end, LIMITS } from './limits.ts';
import { env, SandboxContext, SandboxFrame, sandboxRuntime } from './runtime.ts';
import { defineKey, isPlainObject, toPlain } from './values.ts';

/** Variables a template sees: plain data, plus any functions the caller chooses to offer. */
export type ExprContext = Record<string, unknown>;

export interface CompiledTemplate {
  readonly source: string;
  /**
   * `literal`: no template syntax — renders to the source unchanged;
   * `expression`: exactly one `{{ … }}` — renders to the expression's value as JSON data;
   * `text`: anything else — renders to a string.
   */
  readonly kind: 'literal' | 'expression' | 'text';
  render(context: ExprContext): unknown;
}

/** Whether a string contains template syntax (`{{` or `{%`). Other strings are plain text. */
export const isTemplate = (s: string): boolean => s.includes('{{') || s.includes('{%');

const EMPTY: ExprContext = Object.freeze(Object.create(null));

class Literal implements CompiledTemplate {
  readonly kind = 'literal';
  constructor(readonly source: string) {}
  render(): string {
    return this.source;
  }
}

class Template implements CompiledTemplate {
  constructor(
    readonly source: string,
    readonly kind: 'expression' | 'text',
    private readonly root: RootRender,
  ) {}

  render(context: ExprContext): unknown {
    const ctx = typeof context === 'object' && context !== null ? context : EMPTY;
    const { state, previous } = begin();
    let error: unknown = null;
    let output = '';
    try {
      const frame = new SandboxFrame();
      frame.topLevel = true;
      this.root(env, new SandboxContext(ctx), frame, sandboxRuntime, (err, res) => {
        if (err) error = err;
        else output = res ?? '';
      });
    } catch (e) {
      error = e;
    } finally {
      end(previous);
    }
    if (error !== null) throw located(error, this.source);
    if (this.kind === 'text') return output;
    try {
      return toPlain(state.typed);
    } catch (e) {
      throw located(e, this.source);
    }
  }
}

function located(error: unknown, source: string): ExprError {
  const e = sandboxRuntime.handleError as (err: unknown) => ExprError;
  return e(error).locate(source);
}

// A two-generation cache: lookups hit the young map (or promote from the old one); when the young
// map is full it becomes the old one. O(1), bounded to twice the size, keeps what is in use.
class Cache {
  private young = new Map<string, CompiledTemplate | ExprError>();
  private old = new Map<string, CompiledTemplate | ExprError>();
  get(key: string, build: () => CompiledTemplate): CompiledTemplate | ExprError {
    let hit = this.young.get(key);
    if (hit !== undefined) return hit;
    hit = this.old.get(key);
    if (hit === undefined) {
      try {
        hit = build();
      } catch (e) {
        if (!(e instanceof ExprError)) throw e;
        hit = e;
      }
    }
    if (this.young.size >= LIMITS.cacheSize) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, hit);
    return hit;
  }
  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }
}

const templates = new Cache();
const expressions = new Cache();

function cached(cache: Cache, key: string, build: () => CompiledTemplate): CompiledTemplate {
  const hit = cache.get(key, build);
  if (hit instanceof ExprError)
    throw new ExprError(hit.reason, hit.template, { kind: hit.kind, line: hit.line, column: hit.column });
  return hit;
}

/** Drop every cached template (tests and benchmarks). */
export function clearCache(): void {
  templates.clear();
  expressions.clear();
}

function checkSource(template: unknown, what: string): asserts template is string {
  if (typeof template !== 'string') throw runtimeError(`${what} must be a string, got ${typeof template}`);
  if (template.length > LIMITS.templateLength)
    throw limitError(
      `${what} of ${template.length.toLocaleString('en-US')} characters exceeds the limit of ` +
        `${LIMITS.templateLength.toLocaleString('en-US')}`,
    ).locate(template.slice(0, 100));
}

/** Compile a template (cached by source). Strings without `{{`/`{%` compile to themselves. */
export function compile(template: string): CompiledTemplate {
  checkSource(template, 'a template');
  if (!isTemplate(template)) return new Literal(template);
  return cached(templates, template, () => {
    try {
      const c = compileSource(template, 'template');
      return new Template(template, c.kind, c.root);
    } catch (e) {
      throw e instanceof ExprError ? e.locate(template) : e;
    }
  });
}

/** Compile a bare expression (`result.count > 3`) or a single-expression template (`{{ … }}`). */
export function compileExpression(expression: string): CompiledTemplate {
  checkSource(expression, 'an expression');
  if (isTemplate(expression)) {
    const t = compile(expression);
    if (t.kind !== 'expression')
      throw syntaxError('expected a single expression {{ … }}, not a text template').locate(expression);
    return t;
  }
  if (expression.trim() === '') throw syntaxError('the expression is empty').locate(expression);
  return cached(expressions, expression, () => {
    try {
      const c = compileSource(`{{ ${expression} }}`, 'expression');
      return new Template(expression, 'expression', c.root);
    } catch (e) {
      if (!(e instanceof ExprError)) throw e;
      // Positions refer to the wrapped source; shift the column back on the first line.
      const column = e.line === 1 && e.column !== undefined ? Math.max(e.column - 3, 1) : e.column;
      throw new ExprError(e.reason, expression, { kind: e.kind, line: e.line, column });
    }
  });
}

/**
 * Render a value: every string inside (objects and arrays are walked; keys are left alone) is
 * rendered as a template. Returns a new value and never mutates the input. A string that is
 * exactly one `{{ … }}` becomes the expression's value with its JSON type.
 */
export function render(value: unknown, context: ExprContext): unknown {
  return renderDeep(value, context, 0);
}

function renderDeep(v: unknown, ctx: ExprContext, depth: number): unknown {
  if (typeof v === 'string') return isTemplate(v) ? compile(v).render(ctx) : v;
  if (typeof v !== 'object' || v === null) return v;
  if (depth > LIMITS.valueDepth)
    throw limitError(`document nested more than ${LIMITS.valueDepth} levels deep`);
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      try {
        out[i] = renderDeep(v[i], ctx, depth + 1);
      } catch (e) {
        throw e instanceof ExprError ? e.at(`[${i}]`) : e;
      }
    }
    return out;
  }
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    try {
      defineKey(out, k, renderDeep(v[k], ctx, depth + 1));
    } catch (e) {
      throw e instanceof ExprError ? e.at(k) : e;
    }
  }
  return out;
}

/** Evaluate a bare expression (`result.count > 3`) to a typed value. */
export function evaluate(expression: string, context: ExprContext): unknown {
  return compileExpression(expression).render(context);
}

export type CheckResult =
  | { ok: true }
  | { ok: false; message: string; kind: ExprError['kind']; line?: number; column?: number };

/**
 * Check a template's syntax (and its filters, tests and names) without evaluating it — for
 * validation when a rule, action or workflow is saved. `expression: true` checks a bare expression.
 */
export function check(template: string, options: { expression?: boolean } = {}): CheckResult {
  try {
    if (options.expression) compileExpression(template);
    else compile(template);
    return { ok: true };
  } catch (e) {
    if (!(e instanceof ExprError)) throw e;
    const out: CheckResult = { ok: false, message: e.message, kind: e.kind };
    if (e.line !== undefined) out.line = e.line;
    if (e.column !== undefined) out.column = e.column;
    return out;
  }
}
