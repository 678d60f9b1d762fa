/**
 * Workflow shapes the benchmarks share (plain definitions, before parsing): the platform scenarios
 * create them through the API, the engine micro-benchmark drives them through the pure engine.
 */

/** `n` parallel branches of `core.noop`, started by one task and joined by another. */
export const branches = (n: number) => ({
  tasks: [
    { name: 'split', action: 'core.noop', next: [{ do: Array.from({ length: n }, (_, i) => `b${i}`) }] },
    ...Array.from({ length: n }, (_, i) => ({
      name: `b${i}`,
      action: 'core.noop',
      next: [{ when: '{{ succeeded() }}', do: 'join' }],
    })),
    { name: 'join', action: 'core.noop', join: 'all' },
  ],
});
