/**
 * The rule-criteria operators (StackStorm's set, aliases included) and the shape of a criteria
 * document. The matching itself lives with the rules engine; this file is what the API and the pack
 * loader validate against. No I/O.
 *
 * A criteria document maps dotted paths to criteria, all of which must hold (AND):
 *   { "trigger.severity": { "type": "equals", "pattern": "critical" },
 *     "trigger.tags":     { "type": "search", "condition": "any",
 *                           "pattern": { "item.name": { "type": "startswith", "pattern": "prod" } } },
 *     "expression": "{{ trigger.count > 3 or trigger.force }}" }
 */
import type { Problem } from '../domain/errors.ts';
import { regexProblem } from '../expr/index.ts';
import { EXPRESSION_KEY } from './criteria.ts';
import { OPERATOR_NAMES, SEARCH_CONDITIONS } from './operators.ts';

export type { SearchCondition } from './operators.ts';
export { EXPRESSION_KEY, SEARCH_CONDITIONS };

/** Every operator name, aliases included — the operator table in ./operators.ts is the source. */
export const CRITERIA_OPERATORS = OPERATOR_NAMES;
export type CriteriaOperator = (typeof CRITERIA_OPERATORS)[number];
export const isCriteriaOperator = (s: unknown): s is CriteriaOperator =>
  typeof s === 'string' && (CRITERIA_OPERATORS as readonly string[]).includes(s);

/** Operators that take no `pattern`. */
export const UNARY_OPERATORS: readonly CriteriaOperator[] = ['exists', 'nexists'];

const STRING_PATTERN: readonly CriteriaOperator[] = [
  'iequals',
  'ieq',
  'matchwildcard',
  'regex',
  'iregex',
  'matchregex',
  'icontains',
  'incontains',
  'startswith',
  'istartswith',
  'endswith',
  'iendswith',
];
const LIST_OR_STRING_PATTERN: readonly CriteriaOperator[] = ['inside', 'in', 'ninside', 'nin'];
const NUMBER_OR_STRING_PATTERN: readonly CriteriaOperator[] = [
  'lessthan',
  'lt',
  'greaterthan',
  'gt',
  'timediff_lt',
  'td_lt',
  'timediff_gt',
  'td_gt',
];

const PATH_RE = /^[^.\s{}]+(\.[^.\s{}]+)*$/;
const EXPRESSION_RE = /^\s*\{\{[\s\S]*\}\}\s*$/;
const MAX_KEYS = 100;
const MAX_DEPTH = 5;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isTemplate = (v: unknown): boolean => typeof v === 'string' && v.includes('{{');

/**
 * Everything wrong with a criteria document (empty when it is well-formed). Paths in the problems
 * are JSON pointers into the document.
 */
export function criteriaProblems(criteria: unknown): Problem[] {
  const out: Problem[] = [];
  if (!isObject(criteria)) return [{ path: '/', message: 'criteria must be an object' }];
  const keys = Object.keys(criteria);
  if (keys.length > MAX_KEYS) out.push({ path: '/', message: `at most ${MAX_KEYS} criteria are allowed` });
  for (const key of keys) {
    const value = criteria[key];
    const at = `/${pointerEscape(key)}`;
    if (key === EXPRESSION_KEY) {
      if (typeof value !== 'string' || !EXPRESSION_RE.test(value))
        out.push({ path: at, message: 'expression must be a "{{ … }}" template string' });
      continue;
    }
    checkCriterion(key, value, at, 0, out);
  }
  return out;
}

function checkCriterion(key: string, value: unknown, at: string, depth: number, out: Problem[]): void {
  if (!PATH_RE.test(key) || key.length > 500)
    out.push({
      path: at,
      message: `'${key}' is not a dotted path (e.g. "trigger.severity" or "payload.items.0.name")`,
    });
  if (!isObject(value)) {
    out.push({ path: at, message: 'a criterion must be an object {type, pattern}' });
    return;
  }
  const op = value.type;
  if (!isCriteriaOperator(op)) {
    out.push({
      path: `${at}/type`,
      message:
        op === undefined
          ? 'type is required (the operator)'
          : `unknown operator '${String(op)}'; expected one of ${CRITERIA_OPERATORS.join(', ')}`,
    });
    return;
  }
  for (const k of Object.keys(value)) {
    if (k === 'type' || k === 'pattern' || (k === 'condition' && op === 'search')) continue;
    out.push({ path: `${at}/${pointerEscape(k)}`, message: `unknown field '${k}' in a '${op}' criterion` });
  }
  const hasPattern = Object.hasOwn(value, 'pattern');
  if (UNARY_OPERATORS.includes(op)) {
    if (hasPattern) out.push({ path: `${at}/pattern`, message: `'${op}' takes no pattern` });
    return;
  }
  if (!hasPattern) {
    out.push({ path: `${at}/pattern`, message: `pattern is required for '${op}'` });
    return;
  }
  const pattern = value.pattern;
  const pAt = `${at}/pattern`;
  if (op === 'search') {
    const cond = value.condition;
    if (!(SEARCH_CONDITIONS as readonly unknown[]).includes(cond))
      out.push({
        path: `${at}/condition`,
        message: `search needs condition ${SEARCH_CONDITIONS.join('|')}`,
      });
    if (!isObject(pattern) || !Object.keys(pattern).length) {
      out.push({
        path: pAt,
        message: 'a search pattern maps item paths to criteria, e.g. {"item.name": {…}}',
      });
      return;
    }
    if (depth >= MAX_DEPTH) {
      out.push({ path: pAt, message: `search criteria nest at most ${MAX_DEPTH} deep` });
      return;
    }
    for (const [k, v] of Object.entries(pattern))
      checkCriterion(k, v, `${pAt}/${pointerEscape(k)}`, depth + 1, out);
    return;
  }
  if (STRING_PATTERN.includes(op) && typeof pattern !== 'string') {
    out.push({ path: pAt, message: `'${op}' needs a string pattern` });
    return;
  }
  if (LIST_OR_STRING_PATTERN.includes(op) && !Array.isArray(pattern) && typeof pattern !== 'string')
    out.push({ path: pAt, message: `'${op}' needs a list (or a string) pattern` });
  if (NUMBER_OR_STRING_PATTERN.includes(op) && typeof pattern !== 'number' && typeof pattern !== 'string')
    out.push({ path: pAt, message: `'${op}' needs a number (or a string) pattern` });
  if (
    (op === 'timediff_lt' || op === 'timediff_gt' || op === 'td_lt' || op === 'td_gt') &&
    typeof pattern === 'number' &&
    pattern < 0
  )
    out.push({ path: pAt, message: `'${op}' needs a number of seconds ≥ 0` });
  if (
    (op === 'regex' || op === 'iregex' || op === 'matchregex') &&
    typeof pattern === 'string' &&
    !isTemplate(pattern)
  ) {
    // Python syntax, checked exactly as the matcher will compile it.
    const problem = regexProblem(pattern, { ignoreCase: op === 'iregex', dotAll: op === 'matchregex' });
    if (problem) out.push({ path: pAt, message: problem });
  }
}

const pointerEscape = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');
