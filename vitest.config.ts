import { defineConfig } from 'vitest/config';

// Three projects: pure unit tests (no database), and the store/API suites run once per backend.
const integration = ['test/api/**/*.test.ts', 'test/store/**/*.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
      { extends: true, test: { name: 'services', include: ['test/services/**/*.test.ts'] } },
      { extends: true, test: { name: 'cli', include: ['test/cli/**/*.test.ts'], testTimeout: 120_000 } },
      // The web UI's component tests, in a simulated browser (files that need a server say so).
      {
        extends: true,
        test: { name: 'web', include: ['web/test/**/*.test.{ts,tsx}'], environment: 'happy-dom' },
      },
      {
        extends: true,
        test: { name: 'pglite', include: integration, env: { ATTUNE_TEST_BACKEND: 'pglite' } },
      },
      {
        extends: true,
        test: { name: 'postgres', include: integration, env: { ATTUNE_TEST_BACKEND: 'postgres' } },
      },
    ],
  },
});
