import { describe, expect, it } from 'vitest';
import { canTransition, MACHINES, type Machine } from '../../src/domain/status.ts';

const INITIAL: Record<keyof typeof MACHINES, string> = {
  execution: 'requested',
  inquiry: 'pending',
  enforcement: 'created',
};

function reachable(m: Machine, from: string): Set<string> {
  const seen = new Set([from]);
  const todo = [from];
  while (todo.length) {
    for (const n of m[todo.pop()!] ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        todo.push(n);
      }
    }
  }
  return seen;
}

describe.each(Object.entries(MACHINES) as [keyof typeof MACHINES, Machine][])(
  '%s status machine',
  (name, m) => {
    const states = Object.keys(m);

    it('only names statuses it defines, and never loops a status onto itself', () => {
      for (const [from, tos] of Object.entries(m)) {
        for (const to of tos) {
          expect(states, `${from} → ${to}`).toContain(to);
          expect(to).not.toBe(from);
        }
      }
    });

    it('reaches every status from the initial one', () => {
      expect([...reachable(m, INITIAL[name])].sort()).toEqual([...states].sort());
    });

    it('lets every non-terminal status reach a terminal one (nothing can be stuck by design)', () => {
      for (const s of states) {
        const terminals = [...reachable(m, s)].filter((x) => m[x]!.length === 0);
        expect(terminals.length, `${s} cannot finish`).toBeGreaterThan(0);
      }
    });

    it('allows exactly the transitions of the table, for every pair', () => {
      for (const from of [...states, 'bogus']) {
        for (const to of [...states, 'bogus']) {
          expect(canTransition(m, from, to)).toBe((m[from] ?? []).includes(to));
        }
      }
    });
  },
);

describe('execution status specifics', () => {
  const m = MACHINES.execution;
  it.each([
    ['succeeded', 'running'],
    ['failed', 'requested'],
    ['canceled', 'running'],
    ['abandoned', 'running'],
    ['timeout', 'succeeded'],
  ])('a terminal status never moves (%s → %s)', (from, to) => expect(canTransition(m, from, to)).toBe(false));
  it.each([
    ['requested', 'scheduled'],
    ['scheduled', 'running'],
    ['running', 'succeeded'],
    ['running', 'abandoned'],
    ['scheduled', 'requested'],
    ['running', 'canceling'],
    ['canceling', 'canceled'],
    ['delayed', 'requested'],
  ])('the lifecycle moves %s → %s', (from, to) => expect(canTransition(m, from, to)).toBe(true));
});
