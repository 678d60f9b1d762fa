/** The pure parts of the runtime: policy documents, group keys, back-off. */
import { describe, expect, it } from 'vitest';
import {
  parseConcurrencyPolicy,
  parseRetryPolicy,
  policyGroupKey,
  retryDelaySeconds,
  shouldRetry,
} from '../../src/services/scheduler/policies.ts';

describe('concurrency policy', () => {
  it('reads valid documents and ignores malformed ones', () => {
    expect(parseConcurrencyPolicy({ limit: 2 })).toEqual({ limit: 2, mode: 'delay', groupBy: [] });
    expect(parseConcurrencyPolicy({ limit: 1, action: 'cancel', group_by: ['a', 3] })).toEqual({
      limit: 1,
      mode: 'cancel',
      groupBy: ['a'],
    });
    for (const bad of [null, [], 'x', {}, { limit: 0 }, { limit: 1.5 }, { limit: '2' }]) {
      expect(parseConcurrencyPolicy(bad)).toBeNull();
    }
  });

  it('groups by the values of the named parameters, whatever their key order', () => {
    const p = { limit: 1, mode: 'delay' as const, groupBy: ['host', 'opts'] };
    expect(policyGroupKey('x.y', { ...p, groupBy: [] }, { host: 'a' })).toBe('x.y');
    const k1 = policyGroupKey('x.y', p, { host: 'a', opts: { b: 1, a: 2 } });
    const k2 = policyGroupKey('x.y', p, { opts: { a: 2, b: 1 }, host: 'a', other: 1 });
    expect(k1).toBe(k2);
    expect(k1).toBe('x.y|["a",{"a":2,"b":1}]');
    expect(policyGroupKey('x.y', p, { host: 'b' })).toBe('x.y|["b",null]');
    const long = policyGroupKey('x.y', p, { host: 'h'.repeat(500) });
    expect(long.length).toBeLessThan(80);
    expect(long).toBe(policyGroupKey('x.y', p, { host: 'h'.repeat(500) }));
    expect(long).not.toBe(policyGroupKey('x.y', p, { host: 'h'.repeat(501) }));
  });
});

describe('retry policy', () => {
  it('reads valid documents with defaults and ignores malformed ones', () => {
    expect(parseRetryPolicy({ count: 2 })).toEqual({
      count: 2,
      delay: 0,
      backoff: 'constant',
      maxDelay: undefined,
      on: ['failed', 'timeout'],
    });
    expect(parseRetryPolicy({ count: 1, on: ['abandoned', 'bogus'] })?.on).toEqual(['abandoned']);
    for (const bad of [null, {}, { count: 0 }, { count: -1 }, { count: 'x' }])
      expect(parseRetryPolicy(bad)).toBeNull();
  });

  it('computes constant, linear and exponential back-off, capped by max_delay', () => {
    const p = (backoff: string, max?: number) =>
      parseRetryPolicy({ count: 9, delay: 2, backoff, max_delay: max })!;
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(p('constant'), n))).toEqual([2, 2, 2, 2]);
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(p('linear'), n))).toEqual([2, 4, 6, 8]);
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(p('exponential'), n))).toEqual([2, 4, 8, 16]);
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(p('exponential', 5), n))).toEqual([2, 4, 5, 5]);
    expect(Number.isFinite(retryDelaySeconds(p('exponential'), 5000))).toBe(true);
  });

  it('retries the listed outcomes while attempts remain', () => {
    const p = parseRetryPolicy({ count: 2 });
    expect(shouldRetry(p, 'failed', 1)).toBe(true);
    expect(shouldRetry(p, 'timeout', 2)).toBe(true);
    expect(shouldRetry(p, 'failed', 3)).toBe(false);
    expect(shouldRetry(p, 'canceled', 1)).toBe(false);
    expect(shouldRetry(p, 'abandoned', 1)).toBe(false);
    expect(shouldRetry(p, 'succeeded', 1)).toBe(false);
    expect(shouldRetry(null, 'failed', 1)).toBe(false);
  });
});
