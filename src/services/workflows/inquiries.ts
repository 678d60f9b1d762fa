/**
 * Inquiries at run time: questions to people, each carried by a `core.ask` execution (runner
 * `inquiry`) that stays `running` until it is answered, times out or is canceled.
 *  - `openInquiry`: a requested inquiry execution (run on its own, or a task of a workflow whose
 *    action is an inquiry action) gets its `inquiries` row and moves to `running`. (A workflow's
 *    `core.ask` task creates both at once, in the workflow's transaction.)
 *  - `respondInquiry`: checks who answers and what, then — one transaction — `pending → responded`
 *    and the execution `succeeded` with result `{response}`, with `execution.completed`: a waiting
 *    workflow advances from there (`result().response`).
 *  - `timeOutInquiries`: pending past `timeout_at` → `timeout`, and so is the execution (the
 *    workflow's `timed_out()` branch).
 *  - `settleCanceledInquiries`: an inquiry execution canceled through the API (`canceling`, no worker
 *    holds it) → the inquiry is withdrawn and the execution `canceled`.
 */
import { and, asc, eq, inArray, lte, sql } from 'drizzle-orm';
import { AppError, conflict, notFound } from '../../domain/errors.ts';
import { validateAgainst } from '../../domain/json-schema.ts';
import type { Db } from '../../store/database.ts';
import { type ExecutionRow, transitionExecution } from '../../store/repositories/executions.ts';
import { executions, inquiries } from '../../store/schema.ts';
import { describeIssues } from '../executions/request-execution.ts';
import { completedMessage, writeOutboxMany } from '../scheduler/runtime.ts';
import type { Effects } from './advance.ts';
import { moveExecution } from './execution-moves.ts';
import { inquiryFields } from './inquiry-fields.ts';
import { envOf, runInTx, type WorkflowDeps } from './operations.ts';

export type InquiryRow = typeof inquiries.$inferSelect;

/** Who answers: a login and its roles. */
export interface Responder {
  login: string;
  roles: readonly string[];
}

async function finish(tx: Db, fx: Effects, row: ExecutionRow | null): Promise<void> {
  if (!row) return;
  fx.note(row);
  await writeOutboxMany(tx, [completedMessage(row)]);
  fx.outbox = true;
}

/** Opens the inquiry of requested inquiry execution `id`. Idempotent (`false`: nothing to do). */
export function openInquiry(deps: WorkflowDeps, id: number): Promise<boolean> {
  const now = envOf(deps).now;
  return runInTx(deps, async (tx, fx) => {
    const [e] = await tx
      .select()
      .from(executions)
      .where(and(eq(executions.id, id), eq(executions.status, 'requested')))
      .for('update');
    if (!e) return false;
    const f = inquiryFields(e.parameters);
    await tx
      .insert(inquiries)
      .values({
        executionId: e.id,
        workflowExecutionId: e.parentId,
        taskName: e.taskName,
        prompt: f.prompt,
        responseSchema: f.responseSchema,
        assignedUsers: f.users,
        assignedRoles: f.roles,
        timeoutAt: f.timeoutSeconds === null ? null : new Date(now() + f.timeoutSeconds * 1000),
      })
      .onConflictDoNothing({ target: inquiries.executionId });
    const moved = await transitionExecution(tx, e.id, ['requested'], 'running', { startedAt: sql`now()` });
    fx.note(moved);
    return moved !== null;
  });
}

/**
 * Answers inquiry `id` on behalf of `by`. Refuses, changing nothing: 404 (no such inquiry), 409 (not
 * pending any more — answered, timed out, withdrawn — or past its timeout), 403 (`by` is neither an
 * assigned user nor in an assigned role, when the inquiry names any), 400 (the response does not
 * match `response_schema`; every problem in `details.problems`). The accepted response has the
 * schema's defaults filled in. Returns the answered inquiry.
 */
