/**
 * Workflows at run time: the host that runs them next to the scheduler, the operations the API
 * offers (pause, resume, cancel, rerun) and inquiries (open, respond, time out). See host.ts.
 */
export {
  type AdvanceEnv,
  type AdvanceResult,
  advance,
  childOutcome,
  Effects,
  type EventOutcome,
  runKeyOfChild,
} from './advance.ts';
export { WORKFLOW_HOST_LEASE, WorkflowHost, type WorkflowHostOptions } from './host.ts';
export {
  type InquiryRow,
  openInquiry,
  type Responder,
  respondInquiry,
  settleCanceledInquiries,
  timeOutInquiries,
} from './inquiries.ts';
export {
  advanceWorkflow,
  cancelWorkflow,
  type OperationResult,
  pauseWorkflow,
  type RerunOptions,
  rerunWorkflow,
  resumeWorkflow,
  type StartOutcome,
  startWorkflow,
  type WorkflowDeps,
} from './operations.ts';
export { type DefinitionSnapshot, isSealedState, type OpenState, openState } from './run-store.ts';
