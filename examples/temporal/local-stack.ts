// Everything the example needs apart from Temporal, on loopback: the test OAuth provider (single-use
// rotating refresh tokens with reuse detection, and a protected `/resource` that refuses stale
// tokens) and Tokenwarden's HTTP API on a SQLite file. Set up through the HTTP API, as an operator
// would (the SDK tests' cluster helper, on a SQLite file of its own). Tests use it too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IssuedGrant, TestProvider, TestProviderOptions } from '@tokenwarden/testkit';
import { api, startCluster } from '../../packages/client/test/helpers/cluster.ts';

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
  /** A service client's API key: token.read and connections.write on every owner of provider `test`. */
  apiKey: string;
  /** The protected API: 401 for a stale token. */
  resourceUrl: string;
  /** Imports a grant of the test provider (a fresh one unless given); `expiresIn: 0` makes it expired already. */
  importConnection(options?: {
    expiresIn?: number;
    owner?: string;
    grant?: IssuedGrant;
  }): Promise<string>;
  /**
   * The owner revokes the app's access at the provider (RFC 7009, with the grant's refresh
   * token): every access and refresh token of the grant stops working.
   */
  revokeAtProvider(grant: IssuedGrant): Promise<void>;
  /**
   * The owner authorized again: a new grant's tokens go to the same connection through
   * `PUT /v1/connections/{id}/tokens` with the service client's key, as a web backend does.
   */
  reauthorize(connectionId: string): Promise<{ status: string; version: number }>;
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
    importConnection: ({ expiresIn = 3600, owner, grant } = {}) =>
      cluster.importConnection({ expiresIn, owner, grant }),
    async revokeAtProvider(grant) {
      const response = await fetch(cluster.provider.revocationUrl, {
        method: 'POST',
        body: new URLSearchParams({
          token: grant.refresh_token,
          token_type_hint: 'refresh_token',
          client_id: cluster.provider.clientId,
          client_secret: cluster.provider.clientSecret,
        }),
      });
      if (!response.ok) throw new Error(`the provider refused the revocation: ${response.status}`);
    },
    async reauthorize(connectionId) {
      const grant = cluster.provider.issueGrant();
      return (await api(cluster.urls[0]!)(
        cluster.apiKey,
        'PUT',
        `/v1/connections/${encodeURIComponent(connectionId)}/tokens`,
        {
          access_token: grant.access_token,
          refresh_token: grant.refresh_token,
          expires_in: grant.expires_in,
        },
      )) as { status: string; version: number };
    },
    async close() {
      await cluster.close();
      removeDir();
    },
  };
}
