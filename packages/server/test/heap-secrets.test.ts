// Refresh tokens out of memory: after a refresh, a heap snapshot of the running server (taken by
// Node on a signal, which runs a full garbage collection first) holds no trace of the refresh
// token that was imported and redeemed; the access token handed out is there (the
// opened-token cache), which shows the search finds what the heap holds, until the cache is off.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestProvider } from '@tokenwarden/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, SLOW, stop, type Server } from './cli-process.ts';
import { ADMIN_KEY, call } from './serve-process.ts';

const KEYS = `k1:${Buffer.alloc(32, 9).toString('base64')}`;

let dir: string;
let provider: TestProvider;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-heap-'));
  provider = await TestProvider.start();
});

afterAll(async () => {
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** SIGUSR2, then the snapshot Node wrote (`--heapsnapshot-signal`), once it is complete. */
async function heapSnapshot(server: Server, snapshots: string): Promise<string> {
  const before = new Set(readdirSync(snapshots));
  server.child.kill('SIGUSR2');
  for (let tries = 0; tries < 600; tries += 1) {
    await sleep(100);
    const name = readdirSync(snapshots).find((file) => !before.has(file));
    if (name === undefined) continue;
    const path = join(snapshots, name);
    const size = statSync(path).size;
    await sleep(200);
    if (size > 0 && statSync(path).size === size) {
      const text = readFileSync(path, 'utf8');
      if (text.trimEnd().endsWith('}')) return text;
    }
  }
  throw new Error('no heap snapshot written');
}

async function refreshedSnapshot(cache: string) {
  const snapshots = mkdtempSync(join(dir, 'snapshots-'));
  const server = await serve(mkdtempSync(join(dir, 'server-')), {
    TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
    TOKENWARDEN_KEYS: KEYS,
    TOKENWARDEN_OPENED_TOKEN_CACHE: cache,
    NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots}`,
  });
  try {
    const put = await call(server, 'PUT', '/v1/providers/test', {
      token_url: provider.tokenUrl,
      client_id: provider.clientId,
      client_secret: provider.clientSecret,
    });
    expect(put.status).toBeLessThan(300);
    const grant = provider.issueGrant();
    const created = await call(server, 'POST', '/v1/connections', {
      provider: 'test',
      owner: 'heap-owner',
      access_token: grant.access_token,
      refresh_token: grant.refresh_token,
      expires_in: 0,
    });
    expect(created.status).toBe(201);
    const token = await call(server, 'POST', `/v1/connections/${created.body.id}/token`, {});
    expect(token.status).toBe(200);
    const accessToken = token.body.access_token as string;
    // The imported token had expired: this one came from a refresh that redeemed the import's.
    expect(accessToken).not.toBe(grant.access_token);
    return {
      snapshot: await heapSnapshot(server, snapshots),
      importedRefreshToken: grant.refresh_token!,
      accessToken,
    };
  } finally {
    await stop(server);
  }
}

describe('secrets in the server heap', () => {
  it(
    'holds no refresh token after a refresh; no access token with the cache off',
    SLOW,
    async () => {
      const cached = await refreshedSnapshot('1000');
      expect(cached.snapshot).not.toContain(cached.importedRefreshToken);
      expect(cached.snapshot).toContain(cached.accessToken);

      const uncached = await refreshedSnapshot('0');
      expect(uncached.snapshot).not.toContain(uncached.importedRefreshToken);
      expect(uncached.snapshot).not.toContain(uncached.accessToken);
    },
  );
});
