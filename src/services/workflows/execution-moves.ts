/**
 * Moving a workflow (or inquiry) execution to the status its engine state calls for, along the
 * allowed transitions of `src/domain/status.ts` (a paused workflow that completes passes through
 * `running`; a running one that is canceled passes through `canceling`). Each move is a guarded
 * transition: one that lost a race changes nothing.
 */
import { EXECUTION_TRANSITIONS, type ExecutionStatus, isTerminal } from '../../domain/status.ts';
import type { Db } from '../../store/database.ts';
import {
  type ExecutionPatch,
  type ExecutionRow,
  transitionExecution,
} from '../../store/repositories/executions.ts';

/** Statuses a move may pass through on its way (never a terminal one). */
const VIA: readonly ExecutionStatus[] = ['running', 'canceling'];

/** The shortest path of allowed transitions from `from` to `to` (excluding `from`); null when none. */
export function pathTo(from: ExecutionStatus, to: ExecutionStatus): ExecutionStatus[] | null {
  if (from === to) return [];
  const direct = EXECUTION_TRANSITIONS[from] as readonly ExecutionStatus[];
  if (direct.includes(to)) return [to];
  for (const via of VIA) {
    if (direct.includes(via) && (EXECUTION_TRANSITIONS[via] as readonly ExecutionStatus[]).includes(to))
      return [via, to];
  }
  return null;
}

/**
 * Moves `row` to `to` (applying `patch` on the last step). Returns the moved row, or null when it
 * is already there, already finished, cannot get there, or lost a race.
 */
export async function moveExecution(
  tx: Db,
  row: ExecutionRow,
  to: ExecutionStatus,
  patch: ExecutionPatch = {},
): Promise<ExecutionRow | null> {
  const from = row.status as ExecutionStatus;
  if (from === to || isTerminal(EXECUTION_TRANSITIONS, from)) return null;
  const path = pathTo(from, to);
  if (!path) return null;
  let cur: ExecutionRow = row;
  for (let i = 0; i < path.length; i++) {
    const next = path[i]!;
    const moved = await transitionExecution(
      tx,
      cur.id,
      [cur.status as ExecutionStatus],
      next,
      i === path.length - 1 ? patch : {},
    );
    if (!moved) return null;
    cur = moved;
  }
  return cur;
}
