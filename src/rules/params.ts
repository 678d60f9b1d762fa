/**
 * Rule action parameters: templates over the event payload, keys and rule context, rendered
 * deeply. A value that is exactly one `{{ … }}` keeps its JSON type (`"{{ trigger.count }}"` → 3).
 */
import { type ExprContext, ExprError, render } from '../expr/index.ts';

export interface RuleContextInput {
  /** The event payload, visible as `trigger` and `payload`. */
  payload: unknown;
  /** The event itself (id, trigger ref, time …), visible as `event`. */
  event?: unknown;
  /** The rule (ref, name, pack …), visible as `rule`. */
  rule?: unknown;
  /** Datastore keys the templates may read, visible as `keys`. */
  keys?: unknown;
  /** Anything else to expose, by name (cannot override the names above). */
  extra?: Record<string, unknown>;
}

/** The template context of a rule: `trigger`/`payload`, `event`, `rule`, `keys`. */
export function ruleContext(input: RuleContextInput): ExprContext {
  const ctx: ExprContext = { ...(input.extra ?? {}) };
  ctx.trigger = input.payload;
  ctx.payload = input.payload;
  ctx.event = input.event ?? null;
  ctx.rule = input.rule ?? null;
  ctx.keys = input.keys ?? {};
  return ctx;
}

/**
 * Render a rule's action parameters. Returns a new object; the input is not modified. Throws an
 * ExprError naming the parameter (`cmd: unknown filter 'x' …`) when a template fails.
 */
export function renderParameters(actionParams: unknown, context: ExprContext): Record<string, unknown> {
  if (actionParams === undefined || actionParams === null) return {};
  if (typeof actionParams !== 'object' || Array.isArray(actionParams))
    throw new ExprError('action parameters must be an object', '', { kind: 'runtime' });
  return render(actionParams, context) as Record<string, unknown>;
}
