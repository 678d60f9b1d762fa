import { describe, expect, it } from 'vitest';
import { StateCache } from '../../src/services/workflows/advance.ts';
import type { OpenState } from '../../src/services/workflows/run-store.ts';

const open = (tag: string) => ({ state: { tag }, secretNames: [] }) as unknown as OpenState;

describe('StateCache', () => {
  it('gives a state back only at the version it was stored at, and only once', () => {
    const c = new StateCache();
    const a = open('a');
    c.put(1, 3, a);
    expect(c.take(1, 2)).toBeUndefined(); // another writer moved the run on: read the database
    expect(c.take(1, 3)).toBeUndefined(); // the mismatch dropped it
    c.put(1, 4, a);
    expect(c.take(1, 4)).toBe(a);
    expect(c.take(1, 4)).toBeUndefined(); // taken out while an advance works on it
    expect(c.size).toBe(0);
  });

  it('keeps the most recently stored runs, up to its size', () => {
    const c = new StateCache(2);
    c.put(1, 0, open('1'));
    c.put(2, 0, open('2'));
    c.put(1, 1, open('1b')); // stored again: now the newest
    c.put(3, 0, open('3'));
    expect(c.size).toBe(2);
    expect(c.take(2, 0)).toBeUndefined();
    expect(c.take(1, 1)).toBeDefined();
    expect(c.take(3, 0)).toBeDefined();
  });
});
