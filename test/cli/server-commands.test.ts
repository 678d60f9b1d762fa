/** The server commands: `attune migrate` and the refusals of running one service without servers. */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, probePostgres } from '../support/postgres.ts';
import { CliHome, runCli } from './support.ts';

const pgDown = await probePostgres();
if (pgDown && process.env.CI === 'true') throw new Error(`PostgreSQL unreachable under CI=true: ${pgDown}`);

describe('server commands', () => {
  const home = new CliHome();
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const d of drops) await d().catch(() => {});
  });

  it.skipIf(!!pgDown)(
    'migrate brings a fresh PostgreSQL database up to date, and again is a no-op',
    async () => {
      const db = await createTestDatabase();
      drops.push(db.drop);
      for (let i = 0; i < 2; i++) {
        const r = await runCli(home, ['migrate'], { env: { ATTUNE_DATABASE_URL: db.url } });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/database schema is up to date/);
      }
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        const t = await c.query(
          "select count(*)::int n from pg_tables where schemaname = 'public' and tablename = 'executions'",
        );
        expect(t.rows[0].n).toBe(1);
      } finally {
        await c.end();
      }
    },
  );

  it('migrate without a PostgreSQL URL explains itself', async () => {
    const r = await runCli(home, ['migrate'], { env: { ATTUNE_DATABASE_URL: '' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ATTUNE_DATABASE_URL/);
  });

  it('a single service refuses the embedded database and the in-process bus, with the reason', async () => {
    const r = await runCli(home, ['worker'], { env: { ATTUNE_DATABASE_URL: '', ATTUNE_AMQP_URL: '' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs a PostgreSQL server \(ATTUNE_DATABASE_URL\)/);
  });
});
