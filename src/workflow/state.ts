/**
 * The state of one workflow execution, its events and its commands. All plain JSON: a scheduler
 * stores the state, feeds events in, and carries the commands out.
 *
 * Run keys are deterministic, so a persisting scheduler can use them as idempotency keys:
 *   `<task>#<seq>`             the seq-th time the task was entered
 *   `<task>#<seq>.<item>`      one item of a with-items task (item index from 0)
 *   `…@<attempt>`              a retry (attempt 2 and later; the first attempt has no suffix)
 * Timer keys: `delay:<task>#<seq>`, `retry:<slot>@<attempt>`, `timeout:<run key>`.
 */

export type WorkflowStatus =
  | 'running'
  | 'pausing'
  | 'paused'
  | 'failing'
  | 'canceling'
  | 'succeeded'
  | 'failed'
  | 'canceled';

export const TERMINAL_WORKFLOW_STATUSES: readonly WorkflowStatus[] = ['succeeded', 'failed', 'canceled'];

/** What happened to one task entry (a with-items task gathers its items into one entry). */
export type InstanceStatus =
  | 'pending'
  | 'delayed'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timeout'
  | 'canceled';

/**
 * One run slot: the run of a plain task, or one item of a with-items task, across its attempts.
 * `running` = an action run in flight; `asking` = an inquiry waiting for an answer; `waiting` = a
 * retry back-off timer; `queued` = ready to (re)start when the workflow resumes; `paused` = a
 * sub-workflow reported itself paused.
 */
export type RunStatus =
  | 'running'
  | 'asking'
  | 'paused'
  | 'waiting'
  | 'queued'
  | 'succeeded'
  | 'failed'
  | 'timeout'
  | 'canceled';

export const FINAL_RUN_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'timeout', 'canceled'];
export const isFinalRun = (s: RunStatus): boolean =>
  s === 'succeeded' || s === 'failed' || s === 'timeout' || s === 'canceled';
export const isFailure = (s: string): boolean => s === 'failed' || s === 'timeout';

/** How a finished action run ended, as reported by the executor. */
export type CompletionStatus = 'succeeded' | 'failed' | 'timeout' | 'canceled';

export type StatusCounts = Partial<Record<RunStatus, number>>;

export interface ItemsProgress {
  count: number;
  concurrency: number;
  /** Index of the next item never started. */
  next: number;
  /** Items ready to (re)start before `next` (retries held by a pause, `retry` target rounds). */
  queue: number[];
  failFast: boolean;
  /** Set when fail-fast stopped starting new items. */
  stopped: boolean;
}

export interface TaskInstance {
  key: string;
  task: string;
  seq: number;
  status: InstanceStatus;
  /** Names of the tasks whose transitions led here (empty for a start task or a rerun). */
  from: string[];
  enteredAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Run slots by status (plain tasks have one slot, with-items tasks one per started item). */
  counts: StatusCounts;
  items?: ItemsProgress;
  /** Rounds of the `retry` target taken so far. */
  retried: number;
  result?: unknown;
  /** When the instance was replaced by a rerun, the key of the new one. */
  rerunAs?: string;
  /** For a rerun of a with-items task: the instance whose succeeded items are reused. */
  carryFrom?: string;
}

export interface RunSlot {
  instance: string;
  task: string;
  item?: number;
  attempt: number;
  kind: 'action' | 'inquiry';
  status: RunStatus;
  input?: unknown;
  result?: unknown;
  startedAt?: string;
  finishedAt?: string;
  /** A cancel_task was sent for the current run and its acknowledgement is awaited. */
  cancelRequested?: boolean;
  /** Copied from an earlier instance by a rerun (the item was not run again). */
  reused?: boolean;
  /** Who answered (inquiries). */
  respondedBy?: string;
  /** How the previous attempt ended, while a retry waits or is queued. */
  lastStatus?: RunStatus;
}

export interface WorkflowError {
  message: string;
  task?: string;
  runKey?: string;
  path?: string;
  result?: unknown;
}

export interface ExecutionInfo {
  id: string;
  started: string;
  user: string | null;
}

export interface EngineOptions {
  /** Upper bound of task entries per workflow execution (loops stop there and the workflow fails). */
  maxTaskRuns: number;
  /** Actions run as inquiries (the engine emits create_inquiry and waits for an answer). */
  inquiryActions: string[];
}

