/**
 * The topics of the platform and their payloads. Payloads carry ids, never the only copy of a state:
 * a consumer reads the database and acts only if the state still calls for it.
 */
export const TOPICS = {
  /** An event was stored; the rules engine matches it. Outbox. */
  eventCreated: 'event.created',
  /** An execution is in `requested`; the scheduler applies policies and routes it. Outbox. */
  executionRequested: 'execution.requested',
  /** An execution is in `scheduled`; one worker claims and runs it. Outbox. */
  executionScheduled: 'execution.scheduled',
  /** An execution reached a terminal status; the scheduler follows up. Outbox. */
  executionCompleted: 'execution.completed',
  /** Broadcast: the worker running this execution should stop it. */
  executionCancel: 'execution.cancel',
  /** Broadcast: an execution's status changed (live updates). */
  notifyStatus: 'notify.execution.status',
  /** Broadcast: an execution produced output (live updates). */
  notifyOutput: 'notify.execution.output',
  /** Broadcast: rules, triggers or actions changed; caches should reload. */
  definitionsChanged: 'notify.definitions.changed',
} as const;

export const QUEUES = {
  rulesEngine: 'attune.rules-engine',
  scheduler: 'attune.scheduler',
  completions: 'attune.completions',
  workers: 'attune.workers',
} as const;

export interface EventCreated {
  event_id: number;
}
export interface ExecutionRequested {
  execution_id: number;
}
export interface ExecutionScheduled {
  execution_id: number;
  runner: string;
}
export interface ExecutionCompleted {
  execution_id: number;
  status: string;
}
export interface ExecutionCancel {
  execution_id: number;
}
export interface StatusNotification {
  execution_id: number;
  status: string;
  action_ref: string;
  parent_id: number | null;
  at: string;
}
export interface OutputNotification {
  execution_id: number;
  /** Row id in execution_output: clients resume after the last one they saw. */
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
}
