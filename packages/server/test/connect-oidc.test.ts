// The whole connect flow through the HTTP API against oidc-provider, with real sockets on
// loopback: the provider configured by discovery (preset "oidc"), the authorize URL from
// POST /v1/connect/sessions, a browser through login and consent, the provider's redirect to
// the server's callback, the 303 to the backend with connection_id; then hand-outs, a refresh
// with rotation, introspection active and inactive, revocation by DELETE, and re-authorization
// of a connection revoked behind Tokenwarden's back.
import { afterEach, describe, expect, it } from 'vitest';
import { browse, startOidcServer, type OidcServer } from '@tokenwarden/testkit/oidc';
import { BACKEND, count, freePort } from './connect-helpers.ts';
import { auditRows, BACKENDS, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer | undefined;
let oidc: OidcServer | undefined;
afterEach(async () => {
  await s?.close();
  await oidc?.close();
  s = undefined;
  oidc = undefined;
});

describe.each(BACKENDS)('connect flow against oidc-provider on %s', (backend) => {
  it('connects, hands out, refreshes, introspects and revokes through the HTTP API', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const callbackUrl = `${base}/v1/connect/callback`;
    oidc = await startOidcServer({ redirectUri: callbackUrl });
    s = await startTestServer({ backend, server: { connect: { callbackUrl } } });
    await s.app.listen({ port, host: '127.0.0.1' });
    const api = (method: string, path: string, key: string, body?: unknown) =>
      fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    // The provider, by discovery.
    const put = await api('PUT', '/v1/providers/idp', s.adminKey, {
      preset: 'oidc',
      issuer: oidc.issuer,
      client_id: oidc.clientId,
      client_secret: oidc.clientSecret,
      scopes: ['openid', 'offline_access'],
      // oidc-provider issues a refresh token for offline_access only with consent asked for.
      authorize_params: { prompt: 'consent' },
      rotates_refresh_tokens: true,
      reuse_detection: true,
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({
      issuer: oidc.issuer,
      token_url: `${oidc.issuer}/token`,
      revocation_url: `${oidc.issuer}/token/revocation`,
      introspection_url: `${oidc.issuer}/token/introspection`,
    });

    const backend_ = await s.createClient([
      {
        owner: 'user-42',
        provider: 'idp',
        actions: ['connections.write', 'connections.read', 'token.read'],
      },
    ]);
    const key = backend_.apiKey;

    // The connect flow: a browser through login and consent, back to the backend.
    const started = await api('POST', '/v1/connect/sessions', key, {
      provider: 'idp',
      owner: 'user-42',
      redirect_uri: BACKEND,
    });
    expect(started.status).toBe(201);
    const { authorize_url } = (await started.json()) as { authorize_url: string };
    expect(authorize_url.startsWith(`${oidc.issuer}/auth?`)).toBe(true);
    const landed = await browse(authorize_url, 'https://app.example/');
    expect(landed.origin + landed.pathname).toBe('https://app.example/integrations/done');
    expect(landed.searchParams.get('error')).toBeNull();
    const id = landed.searchParams.get('connection_id')!;
    expect(id).toMatch(/^conn_/);
    expect(await count(s, 'connect_sessions')).toBe(0);

    const info = (await (await api('GET', `/v1/connections/${id}`, key)).json()) as Record<
      string,
      unknown
    >;
    expect(info).toMatchObject({
      owner: 'user-42',
      provider: 'idp',
      status: 'active',
      version: 1,
      has_refresh_token: true,
    });

    // Hand-out, then a refresh at the provider (the resource server said 401 to version 1).
    const first = (await (await api('POST', `/v1/connections/${id}/token`, key, {})).json()) as {
      access_token: string;
      version: number;
    };
    expect(first.version).toBe(1);
    expect(await oidc.isActive(first.access_token, 'access_token')).toBe(true);
    const rejected = await api('POST', `/v1/connections/${id}/token/rejected`, key, {
      version: 1,
    });
    expect(rejected.status).toBe(200);
    const second = (await rejected.json()) as { access_token: string; version: number };
    expect(second.version).toBe(2);
    expect(second.access_token).not.toBe(first.access_token);

    // Introspection through Tokenwarden.
    const introspect = async (connection: string, token?: string) => {
      const res = await api(
        'POST',
        `/v1/connections/${connection}/introspect`,
        key,
        token ? { token } : {},
      );
      expect(res.status).toBe(200);
      return (await res.json()) as { active: boolean; client_id?: string; sub?: string };
    };
    expect(await introspect(id)).toMatchObject({
      active: true,
      client_id: oidc.clientId,
      sub: 'user-42',
    });
    expect(await introspect(id, 'refresh_token')).toMatchObject({ active: true });

    // DELETE revokes the grant at the provider: the token handed out is dead there.
    expect(await oidc.isActive(second.access_token, 'access_token')).toBe(true);
    expect((await api('DELETE', `/v1/connections/${id}`, key)).status).toBe(204);
    expect(await oidc.isActive(second.access_token, 'access_token')).toBe(false);
    expect((await api('POST', `/v1/connections/${id}/token`, key, {})).status).toBe(404);

    // A second connection, revoked behind Tokenwarden's back: introspection says inactive, the
    // next refresh needs_reauth, and the connect flow re-authorizes it under the same id.
    const connect = async (connectionId?: string) => {
      const res = await api('POST', '/v1/connect/sessions', key, {
        provider: 'idp',
        owner: 'user-42',
        redirect_uri: BACKEND,
        ...(connectionId ? { connection_id: connectionId } : {}),
      });
      expect(res.status).toBe(201);
      const back = await browse(
        ((await res.json()) as { authorize_url: string }).authorize_url,
        'https://app.example/',
      );
      return back.searchParams.get('connection_id')!;
    };
    const other = await connect();
    expect(other).not.toBe(id);
    const otherToken = (await (
      await api('POST', `/v1/connections/${other}/token`, key, {})
    ).json()) as { access_token: string; version: number };
    await oidc.revoke(otherToken.access_token, 'access_token');
    expect(await introspect(other)).toMatchObject({ active: false });
    const dead = await api('POST', `/v1/connections/${other}/token/rejected`, key, {
      version: otherToken.version,
    });
    expect(dead.status).toBe(409);
    expect(await dead.json()).toMatchObject({ error: 'needs_reauth' });
    const deadVersion = (
      (await (await api('GET', `/v1/connections/${other}`, key)).json()) as {
        version: number;
      }
    ).version;
    expect(await connect(other)).toBe(other);
    expect(await (await api('GET', `/v1/connections/${other}`, key)).json()).toMatchObject({
      status: 'active',
      version: deadVersion + 1,
    });
    expect(await introspect(other)).toMatchObject({ active: true });
    expect(await count(s, 'credentials')).toBe(1);

    const rows = await auditRows(s);
    expect(
      rows
        .filter((r) => r.connection_id === id || r.action.startsWith('connect.'))
        .map((r) => [r.action, r.actor, r.outcome]),
    ).toEqual([
      ['connect.start', backend_.id, 'ok'],
      ['connect.callback', 'browser', 'ok'],
      ['token.read', backend_.id, 'ok'],
      ['connection.refresh', backend_.id, 'ok'],
      ['token.rejected', backend_.id, 'ok'],
      ['connection.introspect', backend_.id, 'ok'],
      ['connection.introspect', backend_.id, 'ok'],
      ['connection.delete', backend_.id, 'ok'],
      ['token.read', backend_.id, 'not_found'],
      ['connect.start', backend_.id, 'ok'],
      ['connect.callback', 'browser', 'ok'],
      ['connect.start', backend_.id, 'ok'],
      ['connect.callback', 'browser', 'ok'],
    ]);
    expect(rows.find((r) => r.action === 'connection.delete')!.detail).toEqual({
      revocation: 'revoked',
    });
    const text = JSON.stringify(rows) + s.logLines.join('\n');
    for (const token of [first.access_token, second.access_token, otherToken.access_token]) {
      expect(text).not.toContain(token);
    }
    expect(text).not.toContain(new URL(authorize_url).searchParams.get('state')!);
    expect(text).not.toContain(oidc.clientSecret);
  });
});
