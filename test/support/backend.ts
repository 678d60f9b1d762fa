import { describe } from 'vitest';
import { probePostgres } from './postgres.ts';

export type Backend = 'pglite' | 'postgres';
export const BACKEND: Backend = process.env.ATTUNE_TEST_BACKEND === 'postgres' ? 'postgres' : 'pglite';

const pgDown = BACKEND === 'postgres' ? await probePostgres() : undefined;
if (pgDown && process.env.CI === 'true') throw new Error(`PostgreSQL unreachable under CI=true: ${pgDown}`);

/**
 * `describe` for suites that need the backend: on the postgres project with no server reachable
 * (and not in CI), the suite is skipped — and the global setup has said so loudly.
 */
export const describeBackend: typeof describe = (pgDown ? describe.skip : describe) as typeof describe;
