/**
 * A short-lived cache of action definitions by ref. The hot paths (scheduling, claiming, following
 * up completions) look actions up for every execution; a few seconds of staleness is fine there, and
 * a `definitions changed` broadcast clears the cache at once.
 */
import { inArray } from 'drizzle-orm';
import type { Db } from '../../store/database.ts';
import { actions } from '../../store/schema.ts';

export type ActionRow = typeof actions.$inferSelect;

interface Entry {
  row: ActionRow | null;
  at: number;
}

export class ActionCache {
  private readonly entries = new Map<string, Entry>();
  /** Loads in progress, so that concurrent misses of one ref share one query. */
  private readonly loading = new Map<string, Promise<ActionRow | null>>();

  constructor(
    private readonly db: () => Db,
    private readonly ttlMs = 2000,
  ) {}

  /**
   * The actions named by `refs` (missing ones map to null), loading what is not cached in one query
   * (through `db` when given: inside a transaction, pass it — PGlite has a single connection).
   */
  async getMany(refs: Iterable<string>, db?: Db): Promise<Map<string, ActionRow | null>> {
    const now = Date.now();
    const out = new Map<string, ActionRow | null>();
    const missing: string[] = [];
    const waiting: [string, Promise<ActionRow | null>][] = [];
    for (const ref of new Set(refs)) {
      const e = this.entries.get(ref);
      const pending = db ? undefined : this.loading.get(ref);
      if (e && now - e.at < this.ttlMs) out.set(ref, e.row);
      else if (pending) waiting.push([ref, pending]);
      else missing.push(ref);
    }
    if (missing.length) {
      const load = (db ?? this.db())
        .select()
        .from(actions)
        .where(inArray(actions.ref, missing))
        .then((rows) => {
          const found = new Map(rows.map((r) => [r.ref, r]));
          if (this.entries.size > 5000) this.entries.clear();
          for (const ref of missing) this.entries.set(ref, { row: found.get(ref) ?? null, at: now });
          return found;
        });
      if (!db) {
        for (const ref of missing) {
          const one = load.then((found) => found.get(ref) ?? null);
          one.catch(() => {});
          this.loading.set(ref, one);
        }
      }
      try {
        const found = await load;
        for (const ref of missing) out.set(ref, found.get(ref) ?? null);
      } finally {
        if (!db) for (const ref of missing) this.loading.delete(ref);
      }
    }
    for (const [ref, p] of waiting) out.set(ref, await p);
    return out;
  }

  async get(ref: string, db?: Db): Promise<ActionRow | null> {
    return (await this.getMany([ref], db)).get(ref) ?? null;
  }

  clear(): void {
    this.entries.clear();
  }
}
