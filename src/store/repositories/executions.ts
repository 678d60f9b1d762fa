/**
 * Guarded execution status changes: the only way an execution's status is written (DESIGN §4.1).
 * One `UPDATE … WHERE id = ANY($ids) AND status = ANY($from)`; rows that lost a race are simply
 * not returned. Pairs the status machine forbids are refused before any SQL runs.
 */
import { and, inArray, type SQL, sql } from 'drizzle-orm';
import { canTransition, EXECUTION_TRANSITIONS, type ExecutionStatus } from '../../domain/status.ts';
import type { Db } from '../database.ts';
import { executions } from '../schema.ts';

export type ExecutionRow = typeof executions.$inferSelect;
type PatchFields = Pick<
  ExecutionRow,
  | 'result'
  | 'error'
  | 'workerId'
  | 'runAfter'
  | 'leaseExpiresAt'
  | 'heartbeatAt'
  | 'scheduledAt'
  | 'startedAt'
  | 'finishedAt'
  | 'policyGroup'
  | 'context'
  | 'timeoutSeconds'
>;
/** Columns written with the status; a value may be an SQL expression (e.g. `now() + …`, database time). */
export type ExecutionPatch = { [K in keyof PatchFields]?: PatchFields[K] | SQL };

export class IllegalTransitionError extends Error {
  constructor(from: string, to: string) {
    super(`execution status may not move from '${from}' to '${to}'`);
  }
}

export function assertTransitions(from: readonly ExecutionStatus[], to: ExecutionStatus): void {
  for (const f of from)
    if (!canTransition(EXECUTION_TRANSITIONS, f, to)) throw new IllegalTransitionError(f, to);
}

/**
 * Moves the executions `ids` that are in one of `from` to `to`, applying `patch`. Returns the rows
 * that moved (with their new values). Terminal statuses also set `finished_at` unless given.
 */
export async function transitionExecutions(
  db: Db,
  ids: readonly number[],
  from: readonly ExecutionStatus[],
  to: ExecutionStatus,
  patch: ExecutionPatch = {},
): Promise<ExecutionRow[]> {
  assertTransitions(from, to);
  if (!ids.length) return [];
  const terminal = EXECUTION_TRANSITIONS[to].length === 0;
  return db
    .update(executions)
    .set({
      ...patch,
      status: to,
      updatedAt: sql`now()`,
      ...(terminal && patch.finishedAt === undefined ? { finishedAt: sql`now()` } : {}),
      ...(terminal ? { leaseExpiresAt: null } : {}),
    })
    .where(and(inArray(executions.id, [...ids]), inArray(executions.status, [...from])))
    .returning();
}

/** One execution; returns the moved row or null when it was not in `from`. */
export async function transitionExecution(
  db: Db,
  id: number,
  from: readonly ExecutionStatus[],
  to: ExecutionStatus,
  patch: ExecutionPatch = {},
): Promise<ExecutionRow | null> {
  const [row] = await transitionExecutions(db, [id], from, to, patch);
  return row ?? null;
}
