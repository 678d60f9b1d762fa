/**
 * Retry policies, done by the completion handler: exactly `count` retries with the back-off, only for
 * the outcomes named in `on`, secrets carried over, and never twice for one completion.
 */
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import type { ExecutionRow } from '../../src/store/repositories/executions.ts';
import { executionSecrets, executions } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { Runtime, sleep, TERMINAL } from './runtime-fixture.ts';

/** The chain of retries starting at `first`, following retry_of. */
async function chain(rt: Runtime, first: number): Promise<ExecutionRow[]> {
  const out = [await rt.get(first)];
  for (;;) {
    const [next] = await rt.store.db
      .select()
      .from(executions)
      .where(eq(executions.retryOf, out[out.length - 1]!.id));
    if (!next) return out;
    out.push(next);
  }
}

describeBackend('retry policies', () => {
  let rt: Runtime;
  const childHook: ExecutionRow[] = [];
  beforeAll(async () => {
    rt = await Runtime.start({
      sweeper: true,
      completionHooks: { onChildCompleted: async (e) => void childHook.push(e) },
    });
    await rt.action({
      ref: 'rt.flaky',
      runner: 'local-shell-cmd',
      retryPolicy: { count: 3, delay: 0.2, backoff: 'exponential' },
    });
    await rt.action({
      ref: 'rt.only_timeout',
      runner: 'local-shell-cmd',
      retryPolicy: { count: 2, delay: 0, on: ['timeout'] },
    });
    await rt.action({
      ref: 'rt.now',
      runner: 'local-shell-cmd',
      paramSchema: {
        type: 'object',
        properties: { cmd: { type: 'string' }, token: { type: 'string', secret: true } },
      },
      retryPolicy: { count: 1, delay: 0 },
    });
    await rt.action({ ref: 'rt.dup', runner: 'noop', retryPolicy: { count: 5, delay: 30 } });
  });
  afterAll(async () => rt?.stop());

  it('retries exactly `count` times with exponential back-off, then stops', async () => {
    const [first] = await rt.request('rt.flaky', 1, { parameters: { cmd: 'echo attempt; exit 3' } });
    const rows = await rt.until(
      'four attempts, all failed',
      async () => {
        const c = await chain(rt, first!);
        return c.length === 4 && c.every((r) => r.status === 'failed') ? c : undefined;
      },
      20_000,
    );
    await sleep(800);
    expect(await chain(rt, first!)).toHaveLength(4);
    expect(rows.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    expect(rows.slice(1).map((r) => r.context.retry_delay_seconds)).toEqual([0.2, 0.4, 0.8]);
    expect(rows.slice(1).map((r) => r.context.retry_of)).toEqual(rows.slice(0, 3).map((r) => r.id));
    for (let i = 1; i < 4; i++) {
      // The retry did not start before its back-off had passed.
      const waited = rows[i]!.startedAt!.getTime() - rows[i - 1]!.finishedAt!.getTime();
      expect(waited).toBeGreaterThanOrEqual((rows[i]!.context.retry_delay_seconds as number) * 1000 - 50);
      expect(rows[i]!.parameters).toEqual(rows[0]!.parameters);
    }
    expect(rows.every((r) => r.error?.type === 'exit_code')).toBe(true);
  });

  it('retries only the outcomes listed in `on`', async () => {
    const [failed] = await rt.request('rt.only_timeout', 1, { parameters: { cmd: 'exit 1' } });
    const [slow] = await rt.request('rt.only_timeout', 1, {
      parameters: { cmd: 'sleep 5' },
      timeoutSeconds: 1,
    });
    await rt.waitFor([failed!, slow!], TERMINAL);
    const c = await rt.until(
      'two retries of the timeout',
      async () => {
        const x = await chain(rt, slow!);
        return x.length === 3 && x.every((r) => TERMINAL.includes(r.status)) ? x : undefined;
      },
      20_000,
    );
    expect(c.map((r) => r.status)).toEqual(['timeout', 'timeout', 'timeout']);
    await rt.until('follow-up done', async () =>
      (await rt.get(failed!)).completionHandledAt ? true : undefined,
    );
    expect(await chain(rt, failed!)).toHaveLength(1);
  });

  it('a zero delay retries at once, with the secret parameters of the original', async () => {
    const [first] = await rt.request('rt.now', 1, {
      parameters: { cmd: 'exit 1' },
      secrets: { token: 'tok-123456' },
    });
    const c = await rt.until('the retry ended', async () => {
      const x = await chain(rt, first!);
      return x.length === 2 && TERMINAL.includes(x[1]!.status) ? x : undefined;
    });
    expect(c[1]!.runAfter).toBeNull();
    const secrets = await rt.store.db
      .select()
      .from(executionSecrets)
      .where(inArray(executionSecrets.executionId, [c[0]!.id, c[1]!.id]));
    expect(secrets).toHaveLength(2);
    expect(secrets[0]!.ciphertext).toBe(secrets[1]!.ciphertext);
  });

  it('one completion never makes two retries, however often it is delivered', async () => {
    const ids = await rt.request('rt.dup', 3, { status: 'failed', silent: true });
    await rt.store.db.update(executions).set({ finishedAt: new Date() }).where(inArray(executions.id, ids));
    // Delivered many times at once, on the bus and straight to the handler.
    await Promise.all([
      ...ids.flatMap((id) =>
        Array.from({ length: 5 }, () =>
          rt.bus.publish(TOPICS.executionCompleted, { execution_id: id, status: 'failed' }),
        ),
      ),
      rt.completion.handle([...ids, ...ids]),
      rt.completion.handle(ids),
    ]);
    await rt.until('handled', async () => {
      const rows = await rt.all(ids);
      return rows.every((r) => r.completionHandledAt) ? true : undefined;
    });
    await sleep(300);
    const retries = await rt.store.db.select().from(executions).where(inArray(executions.retryOf, ids));
    expect(retries).toHaveLength(3);
    expect(retries.every((r) => r.status === 'delayed' && r.attempt === 2)).toBe(true);
    await rt.store.db.update(executions).set({ status: 'canceled' }).where(inArray(executions.retryOf, ids));
  });

  it('tells the parent workflow only about the last attempt', async () => {
    const [parent] = await rt.request('rt.flaky', 1, { status: 'running', silent: true });
    const [child] = await rt.request('rt.now', 1, { parameters: { cmd: 'exit 1' }, parentId: parent! });
    const c = await rt.until('the retry ended', async () => {
      const x = await chain(rt, child!);
      return x.length === 2 && x[1]!.completionHandledAt ? x : undefined;
    });
    expect(c[1]!.parentId).toBe(parent);
    expect(childHook.map((e) => e.id)).toEqual([c[1]!.id]);
    await rt.store.db.update(executions).set({ status: 'canceled' }).where(eq(executions.id, parent!));
  });
});
