/**
 * How the workflow language uses the expression engine: conditions (a `{{ … }}` template or a bare
 * expression), deep rendering of inputs and publish values, truthiness, and finding every template
 * of a definition for validation.
 */
import { check, evaluate, isTemplate, isTruthy, render } from '../expr/index.ts';

export { isTemplate };

/** Jinja truthiness: null, false, 0, '', [] and {} are false. */
export const truthy = isTruthy;

export type ExprContext = Record<string, unknown>;

/** Evaluates a condition written as a template (`{{ succeeded() }}`) or a bare expression. */
export function evalCondition(cond: string, ctx: ExprContext): boolean {
  return truthy(isTemplate(cond) ? render(cond, ctx) : evaluate(cond, ctx));
}

/** Renders a value deeply (strings with templates are rendered; a lone `{{ x }}` keeps its type). */
export function renderValue(value: unknown, ctx: ExprContext): unknown {
  return render(value, ctx);
}

/** Evaluates a `with_items` list: an expression (template or bare), or a literal list rendered deeply. */
export function evalItems(items: string | unknown[], ctx: ExprContext): unknown {
  if (Array.isArray(items)) return render(items, ctx);
  return isTemplate(items) ? render(items, ctx) : evaluate(items, ctx);
}

export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Problems of a condition or bare expression, or undefined when it compiles. */
export function conditionProblem(cond: string): string | undefined {
  const r = isTemplate(cond) ? check(cond) : check(cond, { expression: true });
  return r.ok ? undefined : r.message;
}

/** Problems of a template string, or undefined when it compiles (plain strings always do). */
export function templateProblem(s: string): string | undefined {
  if (!isTemplate(s)) return undefined;
  const r = check(s);
  return r.ok ? undefined : r.message;
}

/** Every string with template syntax inside `value`, with its path below `base`. */
export function collectTemplates(
  value: unknown,
  base: string,
  out: { path: string; template: string }[] = [],
) {
  if (typeof value === 'string') {
    if (isTemplate(value)) out.push({ path: base, template: value });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      collectTemplates(v, `${base}[${i}]`, out);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) collectTemplates(v, base ? `${base}.${k}` : k, out);
  }
  return out;
}

/** The text inside the `{{ … }}` and `{% … %}` of a template (or the whole bare expression). */
export function expressionText(s: string): string {
  if (!isTemplate(s)) return s;
  const parts: string[] = [];
  const re = /\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}/g;
  for (let m = re.exec(s); m; m = re.exec(s)) parts.push(m[1] ?? m[2] ?? '');
  return parts.join(' ');
}
