// Introspection (RFC 7662), revocation at deletion (RFC 7009, best effort) and re-authorization
// over HTTP, against the test provider: what the provider sees, what is stored, what is audited.
import type { ConnectionEvent } from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { count } from './connect-helpers.ts';
import {
  auditRows,
  BACKENDS,
  databaseText,
  dumpTables,
  startTestServer,
  type TestServer,
} from './helpers.ts';

/**
 * Nothing listens on port 9 (discard) here: every connection is refused before a request
 * leaves, a `network_error` that is never in doubt.
 */
const DEAD_URL = 'http://127.0.0.1:9';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

async function setup(backend: 'sqlite' | 'postgres', endpoints: Record<string, string> = {}) {
  const events: ConnectionEvent[] = [];
  s = await startTestServer({
    backend,
    server: { broker: { onConnectionEvent: (event) => events.push(event) } },
  });
  const put = await s.admin('PUT', '/v1/providers/test', {
    token_url: s.provider.tokenUrl,
    client_id: s.provider.clientId,
    client_secret: s.provider.clientSecret,
    revocation_url: s.provider.revocationUrl,
    introspection_url: s.provider.introspectionUrl,
    ...endpoints,
  });
  expect(put.statusCode, put.body).toBe(200);
  return events;
}

const introspect = (id: string, key: string, body?: unknown) =>
  s.call({ method: 'POST', url: `/v1/connections/${id}/introspect`, key, body });

describe.each(BACKENDS)('introspection on %s', (backend) => {
  it("answers RFC 7662's non-secret members for the access and the refresh token", async () => {
    await setup(backend);
    const { id, accessToken, refreshToken } = await s.importGrant();
    const reader = await s.createClient([
      { owner: 'user-a', provider: 'test', actions: ['connections.read'] },
    ]);
    const access = await introspect(id, reader.apiKey);
    expect(access.statusCode).toBe(200);
    expect(access.headers['cache-control']).toBe('no-store');
    expect(access.json()).toMatchObject({
      active: true,
      token: 'access_token',
      client_id: s.provider.clientId,
    });
    expect(typeof access.json().exp).toBe('number');
    const refresh = await introspect(id, reader.apiKey, { token: 'refresh_token' });
    expect(refresh.json()).toMatchObject({ active: true, token: 'refresh_token' });
    expect(s.provider.stats().introspections).toBe(2);

    // Revoked at the provider behind Tokenwarden's back: inactive.
    const revoke = await fetch(s.provider.revocationUrl, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${s.provider.clientId}:${s.provider.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: refreshToken }),
    });
    expect(revoke.status).toBe(200);
    expect((await introspect(id, reader.apiKey)).json()).toMatchObject({ active: false });

    for (const response of [access, refresh]) {
      expect(response.body).not.toContain(accessToken);
      expect(response.body).not.toContain(refreshToken);
    }
    const rows = (await auditRows(s)).filter((r) => r.action === 'connection.introspect');
    expect(rows.map((r) => [r.actor, r.outcome, r.connection_id, r.detail])).toEqual([
      [reader.id, 'ok', id, { token: 'access_token', active: true }],
      [reader.id, 'ok', id, { token: 'refresh_token', active: true }],
      [reader.id, 'ok', id, { token: 'access_token', active: false }],
    ]);
    const all = JSON.stringify(rows) + s.logLines.join('\n');
    expect(all).not.toContain(accessToken);
    expect(all).not.toContain(refreshToken);
  });

  it('needs connections.read on the connection; refusals are audited and nothing is sent', async () => {
    await setup(backend);
    const { id } = await s.importGrant({ owner: 'user-a' });
    const tokensOnly = await s.createClient([
      { owner: '*', provider: '*', actions: ['token.read', 'connections.write'] },
    ]);
    const otherOwner = await s.createClient([
      { owner: 'user-b', provider: '*', actions: ['connections.read'] },
    ]);
    // Other grants on this connection: told no. No grant on it at all: as if it did not exist.
    for (const [key, status, error] of [
      [tokensOnly.apiKey, 403, 'forbidden'],
      [otherOwner.apiKey, 404, 'not_found'],
    ] as const) {
      const refused = await introspect(id, key);
      expect(refused.statusCode).toBe(status);
      expect(refused.json()).toMatchObject({ error });
    }
    expect((await introspect(id, 'nope')).statusCode).toBe(401);
    expect(s.provider.stats().introspections).toBe(0);
    const denials = (await auditRows(s)).filter((r) => r.outcome === 'forbidden');
    expect(denials.map((r) => [r.action, r.actor, r.connection_id, r.owner])).toEqual([
      ['connection.introspect', tokensOnly.id, id, 'user-a'],
      ['connection.introspect', otherOwner.id, id, 'user-a'],
    ]);
  });

  it('a provider without an introspection endpoint: 400; one that cannot answer: 503', async () => {
    await setup(backend, { introspection_url: undefined as unknown as string });
    const { id } = await s.importGrant();
    const unsupported = await introspect(id, s.adminKey);
    expect(unsupported.statusCode).toBe(400);
    expect(unsupported.json()).toEqual({
      error: 'invalid_request',
      message: 'introspection_url: is not configured for provider test',
    });

    const put = await s.admin('PUT', '/v1/providers/test', {
      token_url: s.provider.tokenUrl,
      client_id: s.provider.clientId,
      client_secret: s.provider.clientSecret,
      introspection_url: `${DEAD_URL}/introspect`,
    });
    expect(put.statusCode).toBe(200);
    const down = await introspect(id, s.adminKey);
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ error: 'refresh_unavailable', retry_after: 1 });
    expect(down.json().message).toContain('network_error');
    expect(down.headers['retry-after']).toBe('1');

    const bad = [
      await introspect(id, s.adminKey, { token: 'id_token' }),
      await introspect(id, s.adminKey, { extra: 1 }),
      await introspect('conn_missing', s.adminKey),
    ];
    expect(bad.map((r) => [r.statusCode, r.json().error])).toEqual([
      [400, 'invalid_request'],
      [400, 'invalid_request'],
      [404, 'not_found'],
    ]);
    const rows = (await auditRows(s)).filter((r) => r.action === 'connection.introspect');
    expect(rows.map((r) => r.outcome)).toEqual([
      'invalid_request',
      'refresh_unavailable',
      'not_found',
    ]);
  });
});

