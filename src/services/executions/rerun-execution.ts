/**
 * Re-running an execution: a new execution of the same action with the original parameters —
 * secret ones decrypted from `execution_secrets` and sealed again for the new execution — with the
 * given top-level parameters laid over them, validated again against the action's current schema.
 */
import { eq } from 'drizzle-orm';
import { conflict, notFound } from '../../domain/errors.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Db } from '../../store/database.ts';
import type { ExecutionRow } from '../../store/repositories/executions.ts';
import { executionSecrets, executions } from '../../store/schema.ts';
import { isSecretMarker, openParameters } from '../runtime/execution-secrets.ts';
import { requestExecution } from './request-execution.ts';

export interface RerunRequest {
  /** Top-level parameters replacing the original ones of the same name. */
  parameters?: Record<string, unknown> | undefined;
  /** Overrides the original execution's timeout override. */
  timeoutSeconds?: number | null | undefined;
  createdBy?: string | null | undefined;
}

/** Sets an own property, even one named `__proto__` (never the prototype). */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * Requests a re-run of execution `id` in the caller's transaction (see `requestExecution` for the
 * refusals), with `rerun_of = id`. 404 when the execution does not exist; 409 when its secret
 * parameters cannot be recovered and were not given again.
 */
export async function rerunExecution(
  tx: Db,
  cipher: Cipher,
  id: number,
  req: RerunRequest = {},
): Promise<ExecutionRow> {
  const [orig] = await tx
    .select({
      id: executions.id,
      actionRef: executions.actionRef,
      parameters: executions.parameters,
      timeoutSeconds: executions.timeoutSeconds,
      ciphertext: executionSecrets.ciphertext,
    })
    .from(executions)
    .leftJoin(executionSecrets, eq(executionSecrets.executionId, executions.id))
    .where(eq(executions.id, id));
  if (!orig) throw notFound('execution', id);

  let opened: { parameters: Record<string, unknown>; secretNames: string[] };
  try {
    opened = openParameters(cipher, orig.parameters, orig.ciphertext);
  } catch (e) {
    throw conflict(
      `the secret parameters of execution ${id} cannot be decrypted (${(e as Error).message}); ` +
        'give them again in `parameters`',
      { id, reason: 'secret_undecryptable' },
    );
  }
  const parameters: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opened.parameters)) put(parameters, k, v);
  for (const [k, v] of Object.entries(req.parameters ?? {})) put(parameters, k, v);

  // A marker left over means a secret value the store no longer has: never run with the marker as value.
  const lost = Object.entries(parameters)
    .filter(([, v]) => isSecretMarker(v))
    .map(([k]) => k)
    .sort();
  if (lost.length)
    throw conflict(
      `the secret value(s) of ${lost.join(', ')} of execution ${id} are no longer stored; give them again in \`parameters\``,
      { id, reason: 'secret_missing', parameters: lost },
    );

  return requestExecution(tx, cipher, {
    actionRef: orig.actionRef,
    parameters,
    createdBy: req.createdBy,
    rerunOf: orig.id,
    timeoutSeconds: req.timeoutSeconds === undefined ? orig.timeoutSeconds : req.timeoutSeconds,
    extraSecretNames: opened.secretNames,
  });
}
