/**
 * The workflow library: the language (parse, validate), the graph for UIs, the pure engine and
 * rehearsal. No I/O anywhere in it; the scheduler, the API and the CLI build on it.
 * See docs/workflows.md.
 */
export {
  DEFAULT_RETRY_TARGET_LIMIT,
  MAX_RETRY_COUNT,
  type ParseResult,
  parseWorkflow,
  parseWorkflowOrThrow,
  parseWorkflowResource,
  type RetryPolicy,
  SPECIAL_TARGETS,
  type TaskDefinition,
  type Transition,
  type WithItems,
  type WorkflowDefinition,
  WorkflowDefinitionError,
  type WorkflowProblem,
} from './definition.ts';
export {
  DEFAULT_INQUIRY_ACTIONS,
  DEFAULT_MAX_TASK_RUNS,
  type Environment,
  retryDelay,
  type StartContext,
  start,
  step,
} from './engine.ts';
export {
  buildGraph,
  type GraphEdge,
  type GraphNode,
  inboundOf,
  type LiveGraph,
  liveGraph,
  startTasks,
  type WorkflowGraph,
} from './graph.ts';
export {
  type RehearsalExpectation,
  type RehearsalOperation,
  type RehearsalOptions,
  type RehearsalReport,
  type RehearsedRun,
  rehearse,
} from './rehearse.ts';
export {
  parseRehearsalSpec,
  type RehearsalCase,
  type RehearsalSpec,
  runRehearsalSpec,
  type SpecRunOptions,
  type SpecRunResult,
} from './rehearse-spec.ts';
export * from './state.ts';
export {
  type ActionLookup,
  type ValidateOptions,
  type ValidationResult,
  validateDefinition,
  validateWorkflow,
  validateWorkflowResource,
} from './validate.ts';
