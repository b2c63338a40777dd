import { availableParallelism } from 'node:os';
import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Load the workspace packages from their TypeScript sources, as the child processes do.
// Without "module": Node loads the packages left to it, and @opentelemetry/api's "module" build has
// extensionless imports that only a bundler resolves.
const conditions = [
  'tokenwarden-source',
  ...defaultServerConditions.filter((condition) => condition !== 'module'),
];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['tokenwarden-source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'sdks/*/*.test.ts'],
    // One Postgres server for the run (or TOKENWARDEN_TEST_DATABASE_URL); a database per test.
    // One Temporal dev server for the run (or TEMPORAL_ADDRESS); a namespace per test.
    globalSetup: [
      'packages/testkit/src/postgres/global-setup.ts',
      'packages/testkit/src/temporal/global-setup.ts',
    ],
    pool: 'forks',
    // At least two files at once (vitest's default, one less than the cores, is one on two): most
    // files wait on child processes, leases, servers and sockets rather than on a core.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