export async function respondInquiry(
  deps: WorkflowDeps,
  id: number,
  response: unknown,
  by: Responder,
): Promise<InquiryRow> {
  const [q] = await deps.store.db.select().from(inquiries).where(eq(inquiries.id, id));
  if (!q) throw notFound('inquiry', id);
  if (q.status !== 'pending')
    throw conflict(`inquiry ${id} is ${q.status}; it can no longer be answered`, { id, status: q.status });
  if (q.timeoutAt && q.timeoutAt.getTime() <= envOf(deps).now())
    throw conflict(`inquiry ${id} timed out at ${q.timeoutAt.toISOString()}; it can no longer be answered`, {
      id,
      status: 'timeout',
    });
  if (q.assignedUsers.length + q.assignedRoles.length > 0) {
    const allowed = q.assignedUsers.includes(by.login) || q.assignedRoles.some((r) => by.roles.includes(r));
    if (!allowed)
      throw new AppError(
        'FORBIDDEN',
        `'${by.login}' may not answer inquiry ${id}: it is assigned to other users or roles`,
        {
          id,
          assigned_users: q.assignedUsers,
          assigned_roles: q.assignedRoles,
        },
      );
  }
  const answer = structuredClone(response);
  let problems: ReturnType<typeof validateAgainst>;
  try {
    problems = validateAgainst(q.responseSchema, answer);
  } catch (e) {
    throw conflict(`inquiry ${id} has a response_schema that is not usable (${(e as Error).message})`, {
      id,
    });
  }
  if (problems.length)
    throw new AppError(
      'VALIDATION_ERROR',
      describeIssues(`the response does not match the response_schema of inquiry ${id}`, problems),
      {
        field: 'response',
        problems,
      },
    );
  return runInTx(deps, async (tx, fx) => {
    const [answered] = await tx
      .update(inquiries)
      .set({ status: 'responded', response: answer, respondedBy: by.login, respondedAt: sql`now()` })
      .where(and(eq(inquiries.id, id), eq(inquiries.status, 'pending')))
      .returning();
    if (!answered) throw conflict(`inquiry ${id} was answered or closed meanwhile`, { id });
    const moved = await transitionExecution(tx, q.executionId, ['running', 'pausing'], 'succeeded', {
      result: { response: answer },
    });
    if (!moved) {
      const [e] = await tx
        .select({ status: executions.status })
        .from(executions)
        .where(eq(executions.id, q.executionId));
      throw conflict(`the execution of inquiry ${id} is ${e?.status ?? 'gone'}; the answer was not taken`, {
        id,
        execution_id: q.executionId,
        status: e?.status ?? null,
      });
    }
    await finish(tx, fx, moved);
    return answered;
  });
}

/** Times out the pending inquiries past their `timeout_at` (at most `limit`); returns how many. */
export function timeOutInquiries(deps: WorkflowDeps, limit = 200): Promise<number> {
  const now = envOf(deps).now;
  return runInTx(deps, async (tx, fx) => {
    const due = await tx
      .select()
      .from(inquiries)
      .where(and(eq(inquiries.status, 'pending'), lte(inquiries.timeoutAt, new Date(now()))))
      .orderBy(asc(inquiries.timeoutAt))
      .limit(limit)
      .for('update', { skipLocked: true });
    if (!due.length) return 0;
    await tx
      .update(inquiries)
      .set({ status: 'timeout' })
      .where(
        and(
          inArray(
            inquiries.id,
            due.map((q) => q.id),
          ),
          eq(inquiries.status, 'pending'),
        ),
      );
    const rows = await tx
      .select()
      .from(executions)
      .where(
        inArray(
          executions.id,
          due.map((q) => q.executionId),
        ),
      );
    for (const row of rows) {
      const q = due.find((x) => x.executionId === row.id);
      await finish(
        tx,
        fx,
        await moveExecution(tx, row, 'timeout', {
          error: {
            type: 'timeout',
            message: `the inquiry was not answered by ${q?.timeoutAt?.toISOString() ?? 'its timeout'}`,
          },
        }),
      );
    }
    return due.length;
  });
}

/** Inquiry executions canceled through the API (`canceling`): withdraw the inquiry, end the execution. */
export function settleCanceledInquiries(
  deps: WorkflowDeps,
  ids?: readonly number[],
  limit = 200,
): Promise<number> {
  return runInTx(deps, async (tx, fx) => {
    const rows = await tx
      .select()
      .from(executions)
      .where(
        and(
          eq(executions.runner, 'inquiry'),
          eq(executions.status, 'canceling'),
          ...(ids ? [inArray(executions.id, [...ids])] : []),
        ),
      )
      .limit(limit)
      .for('update', { skipLocked: true });
    for (const row of rows) {
      await tx
        .update(inquiries)
        .set({ status: 'canceled' })
        .where(and(eq(inquiries.executionId, row.id), eq(inquiries.status, 'pending')));
      const by = typeof row.context.canceled_by === 'string' ? row.context.canceled_by : null;
      await finish(
        tx,
        fx,
        await transitionExecution(tx, row.id, ['canceling'], 'canceled', {
          error: {
            type: 'canceled',
            message: by ? `canceled by ${by}` : 'the inquiry was withdrawn',
            canceled_by: by,
          },
        }),
      );
    }
    return rows.length;
  });
}
