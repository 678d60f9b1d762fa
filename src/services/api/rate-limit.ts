/**
 * A per-key token bucket: `limit` attempts at once, refilled evenly over `windowMs` (so `limit`
 * attempts per window in the long run). Used for login attempts per client address.
 *
 * The state lives in this process: with several API replicas each one counts on its own, which
 * still bounds a guessing attack to `limit × replicas` attempts per window.
 */

export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until the next attempt would be allowed (0 when allowed). */
  retryAfterS: number;
  /** True for the first refused attempt since the key was last allowed (to log once, not per hit). */
  firstRefusal: boolean;
}

interface Bucket {
  tokens: number;
  at: number;
  refused: boolean;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #perMs: number;

  constructor(
    readonly limit: number,
    readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
    this.#perMs = limit / windowMs;
  }

  /** Takes one attempt for `key`. */
  hit(key: string): RateDecision {
    const t = this.now();
    let b = this.#buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.limit, b.tokens + (t - b.at) * this.#perMs);
      b.at = t;
    } else {
      if (this.#buckets.size >= this.maxKeys) this.#sweep(t);
      b = { tokens: this.limit, at: t, refused: false };
      this.#buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.refused = false;
      return { allowed: true, retryAfterS: 0, firstRefusal: false };
    }
    const first = !b.refused;
    b.refused = true;
    return {
      allowed: false,
      retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000)),
      firstRefusal: first,
    };
  }

  /** Forgets every key whose bucket has refilled; if that is not enough, forgets the oldest half. */
  #sweep(t: number): void {
    for (const [k, b] of this.#buckets) {
      if (b.tokens + (t - b.at) * this.#perMs >= this.limit) this.#buckets.delete(k);
    }
    if (this.#buckets.size >= this.maxKeys) {
      let n = Math.floor(this.#buckets.size / 2);
      for (const k of this.#buckets.keys()) {
        if (n-- <= 0) break;
        this.#buckets.delete(k);
      }
    }
  }

  get size(): number {
    return this.#buckets.size;
  }
}
