import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, dumpTables, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

describe.each(BACKENDS)('providers and clients on %s', (backend) => {
  it('stores a provider and answers it without its secret; PUT replaces it', async () => {
    s = await startTestServer({ backend });
    const put = await s.admin('PUT', '/v1/providers/acme', {
      token_url: 'https://auth.acme.example/oauth/token',
      client_id: 'acme-client',
      client_secret: 'acme-secret-1',
      client_auth: 'client_secret_post',
      authorize_url: 'https://auth.acme.example/oauth/authorize',
      revocation_url: 'https://auth.acme.example/oauth/revoke',
      scopes: ['read', 'offline_access'],
      reuse_grace_seconds: 30,
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual({
      name: 'acme',
      token_url: 'https://auth.acme.example/oauth/token',
      client_id: 'acme-client',
      client_auth: 'client_secret_post',
      has_client_secret: true,
      authorize_url: 'https://auth.acme.example/oauth/authorize',
      revocation_url: 'https://auth.acme.example/oauth/revoke',
      scopes: ['read', 'offline_access'],
      default_access_ttl_seconds: 3600,
      rotates_refresh_tokens: true,
      reuse_detection: true,
      reuse_grace_seconds: 30,
      request_timeout_ms: 10_000,
      refresh_token_idle_seconds: null,
    });
    expect(put.body).not.toContain('acme-secret-1');
    const [row] = (await dumpTables(s, ['providers'])).providers as Record<string, unknown>[];
    expect(JSON.stringify(row)).not.toContain('acme-secret-1');

    // Loopback may be plain http.
    const replaced = await s.admin('PUT', '/v1/providers/acme', {
      token_url: 'http://127.0.0.1:9/token',
      client_id: 'acme-client-2',
      client_secret: 'acme-secret-2',
    });
    expect(replaced.json()).toMatchObject({ client_id: 'acme-client-2', has_client_secret: true });
    const list = await s.admin('GET', '/v1/providers');
    expect(list.json().providers).toHaveLength(1);
    expect((await s.admin('GET', '/v1/providers/nope')).statusCode).toBe(404);
    const rows = await auditRows(s);
    expect(rows.map((r) => [r.action, r.provider, r.outcome, r.detail])).toEqual([
      ['provider.put', 'acme', 'ok', { has_client_secret: true }],
      ['provider.put', 'acme', 'ok', { has_client_secret: true }],
    ]);
    // Every client authentication method sends a secret: a provider without one is refused.
    const secretless = await s.admin('PUT', '/v1/providers/acme-2', {
      token_url: 'http://127.0.0.1:9/token',
      client_id: 'acme-client-3',
    });
    expect(secretless.statusCode).toBe(400);
    expect(secretless.json().message).toBe(
      'client_secret: is required for client_auth client_secret_basic',
    );
  });

  it('creates a client whose key is shown once and stored only as a hash; revokes it', async () => {
    s = await startTestServer({ backend });
    const grants = [
      { owner: 'user-a', provider: '*', actions: ['token.read'] },
      { owner: '*', provider: 'test', actions: ['connections.read', 'connections.write'] },
    ];
    const created = await s.admin('POST', '/v1/clients', { name: 'billing-worker', grants });
    expect(created.statusCode).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const body = created.json<{ id: string; api_key: string; name: string }>();
    expect(body.id).toMatch(/^cli_[0-9a-f]{20}$/);
    expect(body.api_key).toMatch(new RegExp(`^tw_${body.id}_[A-Za-z0-9_-]{43}$`));
    expect(created.json()).toMatchObject({ name: 'billing-worker', grants });

    const listed = await s.admin('GET', '/v1/clients');
    expect(listed.json()).toEqual({
      clients: [
        {
          id: body.id,
          name: 'billing-worker',
          grants,
          certificate: null,
          created_at: expect.any(String),
          revoked_at: null,
        },
      ],
    });
    expect(listed.body).not.toContain(body.api_key.slice(-43));
    const stored = JSON.stringify(await dumpTables(s, ['service_clients']));
    expect(stored).not.toContain(body.api_key.slice(-43));

    // The key works, then is refused once revoked; revoking twice is fine, an unknown id is 404.
    expect(
      (await s.call({ method: 'GET', url: '/v1/connections', key: body.api_key })).statusCode,
    ).toBe(200);
    expect((await s.admin('DELETE', `/v1/clients/${body.id}`)).statusCode).toBe(204);
    expect(
      (await s.call({ method: 'GET', url: '/v1/connections', key: body.api_key })).statusCode,
    ).toBe(401);
    expect((await s.admin('DELETE', `/v1/clients/${body.id}`)).statusCode).toBe(204);
    const unknown = await s.admin('DELETE', '/v1/clients/cli_00000000000000000000');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'not_found' });

    const rows = await auditRows(s);
    expect(rows.map((r) => [r.action, r.actor, r.outcome])).toEqual([
      ['client.create', 'admin', 'ok'],
      ['client.revoke', 'admin', 'ok'],
      ['client.revoke', 'admin', 'ok'],
      ['client.revoke', 'admin', 'not_found'],
    ]);
    expect(rows[0]!.detail).toMatchObject({ client_id: body.id, name: 'billing-worker' });
    expect(JSON.stringify(rows)).not.toContain(body.api_key.slice(-43));
  });

  it('answers the audit by connection, client and time, newest first, a page at a time', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const client = await s.createClient([{ owner: '*', provider: '*', actions: ['token.read'] }]);
    const { id } = await s.importGrant();
    const other = await s.importGrant();
    const requestId = 'req-from-proxy-1';
    for (let i = 0; i < 3; i++) {
      await s.call({
        method: 'POST',
        url: `/v1/connections/${id}/token`,
        body: {},
        key: client.apiKey,
      });
    }
    const tagged = await s.call({
      method: 'POST',
      url: `/v1/connections/${other.id}/token`,
      body: {},
      key: client.apiKey,
      headers: { 'x-request-id': requestId },
    });
    expect(tagged.headers['x-request-id']).toBe(requestId);

    const byClient = await auditRows(s, `&client=${client.id}`);
    expect(byClient.map((r) => r.connection_id)).toEqual([id, id, id, other.id]);
    expect(byClient[3]!.request_id).toBe(requestId);
    expect((await auditRows(s, `&connection=${other.id}`)).map((r) => r.action)).toEqual([
      'connection.create',
      'token.read',
    ]);
    const since = encodeURIComponent(byClient[3]!.at);
    expect((await auditRows(s, `&since=${since}`)).every((r) => r.at >= byClient[3]!.at)).toBe(
      true,
    );

    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await s.admin('GET', `/v1/audit?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      const body = page.json<{ events: { seq: number }[]; next_cursor: string | null }>();
      seen.push(...body.events.map((e) => e.seq));
      cursor = body.next_cursor;
    } while (cursor);
    // provider.put, client.create, 2 imports and 4 hand-outs, newest first, no duplicates.
    expect(seen).toHaveLength(8);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
  });
});
