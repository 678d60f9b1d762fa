/** The runners that need no process: noop, echo, sleep. */
import { elapsedSince, failure, invalidParameters, success } from './outcome.ts';
import { StreamCapture } from './output.ts';
import type { RunOutcome, RunRequest } from './runner.ts';
import { MAX_TIMER_MS, timeoutMsOf } from './timing.ts';

export const runNoop = (_req: RunRequest, started: number): RunOutcome => success(started, null);

export function runEcho(req: RunRequest, started: number): RunOutcome {
  const message = req.parameters.message ?? null;
  if (message !== null && typeof message !== 'string') {
    return invalidParameters(started, `parameter 'message' must be a string, got ${typeof message}`);
  }
  const out = new StreamCapture('stdout', req.limits.maxOutputBytes, req.onOutput);
  if (message !== null && !req.secretParameters.includes('message')) {
    out.push(Buffer.from(`${message}\n`));
    out.end();
  }
  return { ...success(started, { message }), truncated: { stdout: out.truncated, stderr: false } };
}

export async function runSleep(req: RunRequest, started: number): Promise<RunOutcome> {
  const seconds = req.parameters.seconds;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    return invalidParameters(started, "parameter 'seconds' must be a number ≥ 0");
  }
  const timeoutMs = timeoutMsOf(req.timeoutSeconds);
  const sleepMs = seconds * 1000;
  const waitMs = timeoutMs !== undefined ? Math.min(sleepMs, timeoutMs) : sleepMs;
  const ended = await delay(waitMs, req.signal);
  if (ended === 'aborted') {
    return failure(started, 'canceled', {
      type: 'canceled',
      message: `canceled after ${elapsedSince(started)} ms`,
    });
  }
  if (waitMs < sleepMs) {
    return failure(started, 'timeout', {
      type: 'timeout',
      message: `timed out after ${req.timeoutSeconds} s (asked to sleep ${seconds} s)`,
    });
  }
  return success(started, { seconds });
}

/** Waits `ms` (any length) unless `signal` aborts first. */
export function delay(ms: number, signal: AbortSignal): Promise<'elapsed' | 'aborted'> {
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve) => {
    const deadline = Date.now() + ms;
    let timer: NodeJS.Timeout;
    const onAbort = () => {
      clearTimeout(timer);
      resolve('aborted');
    };
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) {
        signal.removeEventListener('abort', onAbort);
        resolve('elapsed');
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    arm();
  });
}
