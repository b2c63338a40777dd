// The server schemathesis runs against: a real `tokenwarden serve` process on loopback (SQLite in
// a fresh directory) whose outbound requests reach loopback only, with a test OAuth provider, and
// what lets a service client's requests reach real code: a provider, connections and a client
// with grants on them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestProvider } from '@tokenwarden/testkit';
import { ADMIN_KEY, serve, type Replica } from '../serve-process.ts';

/** What was seeded, for the run's dictionaries and for its report. */
export interface Seeded {
  /** Where a connect session may send its user back to (nothing listens there). */
  redirectUri: string;
  provider: string;
  /** Owners with a connection: the client reads and hands out for the first only. */
  owners: string[];
  connectionIds: string[];
  clientId: string;
  clientKey: string;
}

export interface FuzzTarget {
  url: string;
  adminKey: string;
  seeded: Seeded;
  /** The server's log so far (JSON lines on stdout and stderr). */
  log: () => string;
  /** Whether the process is still running and answers /healthz 200. */
  healthy: () => Promise<boolean>;
  close: () => Promise<void>;
}

const PROVIDER = 'seeded';
/** The server's outbound requests stay on this machine, whatever URLs the admin's run sets. */
const LOOPBACK_ONLY = new URL('./loopback-only.mjs', import.meta.url).href;
const READER = 'alice';
const WRITER = 'bob';

export async function startFuzzTarget(): Promise<FuzzTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-schemathesis-'));
  const provider = await TestProvider.start();
  let replica: Replica | undefined;
  try {
    replica = await serve(
      {
        TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
        TOKENWARDEN_LOG_LEVEL: 'warn',
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${LOOPBACK_ONLY}`.trim(),
      },
      ['--db', join(dir, 'tokenwarden.sqlite')],
      { cwd: dir },
    );
    let stdout = '';
    replica.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const seeded = await seed(replica.url, provider);
    const running = replica;
    return {
      url: running.url,
      adminKey: ADMIN_KEY,
      seeded,
      log: () => stdout + running.stderr(),
      async healthy() {
        if (running.child.exitCode !== null) return false;
        const response = await fetch(`${running.url}/healthz`).catch(() => undefined);
        return response?.status === 200;
      },
      async close() {
        running.child.kill('SIGTERM');
        await running.exited;
        await provider.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    replica?.child.kill('SIGKILL');
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * A provider on the test provider; a connection for each owner with tokens that live a year (a
 * hand-out does not need the provider) and a real refresh token (a rejection report refreshes);
 * a client that may read alice's connections and hand out their tokens, and write bob's.
 */
async function seed(url: string, provider: TestProvider): Promise<Seeded> {
  const admin = async (method: string, path: string, body: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(`seeding ${method} ${path}: ${response.status}`);
    return answer;
  };
  await admin('PUT', `/v1/providers/${PROVIDER}`, {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
    // So that connect sessions, introspection and revocation at deletion reach the provider.
    authorize_url: provider.authorizeUrl,
    introspection_url: provider.introspectionUrl,
    revocation_url: provider.revocationUrl,
  });
  const connectionIds: string[] = [];
  for (const owner of [READER, WRITER]) {
    const grant = provider.issueGrant({ accessTokenTtlSeconds: 365 * 24 * 3600 });
    const created = await admin('POST', '/v1/connections', {
      provider: PROVIDER,
      owner,
      access_token: grant.access_token,
      refresh_token: grant.refresh_token,
      expires_in: grant.expires_in,
    });
    connectionIds.push(created.id as string);
  }
  const client = await admin('POST', '/v1/clients', {
    name: 'schemathesis',
    grants: [
      { owner: READER, provider: PROVIDER, actions: ['token.read', 'connections.read'] },
      { owner: WRITER, provider: PROVIDER, actions: ['connections.write'] },
    ],
  });
  return {
    redirectUri: 'http://127.0.0.1:9/connected',
    provider: PROVIDER,
    owners: [READER, WRITER],
    connectionIds,
    clientId: client.id as string,
    clientKey: client.api_key as string,
  };
}