describe.each(BACKENDS)('revocation at deletion on %s', (backend) => {
  it('revokes the grant at the provider, then deletes; the token is dead there', async () => {
    await setup(backend);
    const { id, accessToken, refreshToken } = await s.importGrant();
    const handedOut = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(s.provider.isAccessTokenValid(handedOut.json().access_token)).toBe(true);
    const deleted = await s.admin('DELETE', `/v1/connections/${id}`);
    expect(deleted.statusCode).toBe(204);
    expect(s.provider.stats().revocations).toBe(1);
    // Revoking the refresh token took the grant's access token with it (RFC 7009 §2.1).
    expect(s.provider.isAccessTokenValid(accessToken)).toBe(false);
    expect((await s.admin('GET', `/v1/connections/${id}`)).statusCode).toBe(404);
    const [row] = (await auditRows(s)).filter((r) => r.action === 'connection.delete');
    expect(row).toMatchObject({
      outcome: 'ok',
      connection_id: id,
      detail: { revocation: 'revoked' },
    });
    expect(JSON.stringify(row) + s.logLines.join('\n')).not.toContain(refreshToken);
  });

  it('a provider that cannot be reached does not keep the connection alive', async () => {
    await setup(backend, { revocation_url: `${DEAD_URL}/revoke` });
    const { id } = await s.importGrant();
    const deleted = await s.admin('DELETE', `/v1/connections/${id}`);
    expect(deleted.statusCode).toBe(204);
    expect(await count(s, 'credentials')).toBe(0);
    const [row] = (await auditRows(s)).filter((r) => r.action === 'connection.delete');
    expect(row!.detail).toEqual({
      revocation: 'failed',
      revocation_error: 'network_error',
    });
  });

  it('a provider that refuses (wrong client secret) does not either; without an endpoint: unsupported', async () => {
    await setup(backend, { client_secret: 'not-the-secret' });
    const refusedAt = await s.importGrant();
    expect((await s.admin('DELETE', `/v1/connections/${refusedAt.id}`)).statusCode).toBe(204);
    await s.putProvider('plain');
    const plain = await s.importGrant({ provider: 'plain' });
    expect((await s.admin('DELETE', `/v1/connections/${plain.id}`)).statusCode).toBe(204);
    expect(await count(s, 'credentials')).toBe(0);
    const rows = (await auditRows(s)).filter((r) => r.action === 'connection.delete');
    expect(rows.map((r) => r.detail)).toEqual([
      { revocation: 'failed', revocation_error: 'invalid_client' },
      { revocation: 'unsupported' },
    ]);
    // A refused delete sends nothing to the provider.
    const { id } = await s.importGrant();
    const reader = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.read'] },
    ]);
    const sent = s.provider.stats().revocations;
    const refused = await s.call({
      method: 'DELETE',
      url: `/v1/connections/${id}`,
      key: reader.apiKey,
    });
    expect(refused.statusCode).toBe(403);
    expect(s.provider.stats().revocations).toBe(sent);
    expect(await count(s, 'credentials')).toBe(1);
  });
});

