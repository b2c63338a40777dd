// Everything the example needs apart from Temporal, on loopback: the test OAuth provider (single-use
// rotating refresh tokens with reuse detection, and a protected `/resource` that refuses stale
// tokens) and Tokenwarden's HTTP API on a SQLite file. Set up through the HTTP API, as an operator
// would. Tests use it too.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing, openSqliteStore, type KyselyStore } from '@tokenwarden/core';
import { buildServer, hashApiKey } from '@tokenwarden/server';
import { TestProvider, type TestProviderOptions } from '@tokenwarden/testkit';

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
  const provider = await TestProvider.start(options.provider);
  const dir = mkdtempSync(join(tmpdir(), 'tokenwarden-temporal-'));
  const keys = KeyRing.generate('k1').serialize();
  const adminKey = `tw_admin_${randomBytes(32).toString('base64url')}`;
  const stores: KyselyStore[] = [];
  const apps: Awaited<ReturnType<typeof buildServer>>[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled(apps.map((app) => app.close()));
    await Promise.allSettled(stores.map((store) => store.close()));
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const urls: string[] = [];
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      const store = openSqliteStore({ path: join(dir, 'tokenwarden.sqlite') });
      stores.push(store);
      await store.migrate();
      const app = await buildServer({
        store,
        keyRing: KeyRing.parse(keys),
        adminKeyHash: hashApiKey(adminKey),
        logger: false,
        scheduler: options.scheduler ?? false,
        docs: false,
      });
      apps.push(app);
      urls.push(await app.listen({ host: '127.0.0.1', port: 0 }));
    }

    const call = api(urls[0]!);
    await call(adminKey, 'PUT', '/v1/providers/test', {
      token_url: provider.tokenUrl,
      client_id: provider.clientId,
      client_secret: provider.clientSecret,
      rotates_refresh_tokens: options.provider?.rotation ?? true,
      reuse_detection: options.provider?.reuseDetection ?? true,
    });
    const client = (await call(adminKey, 'POST', '/v1/clients', {
      name: 'temporal-workers',
      grants: [{ owner: '*', provider: 'test', actions: ['token.read', 'connections.write'] }],
    })) as { api_key: string };

    return {
      provider,
      urls,
      apiKey: client.api_key,
      resourceUrl: `${provider.url}/resource`,
      async importConnection({ expiresIn = 3600, owner } = {}) {
        const grant = provider.issueGrant();
        const created = (await call(client.api_key, 'POST', '/v1/connections', {
          provider: 'test',
          owner: owner ?? `user-${randomBytes(4).toString('hex')}`,
          access_token: grant.access_token,
          refresh_token: grant.refresh_token,
          expires_in: expiresIn,
        })) as { id: string };
        return created.id;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

function api(baseUrl: string) {
  return async (key: string, method: string, path: string, body: unknown): Promise<unknown> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as { error?: string; message?: string };
    // Setup answers describe the bad input, never a secret.
    if (!res.ok) {
      throw new Error(`${method} ${path}: ${res.status} ${answer.error}: ${answer.message}`);
    }
    return answer;
  };
}
