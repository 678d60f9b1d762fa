/**
 * What the runtime services (scheduler, completion handler, sweeper, workers) share: their
 * dependencies, their deadlines, and the two ways they tell others about a state change — outbox
 * rows written in the transaction of the change, and best-effort status broadcasts after it.
 */

import { sql } from 'drizzle-orm';
import type { Bus, BusLogger } from '../../bus/bus.ts';
import { silentLogger } from '../../bus/bus.ts';
import { writeOutboxMessages } from '../../bus/outbox.ts';
import type { Db, Store } from '../../store/database.ts';
import type { ExecutionRow } from '../../store/repositories/executions.ts';
import { executions } from '../../store/schema.ts';
import { type StatusNotification, TOPICS } from '../runtime/messages.ts';
import { parseConcurrencyPolicy } from './policies.ts';
import { secondsFromNow } from './sql.ts';

/** The subset of a pino logger the runtime uses. */
export type RuntimeLogger = BusLogger;
export { silentLogger };

export interface RuntimeDeps {
  store: Store;
  bus: Bus;
  log?: RuntimeLogger;
  /** Called after a commit that wrote outbox rows, so the relay publishes them at once. */
  kickOutbox?: () => void;
}

/**
 * The deadlines of docs/architecture.md, in seconds. Every service takes overrides (tests shorten
 * them); the defaults are the documented values.
 */
export const DEADLINES = {
  /** A `requested` execution untouched for this long is re-published. */
  requestedStale: 10,
  /** A `scheduled` execution must be claimed by a worker within this lease. */
  scheduleLease: 30,
  /** Workers renew the leases of their executions this often… */
  heartbeatInterval: 5,
  /** …for this long; an execution whose lease passed is `abandoned`. */
  runLease: 20,
  /** An execution delayed by a concurrency policy is looked at again after this long, even if no slot freed. */
  policyRecheck: 60,
  /** Beyond its timeout, a running execution is moved to `timeout` by the sweeper after this grace. */
  timeoutGrace: 30,
  /** A terminal execution whose follow-up was not done after this long gets its completion re-published. */
  completionStale: 30,
} as const;

export type Deadlines = { -readonly [K in keyof typeof DEADLINES]: number };

/** Timeout of an execution when neither the execution nor its action names one. */
export const DEFAULT_TIMEOUT_SECONDS = 600;

/** Runners carried out by the scheduler itself rather than by a worker. */
export const SCHEDULER_RUNNERS: readonly string[] = ['workflow', 'inquiry'];

export interface OutboxMessage {
  topic: string;
  payload: { [key: string]: string | number | null };
}

/** Writes several outbox rows in one statement, inside the caller's transaction. */
export function writeOutboxMany(tx: Db, messages: readonly OutboxMessage[]): Promise<void> {
  return writeOutboxMessages(tx, messages);
}

/**
 * Whether executions of `action` need nothing of the scheduler but a lease — enabled, run by a
 * worker, no concurrency policy — so that whoever creates them may schedule them in the same
 * transaction (see `directSchedulePatch`).
 */
export function schedulesDirectly(
  action: { enabled: boolean; runner: string; concurrencyPolicy: unknown } | null | undefined,
): boolean {
  return (
    !!action &&
    action.enabled &&
    !SCHEDULER_RUNNERS.includes(action.runner) &&
    parseConcurrencyPolicy(action.concurrencyPolicy) === null
  );
}

/** What `requested → scheduled` writes: the schedule lease, and the timeout the run will have. */
export function schedulePatch(
  action: { timeoutSeconds: number | null },
  group: string | null,
  leaseSeconds: number = DEADLINES.scheduleLease,
  defaultTimeoutSeconds: number = DEFAULT_TIMEOUT_SECONDS,
) {
  return {
    scheduledAt: sql`now()`,
    leaseExpiresAt: secondsFromNow(leaseSeconds),
    policyGroup: group,
    timeoutSeconds: sql`coalesce(${executions.timeoutSeconds}, ${action.timeoutSeconds ?? defaultTimeoutSeconds}::integer)`,
  };
}

export const requestedMessage = (id: number): OutboxMessage => ({
  topic: TOPICS.executionRequested,
  payload: { execution_id: id },
});
export const scheduledMessage = (row: Pick<ExecutionRow, 'id' | 'runner'>): OutboxMessage => ({
  topic: TOPICS.executionScheduled,
  payload: { execution_id: row.id, runner: row.runner },
});
export const completedMessage = (row: Pick<ExecutionRow, 'id' | 'status'>): OutboxMessage => ({
  topic: TOPICS.executionCompleted,
  payload: { execution_id: row.id, status: row.status },
});

/** The columns a status notification is made of. */
export const NOTIFIED_COLUMNS = ['id', 'status', 'actionRef', 'parentId', 'updatedAt'] as const;
export type NotifiedRow = Pick<ExecutionRow, (typeof NOTIFIED_COLUMNS)[number]>;

export function statusNotification(row: NotifiedRow): StatusNotification {
  return {
    execution_id: row.id,
    status: row.status,
    action_ref: row.actionRef,
    parent_id: row.parentId,
    at: (row.updatedAt instanceof Date ? row.updatedAt : new Date()).toISOString(),
  };
}

/**
 * Broadcasts status changes for live views. Best effort by design (clients catch up from the
 * database), so it never throws and never delays the caller.
 */
export function notifyStatuses(
  bus: Bus,
  rows: readonly NotifiedRow[],
  log: RuntimeLogger = silentLogger,
): void {
  for (const row of rows) {
    const n = statusNotification(row);
    bus
      .publish(TOPICS.notifyStatus, { ...n })
      .catch((e: unknown) =>
        log.debug({ err: (e as Error).message, execution_id: row.id }, 'status notification lost'),
      );
  }
}

/** `now() + <seconds>` in database time (every deadline is compared with the database clock). */
export { secondsFromNow };

/** The execution id in a runtime message, or an error for a malformed payload. */
export function executionIdOf(payload: unknown): number {
  const id = (payload as { execution_id?: unknown } | null)?.execution_id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
    throw new Error(`malformed message: execution_id must be a positive integer, got ${JSON.stringify(id)}`);
  }
  return id;
}
