// A Tokenwarden cluster for SDK tests and the SDK benchmark: N replicas of the real HTTP server
// (buildServer) on loopback, each with its own store pool on one database, and a test OAuth
// provider. Providers, the service client and connections are set up through the HTTP API, as an
// operator would.
import { randomBytes } from 'node:crypto';
import type { ServerOptions as HttpsOptions } from 'node:https';
import { join } from 'node:path';
import { KeyRing, openPostgresStore, openSqliteStore, type KyselyStore } from '@tokenwarden/core';
import { buildServer, hashApiKey, type BuildServerOptions } from '@tokenwarden/server';
import { TestProvider, type IssuedGrant, type TestProviderOptions } from '@tokenwarden/testkit';

export interface ClusterOptions {
  replicas?: number;
  /** A Postgres database shared by the replicas; otherwise a SQLite file in `dir`. */
  databaseUrl?: string;
  dir?: string;
  provider?: TestProviderOptions;
  /** Broker options of every replica (maxWaitMs, backoff, ...). */
  broker?: BuildServerOptions['broker'];
  /** The replicas' background refresher. Default false: refreshes come from the callers. */
  scheduler?: boolean;
  /** One more replica per entry, serving HTTPS only with these options; its URL follows the others. */
  https?: HttpsOptions[];
}

export interface Cluster {
  provider: TestProvider;
  /** Base URL of each replica. */
  urls: string[];
  /** A service client's key with token.read and connections.write on provider `test`. */
  apiKey: string;
  /** Imports a grant of the test provider (a fresh one unless given); `expiresIn: 0` makes it expired already. */
  importConnection(options?: {
    expiresIn?: number;
    owner?: string;
    grant?: IssuedGrant;
  }): Promise<string>;
  /** An API call with the admin key on the first replica; throws on a non-2xx answer. */
  admin(method: string, path: string, body: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const provider = await TestProvider.start(options.provider);
  const keys = KeyRing.generate('k1').serialize();
  const adminKey = `tw_admin_${randomBytes(32).toString('base64url')}`;
  const stores: KyselyStore[] = [];
  const apps: Awaited<ReturnType<typeof buildServer>>[] = [];
  const close = async () => {
    await Promise.allSettled(apps.map((app) => app.close()));
    await Promise.allSettled(stores.map((store) => store.close()));
    await provider.close();
  };
  try {
    const urls: string[] = [];
    const plain = Array.from({ length: options.replicas ?? 1 }, () => undefined);
    for (const https of [...plain, ...(options.https ?? [])]) {
      const store = options.databaseUrl
        ? openPostgresStore({ connectionString: options.databaseUrl, poolMax: 8 })
        : openSqliteStore({ path: join(options.dir ?? '.', 'tokenwarden.sqlite') });
      stores.push(store);
      await store.migrate();
      const app = await buildServer({
        store,
        keyRing: KeyRing.parse(keys),
        adminKeyHash: hashApiKey(adminKey),
        logger: false,
        broker: options.broker,
        scheduler: options.scheduler ?? false,
        docs: false,
        https,
      });
      apps.push(app);
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      // Fastify names the scheme after its own https option; the server here is built by ours.
      urls.push(https ? url.replace(/^http:/, 'https:') : url);
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
      name: 'sdk-tests',
      grants: [
        {
          owner: '*',
          provider: 'test',
          actions: ['token.read', 'connections.read', 'connections.write'],
        },
      ],
    })) as { api_key: string };

    return {
      provider,
      urls,
      apiKey: client.api_key,
      async importConnection({ expiresIn = 0, owner, grant = provider.issueGrant() } = {}) {
        const created = (await call(client.api_key, 'POST', '/v1/connections', {
          provider: 'test',
          owner: owner ?? `user-${randomBytes(4).toString('hex')}`,
          access_token: grant.access_token,
          refresh_token: grant.refresh_token,
          expires_in: expiresIn,
        })) as { id: string };
        return created.id;
      },
      admin: (method, path, body) => call(adminKey, method, path, body),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Calls the API at `baseUrl` with a key; throws on a non-2xx answer (naming the error code). */
export function api(baseUrl: string) {
  return async (key: string, method: string, path: string, body: unknown): Promise<unknown> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as { error?: string; message?: string };
    // Setup answers describe the bad input, never a secret.
    if (!res.ok)
      throw new Error(`${method} ${path}: ${res.status} ${answer.error}: ${answer.message}`);
    return answer;
  };
}
