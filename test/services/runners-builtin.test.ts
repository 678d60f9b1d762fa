import { describe, expect, it } from 'vitest';
import { runAction } from '../../src/services/worker/runners/runner.ts';
import { makeRequest } from './runners-helpers.ts';

describe('noop, echo, sleep', () => {
  it('noop succeeds with a null result', async () => {
    const { req } = makeRequest({ runner: 'noop', parameters: { anything: 1 } });
    const out = await runAction(req);
    expect(out).toMatchObject({
      status: 'succeeded',
      result: null,
      truncated: { stdout: false, stderr: false },
    });
    expect(out.error).toBeUndefined();
    expect(out.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('echo returns its message and prints it', async () => {
    const r = makeRequest({ runner: 'echo', parameters: { message: 'héllo wörld' } });
    const out = await runAction(r.req);
    expect(out).toMatchObject({ status: 'succeeded', result: { message: 'héllo wörld' } });
    expect(r.text('stdout')).toBe('héllo wörld\n');
  });

  it('echo without a message returns null; a non-string message is refused', async () => {
    expect((await runAction(makeRequest({ runner: 'echo' }).req)).result).toEqual({ message: null });
    const bad = await runAction(makeRequest({ runner: 'echo', parameters: { message: { a: 1 } } }).req);
    expect(bad).toMatchObject({ status: 'failed', error: { type: 'invalid_parameters' } });
    expect(bad.error?.message).toContain("'message'");
  });

  it('echo does not print a secret message', async () => {
    const r = makeRequest({
      runner: 'echo',
      parameters: { message: 'hunter22' },
      secretParameters: ['message'],
    });
    const out = await runAction(r.req);
    expect(out.status).toBe('succeeded');
    expect(r.events).toEqual([]);
  });

  it('echo output obeys the output cap', async () => {
    const r = makeRequest({
      runner: 'echo',
      parameters: { message: 'x'.repeat(100) },
      limits: { maxOutputBytes: 10 },
    });
    const out = await runAction(r.req);
    expect(r.text('stdout')).toBe('x'.repeat(10));
    expect(out.truncated.stdout).toBe(true);
  });

  it('sleep waits the given seconds', async () => {
    const t = performance.now();
    const out = await runAction(makeRequest({ runner: 'sleep', parameters: { seconds: 0.2 } }).req);
    expect(out).toMatchObject({ status: 'succeeded', result: { seconds: 0.2 } });
    expect(performance.now() - t).toBeGreaterThanOrEqual(195);
  });

  it('sleep obeys the timeout', async () => {
    const t = performance.now();
    const out = await runAction(
      makeRequest({ runner: 'sleep', parameters: { seconds: 60 }, timeoutSeconds: 0.2 }).req,
    );
    expect(out).toMatchObject({ status: 'timeout', error: { type: 'timeout' } });
    expect(out.error?.message).toMatch(/timed out after 0.2 s/);
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('sleep can be canceled', async () => {
    const r = makeRequest({ runner: 'sleep', parameters: { seconds: 60 } });
    const t = performance.now();
    setTimeout(() => r.controller.abort(), 100);
    const out = await runAction(r.req);
    expect(out).toMatchObject({ status: 'canceled', error: { type: 'canceled' } });
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('sleep refuses a bad duration', async () => {
    for (const seconds of [-1, 'ten', null, Number.NaN]) {
      const out = await runAction(makeRequest({ runner: 'sleep', parameters: { seconds } }).req);
      expect(out).toMatchObject({ status: 'failed', error: { type: 'invalid_parameters' } });
    }
  });

  it('an execution canceled before it starts does not run', async () => {
    const r = makeRequest({ runner: 'local-shell-cmd', parameters: { cmd: 'echo ran' } });
    r.controller.abort();
    const out = await runAction(r.req);
    expect(out.status).toBe('canceled');
    expect(r.events).toEqual([]);
  });

  it('workflow and inquiry are not worker runners', async () => {
    for (const runner of ['workflow', 'inquiry'] as const) {
      const out = await runAction(makeRequest({ runner }).req);
      expect(out).toMatchObject({ status: 'failed', error: { type: 'unsupported_runner' } });
    }
  });

  it('a crashing output listener does not disturb the run', async () => {
    const r = makeRequest({ runner: 'local-shell-cmd', parameters: { cmd: 'echo a; echo b' } });
    r.req.onOutput = () => {
      throw new Error('listener bug');
    };
    const out = await runAction(r.req);
    expect(out).toMatchObject({ status: 'succeeded', result: { stdout: 'a\nb\n' } });
  });
});
