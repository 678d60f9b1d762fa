/**
 * The expression engine: Jinja2 syntax (nunjucks underneath), sandboxed, bounded, typed.
 *
 *   compile('Hello {{ name }}').render({ name: 'x' })   → 'Hello x'
 *   compile('{{ result.count > 3 }}').render(ctx)       → true (a template that is one expression keeps its type)
 *   render({ cmd: 'echo {{ x }}', n: '{{ n }}' }, ctx)  → deep: every string rendered, keys unchanged
 *   evaluate('result.count * 2', ctx)                  → a bare expression, typed
 *   check('{{ x | nope }}')                            → { ok: false, message: "unknown filter 'nope' …" }
 *
 * No I/O, no clock, no randomness. See docs/expressions.md for the language and its limits.
 */

export {
  type CheckResult,
  type CompiledTemplate,
  check,
  clearCache,
  compile,
  compileExpression,
  type ExprContext,
  evaluate,
  isTemplate,
  render,
} from './engine.ts';
export { ExprError, type ExprErrorKind } from './errors.ts';
export { FILTERS, TESTS } from './filters.ts';
export { LIMITS } from './limits.ts';
export { compileRegex, LINEAR_REGEX_ENGINE, regexMatchStart, regexProblem, regexSearch } from './regex.ts';
export { GLOBALS } from './runtime.ts';
export {
  isTruthy,
  type JsonValue,
  looseEquals,
  numeric,
  toJson,
  toPlain,
  toText,
  typeName,
} from './values.ts';
