/**
 * The system-scope keys as rule templates see them (`{{ keys.name }}`): decrypted, with the names
 * of the encrypted ones, so that what a template derives from them can be treated as secret.
 */
import { and, asc, eq } from 'drizzle-orm';
import type { Db } from '../../store/database.ts';
import { keys } from '../../store/schema.ts';
import { type KeyStore, keyIsLive } from '../keys/key-store.ts';

export interface TemplateKeys {
  /** name → value (decrypted), in a prototype-less object. */
  values: Record<string, unknown>;
  /** Names of the keys that are encrypted at rest. */
  encrypted: ReadonlySet<string>;
  /** Keys that could not be read (wrong instance key, not JSON): name → why. Templates see them as absent. */
  unreadable: Record<string, string>;
}

export const NO_KEYS: TemplateKeys = Object.freeze({
  values: Object.freeze(Object.create(null)) as Record<string, unknown>,
  encrypted: new Set<string>(),
  unreadable: Object.freeze(Object.create(null)) as Record<string, string>,
});

export interface LoadKeysOptions {
  /**
   * false: encrypted keys are not decrypted; templates see `masked` in their place (for callers not
   * allowed to decrypt keys, e.g. a dry run by a reader). Default true.
   */
  decrypt?: boolean;
  masked?: unknown;
}

/** Every live system-scope key. */
export async function loadSystemKeys(
  db: Db,
  store: KeyStore,
  opts: LoadKeysOptions = {},
): Promise<TemplateKeys> {
  const rows = await db
    .select({ name: keys.name, value: keys.value, encrypted: keys.encrypted })
    .from(keys)
    .where(and(eq(keys.scope, 'system'), eq(keys.owner, ''), keyIsLive()))
    .orderBy(asc(keys.name));
  const values: Record<string, unknown> = Object.create(null);
  const unreadable: Record<string, string> = Object.create(null);
  const encrypted = new Set<string>();
  const decrypt = opts.decrypt ?? true;
  for (const r of rows) {
    if (r.encrypted) encrypted.add(r.name);
    if (r.encrypted && !decrypt) {
      values[r.name] = opts.masked ?? '********';
      continue;
    }
    try {
      values[r.name] = store.reveal(r);
    } catch (e) {
      unreadable[r.name] = (e as Error).message;
    }
  }
  return { values, encrypted, unreadable };
}
