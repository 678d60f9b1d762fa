// Runs once before the suite: builds the PGlite template (so test files only unpack it) and checks
// that the PostgreSQL server is reachable (failing under CI=true, skipping loudly otherwise).
import { ensureTemplate } from '../../src/store/pglite-template.ts';
import { pgAdminUrl, probePostgres } from './postgres.ts';

export default async function setup(): Promise<void> {
  await ensureTemplate();
  const err = await probePostgres();
  if (err) {
    const msg = `PostgreSQL at ${pgAdminUrl()} is unreachable (${err}).`;
    if (process.env.CI === 'true') throw new Error(`${msg} CI=true: the postgres suite must run.`);
    console.warn(`\n\n!!!!!!!! ${msg}\n!!!!!!!! The postgres project's tests will be SKIPPED.\n\n`);
  }
}