export interface WorkflowState {
  format: 1;
  status: WorkflowStatus;
  execution: ExecutionInfo;
  options: EngineOptions;
  parameters: Record<string, unknown>;
  vars: Record<string, unknown>;
  /** Task entries counted against `options.maxTaskRuns`. */
  taskRuns: number;
  /** Last entry number per task name. */
  seq: Record<string, number>;
  instances: Record<string, TaskInstance>;
  runs: Record<string, RunSlot>;
  /** Keys of the instances not finished yet. */
  open: Record<string, true>;
  /** Latest instance key per task name (what `task.<name>` shows). */
  latest: Record<string, string>;
  /** Join barriers in progress: task name → names of the inbound tasks that arrived. */
  joins: Record<string, string[]>;
  /** The item list of each with-items instance (written once, when the instance starts). */
  itemLists: Record<string, unknown[]>;
  /** Slot counts by status over the whole workflow. */
  counts: StatusCounts;
  errors: WorkflowError[];
  output: unknown;
  finishedAt?: string;
  /** Instance keys whose failure was not handled (what a rerun without task names picks). */
  unhandled: string[];
}

// ---- events ------------------------------------------------------------------------------------

/** A point in time: an ISO 8601 string or milliseconds since the epoch. */
export type Instant = string | number;

export type WorkflowEvent =
  | {
      type: 'task_completed';
      runKey: string;
      status: CompletionStatus;
      result?: unknown;
      now: Instant;
    }
  | { type: 'task_paused'; runKey: string; now: Instant }
  | { type: 'task_resumed'; runKey: string; now: Instant }
  | {
      type: 'inquiry_responded';
      runKey: string;
      response: unknown;
      /** Who answered; when given, checked against the inquiry's `users`/`roles`. */
      by?: { user: string; roles?: string[] };
      now: Instant;
    }
  | { type: 'inquiry_timeout'; runKey: string; now: Instant }
  | { type: 'timer_fired'; key: string; now: Instant }
  | { type: 'cancel'; now: Instant }
  | { type: 'pause'; now: Instant }
  | { type: 'resume'; now: Instant }
  | {
      type: 'rerun';
      now: Instant;
      /** Tasks to run again (default: the failed and canceled ones that ended the workflow). */
      tasks?: string[];
      /** With-items tasks whose items all run again (default: only the failed items). */
      resetItems?: string[];
    };

// ---- commands ----------------------------------------------------------------------------------

export type WorkflowCommand =
  | {
      type: 'start_task';
      runKey: string;
      task: string;
      action: string;
      input: unknown;
      attempt: number;
      itemIndex?: number;
      timeoutSeconds?: number;
    }
  | {
      type: 'create_inquiry';
      runKey: string;
      task: string;
      action: string;
      input: unknown;
      responseSchema: Record<string, unknown>;
      attempt: number;
      itemIndex?: number;
      expiresAt?: string;
    }
  | { type: 'cancel_task'; runKey: string; reason: 'canceled' | 'timeout' | 'failing' }
  | { type: 'pause_task'; runKey: string }
  | { type: 'resume_task'; runKey: string }
  | { type: 'schedule_timer'; key: string; at: string }
  | { type: 'cancel_timer'; key: string }
  | { type: 'workflow_status'; status: 'running' | 'pausing' | 'paused' | 'failing' | 'canceling' }
  | {
      type: 'complete_workflow';
      status: 'succeeded' | 'failed' | 'canceled';
      output: unknown;
      error: { message: string; errors: WorkflowError[] } | null;
    };

export interface StepResult {
  state: WorkflowState;
  commands: WorkflowCommand[];
  /** `ignored`: a stale or duplicate event (nothing changed); `rejected`: an invalid request. */
  outcome: 'applied' | 'ignored' | 'rejected';
  reason?: string;
  /** What changed, for a scheduler that stores instances and runs as separate rows. */
  changed: { instances: string[]; runs: string[] };
}

// ---- keys --------------------------------------------------------------------------------------

export const instanceKey = (task: string, seq: number): string => `${task}#${seq}`;
export const slotKey = (instance: string, item?: number): string =>
  item === undefined ? instance : `${instance}.${item}`;
export const runKeyOf = (slot: string, attempt: number): string =>
  attempt > 1 ? `${slot}@${attempt}` : slot;

const RUN_KEY = /^([A-Za-z_][A-Za-z0-9_-]*)#(\d+)(?:\.(\d+))?(?:@(\d+))?$/;

export interface ParsedRunKey {
  task: string;
  seq: number;
  item?: number;
  attempt: number;
  slot: string;
  instance: string;
}

export function parseRunKey(key: string): ParsedRunKey | undefined {
  const m = RUN_KEY.exec(key);
  if (!m) return undefined;
  const task = m[1]!;
  const seq = Number(m[2]);
  const instance = instanceKey(task, seq);
  const item = m[3] === undefined ? undefined : Number(m[3]);
  const attempt = m[4] === undefined ? 1 : Number(m[4]);
  const p: ParsedRunKey = { task, seq, attempt, instance, slot: slotKey(instance, item) };
  if (item !== undefined) p.item = item;
  return p;
}
