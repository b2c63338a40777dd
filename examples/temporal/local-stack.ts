// Everything the example needs apart from Temporal, on loopback: the test OAuth provider (single-use
// rotating refresh tokens with reuse detection, and a protected `/resource` that refuses stale
// tokens) and Tokenwarden's HTTP API on a SQLite file. Set up through the HTTP API, as an operator
// would (the SDK tests' cluster helper, on a SQLite file of its own). Tests use it too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProvider, TestProviderOptions } from '@tokenwarden/testkit';
import { startCluster } from '../../packages/client/test/helpers/cluster.ts';

export interface LocalStackOptions {
  /** Tokenwarden replicas sharing one SQLite file. Default 1. */
  replicas?: number;
  provider?: TestProviderOptions;
  /** Tokenwarden's background refresher. Default false: refreshes come from the workers. */
  scheduler?: boolean;
}

export interface LocalStack {
  provider: TestProvider;
  /** Base URL of each Tokenwarden replica. */
  urls: string[];
  /** A service client's API key: token.read on every owner of provider `test`. */
  apiKey: string;
  /** The protected API: 401 for a stale token. */
  resourceUrl: string;
  /** Imports a fresh grant of the test provider; `expiresIn: 0` makes it expired already. */
  importConnection(options?: { expiresIn?: number; owner?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const dir = mkdtempSync(join(tmpdir(), 'tokenwarden-temporal-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  try {
    cluster = await startCluster({
      dir,
      replicas: options.replicas,
      provider: options.provider,
      scheduler: options.scheduler,
    });
  } catch (error) {
    removeDir();
    throw error;
  }
  return {
    provider: cluster.provider,
    urls: cluster.urls,
    apiKey: cluster.apiKey,
    resourceUrl: `${cluster.provider.url}/resource`,
    importConnection: ({ expiresIn = 3600, owner } = {}) =>
      cluster.importConnection({ expiresIn, owner }),
    async close() {
      await cluster.close();
      removeDir();
    },
  };
}
