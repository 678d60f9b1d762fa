import pg from 'pg';

/** The server tests use: ATTUNE_TEST_DATABASE_URL, default the machine's local PostgreSQL. */
export const pgAdminUrl = (): string =>
  process.env.ATTUNE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Undefined when reachable, else the reason. */
export async function probePostgres(): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: pgAdminUrl(), connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('select 1');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.end().catch(() => {});
  }
}

let counter = 0;

/** Creates an empty database for one test server; returns its URL and a function that drops it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `attune_t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const admin = new pg.Client({ connectionString: pgAdminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(pgAdminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: pgAdminUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
