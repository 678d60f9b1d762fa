/**
 * Guarded execution status changes: the only way an execution's status is written (DESIGN §4.1).
 * One `UPDATE … WHERE id = … AND status IN (…)`; rows that lost a race are simply not returned.
 * Pairs the status machine forbids are refused before any SQL runs.
 */
import { type SQL, sql } from 'drizzle-orm';
import { canTransition, EXECUTION_TRANSITIONS, type ExecutionStatus } from '../../domain/status.ts';
import type { Db } from '../database.ts';
import { executions } from '../schema.ts';
import {
  columnName,
  idsMatch,
  mapRows,
  rawRows,
  returningList,
  valueFor,
  wordLiteral,
  wordsIn,
} from './bulk.ts';

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
  | 'completionHandledAt'
  | 'rootId'
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
 * that moved (with their new values; only the columns of `columns` when given). Terminal statuses
 * also set `finished_at` unless given. The statement is written directly rather than with the query
 * builder (building it cost more than running it) and its text depends only on the columns it
 * sets, so it is prepared once.
 */
export async function transitionExecutions(
  db: Db,
  ids: readonly number[],
  from: readonly ExecutionStatus[],
  to: ExecutionStatus,
  patch?: ExecutionPatch,
): Promise<ExecutionRow[]>;
export async function transitionExecutions<K extends keyof ExecutionRow>(
  db: Db,
  ids: readonly number[],
  from: readonly ExecutionStatus[],
  to: ExecutionStatus,
  patch: ExecutionPatch,
  columns: readonly K[],
): Promise<Pick<ExecutionRow, K>[]>;
export async function transitionExecutions(
  db: Db,
  ids: readonly number[],
  from: readonly ExecutionStatus[],
  to: ExecutionStatus,
  patch: ExecutionPatch = {},
  columns?: readonly (keyof ExecutionRow)[],
): Promise<Partial<ExecutionRow>[]> {
  assertTransitions(from, to);
  if (!ids.length || !from.length) return [];
  const terminal = EXECUTION_TRANSITIONS[to].length === 0;
  const sets: SQL[] = [sql.raw(`"status" = ${wordLiteral(to)}`), sql`"updated_at" = now()`];
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined || key === 'status' || key === 'updatedAt') continue;
    if (terminal && key === 'leaseExpiresAt') continue;
    sets.push(sql`${sql.raw(columnName(executions, key))} = ${valueFor(executions, key, value)}`);
  }
  if (terminal && patch.finishedAt === undefined) sets.push(sql`"finished_at" = now()`);
  if (terminal) sets.push(sql`"lease_expires_at" = null`);
  // The statuses are constants of the status table (checked above), written as literals: one
  // statement text (and plan) per transition. One id is `= $1` (see idsMatch).
  const result = await db.execute(
    sql`update "executions" set ${sql.join(sets, sql`, `)} where ${idsMatch('"id"', ids)} and ${wordsIn('"status"', from)} returning ${returningList(executions, columns)}`,
  );
  return mapRows<ExecutionRow>(executions, rawRows(result));
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
