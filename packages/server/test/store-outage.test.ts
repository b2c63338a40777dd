import { ERROR_CODES } from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS, startTestServer, type TestServer, type Backend } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

/** Takes the database away under the running server: the SQLite handle closed, or the Postgres database dropped. */
async function breakStore(server: TestServer, backend: Backend): Promise<void> {
  if (backend === 'sqlite') await server.store.close();
  else await server.database!.drop();
}

/** What a client may retry: 503 `store_unavailable` with Retry-After, and no driver detail. */
function expectStoreUnavailable(response: {
  statusCode: number;
  headers: Record<string, unknown>;
  json: <T>() => T;
}): void {
  expect(response.statusCode).toBe(503);
  expect(response.headers['retry-after']).toBe('1');
  expect(response.json()).toEqual({
    error: 'store_unavailable',
    message: ERROR_CODES.store_unavailable.message,
  });
}

describe.each(BACKENDS)('the database down under the server on %s', (backend) => {
  it('answers a service client 503 store_unavailable, retryable, not 500', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { id } = await s.importGrant();
    const { apiKey } = await s.createClient([
      { owner: '*', provider: 'test', actions: ['token.read'] },
    ]);
    const before = await s.call({
      method: 'POST',
      url: `/v1/connections/${id}/token`,
      key: apiKey,
    });
    expect(before.statusCode).toBe(200);

    await breakStore(s, backend);
    expectStoreUnavailable(
      await s.call({ method: 'POST', url: `/v1/connections/${id}/token`, key: apiKey }),
    );
  });

  it('answers the admin routes on service clients and audit 503 store_unavailable', async () => {
    s = await startTestServer({ backend });
    const { id } = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.read'] },
    ]);
    await breakStore(s, backend);
    expectStoreUnavailable(await s.admin('GET', '/v1/clients'));
    expectStoreUnavailable(await s.admin('POST', '/v1/clients', { name: 'late', grants: [] }));
    expectStoreUnavailable(await s.admin('DELETE', `/v1/clients/${id}`));
    expectStoreUnavailable(await s.admin('GET', '/v1/audit'));
  });
});
