import { describe, expect, it } from 'vitest';
import { Batcher, BatcherClosedError } from '../../src/services/runtime/batcher.ts';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('Batcher', () => {
  it('gathers the items added in one turn into one batch and resolves each with its result', async () => {
    const seen: number[][] = [];
    const b = new Batcher<number, number>(async (xs) => {
      seen.push(xs);
      return xs.map((x) => x * 10);
    });
    const out = await Promise.all([1, 2, 3].map((x) => b.add(x)));
    expect(out).toEqual([10, 20, 30]);
    expect(seen).toEqual([[1, 2, 3]]);
  });

  it('does not delay a lone item beyond the current turn', async () => {
    const b = new Batcher<number>(async () => {});
    const t0 = performance.now();
    await b.add(1);
    expect(performance.now() - t0).toBeLessThan(50);
    expect(b.batches).toBe(1);
  });

  it('splits at maxBatchSize and keeps one batch in flight at a time by default', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const sizes: number[] = [];
    const b = new Batcher<number>(
      async (xs) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        sizes.push(xs.length);
        await tick();
        inFlight--;
      },
      { maxBatchSize: 4 },
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => b.add(i)));
    expect(sizes).toEqual([4, 4, 2]);
    expect(maxInFlight).toBe(1);
  });

  it('lets items that arrive during a batch form the next one', async () => {
    const sizes: number[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const b = new Batcher<number>(async (xs) => {
      sizes.push(xs.length);
      if (sizes.length === 1) await gate;
    });
    const first = b.add(0);
    await tick();
    await tick();
    const later = [1, 2, 3, 4, 5].map((x) => b.add(x));
    release();
    await Promise.all([first, ...later]);
    expect(sizes).toEqual([1, 5]);
  });

  it('runs up to `concurrency` batches at once', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const b = new Batcher<number>(
      async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
      },
      { maxBatchSize: 2, concurrency: 3 },
    );
    await Promise.all(Array.from({ length: 12 }, (_, i) => b.add(i)));
    expect(maxInFlight).toBe(3);
  });

  it('waits up to maxDelayMs for company', async () => {
    const sizes: number[] = [];
    const b = new Batcher<number>(
      async (xs) => {
        sizes.push(xs.length);
      },
      { maxDelayMs: 30 },
    );
    const a = b.add(1);
    await new Promise((r) => setTimeout(r, 5));
    const c = b.add(2);
    await Promise.all([a, c]);
    expect(sizes).toEqual([2]);
  });

  it('isolates a failing item: its neighbours succeed, it alone rejects', async () => {
    const calls: number[][] = [];
    const b = new Batcher<number, string>(async (xs) => {
      calls.push(xs);
      if (xs.includes(2)) throw new Error('poisoned 2');
      return xs.map((x) => `ok ${x}`);
    });
    const results = await Promise.allSettled([1, 2, 3].map((x) => b.add(x)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('poisoned 2');
    expect((results[2] as PromiseFulfilledResult<string>).value).toBe('ok 3');
    expect(calls).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it('without isolation a failure rejects the whole batch', async () => {
    const b = new Batcher<number>(
      async () => {
        throw new Error('down');
      },
      { isolateFailures: false },
    );
    const results = await Promise.allSettled([1, 2].map((x) => b.add(x)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(b.batches).toBe(1);
  });

  it('close() processes what waits, then refuses new items', async () => {
    const done: number[] = [];
    const b = new Batcher<number>(async (xs) => {
      await tick();
      done.push(...xs);
    });
    const p = [b.add(1), b.add(2)];
    await b.close();
    expect(done).toEqual([1, 2]);
    await Promise.all(p);
    await expect(b.add(3)).rejects.toBeInstanceOf(BatcherClosedError);
    expect(b.waiting).toBe(0);
    expect(b.active).toBe(0);
  });

  it('refuses nonsensical options', () => {
    const f = async () => {};
    expect(() => new Batcher(f, { maxBatchSize: 0 })).toThrow(RangeError);
    expect(() => new Batcher(f, { concurrency: 1.5 })).toThrow(RangeError);
    expect(() => new Batcher(f, { maxDelayMs: -1 })).toThrow(RangeError);
  });
});
