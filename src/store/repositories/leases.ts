/**
 * Named leases (the `leases` table): at most one holder at a time. A holder renews its lease before
 * it expires; anyone may take an expired lease. Both are one guarded upsert, so two contenders can
 * never both hold it, on PGlite or on PostgreSQL with any number of processes.
 */
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { leases } from '../schema.ts';

/**
 * Takes or renews the lease `name` for `owner` for `ttlSeconds` (database time). Returns true when
 * `owner` holds it afterwards; false when someone else holds an unexpired lease.
 */
export async function acquireLease(
  db: Db,
  name: string,
  owner: string,
  ttlSeconds: number,
): Promise<boolean> {
  const expires = sql`now() + make_interval(secs => ${ttlSeconds})`;
  const rows = await db
    .insert(leases)
    .values({ name, owner, expiresAt: expires })
    .onConflictDoUpdate({
      target: leases.name,
      set: { owner, expiresAt: sql`excluded.expires_at` },
      setWhere: sql`${leases.expiresAt} < now() OR ${leases.owner} = ${owner}`,
    })
    .returning({ owner: leases.owner });
  return rows.length === 1 && rows[0]?.owner === owner;
}

/** Gives the lease up (only if `owner` holds it), so another contender can take it at once. */
export async function releaseLease(db: Db, name: string, owner: string): Promise<void> {
  await db.delete(leases).where(and(eq(leases.name, name), eq(leases.owner, owner)));
}

/** The current holder of a lease, if it has not expired. */
export async function leaseHolder(db: Db, name: string): Promise<string | null> {
  const [row] = await db
    .select({ owner: leases.owner })
    .from(leases)
    .where(and(eq(leases.name, name), sql`${leases.expiresAt} >= now()`));
  return row?.owner ?? null;
}
