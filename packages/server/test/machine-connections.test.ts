// POST /v1/machine-connections: a provider configured with grant_type client_credentials gives
// connections with no user and no refresh token, whose access token Tokenwarden fetches once and
// shares, like a refresh. Grants and bad input as for imports.
import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

async function putMachineProvider(server: TestServer): Promise<void> {
  const put = await server.admin('PUT', '/v1/providers/jobs', {
    token_url: server.provider.tokenUrl,
    client_id: server.provider.clientId,
    client_secret: server.provider.clientSecret,
    grant_type: 'client_credentials',
  });
  expect(put.statusCode, put.body).toBe(200);
}

describe.each(BACKENDS)('machine-token connections on %s', (backend) => {
  it('fetches the first token at creation and shares it; an expired one is fetched once', async () => {
    s = await startTestServer({ backend, provider: { accessTokenTtlSeconds: 3600 } });
    await putMachineProvider(s);
    const created = await s.admin('POST', '/v1/machine-connections', {
      provider: 'jobs',
      owner: 'billing-service',
      metadata: { purpose: 'nightly export' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const { id, status, version } = created.json<{ id: string; status: string; version: number }>();
    expect({ status, version }).toEqual({ status: 'active', version: 1 });
    expect(s.provider.stats()).toMatchObject({ clientCredentialsGrants: 1, redemptions: 0 });

    const handOut = () => s.admin('POST', `/v1/connections/${id}/token`, {});
    const first = await Promise.all(Array.from({ length: 20 }, handOut));
    expect(new Set(first.map((r) => r.json<{ access_token: string }>().access_token)).size).toBe(1);
    expect(s.provider.stats().clientCredentialsGrants).toBe(1);

    // The resource server refuses it: reported by version, fetched again exactly once.
    const rejected = await Promise.all(
      Array.from({ length: 20 }, () =>
        s.admin('POST', `/v1/connections/${id}/token/rejected`, { version: 1 }),
      ),
    );
    expect(rejected.every((r) => r.statusCode === 200)).toBe(true);
    expect(new Set(rejected.map((r) => r.json<{ version: number }>().version))).toEqual(
      new Set([2]),
    );
    expect(s.provider.stats()).toMatchObject({ clientCredentialsGrants: 2, redemptions: 0 });

    const info = (await s.admin('GET', `/v1/connections/${id}`)).json();
    expect(info).toMatchObject({ id, owner: 'billing-service', provider: 'jobs' });
    expect(JSON.stringify(info)).not.toContain('access_token');
  });

  it('needs connections.write on the owner and provider; refusals are audited', async () => {
    s = await startTestServer({ backend });
    await putMachineProvider(s);
    // A client with connections.write on `owner` asks for billing-service's machine connection.
    const attempt = async (owner: string) => {
      const client = await s.createClient([
        { owner, provider: 'jobs', actions: ['connections.write'] },
      ]);
      const response = await s.call({
        method: 'POST',
        url: '/v1/machine-connections',
        key: client.apiKey,
        body: { provider: 'jobs', owner: 'billing-service' },
      });
      return { client, response };
    };
    const { client: other, response: refused } = await attempt('someone-else');
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'forbidden' });
    expect(s.provider.stats().clientCredentialsGrants).toBe(0);
    const rows = (await auditRows(s)).filter((r) => r.action === 'connection.create');
    expect(rows).toMatchObject([
      { outcome: 'forbidden', actor: other.id, owner: 'billing-service' },
    ]);

    const { response: ok } = await attempt('*');
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('refuses bad input and user-token providers with typed errors, storing nothing', async () => {
    s = await startTestServer({ backend });
    await putMachineProvider(s);
    await s.putProvider('users'); // a refresh_token provider
    const cases: [unknown, number, string][] = [
      [{ provider: 'users', owner: 'a' }, 400, 'invalid_request'],
      [{ provider: 'nope', owner: 'a' }, 400, 'unknown_provider'],
      [{ provider: 'jobs', owner: '*' }, 400, 'invalid_request'],
      [{ provider: 'jobs' }, 400, 'invalid_request'],
      [{ provider: 'jobs', owner: 'a', access_token: 'x' }, 400, 'invalid_request'],
      [{ provider: 'jobs', owner: 'a', metadata: 'text' }, 400, 'invalid_request'],
    ];
    for (const [body, status, error] of cases) {
      const answer = await s.admin('POST', '/v1/machine-connections', body);
      expect([answer.statusCode, answer.json().error], JSON.stringify(body)).toEqual([
        status,
        error,
      ]);
    }
    const listed = await s.admin('GET', '/v1/connections');
    expect(listed.json()).toMatchObject({ connections: [] });
    expect(s.provider.stats().clientCredentialsGrants).toBe(0);
  });

  it('a provider that refuses the client is a typed 503, and nothing is stored', async () => {
    s = await startTestServer({ backend });
    await putMachineProvider(s);
    s.provider.injectFailures({ kind: 'server_error', times: 10 });
    const answer = await s.admin('POST', '/v1/machine-connections', {
      provider: 'jobs',
      owner: 'billing-service',
    });
    expect(answer.statusCode).toBe(503);
    expect(answer.json()).toMatchObject({ error: 'refresh_unavailable' });
    expect(answer.headers['retry-after']).toBeDefined();
    expect((await s.admin('GET', '/v1/connections')).json()).toMatchObject({ connections: [] });
  });
});
