/** Small constructors for run outcomes. */
import type { RunError, RunOutcome, RunStatus } from './runner.ts';

const NOT_TRUNCATED = { stdout: false, stderr: false } as const;

export const elapsedSince = (started: number): number => Math.round(performance.now() - started);

export function success(started: number, result: unknown): RunOutcome {
  return { status: 'succeeded', result, truncated: { ...NOT_TRUNCATED }, durationMs: elapsedSince(started) };
}

/** An outcome that ended before any process or request produced output. */
export function failure(
  started: number,
  status: Exclude<RunStatus, 'succeeded'>,
  error: RunError,
  result: unknown = null,
): RunOutcome {
  return { status, result, error, truncated: { ...NOT_TRUNCATED }, durationMs: elapsedSince(started) };
}

export const invalidParameters = (started: number, message: string): RunOutcome =>
  failure(started, 'failed', { type: 'invalid_parameters', message });

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
