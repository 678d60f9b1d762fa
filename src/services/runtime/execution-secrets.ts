/**
 * Secret parameters of an execution (DESIGN §4.7). The `executions.parameters` row never holds a
 * secret value: each secret top-level parameter is replaced there by the marker `{"$secret": true}`,
 * and the plain values live in `execution_secrets` as one encrypted JSON object `{name: value}`
 * (the instance cipher, AES-256-GCM). Only the worker that runs the execution joins them again.
 */
import type { Cipher } from '../../security/crypto.ts';

/** What stands in `executions.parameters` (and enforcement `resolved_params`) for a secret value. */
export const SECRET_MARKER: Readonly<{ $secret: true }> = Object.freeze({ $secret: true });

export const isSecretMarker = (v: unknown): boolean =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.keys(v).length === 1 &&
  (v as Record<string, unknown>).$secret === true;

/** Sets an own property, even one named `__proto__` (never the prototype). */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

export interface SealedParameters {
  /** The parameters with every secret one replaced by `SECRET_MARKER`. */
  parameters: Record<string, unknown>;
  /** Names of the secret parameters present, sorted. */
  secretNames: string[];
  /** The encrypted JSON of `{name: value}` for the secret ones; null when there is none. */
  ciphertext: string | null;
}

/** Splits `parameters` into what may be stored in the clear and the encrypted secret values. */
export function sealParameters(
  cipher: Cipher,
  parameters: Record<string, unknown>,
  secret: ReadonlySet<string>,
): SealedParameters {
  const clear: Record<string, unknown> = {};
  const hidden: Record<string, unknown> = {};
  const secretNames: string[] = [];
  for (const [k, v] of Object.entries(parameters)) {
    if (secret.has(k)) {
      put(hidden, k, v);
      secretNames.push(k);
      put(clear, k, { ...SECRET_MARKER });
    } else put(clear, k, v);
  }
  secretNames.sort();
  return {
    parameters: clear,
    secretNames,
    ciphertext: secretNames.length ? cipher.encrypt(JSON.stringify(hidden)) : null,
  };
}

/** The parameters with their secret values restored (for the runner only), and the secret names. */
export function openParameters(
  cipher: Cipher,
  parameters: Record<string, unknown>,
  ciphertext: string | null | undefined,
): { parameters: Record<string, unknown>; secretNames: string[] } {
  if (!ciphertext) return { parameters: { ...parameters }, secretNames: [] };
  const hidden = JSON.parse(cipher.decrypt(ciphertext)) as Record<string, unknown>;
  const out: Record<string, unknown> = { ...parameters };
  const secretNames = Object.keys(hidden).sort();
  for (const k of secretNames) put(out, k, hidden[k]);
  return { parameters: out, secretNames };
}

/** The names of the parameters an action's param_schema marks `secret: true`. */
export function schemaSecretNames(paramSchema: Record<string, unknown> | null | undefined): Set<string> {
  const out = new Set<string>();
  const props = paramSchema?.properties;
  if (typeof props !== 'object' || props === null || Array.isArray(props)) return out;
  for (const [name, p] of Object.entries(props as Record<string, unknown>))
    if (typeof p === 'object' && p !== null && (p as Record<string, unknown>).secret === true) out.add(name);
  return out;
}
