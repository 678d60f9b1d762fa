/**
 * The datastore of keys: named JSON values in the `system` scope (shared) or the `user` scope (one
 * identity's own), optionally encrypted with the instance cipher (AES-256-GCM over the JSON text)
 * and optionally expiring.
 *
 * Expired keys do not exist for any reader: every query here filters on `expires_at`, and expired
 * rows are deleted opportunistically (on every write, and at most every few seconds on listing).
 * Plaintext of an encrypted key never reaches the database and leaves this module only through
 * `reveal`/`getValue`/`getKeyValues`, whose callers decide who may see it.
 */
import { and, asc, count, eq, isNull, lte, or, type SQL, sql } from 'drizzle-orm';
import { AppError, unprocessable, validationError } from '../../domain/errors.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Db, Store } from '../../store/database.ts';
import { keys } from '../../store/schema.ts';

export const KEY_SCOPES = ['system', 'user'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

/** Letters, digits and `_ . : -`, 1 to 255 characters. */
export const KEY_NAME_PATTERN = '^[A-Za-z0-9_.:-]{1,255}$';
/** Largest value accepted, measured as its JSON text in UTF-8. */
export const MAX_KEY_VALUE_BYTES = 256 * 1024;
/** Longest TTL accepted (ten years). */
export const MAX_KEY_TTL_SECONDS = 10 * 366 * 24 * 3600;

export type KeyRow = typeof keys.$inferSelect;

/** Which key: its scope, its owner's login (`''` for the system scope) and its name. */
export interface KeyId {
  scope: KeyScope;
  owner: string;
  name: string;
}

export interface NewKey {
  value: unknown;
  encrypted?: boolean;
  description?: string;
  /** Seconds from now until the key vanishes; unset = never. */
  ttlSeconds?: number;
}

export interface KeyChanges {
  value?: unknown;
  encrypted?: boolean;
  description?: string;
  /** Seconds from now; `null` removes the expiry; unset leaves it as it is. */
  ttlSeconds?: number | null;
}

export interface KeyListFilter {
  /** The (scope, owner) sets to list from; a key is listed when it belongs to any of them. */
  within: { scope: KeyScope; owner: string }[];
  /** Names starting with this text. */
  prefix?: string | undefined;
  /** Text contained in the name or the description (case-insensitive). */
  search?: string | undefined;
  limit: number;
  offset: number;
}

/** The SQL condition "this key has not expired". */
export const keyIsLive = (): SQL => or(isNull(keys.expiresAt), sql`${keys.expiresAt} > now()`)!;

const identifies = (id: KeyId): SQL =>
  and(eq(keys.scope, id.scope), eq(keys.owner, id.owner), eq(keys.name, id.name))!;

const expiryIn = (ttlSeconds: number): SQL => sql`now() + (${ttlSeconds}::integer * interval '1 second')`;

const likeEscape = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export class KeyStore {
  /** Time of the last sweep of expired rows started by a listing (epoch ms). */
  #lastListSweep = 0;

  constructor(
    private readonly store: Store,
    private readonly cipher: Cipher,
    /** Listings sweep expired rows at most this often. */
    private readonly listSweepIntervalMs = 5000,
  ) {}

  /** The stored text of a value: its JSON, encrypted when asked. 413 when it is too large. */
  encode(value: unknown, encrypted: boolean): string {
    const json = JSON.stringify(value);
    if (json === undefined) throw validationError('the value is not representable as JSON');
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > MAX_KEY_VALUE_BYTES)
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `the value is ${bytes} bytes of JSON; at most ${MAX_KEY_VALUE_BYTES} are accepted`,
        { bytes, max_bytes: MAX_KEY_VALUE_BYTES },
      );
    return encrypted ? this.cipher.encrypt(json) : json;
  }

  /**
   * The value of a row, decrypted when it is encrypted. Throws a 422 when the stored text cannot be
   * decrypted (the instance encryption key changed) or is not JSON.
   */
  reveal(row: Pick<KeyRow, 'name' | 'value' | 'encrypted'>): unknown {
    let json: string;
    try {
      json = row.encrypted ? this.cipher.decrypt(row.value) : row.value;
    } catch {
      throw unprocessable(
        `key '${row.name}' cannot be decrypted with this instance's encryption key (ATTUNE_ENCRYPTION_KEY changed?)`,
        { name: row.name },
      );
    }
    try {
      return JSON.parse(json) as unknown;
    } catch {
      throw unprocessable(`key '${row.name}' holds a value that is not JSON`, { name: row.name });
    }
  }

  /** The live key, or undefined. */
  async find(id: KeyId, db: Db = this.store.db): Promise<KeyRow | undefined> {
    const [row] = await db
      .select()
      .from(keys)
      .where(and(identifies(id), keyIsLive()));
    return row;
  }

  /** The decrypted value of a live key, or undefined when there is no such key. */
  async getValue(id: KeyId): Promise<unknown> {
    const row = await this.find(id);
    return row ? this.reveal(row) : undefined;
  }

  /**
   * Every live key of one scope (and owner, for the user scope) as `{name: value}`, decrypted: what
   * an action or a template of that scope may use. The caller is responsible for redacting these
   * values from results, logs and events.
   */
  async getKeyValues(scope: KeyScope, owner = ''): Promise<Record<string, unknown>> {
    const rows = await this.store.db
      .select({ name: keys.name, value: keys.value, encrypted: keys.encrypted })
      .from(keys)
      .where(and(eq(keys.scope, scope), eq(keys.owner, scope === 'system' ? '' : owner), keyIsLive()))
      .orderBy(asc(keys.name));
    const out: Record<string, unknown> = Object.create(null);
    for (const r of rows) out[r.name] = this.reveal(r);
    return out;
  }

  /** One page of live keys, by name, with the total. */
  async list(f: KeyListFilter): Promise<{ rows: KeyRow[]; total: number }> {
    if (Date.now() - this.#lastListSweep >= this.listSweepIntervalMs) {
      this.#lastListSweep = Date.now();
      await this.sweepExpired().catch(() => 0);
    }
    if (!f.within.length) return { rows: [], total: 0 };
    const where: SQL[] = [
      keyIsLive(),
      or(...f.within.map((w) => and(eq(keys.scope, w.scope), eq(keys.owner, w.owner))))!,
    ];
    if (f.prefix) where.push(sql`${keys.name} LIKE ${`${likeEscape(f.prefix)}%`}`);
    if (f.search) {
      const pat = `%${likeEscape(f.search)}%`;
      where.push(sql`(${keys.name} ILIKE ${pat} OR ${keys.description} ILIKE ${pat})`);
    }
    const cond = and(...where);
    const db = this.store.db;
    const [rows, [total]] = await Promise.all([
      db
        .select()
        .from(keys)
        .where(cond)
        .orderBy(asc(keys.scope), asc(keys.owner), asc(keys.name))
        .limit(f.limit)
        .offset(f.offset),
      db.select({ n: count() }).from(keys).where(cond),
    ]);
    return { rows, total: total?.n ?? 0 };
  }

  /** Creates a key; undefined when a live key of that name already exists in that scope. */
  async create(id: KeyId, k: NewKey, db: Db = this.store.db): Promise<KeyRow | undefined> {
    const encrypted = k.encrypted ?? false;
    const value = this.encode(k.value, encrypted);
    await this.deleteIfExpired(id, db);
    const [row] = await db
      .insert(keys)
      .values({
        ...id,
        value,
        encrypted,
        description: k.description ?? '',
        expiresAt: k.ttlSeconds === undefined ? null : expiryIn(k.ttlSeconds),
      })
      .onConflictDoNothing()
      .returning();
    return row;
  }

  /**
   * Applies a partial change to a live key (locked for the transaction `db` belongs to); undefined
   * when there is no such key. Changing `encrypted` alone re-encodes the current value.
   */
  async update(id: KeyId, c: KeyChanges, db: Db = this.store.db): Promise<KeyRow | undefined> {
    await this.deleteIfExpired(id, db);
    const [cur] = await db
      .select()
      .from(keys)
      .where(and(identifies(id), keyIsLive()))
      .for('update');
    if (!cur) return undefined;
    const encrypted = c.encrypted ?? cur.encrypted;
    let value: string | undefined;
    if (c.value !== undefined) value = this.encode(c.value, encrypted);
    else if (encrypted !== cur.encrypted) value = this.encode(this.reveal(cur), encrypted);
    const [row] = await db
      .update(keys)
      .set({
        ...(value !== undefined && { value, encrypted }),
        ...(c.description !== undefined && { description: c.description }),
        ...(c.ttlSeconds !== undefined && {
          expiresAt: c.ttlSeconds === null ? null : expiryIn(c.ttlSeconds),
        }),
        updatedAt: sql`now()`,
      })
      .where(eq(keys.id, cur.id))
      .returning();
    return row;
  }

  /** Deletes a live key; false when there was none. */
  async delete(id: KeyId, db: Db = this.store.db): Promise<boolean> {
    await this.deleteIfExpired(id, db);
    const r = await db.delete(keys).where(identifies(id)).returning({ id: keys.id });
    return r.length > 0;
  }

  /** Deletes every expired key; returns how many. */
  async sweepExpired(db: Db = this.store.db): Promise<number> {
    const r = await db.delete(keys).where(lte(keys.expiresAt, sql`now()`)).returning({ id: keys.id });
    return r.length;
  }

  private async deleteIfExpired(id: KeyId, db: Db): Promise<void> {
    await db.delete(keys).where(and(identifies(id), lte(keys.expiresAt, sql`now()`)));
  }
}
