/**
 * The per-action policies, read from the action's stored documents: concurrency limit and retry.
 * Pure functions; the documents were validated by the API or the pack loader, but a malformed one
 * (written by an older version, or by hand) is treated as absent rather than trusted.
 */
import { createHash } from 'node:crypto';

export interface ConcurrencyPolicy {
  limit: number;
  /** What happens to an execution beyond the limit: wait for a slot, or be canceled. */
  mode: 'delay' | 'cancel';
  groupBy: string[];
}

export function parseConcurrencyPolicy(doc: unknown): ConcurrencyPolicy | null {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return null;
  const d = doc as Record<string, unknown>;
  const limit = d.limit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) return null;
  const mode = d.action === 'cancel' ? 'cancel' : 'delay';
  const groupBy = Array.isArray(d.group_by)
    ? d.group_by.filter((x): x is string => typeof x === 'string')
    : [];
  return { limit, mode, groupBy };
}

/** JSON with object keys sorted, so that equal values give equal keys. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

const MAX_GROUP_KEY = 200;

/**
 * The concurrency group of an execution: the action ref, plus the values of the `group_by`
 * parameters. Long keys are shortened to a hash (equal values still give equal keys).
 */
export function policyGroupKey(
  actionRef: string,
  policy: ConcurrencyPolicy,
  parameters: Record<string, unknown>,
): string {
  if (policy.groupBy.length === 0) return actionRef;
  const values = stableJson(policy.groupBy.map((p) => (Object.hasOwn(parameters, p) ? parameters[p] : null)));
  const key = `${actionRef}|${values}`;
  if (key.length <= MAX_GROUP_KEY) return key;
  return `${actionRef}|#${createHash('sha256').update(values).digest('base64url')}`;
}

export type RetryOn = 'failed' | 'timeout' | 'abandoned';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  count: number;
  /** Seconds before the first retry. */
  delay: number;
  backoff: 'constant' | 'linear' | 'exponential';
  /** Upper bound of a delay, in seconds. */
  maxDelay: number | undefined;
  on: RetryOn[];
}

const RETRY_ON: readonly RetryOn[] = ['failed', 'timeout', 'abandoned'];

export function parseRetryPolicy(doc: unknown): RetryPolicy | null {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return null;
  const d = doc as Record<string, unknown>;
  const count = d.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) return null;
  const num = (v: unknown): number | undefined =>
    typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
  const backoff = d.backoff === 'linear' || d.backoff === 'exponential' ? d.backoff : 'constant';
  const on = Array.isArray(d.on) ? d.on.filter((x): x is RetryOn => RETRY_ON.includes(x as RetryOn)) : [];
  return {
    count,
    delay: num(d.delay) ?? 0,
    backoff,
    maxDelay: num(d.max_delay),
    on: on.length ? on : ['failed', 'timeout'],
  };
}

/**
 * Seconds to wait before retry number `retry` (1 = the first retry): `delay` (constant),
 * `delay × retry` (linear) or `delay × 2^(retry-1)` (exponential), at most `max_delay`.
 */
export function retryDelaySeconds(policy: RetryPolicy, retry: number): number {
  const n = Math.max(1, retry);
  let d = policy.delay;
  if (policy.backoff === 'linear') d = policy.delay * n;
  else if (policy.backoff === 'exponential') d = policy.delay * 2 ** Math.min(n - 1, 60);
  if (policy.maxDelay !== undefined) d = Math.min(d, policy.maxDelay);
  return Math.min(d, 365 * 86_400);
}

/**
 * Whether an execution that ended with `status` at attempt `attempt` (1 = the first run) is retried.
 */
export function shouldRetry(policy: RetryPolicy | null, status: string, attempt: number): boolean {
  if (!policy) return false;
  return policy.on.includes(status as RetryOn) && attempt <= policy.count;
}
