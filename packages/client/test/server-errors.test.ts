// The SDK's error typing against the real server's answers (one replica on SQLite).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ForbiddenError,
  InvalidRequestError,
  NeedsReauthError,
  NotFoundError,
  RefreshUnavailableError,
  TokenwardenClient,
  TokenwardenError,
  UnauthorizedError,
} from '@tokenwarden/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './helpers/cluster.ts';

let dir: string;
let cluster: Cluster;
let tw: TokenwardenClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-sdk-errors-'));
  // A short wait for refreshes, so that a provider outage is answered as such within the test.
  cluster = await startCluster({ dir, broker: { maxWaitMs: 1_000 } });
  tw = new TokenwardenClient({
    baseUrl: cluster.urls[0]!,
    apiKey: cluster.apiKey,
    // Whatever the server asks to wait goes straight to the caller: one request per call.
    retry: { maxElapsedMs: 0 },
  });
});
afterAll(async () => {
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<TokenwardenError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenwardenError);
  expect(String((error as Error).message)).not.toContain(cluster.apiKey);
  return error as TokenwardenError;
}

describe('errors from the real server', () => {
  it('a token and the metadata of a connection', async () => {
    const id = await cluster.importConnection({ expiresIn: 3600 });
    const token = await tw.getAccessToken(id);
    expect(token).toMatchObject({ connectionId: id, tokenType: 'Bearer', version: 1 });
    expect(token.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
    expect(await tw.getConnection(id)).toMatchObject({ id, provider: 'test', status: 'active' });
  });

  it('needs_reauth with the reason when the provider refuses the refresh token', async () => {
    const id = await cluster.importConnection({ expiresIn: 0 });
    cluster.provider.injectFailures({ kind: 'invalid_grant' });
    const error = await failure(tw.getAccessToken(id));
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect(error).toMatchObject({ code: 'needs_reauth', reason: 'invalid_grant', status: 409 });
  });

  it('refresh_unavailable with retryAfterMs from Retry-After when the provider is down', async () => {
    const id = await cluster.importConnection({ expiresIn: 0 });
    cluster.provider.injectFailures({ kind: 'server_error', status: 503, times: 20 });
    const error = await failure(tw.getAccessToken(id));
    cluster.provider.clearFailures();
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    const { retryAfterMs } = error as RefreshUnavailableError;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs % 1000).toBe(0);
    expect(error).toMatchObject({ status: 503, retryable: true });
  });

  it('not_found, invalid_request, unauthorized and forbidden', async () => {
    expect(await failure(tw.getAccessToken('conn_doesnotexist'))).toBeInstanceOf(NotFoundError);
    expect(await failure(tw.getAccessToken('not an id!'))).toBeInstanceOf(InvalidRequestError);
    const id = await cluster.importConnection({ expiresIn: 3600 });
    const bad = new TokenwardenClient({ baseUrl: cluster.urls[0]!, apiKey: 'tw_not_a_key' });
    expect(await failure(bad.getAccessToken(id))).toBeInstanceOf(UnauthorizedError);
    const other = (await cluster.admin('POST', '/v1/clients', {
      name: 'metadata-only',
      grants: [{ owner: '*', provider: '*', actions: ['connections.read'] }],
    })) as { api_key: string };
    const stranger = new TokenwardenClient({ baseUrl: cluster.urls[0]!, apiKey: other.api_key });
    const forbidden = await failure(stranger.getAccessToken(id));
    expect(forbidden).toBeInstanceOf(ForbiddenError);
    expect(forbidden).toMatchObject({ code: 'forbidden', status: 403, connectionId: id });
  });
});
