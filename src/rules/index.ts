/**
 * Rules: criteria operators and matching, and rendering of action parameters. Pure functions.
 */
export {
  type CriterionResult,
  EXPRESSION_KEY,
  type MatchOptions,
  type MatchResult,
  matchCriteria,
  type SearchItemResult,
} from './criteria.ts';
export {
  findOperator,
  OPERATOR_NAMES,
  OPERATORS,
  type OperatorName,
  type OperatorSpec,
  parseTimestamp,
  SEARCH_CONDITIONS,
  type SearchCondition,
  wildcardMatch,
} from './operators.ts';
export { type RuleContextInput, renderParameters, ruleContext } from './params.ts';
export { type ParsedPath, parsePath, resolveSegments } from './paths.ts';
