/**
 * The store: one drizzle database over either driver.
 * - embedded: PGlite in `<dataDir>/db` (single connection, this process only — see data-dir-lock.ts)
 * - server:   node-postgres pool on `ATTUNE_DATABASE_URL`
 * Both run the same migrations and the same queries.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import { fastPglite } from './pglite-client.ts';
import { preparePgliteDataDir } from './pglite-template.ts';
import * as schema from './schema.ts';

export type Schema = typeof schema;
/** A database handle or an open transaction: repositories accept either. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface Store {
  readonly kind: 'pglite' | 'postgres';
  readonly db: Db;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Calls `listener(tx)` right after each transaction of `transaction()` committed (the outbox relay
   * publishes what it wrote at once). Returns a function that removes the listener.
   */
  onCommit(listener: (tx: Tx) => void): () => void;
  /** A cheap round trip, for health checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** node-postgres connection string; unset = PGlite. */
  databaseUrl?: string | undefined;
  /** PGlite data directory; unset = in memory. */
  pgliteDir?: string | undefined;
  /** Pool size for node-postgres. */
  poolSize?: number;
}

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  if (opts.databaseUrl) return openPostgres(opts.databaseUrl, opts.poolSize ?? 10);
  return openPglite(opts.pgliteDir);
}

async function openPglite(dir: string | undefined): Promise<Store> {
  if (dir) await preparePgliteDataDir(dir);
  // PostgreSQL's default 128 MB of shared buffers costs ~110 MB more resident memory in WASM for no
  // measurable gain on this workload (the OS page cache still backs the data directory).
  const client = await PGlite.create({
    ...(dir ? { dataDir: dir } : {}),
    postgresqlconf: ['shared_buffers=16MB'],
  });
  // Statements take one call into WebAssembly and are prepared once (see pglite-client.ts).
  const db = drizzlePglite({ client: fastPglite(client), schema });
  await migratePglite(db, { migrationsFolder: MIGRATIONS_DIR });
  return {
    kind: 'pglite',
    db: db as unknown as Db,
    ...committing(db as unknown as Db),
    ping: async () => {
      await client.query('select 1');
    },
    close: async () => {
      if (!client.closed) await client.close();
    },
  };
}

async function openPostgres(url: string, max: number): Promise<Store> {
  // At least two connections: migrations hold one for their advisory lock and run on another.
  const pool = new pg.Pool({ connectionString: url, max: Math.max(2, max) });
  // A broken idle connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = drizzleNodePg({ client: pool, schema });
  await migrateWithLock(pool, () => migrateNodePg(db, { migrationsFolder: MIGRATIONS_DIR }));
  return {
    kind: 'postgres',
    db: db as unknown as Db,
    ...committing(db as unknown as Db),
    ping: async () => {
      await pool.query('select 1');
    },
    close: async () => {
      await pool.end();
    },
  };
}

/** `transaction` and `onCommit` over a drizzle database. */
function committing(db: Db): Pick<Store, 'transaction' | 'onCommit'> {
  const listeners = new Set<(tx: Tx) => void>();
  return {
    transaction: async (fn) => {
      let handle: Tx | undefined;
      const out = await db.transaction((tx) => {
        handle = tx;
        return fn(tx);
      });
      // The transaction committed: a listener's failure must not make it look as if it had not.
      if (handle)
        for (const l of listeners)
          try {
            l(handle);
          } catch {
            // the listener's own business
          }
      return out;
    },
    onCommit: (listener) => {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

/** Several processes may start at once against one server: migrations run under an advisory lock. */
async function migrateWithLock(pool: pg.Pool, run: () => Promise<void>): Promise<void> {
  const conn = await pool.connect();
  try {
    await conn.query('select pg_advisory_lock(727271)');
    await run();
  } finally {
    await conn.query('select pg_advisory_unlock(727271)').catch(() => {});
    conn.release();
  }
}
