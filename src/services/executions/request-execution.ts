/**
 * Requesting an execution: the one way a run of an action is asked for by a person or by the
 * platform on their behalf (the API, a re-run, a workflow's child task). Transport-neutral: the
 * caller gives an action ref, parameters and a transaction; this module checks the action and the
 * parameters, stores the execution in `requested` with its secret parameters sealed in
 * `execution_secrets`, and writes the `execution.requested` outbox message in that same transaction
 * (DESIGN §4.2). The caller kicks the outbox relay after its commit.
 */
import { eq } from 'drizzle-orm';
import { writeOutbox } from '../../bus/outbox.ts';
import { AppError, conflict, notFound, unprocessable } from '../../domain/errors.ts';
import { type SchemaIssue, validateAgainst } from '../../domain/json-schema.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Db } from '../../store/database.ts';
import type { ExecutionRow } from '../../store/repositories/executions.ts';
import { actions, executionSecrets, executions } from '../../store/schema.ts';
import { schemaSecretNames, sealParameters } from '../runtime/execution-secrets.ts';
import { type ExecutionRequested, TOPICS } from '../runtime/messages.ts';

/** Longest timeout an execution may ask for: one week. */
export const MAX_TIMEOUT_SECONDS = 604_800;

export interface ExecutionRequest {
  actionRef: string;
  /** Plain values (secret ones included); validated against the action's param_schema, defaults applied. */
  parameters?: Record<string, unknown> | undefined;
  /** Login of the identity asking (null for the platform itself). */
  createdBy?: string | null | undefined;
  /** For a workflow's child: the workflow execution, its top-level execution and the task name. */
  parentId?: number | null | undefined;
  /** Defaults to `parentId` (a child of a top-level workflow). */
  rootId?: number | null | undefined;
  taskName?: string | null | undefined;
  /** Overrides the action's default timeout (1 … MAX_TIMEOUT_SECONDS). */
  timeoutSeconds?: number | null | undefined;
  context?: Record<string, unknown> | undefined;
  /** The execution this one re-runs. */
  rerunOf?: number | null | undefined;
  /**
   * Names of parameters to seal even if the action's schema no longer marks them secret (a re-run
   * of values that were secret when first given must not store them in the clear).
   */
  extraSecretNames?: Iterable<string> | undefined;
}

/** The message of a 400 listing the problems of parameters (at most five spelt out). */
export function describeIssues(what: string, issues: readonly SchemaIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path === '/' ? '(root)' : i.path} ${i.message}`);
  const more = issues.length > shown.length ? `; and ${issues.length - shown.length} more` : '';
  return `${what}: ${shown.join('; ')}${more}`;
}

/**
 * Checks and stores one execution in `requested`, in the caller's transaction, with its outbox
 * message. Refuses, changing nothing:
 * - 404 `NOT_FOUND` when the action does not exist,
 * - 409 `CONFLICT` when the action is disabled,
 * - 400 `VALIDATION_ERROR` when the parameters do not fit the action's param_schema (every problem
 *   in `details.problems`) or the timeout is out of range.
 * Returns the stored row: its `parameters` have defaults applied and secret values replaced by
 * `{"$secret": true}`.
 */
export async function requestExecution(tx: Db, cipher: Cipher, req: ExecutionRequest): Promise<ExecutionRow> {
  const [action] = await tx
    .select({
      ref: actions.ref,
      runner: actions.runner,
      enabled: actions.enabled,
      paramSchema: actions.paramSchema,
    })
    .from(actions)
    .where(eq(actions.ref, req.actionRef));
  if (!action) throw notFound('action', req.actionRef);
  if (!action.enabled)
    throw conflict(`action '${action.ref}' is disabled; enable it to run it`, {
      action_ref: action.ref,
      enabled: false,
    });
  const timeout = req.timeoutSeconds ?? null;
  if (timeout !== null && (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_SECONDS))
    throw new AppError(
      'VALIDATION_ERROR',
      `timeout_seconds must be an integer from 1 to ${MAX_TIMEOUT_SECONDS}, got ${timeout}`,
      { field: 'timeout_seconds', minimum: 1, maximum: MAX_TIMEOUT_SECONDS },
    );

  // Validate a copy, so the schema's defaults land in what is stored and never in the caller's object.
  const parameters = structuredClone(req.parameters ?? {});
  let problems: SchemaIssue[];
  try {
    problems = validateAgainst(action.paramSchema, parameters);
  } catch (e) {
    throw unprocessable(
      `action '${action.ref}' has a param_schema that is not a usable JSON Schema (${(e as Error).message}); fix the action`,
      { action_ref: action.ref },
    );
  }
  if (problems.length)
    throw new AppError(
      'VALIDATION_ERROR',
      describeIssues(`parameters do not fit action '${action.ref}'`, problems),
      { field: 'parameters', action_ref: action.ref, problems },
    );

  const secret = schemaSecretNames(action.paramSchema);
  for (const name of req.extraSecretNames ?? []) secret.add(name);
  const sealed = sealParameters(cipher, parameters, secret);
  const parentId = req.parentId ?? null;
  const [row] = await tx
    .insert(executions)
    .values({
      actionRef: action.ref,
      runner: action.runner,
      parameters: sealed.parameters,
      status: 'requested',
      parentId,
      rootId: req.rootId ?? parentId,
      taskName: req.taskName ?? null,
      createdBy: req.createdBy ?? null,
      rerunOf: req.rerunOf ?? null,
      timeoutSeconds: timeout,
      context: req.context ?? {},
    })
    .returning();
  if (!row) throw new Error('the execution was not stored');
  if (sealed.ciphertext !== null)
    await tx.insert(executionSecrets).values({ executionId: row.id, ciphertext: sealed.ciphertext });
  await writeOutbox(tx, TOPICS.executionRequested, { execution_id: row.id } satisfies ExecutionRequested);
  return row;
}
