// `client.proxy` against the real server and a loopback resource server: the worker holds a
// key with only the proxy action and never sees a token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ForbiddenError,
  InvalidRequestError,
  NeedsReauthError,
  TokenwardenClient,
  TokenwardenError,
} from '@tokenwarden/client';
import { ResourceServer } from '@tokenwarden/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './helpers/cluster.ts';

let cluster: Cluster;
let resource: ResourceServer;
let dir: string;
let client: TokenwardenClient;
let connectionId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-sdk-proxy-'));
  cluster = await startCluster({ dir });
  resource = await ResourceServer.start({
    accepts: (token) => cluster.provider.isAccessTokenValid(token),
  });
  await cluster.admin('PATCH', '/v1/providers/test', { api_base_urls: [resource.url] });
  const worker = (await cluster.admin('POST', '/v1/clients', {
    name: 'proxy-worker',
    grants: [{ owner: '*', provider: 'test', actions: ['proxy'] }],
  })) as { api_key: string };
  client = new TokenwardenClient({ baseUrl: cluster.urls[0]!, apiKey: worker.api_key });
  connectionId = await cluster.importConnection({ expiresIn: 3600 });
});

afterAll(async () => {
  await resource?.close();
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('TokenwardenClient.proxy', () => {
  it("answers with the upstream's response, for a relative path or a full URL under the base", async () => {
    const relative = await client.proxy(connectionId, 'json');
    expect(relative.status).toBe(200);
    expect(await relative.json()).toEqual({ ok: true, items: [1, 2, 3] });
    const full = await client.proxy(connectionId, `${resource.url}/echo/x?y=1`, {
      method: 'POST',
      body: 'hello',
      headers: { 'x-custom': 'kept' },
    });
    expect(await full.json()).toMatchObject({
      method: 'POST',
      path: '/echo/x',
      query: '?y=1',
      bytes: 5,
      headers: { 'x-custom': 'kept' },
    });
    const missing = await client.proxy(connectionId, 'status/404');
    expect(missing.status).toBe(404);
    expect(resource.requests.every((r) => r.tokenValid)).toBe(true);
  });

  it("throws Tokenwarden's own refusals as typed errors", async () => {
    await expect(client.getAccessToken(connectionId)).rejects.toBeInstanceOf(ForbiddenError);
    await expect(client.proxy(connectionId, 'a/%2e%2e/%2e%2e/x')).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
    await expect(client.proxy(connectionId, 'https://evil.example/x')).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
    const dead = await cluster.importConnection({ expiresIn: 0 });
    cluster.provider.injectFailures({ kind: 'invalid_grant' });
    await expect(client.proxy(dead, 'json')).rejects.toBeInstanceOf(NeedsReauthError);
    await expect(client.proxy('', 'json')).rejects.toBeInstanceOf(InvalidRequestError);
    await resource.close();
    const error = await client.proxy(connectionId, 'json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenwardenError);
    expect((error as TokenwardenError).code).toBe('upstream_unreachable');
    resource = await ResourceServer.start({ accepts: () => true });
  });
});
