/**
 * How a workflow run is kept in the database: the definition snapshot taken when it started, and the
 * engine's state document — sealed (encrypted with the instance cipher) when the workflow has secret
 * parameters, since the state holds them in the clear for the engine to render task inputs.
 */

import type { Cipher } from '../../security/crypto.ts';
import { isPlainObject, parseWorkflowResource, type WorkflowDefinition } from '../../workflow/definition.ts';
import type { WorkflowState } from '../../workflow/state.ts';
import { SECRET_MARKER } from '../runtime/execution-secrets.ts';

/** What `workflow_runs.definition` holds: the workflow resource as it was when the run started. */
export interface DefinitionSnapshot {
  ref: string;
  pack_ref: string;
  version: string;
  definition: Record<string, unknown>;
  param_schema: Record<string, unknown> | null;
  out_schema: Record<string, unknown> | null;
}

/** The state document with the names of the secret parameters it holds (empty: none). */
export interface OpenState {
  state: WorkflowState;
  secretNames: string[];
  /** Sealed whatever the parameters: it may hold values of encrypted keys (`{{ keys.x }}`). */
  sealed?: boolean;
}

const SEALED = '$sealed';

/**
 * Parsed definitions by run (a snapshot never changes, so an entry never goes stale). The key holds
 * the run's creation time as well as the execution id, so that several databases in one process
 * (tests, tools) never share an entry.
 */
const parsed = new Map<string, { snapshot: DefinitionSnapshot; def: WorkflowDefinition }>();
const PARSED_MAX = 2000;

export class DefinitionSnapshotError extends Error {}

export function snapshotOf(row: {
  ref: string;
  packRef: string;
  version: string;
  definition: Record<string, unknown>;
  paramSchema: Record<string, unknown> | null;
  outSchema: Record<string, unknown> | null;
}): DefinitionSnapshot {
  return {
    ref: row.ref,
    pack_ref: row.packRef,
    version: row.version,
    definition: row.definition,
    param_schema: row.paramSchema,
    out_schema: row.outSchema,
  };
}

/** Parses a snapshot (throws `DefinitionSnapshotError` naming the first problem when it is invalid). */
export function parseSnapshot(snapshot: DefinitionSnapshot): WorkflowDefinition {
  const r = parseWorkflowResource({ definition: snapshot.definition, param_schema: snapshot.param_schema });
  if (!r.ok) {
    const errors = r.problems.filter((p) => p.severity === 'error');
    const first = errors[0];
    const where = first
      ? `${first.task ? `task '${first.task}': ` : ''}${first.path ? `${first.path}: ` : ''}`
      : '';
    throw new DefinitionSnapshotError(
      `workflow '${snapshot.ref}' is not valid: ${where}${first?.message ?? 'invalid'}${
        errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''
      }`,
    );
  }
  return r.definition;
}

const runKey = (run: { executionId: number; createdAt: Date }): string =>
  `${run.executionId}@${run.createdAt.getTime()}`;

/** The parsed definition of a stored run (cached, with its snapshot). */
export function definitionOf(
  run: { executionId: number; createdAt: Date },
  snapshot: DefinitionSnapshot,
): WorkflowDefinition {
  const key = runKey(run);
  let entry = parsed.get(key);
  if (!entry) {
    entry = { snapshot, def: parseSnapshot(snapshot) };
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(key, entry);
  }
  return entry.def;
}

/**
 * The snapshot and parsed definition of a run seen before in this process, if any: an advance then
 * need not read the definition again (a snapshot never changes).
 */
export function knownDefinition(run: {
  executionId: number;
  createdAt: Date;
}): { snapshot: DefinitionSnapshot; def: WorkflowDefinition } | undefined {
  return parsed.get(runKey(run));
}

export function asSnapshot(doc: Record<string, unknown>): DefinitionSnapshot {
  const ref = typeof doc.ref === 'string' ? doc.ref : '';
  return {
    ref,
    pack_ref: typeof doc.pack_ref === 'string' ? doc.pack_ref : ref.slice(0, Math.max(0, ref.indexOf('.'))),
    version: typeof doc.version === 'string' ? doc.version : '',
    definition: isPlainObject(doc.definition) ? doc.definition : {},
    param_schema: isPlainObject(doc.param_schema) ? doc.param_schema : null,
    out_schema: isPlainObject(doc.out_schema) ? doc.out_schema : null,
  };
}

/** The stored form of a state: as it is, or sealed when it holds secret values. */
export function sealState(cipher: Cipher, open: OpenState): Record<string, unknown> {
  if (open.secretNames.length === 0 && !open.sealed) return open.state as unknown as Record<string, unknown>;
  return { [SEALED]: cipher.encrypt(JSON.stringify({ state: open.state, secret_names: open.secretNames })) };
}

/** The state of a stored document (`sealState` reversed). */
export function openState(cipher: Cipher, doc: Record<string, unknown>): OpenState {
  const sealed = doc[SEALED];
  if (typeof sealed !== 'string') return { state: doc as unknown as WorkflowState, secretNames: [] };
  const inner = JSON.parse(cipher.decrypt(sealed)) as { state: WorkflowState; secret_names: string[] };
  return { state: inner.state, secretNames: inner.secret_names, sealed: true };
}

/** Whether a stored state document is sealed (readers without the cipher show less). */
export const isSealedState = (doc: Record<string, unknown>): boolean => typeof doc[SEALED] === 'string';

/** The secret values of a state (strings and other values given for secret parameters). */
export function secretValues(open: OpenState): unknown[] {
  return open.secretNames.map((n) => open.state.parameters[n]).filter((v) => v !== undefined && v !== null);
}

/** The text each secret value is recognised by (its JSON for a non-string value). */
function needles(secrets: readonly unknown[]): string[] {
  return secrets.map((s) => (typeof s === 'string' ? s : JSON.stringify(s))).filter((s) => s.length > 0);
}

const holdsSecret = (v: unknown, ns: readonly string[]): boolean => {
  if (v === null || v === undefined) return false;
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return ns.some((n) => text.includes(n));
};

/**
 * A copy of `value` where every string holding a secret value, and every value equal to one, is
 * replaced by the secret marker (for what is stored in the clear: task-run inputs).
 */
export function redactSecrets(value: unknown, secrets: readonly unknown[]): unknown {
  const ns = needles(secrets);
  if (ns.length === 0) return value;
  const exact = new Set(secrets.map((s) => JSON.stringify(s)));
  const walk = (v: unknown): unknown => {
    if (v === null || v === undefined) return v;
    if (typeof v === 'string') return holdsSecret(v, ns) ? { ...SECRET_MARKER } : v;
    if (exact.has(JSON.stringify(v))) return { ...SECRET_MARKER };
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v))
        Object.defineProperty(out, k, {
          value: walk(x),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      return out;
    }
    return v;
  };
  return walk(value);
}

/** Names of the top-level entries of `input` that hold a secret value (sealed in the child execution). */
export function secretInputNames(input: Record<string, unknown>, secrets: readonly unknown[]): string[] {
  const ns = needles(secrets);
  if (ns.length === 0) return [];
  return Object.entries(input)
    .filter(([, v]) => holdsSecret(v, ns))
    .map(([k]) => k);
}
