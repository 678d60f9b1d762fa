/**
 * Canceling an execution (for the API and the CLI):
 *  - not started yet (`requested`, `delayed`, `scheduled`): → `canceled` at once (+ `execution.completed`);
 *    a worker that later receives the scheduled message finds nothing to claim;
 *  - `running` or `pausing`: → `canceling`, and `execution.cancel` is broadcast: the worker running it
 *    kills its process group and records `canceled` (a lost broadcast is caught up by the worker's
 *    next heartbeat, which sees `canceling`);
 *  - `paused` (a workflow holding no process): → `canceled` at once;
 *  - `canceling`: nothing changes; the cancel request is broadcast again;
 *  - terminal: 409.
 */
import { eq } from 'drizzle-orm';
import type { Bus } from '../../bus/bus.ts';
import { conflict, notFound } from '../../domain/errors.ts';
import { EXECUTION_TRANSITIONS, type ExecutionStatus, isTerminal } from '../../domain/status.ts';
import type { Store } from '../../store/database.ts';
import { type ExecutionRow, transitionExecution } from '../../store/repositories/executions.ts';
import { executions } from '../../store/schema.ts';
import { TOPICS } from '../runtime/messages.ts';
import {
  completedMessage,
  notifyStatuses,
  type RuntimeLogger,
  silentLogger,
  writeOutboxMany,
} from './runtime.ts';

export interface CancelOptions {
  /** Called after a commit that wrote outbox rows. */
  kickOutbox?: () => void;
  log?: RuntimeLogger;
}

export interface CancelResult {
  /** The execution after the request. */
  execution: ExecutionRow;
  /**
   * `canceled`: it is canceled now. `canceling`: its worker was asked to stop it; it becomes
   * `canceled` (or, if it finishes first, whatever it finished with).
   */
  outcome: 'canceled' | 'canceling';
}

const NOT_STARTED: readonly ExecutionStatus[] = ['requested', 'delayed', 'scheduled', 'paused'];
const STARTED: readonly ExecutionStatus[] = ['running', 'pausing'];

/**
 * Cancels execution `id` on behalf of `by` (a login). Throws 404 when it does not exist and 409 when
 * it already finished. Safe to call concurrently and repeatedly.
 */
export async function cancelExecution(
  store: Store,
  bus: Bus,
  id: number,
  by: string,
  opts: CancelOptions = {},
): Promise<CancelResult> {
  const log = opts.log ?? silentLogger;
  // A transition can lose a race with the scheduler or a worker; look again and retry.
  for (let attempt = 0; attempt < 5; attempt++) {
    const [cur] = await store.db.select().from(executions).where(eq(executions.id, id));
    if (!cur) throw notFound('execution', id);
    const status = cur.status as ExecutionStatus;
    if (isTerminal(EXECUTION_TRANSITIONS, status)) {
      throw conflict(`execution ${id} already finished (${status}); it cannot be canceled`, {
        id,
        status,
      });
    }
    if (status === 'canceling') {
      await broadcastCancel(bus, id, log);
      return { execution: cur, outcome: 'canceling' };
    }
    if (NOT_STARTED.includes(status)) {
      const row = await store.transaction(async (tx) => {
        const moved = await transitionExecution(tx, id, [status], 'canceled', {
          error: { type: 'canceled', message: `canceled by ${by}`, canceled_by: by },
        });
        if (moved) await writeOutboxMany(tx, [completedMessage(moved)]);
        return moved;
      });
      if (row) {
        opts.kickOutbox?.();
        notifyStatuses(bus, [row], log);
        return { execution: row, outcome: 'canceled' };
      }
      continue;
    }
    if (STARTED.includes(status)) {
      const row = await transitionExecution(store.db, id, [status], 'canceling', {
        context: { ...cur.context, canceled_by: by },
      });
      if (row) {
        notifyStatuses(bus, [row], log);
        await broadcastCancel(bus, id, log);
        return { execution: row, outcome: 'canceling' };
      }
      continue;
    }
    throw conflict(`execution ${id} is ${status}; it cannot be canceled`, { id, status });
  }
  throw conflict(`execution ${id} is changing status too fast to be canceled; try again`, { id });
}

async function broadcastCancel(bus: Bus, id: number, log: RuntimeLogger): Promise<void> {
  try {
    await bus.publish(TOPICS.executionCancel, { execution_id: id });
  } catch (e) {
    // The worker's next heartbeat sees `canceling` and stops the execution anyway.
    log.warn(
      { execution_id: id, err: (e as Error).message },
      'cancel broadcast failed; the heartbeat will carry it',
    );
  }
}