describe.each(BACKENDS)('re-authorization over HTTP on %s', (backend) => {
  it('PUT /v1/connections/{id}/tokens: same id, bumped version, active, recovered', async () => {
    const events = await setup(backend);
    const { id } = await s.importGrant({ expiresIn: 0 });
    s.provider.injectFailures({ kind: 'invalid_grant' });
    expect((await s.admin('POST', `/v1/connections/${id}/token`, {})).json()).toMatchObject({
      error: 'needs_reauth',
    });
    const dead = (await s.admin('GET', `/v1/connections/${id}`)).json<{ version: number }>();
    const writer = await s.createClient([
      { owner: 'user-a', provider: 'test', actions: ['connections.write', 'token.read'] },
    ]);
    const grant = s.provider.issueGrant();
    const put = await s.call({
      method: 'PUT',
      url: `/v1/connections/${id}/tokens`,
      key: writer.apiKey,
      body: {
        access_token: grant.access_token,
        refresh_token: grant.refresh_token,
        expires_in: 3600,
      },
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({
      id,
      status: 'active',
      version: dead.version + 1,
      recovered: true,
    });
    expect(put.body).not.toContain(grant.access_token);
    const token = await s.call({
      method: 'POST',
      url: `/v1/connections/${id}/token`,
      key: writer.apiKey,
      body: {},
    });
    expect(token.json()).toMatchObject({
      access_token: grant.access_token,
      version: dead.version + 1,
    });
    expect(events.filter((e) => e.type === 'recovered')).toEqual([
      expect.objectContaining({
        connectionId: id,
        previousStatus: 'needs_reauth',
        version: dead.version + 1,
      }),
    ]);
    const [row] = (await auditRows(s)).filter((r) => r.action === 'connection.reauthorize');
    expect(row).toMatchObject({ actor: writer.id, outcome: 'ok', connection_id: id });
    expect(row!.detail).toEqual({
      version: dead.version + 1,
      recovered: true,
      previous_status: 'needs_reauth',
      has_refresh_token: true,
    });
    expect(await count(s, 'credentials')).toBe(1);
    const stored = await databaseText(s);
    expect(stored).not.toContain(grant.access_token);
    expect(stored).not.toContain(grant.refresh_token);
  });

  it('refuses callers without connections.write and bad tokens, changing nothing', async () => {
    await setup(backend);
    const { id } = await s.importGrant();
    const before = await dumpTables(s, ['credentials']);
    const reader = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.read', 'token.read'] },
    ]);
    const put = (body: unknown, key = s.adminKey, target = id) =>
      s.call({ method: 'PUT', url: `/v1/connections/${target}/tokens`, key, body });
    const answers = [
      await put({ access_token: 'at-new' }, reader.apiKey),
      await put({}),
      await put({ access_token: 'has space' }),
      await put({ access_token: 'at-new', expires_in: 60, expires_at: new Date().toISOString() }),
      await put({ access_token: 'at-new', owner: 'user-b' }),
      await put({ access_token: 'at-new' }, s.adminKey, 'conn_missing'),
    ];
    expect(answers.map((r) => [r.statusCode, r.json().error])).toEqual([
      [403, 'forbidden'],
      [400, 'invalid_request'],
      [400, 'invalid_request'],
      [400, 'invalid_request'],
      [400, 'invalid_request'],
      [404, 'not_found'],
    ]);
    for (const answer of answers) expect(answer.body).not.toContain('at-new');
    expect(await dumpTables(s, ['credentials'])).toEqual(before);
    const rows = (await auditRows(s)).filter((r) => r.action === 'connection.reauthorize');
    expect(rows.map((r) => r.outcome)).toEqual(['forbidden', 'invalid_request', 'not_found']);
  });
});
