/** The rules engine: events in, rules matched, executions requested. */
export { type DryRunResult, dryRun } from './dry-run.ts';
export { evaluateRule, type RuleOutcome } from './evaluate.ts';
export { type DefinitionsChanged, type IndexedRule, RuleIndex } from './rule-index.ts';
export {
  type PassResult,
  RulesEngine,
  type RulesEngineDeps,
  type RulesEngineStats,
  startRulesEngine,
} from './rules-engine.ts';
