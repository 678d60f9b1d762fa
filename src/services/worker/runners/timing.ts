/** Timeouts of executions. */

/** The largest delay a Node timer accepts. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** An execution's timeout in milliseconds, or undefined when it has none (≤ 0 or not finite). */
export function timeoutMsOf(timeoutSeconds: number): number | undefined {
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) return undefined;
  return Math.min(Math.round(timeoutSeconds * 1000), MAX_TIMER_MS);
}
