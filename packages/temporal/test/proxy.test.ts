// The activity helpers' fetch in proxy mode, against the real server: one option switches a
// worker from fetch-with-token to proxy mode, and no token enters the activity.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { TokenwardenClient } from '@tokenwarden/client';
import { KeyRing, openSqliteStore, type KyselyStore } from '@tokenwarden/core';
import { buildServer, generateApiKey, hashApiKey } from '@tokenwarden/server';
import { createActivityHelpers, FailureTypes } from '@tokenwarden/temporal';
import { ResourceServer, TestProvider } from '@tokenwarden/testkit';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
let store: KyselyStore;
let app: FastifyInstance;
let provider: TestProvider;
let resource: ResourceServer;
let client: TokenwardenClient;
let connectionId: string;

// The failures these activities are expected to throw would otherwise be logged to the console.
const quiet = (): void => undefined;
const logger = { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-temporal-proxy-'));
  store = openSqliteStore({ path: join(dir, 'db.sqlite') });
  await store.migrate();
  provider = await TestProvider.start();
  resource = await ResourceServer.start({ accepts: (t) => provider.isAccessTokenValid(t) });
  const adminKey = generateApiKey();
  app = await buildServer({
    store,
    keyRing: KeyRing.generate('k1'),
    adminKeyHash: hashApiKey(adminKey),
    logger: false,
    scheduler: false,
    docs: false,
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const admin = async (method: string, path: string, body: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return (await res.json()) as Record<string, string>;
  };
  await admin('PUT', '/v1/providers/test', {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
    api_base_urls: [resource.url],
  });
  const worker = await admin('POST', '/v1/clients', {
    name: 'activity-worker',
    grants: [{ owner: '*', provider: 'test', actions: ['proxy'] }],
  });
  client = new TokenwardenClient({ baseUrl: base, apiKey: worker.api_key! });
  const grant = provider.issueGrant();
  const connection = await admin('POST', '/v1/connections', {
    provider: 'test',
    owner: 'user-a',
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    expires_in: 0,
  });
  connectionId = connection.id!;
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  await resource?.close();
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('activity fetch with { proxy: true }', () => {
  it('calls the resource server through Tokenwarden with a key that may not read tokens', async () => {
    const { fetch } = createActivityHelpers(client, { proxy: true });
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000 }, { logger });
    const answer = await env.run(async () => {
      const res = await fetch(connectionId, `${resource.url}/json`);
      return { status: res.status, body: (await res.json()) as unknown };
    });
    expect(answer).toEqual({ status: 200, body: { ok: true, items: [1, 2, 3] } });
    expect(provider.stats().redemptions).toBe(1);
    expect(resource.requests.map((r) => r.tokenValid)).toEqual([true]);

    // The same helpers without the option want the token itself: this key may not have it.
    const withToken = createActivityHelpers(client);
    const refused = await env
      .run(() => withToken.fetch(connectionId, `${resource.url}/json`))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApplicationFailure);
    expect((refused as ApplicationFailure).type).toBe(FailureTypes.AccessDenied);
    expect(resource.requests).toHaveLength(1);
  });

  it("turns the proxy's refusals into ApplicationFailures", async () => {
    const { fetch } = createActivityHelpers(client, { proxy: true });
    const env = new MockActivityEnvironment({}, { logger });
    const error = await env
      .run(() => fetch(connectionId, 'https://evil.example/x'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect((error as ApplicationFailure).nonRetryable).toBe(true);
    await expect(
      env.run(() => fetch(connectionId, new Request(`${resource.url}/json`))),
    ).rejects.toThrow(TypeError);
  });
});
