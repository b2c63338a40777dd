import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

const ALL = ['token.read', 'connections.read', 'connections.write'];

/** Two owners' connections on provider 'test', one of user-a's on provider 'other'. */
async function twoOwners(backend: 'sqlite' | 'postgres') {
  s = await startTestServer({ backend });
  await s.putProvider('test');
  await s.putProvider('other');
  const a = await s.importGrant({ owner: 'user-a' });
  const b = await s.importGrant({ owner: 'user-b' });
  const aOther = await s.importGrant({ owner: 'user-a', provider: 'other' });
  return { a: a.id, b: b.id, aOther: aOther.id };
}

describe.each(BACKENDS)('grants on %s', (backend) => {
  it("keeps a client granted owner A away from owner B's connections, and audits each refusal", async () => {
    const { a, b } = await twoOwners(backend);
    const client = await s.createClient([{ owner: 'user-a', provider: 'test', actions: ALL }]);
    const as = (method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) =>
      s.call({ method, url, body, key: client.apiKey });

    // Owner A: everything works.
    expect((await as('GET', `/v1/connections/${a}`)).statusCode).toBe(200);
    expect((await as('POST', `/v1/connections/${a}/token`, {})).statusCode).toBe(200);
    expect(
      (await as('POST', `/v1/connections/${a}/token/rejected`, { version: 1 })).statusCode,
    ).toBe(200);

    // Owner B: read, hand-out, rejection report and delete answer exactly what an id that does
    // not exist gets, so the client cannot tell that B's connection is real.
    const missing = 'conn_doesnotexist';
    for (const [method, path, body] of [
      ['GET', '', undefined],
      ['POST', '/token', {}],
      ['POST', '/token/rejected', { version: 1 }],
      ['DELETE', '', undefined],
    ] as const) {
      const hidden = await as(method, `/v1/connections/${b}${path}`, body);
      const absent = await as(method, `/v1/connections/${missing}${path}`, body);
      expect(hidden.statusCode, `${method} ${path}`).toBe(404);
      expect(hidden.body.replaceAll(b, missing)).toBe(absent.body);
    }
    // List and import name an owner, not an id: refused outright.
    const refused = [
      await as('GET', '/v1/connections?owner=user-b'),
      await as('POST', '/v1/connections', {
        provider: 'test',
        owner: 'user-b',
        access_token: 'at-x',
      }),
    ];
    for (const response of refused) {
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ error: 'forbidden' });
      expect(response.body).not.toContain('at-x');
    }
    // Nothing happened to B's connection.
    const stillThere = await s.admin('GET', `/v1/connections/${b}`);
    expect(stillThere.json()).toMatchObject({ version: 1, status: 'active' });
    expect((await s.admin('GET', '/v1/connections?owner=user-b')).json().connections).toHaveLength(
      1,
    );

    const denials = (await auditRows(s)).filter((r) => r.outcome === 'forbidden');
    expect(denials.map((r) => [r.action, r.actor, r.owner])).toEqual([
      ['connection.read', client.id, 'user-b'],
      ['token.read', client.id, 'user-b'],
      ['token.rejected', client.id, 'user-b'],
      ['connection.delete', client.id, 'user-b'],
      ['connection.list', client.id, 'user-b'],
      ['connection.create', client.id, 'user-b'],
    ]);
    expect(denials.slice(0, 4).map((r) => r.connection_id)).toEqual([b, b, b, b]);
    // The missing id was looked up, not refused: no owner to refuse it for.
    expect((await auditRows(s)).filter((r) => r.connection_id === missing)).not.toContainEqual(
      expect.objectContaining({ outcome: 'forbidden' }),
    );
  });

  it('lists only the connections a client may read', async () => {
    const { a, b, aOther } = await twoOwners(backend);
    const ownerA = await s.createClient([
      { owner: 'user-a', provider: '*', actions: ['connections.read'] },
    ]);
    const providerTest = await s.createClient([
      { owner: '*', provider: 'test', actions: ['connections.read'] },
    ]);
    const everything = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.read'] },
    ]);
    const list = async (key: string, query = '') => {
      const response = await s.call({ method: 'GET', url: `/v1/connections${query}`, key });
      expect(response.statusCode).toBe(200);
      return response
        .json<{ connections: { id: string }[] }>()
        .connections.map((c) => c.id)
        .sort();
    };
    expect(await list(ownerA.apiKey)).toEqual([a, aOther].sort());
    expect(await list(ownerA.apiKey, '?provider=other')).toEqual([aOther]);
    expect(await list(providerTest.apiKey)).toEqual([a, b].sort());
    expect(await list(providerTest.apiKey, '?owner=user-b')).toEqual([b]);
    expect(await list(everything.apiKey)).toEqual([a, b, aOther].sort());
    const outside = await s.call({
      method: 'GET',
      url: '/v1/connections?provider=other',
      key: providerTest.apiKey,
    });
    expect(outside.statusCode).toBe(403);
  });

  it('honours wildcards and actions: owner "*", provider "*", and nothing beyond the actions granted', async () => {
    const { a, b, aOther } = await twoOwners(backend);
    const tokensOnTest = await s.createClient([
      { owner: '*', provider: 'test', actions: ['token.read'] },
    ]);
    const token = (key: string, id: string) =>
      s.call({ method: 'POST', url: `/v1/connections/${id}/token`, body: {}, key });
    expect((await token(tokensOnTest.apiKey, a)).statusCode).toBe(200);
    expect((await token(tokensOnTest.apiKey, b)).statusCode).toBe(200);
    // No grant at all on provider 'other': as if the connection did not exist.
    expect((await token(tokensOnTest.apiKey, aOther)).statusCode).toBe(404);
    // token.read does not include reading metadata, deleting or importing; a client holding some
    // grant on a connection knows it exists, so it is told it may not.
    for (const response of [
      await s.call({ method: 'GET', url: `/v1/connections/${a}`, key: tokensOnTest.apiKey }),
      await s.call({ method: 'DELETE', url: `/v1/connections/${a}`, key: tokensOnTest.apiKey }),
      await s.call({ method: 'GET', url: '/v1/connections', key: tokensOnTest.apiKey }),
    ]) {
      expect(response.statusCode).toBe(403);
    }

    const writerForA = await s.createClient([
      { owner: 'user-a', provider: '*', actions: ['connections.write'] },
    ]);
    const grant = s.provider.issueGrant();
    const created = await s.call({
      method: 'POST',
      url: '/v1/connections',
      key: writerForA.apiKey,
      body: {
        provider: 'other',
        owner: 'user-a',
        access_token: grant.access_token,
        refresh_token: grant.refresh_token,
      },
    });
    expect(created.statusCode).toBe(201);
    // Writing is not reading: the writer cannot fetch a token for what it imported.
    const id = created.json<{ id: string }>().id;
    expect((await token(writerForA.apiKey, id)).statusCode).toBe(403);
    expect(
      (await s.call({ method: 'DELETE', url: `/v1/connections/${id}`, key: writerForA.apiKey }))
        .statusCode,
    ).toBe(204);
  });

  it('refuses a revoked client from its very next request', async () => {
    const { a } = await twoOwners(backend);
    const client = await s.createClient([{ owner: '*', provider: '*', actions: ALL }]);
    const token = () =>
      s.call({ method: 'POST', url: `/v1/connections/${a}/token`, body: {}, key: client.apiKey });
    expect((await token()).statusCode).toBe(200);
    expect((await s.admin('DELETE', `/v1/clients/${client.id}`)).statusCode).toBe(204);
    const refused = await token();
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ error: 'unauthorized' });
    expect(refused.headers['www-authenticate']).toBe('Bearer');
    const listed = await s.admin('GET', '/v1/clients');
    expect(listed.json().clients[0]).toMatchObject({ id: client.id });
    expect(listed.json().clients[0].revoked_at).not.toBeNull();
  });

  it('requires a valid key everywhere and the admin key on admin routes', async () => {
    const { a } = await twoOwners(backend);
    const client = await s.createClient([{ owner: '*', provider: '*', actions: ALL }]);
    const [prefix, secret] = [client.apiKey.slice(0, -43), client.apiKey.slice(-43)];
    const wrongSecret = prefix + (secret[0] === 'A' ? 'B' : 'A') + secret.slice(1);
    const badKeys: (string | undefined)[] = [
      undefined,
      '',
      'nope',
      wrongSecret,
      `tw_cli_00000000000000000000_${secret}`,
      s.adminKey.slice(0, -1),
    ];
    const routes = [
      ['GET', `/v1/connections/${a}`],
      ['POST', `/v1/connections/${a}/token`],
      ['GET', '/v1/clients'],
      ['GET', '/v1/audit'],
      ['PUT', '/v1/providers/test'],
    ] as const;
    for (const key of badKeys) {
      for (const [method, url] of routes) {
        const response = await s.call({
          method,
          url,
          key,
          body: method === 'GET' ? undefined : {},
        });
        expect(response.statusCode, `${method} ${url} with ${String(key)}`).toBe(401);
        expect(response.json()).toMatchObject({ error: 'unauthorized' });
      }
    }
    // The scheme name is case-insensitive; a bare header without it is not a key.
    const lower = await s.call({
      method: 'GET',
      url: '/v1/clients',
      headers: { authorization: `bearer ${s.adminKey}` },
    });
    expect(lower.statusCode).toBe(200);
    const lowerClient = await s.call({
      method: 'GET',
      url: `/v1/connections/${a}`,
      headers: { authorization: `BEARER ${client.apiKey}` },
    });
    expect(lowerClient.statusCode).toBe(200);
    const raw = await s.call({
      method: 'GET',
      url: '/v1/clients',
      headers: { authorization: s.adminKey },
    });
    expect(raw.statusCode).toBe(401);

    for (const [method, url, body] of [
      ['GET', '/v1/clients', undefined],
      ['POST', '/v1/clients', { name: 'x', grants: [] }],
      ['DELETE', `/v1/clients/${client.id}`, undefined],
      ['GET', '/v1/audit', undefined],
      ['GET', '/v1/providers', undefined],
      ['PUT', '/v1/providers/test', { token_url: 'https://evil.example/token', client_id: 'x' }],
    ] as const) {
      const response = await s.call({ method, url, body, key: client.apiKey });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      expect(response.json()).toMatchObject({ error: 'forbidden' });
    }
    // The provider was not replaced, and the client not revoked.
    expect((await s.admin('GET', '/v1/providers/test')).json().token_url).toBe(s.provider.tokenUrl);
    expect(
      (await s.call({ method: 'GET', url: `/v1/connections/${a}`, key: client.apiKey })).statusCode,
    ).toBe(200);
    const denials = (await auditRows(s, `&client=${client.id}`)).filter(
      (r) => r.outcome === 'forbidden',
    );
    expect(denials.map((r) => r.action)).toEqual([
      'client.list',
      'client.create',
      'client.revoke',
      'audit.read',
      'provider.list',
      'provider.put',
    ]);
  });
});
