/**
 * What workflow expressions may read beyond the state: `keys.x` (the live system-scope keys,
 * decrypted) and `config.x` (the configuration of the workflow's pack). Loaded per transaction, and
 * only when the definition mentions them. Values of encrypted keys are secrets: whatever holds
 * them is sealed like a secret parameter.
 */
import { eq } from 'drizzle-orm';
import type { Cipher } from '../../security/crypto.ts';
import type { Db, Store } from '../../store/database.ts';
import { packs } from '../../store/schema.ts';
import type { WorkflowDefinition } from '../../workflow/definition.ts';
import type { Environment } from '../../workflow/engine.ts';
import { KeyStore } from '../keys/key-store.ts';
import { loadSystemKeys } from '../rules-engine/system-keys.ts';

export interface LoadedEnvironment {
  env: Environment;
  /** Values that must not be stored in the clear (encrypted keys). */
  secrets: unknown[];
}

const needsCache = new WeakMap<WorkflowDefinition, { keys: boolean; config: boolean }>();

function needs(def: WorkflowDefinition): { keys: boolean; config: boolean } {
  let n = needsCache.get(def);
  if (!n) {
    const text = JSON.stringify({ vars: def.vars, tasks: def.tasks, output: def.outputMap ?? null });
    n = { keys: /\bkeys\b/.test(text), config: /\bconfig\b/.test(text) };
    needsCache.set(def, n);
  }
  return n;
}

export const NO_ENVIRONMENT: LoadedEnvironment = Object.freeze({ env: {}, secrets: [] });

/** The environment of a workflow of pack `packRef`, read in `tx`. */
export async function loadEnvironment(
  tx: Db,
  store: Store,
  cipher: Cipher,
  def: WorkflowDefinition,
  packRef: string,
): Promise<LoadedEnvironment> {
  const n = needs(def);
  if (!n.keys && !n.config) return NO_ENVIRONMENT;
  const env: Environment = {};
  const secrets: unknown[] = [];
  if (n.keys) {
    const k = await loadSystemKeys(tx, new KeyStore(store, cipher));
    env.keys = k.values;
    for (const name of k.encrypted) if (k.values[name] !== undefined) secrets.push(k.values[name]);
  }
  if (n.config) {
    const [p] = packRef
      ? await tx.select({ config: packs.config }).from(packs).where(eq(packs.ref, packRef))
      : [];
    env.config = p?.config ?? {};
  }
  return { env, secrets };
}
