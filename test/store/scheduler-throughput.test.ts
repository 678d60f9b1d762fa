/**
 * Throughput of the runtime for noop executions (requested → succeeded), measured on the backend
 * under test with the in-process bus. Prints the rate; asserts only a floor far below the target so
 * that a loaded machine does not make it flaky.
 */
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executions } from '../../src/store/schema.ts';
import { BACKEND, describeBackend } from '../support/backend.ts';
import { Runtime } from './runtime-fixture.ts';

describeBackend('execution runtime throughput', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await Runtime.start({ capacity: 64 });
    await rt.action({ ref: 'perf.noop', runner: 'noop' });
  });
  afterAll(async () => rt?.stop());

  it('runs noop executions from requested to succeeded quickly', async () => {
    // Warm up (caches, prepared plans).
    await rt.waitFor(await rt.request('perf.noop', 50), ['succeeded'], 30_000);
    const n = 2000;
    const t0 = performance.now();
    const ids: number[] = [];
    for (let i = 0; i < n / 500; i++) ids.push(...(await rt.request('perf.noop', 500)));
    await rt.until(
      'all succeeded',
      async () => {
        const [r] = await rt.store.db
          .select({ n: count() })
          .from(executions)
          .where(eq(executions.status, 'succeeded'));
        return Number(r!.n) >= n + 50 ? true : undefined;
      },
      60_000,
    );
    const seconds = (performance.now() - t0) / 1000;
    const rate = Math.round(n / seconds);
    console.log(
      `[${BACKEND}] ${n} noop executions requested → succeeded in ${seconds.toFixed(2)} s: ${rate}/s`,
    );
    expect(rate).toBeGreaterThan(50);
  }, 90_000);
});
