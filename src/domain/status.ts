/**
 * Status machines as data (DESIGN.md §4.9). Each machine lists, for every status, the statuses it may
 * move to. Every state change in the store is a guarded update checked against these tables by
 * `canTransition`; nothing else decides what is allowed.
 */
export const EXECUTION_TRANSITIONS = {
  /** created; waiting for the scheduler */
  requested: ['scheduled', 'delayed', 'running', 'canceled', 'failed'],
  /** held back by a policy (concurrency) or a retry back-off until `run_after` */
  delayed: ['requested', 'canceled', 'failed'],
  /** claimed for a worker; the worker has not started it yet */
  scheduled: ['running', 'requested', 'canceled', 'failed', 'abandoned'],
  running: ['succeeded', 'failed', 'timeout', 'canceling', 'pausing', 'paused', 'abandoned'],
  /** a workflow finishing its running tasks before it pauses */
  pausing: ['paused', 'running', 'canceling', 'succeeded', 'failed', 'timeout', 'abandoned'],
  paused: ['running', 'canceling', 'canceled'],
  canceling: ['canceled', 'succeeded', 'failed', 'timeout', 'abandoned'],
  succeeded: [],
  failed: [],
  timeout: [],
  canceled: [],
  /** its owner (worker, scheduler) vanished and its lease ran out */
  abandoned: [],
} as const satisfies Record<string, readonly string[]>;

export type ExecutionStatus = keyof typeof EXECUTION_TRANSITIONS;
export const EXECUTION_STATUSES = Object.keys(EXECUTION_TRANSITIONS) as ExecutionStatus[];
export const TERMINAL_EXECUTION_STATUSES: readonly ExecutionStatus[] = EXECUTION_STATUSES.filter(
  (s) => EXECUTION_TRANSITIONS[s].length === 0,
);
/** Statuses in which an execution counts against concurrency limits. */
export const ACTIVE_EXECUTION_STATUSES: readonly ExecutionStatus[] = [
  'scheduled',
  'running',
  'pausing',
  'paused',
  'canceling',
];

export const INQUIRY_TRANSITIONS = {
  pending: ['responded', 'timeout', 'canceled'],
  responded: [],
  timeout: [],
  canceled: [],
} as const satisfies Record<string, readonly string[]>;
export type InquiryStatus = keyof typeof INQUIRY_TRANSITIONS;

export const ENFORCEMENT_TRANSITIONS = {
  created: ['scheduled', 'failed'],
  scheduled: [],
  failed: [],
} as const satisfies Record<string, readonly string[]>;
export type EnforcementStatus = keyof typeof ENFORCEMENT_TRANSITIONS;

export type Machine = Record<string, readonly string[]>;

export const MACHINES = {
  execution: EXECUTION_TRANSITIONS,
  inquiry: INQUIRY_TRANSITIONS,
  enforcement: ENFORCEMENT_TRANSITIONS,
} as const;

export function canTransition(machine: Machine, from: string, to: string): boolean {
  const next = machine[from];
  return next?.includes(to) ?? false;
}

export const isTerminal = (machine: Machine, status: string): boolean => (machine[status]?.length ?? 1) === 0;

export const isExecutionStatus = (s: string): s is ExecutionStatus => Object.hasOwn(EXECUTION_TRANSITIONS, s);
