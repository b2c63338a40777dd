// PUT /v1/providers/{name} with a preset from core's catalog, with overrides in the same call,
// and with preset "oidc" (discovery); GET /v1/presets. Bad presets are refused with nothing
// stored; the client secret never comes back.
import { PRESET_NAMES } from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, dumpTables, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

const SECRET = 'preset-client-secret-0123456789';

describe.each(BACKENDS)('provider presets on %s', (backend) => {
  it("fills in a preset's URLs and settings; every field given overrides it", async () => {
    s = await startTestServer({ backend });
    const put = await s.admin('PUT', '/v1/providers/crm', {
      preset: 'salesforce',
      preset_params: { domain: 'acme.my.salesforce.com' },
      client_id: 'sf-client',
      client_secret: SECRET,
      // Through a proxy: the token endpoint moves, the rest stays the preset's.
      token_url: 'https://oauth-proxy.acme.example/salesforce/token',
      default_access_ttl_seconds: 900,
    });
    expect(put.statusCode, put.body).toBe(200);
    const view = put.json();
    expect(view).toMatchObject({
      name: 'crm',
      preset: 'salesforce',
      preset_params: { domain: 'acme.my.salesforce.com' },
      token_url: 'https://oauth-proxy.acme.example/salesforce/token',
      authorize_url: 'https://acme.my.salesforce.com/services/oauth2/authorize',
      revocation_url: 'https://acme.my.salesforce.com/services/oauth2/revoke',
      introspection_url: 'https://acme.my.salesforce.com/services/oauth2/introspect',
      client_id: 'sf-client',
      client_auth: 'client_secret_post',
      has_client_secret: true,
      default_access_ttl_seconds: 900,
      rotates_refresh_tokens: true,
      reuse_detection: true,
      refresh_token_idle_seconds: 30 * 24 * 3600,
      transient_error_messages: ['token request is already being processed'],
    });
    expect(put.body).not.toContain(SECRET);
    expect((await s.admin('GET', '/v1/providers/crm')).json()).toEqual(view);

    // The row keeps the preset's name and the overrides only, so catalog fixes reach it.
    const [row] = (await dumpTables(s, ['providers'])).providers as { config: string }[];
    const stored = JSON.parse(row!.config) as Record<string, unknown>;
    expect(stored).toMatchObject({
      preset: 'salesforce',
      tokenUrl: 'https://oauth-proxy.acme.example/salesforce/token',
      defaultAccessTtlSeconds: 900,
    });
    expect(stored.authorizeUrl).toBeUndefined();
    expect(JSON.stringify(row)).not.toContain(SECRET);
    const [audit] = await auditRows(s);
    expect(audit).toMatchObject({ action: 'provider.put', outcome: 'ok', provider: 'crm' });
    expect(audit!.detail).toEqual({ has_client_secret: true, preset: 'salesforce' });
  });

  it('a preset pointed at the test provider refreshes like any provider (a test or sovereign cloud)', async () => {
    s = await startTestServer({ backend });
    const put = await s.admin('PUT', '/v1/providers/test', {
      preset: 'okta',
      preset_params: { domain: 'acme.okta.com' },
      token_url: s.provider.tokenUrl,
      introspection_url: s.provider.introspectionUrl,
      revocation_url: s.provider.revocationUrl,
      client_id: s.provider.clientId,
      client_secret: s.provider.clientSecret,
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({
      preset: 'okta',
      authorize_url: 'https://acme.okta.com/oauth2/default/v1/authorize',
      token_url: s.provider.tokenUrl,
      reuse_grace_seconds: 30,
      scopes: ['offline_access'],
    });
    const { id } = await s.importGrant({ expiresIn: 0 });
    const token = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(token.statusCode).toBe(200);
    expect(token.json()).toMatchObject({ version: 2 });
    expect(s.provider.stats().redemptions).toBe(1);
    const introspected = await s.admin('POST', `/v1/connections/${id}/introspect`);
    expect(introspected.json()).toMatchObject({ active: true });
  });

  it('refuses an unknown preset, a missing parameter and a preset-less provider without token_url; nothing stored', async () => {
    s = await startTestServer({ backend });
    const before = await dumpTables(s, ['providers']);
    const cases: Record<string, unknown>[] = [
      { preset: 'myspace', client_id: 'c' },
      { preset: 'okta', client_id: 'c' },
      { preset: 'okta', client_id: 'c', preset_params: { domain: 'evil.example/path?' } },
      { preset: 'okta', client_id: 'c', preset_params: { tenant: 'x' } },
      { client_id: 'c' },
      { client_id: 'c', token_url: 'https://a.example/token', preset_params: { domain: 'x' } },
      { preset: 'oidc', client_id: 'c' },
      { preset: 'oidc', client_id: 'c', issuer: 'http://127.0.0.1:9' },
      { preset: 'google', client_id: 'c', client_auth: 'none' },
      { preset: 'google', client_id: 'c', dead_token_errors: 'invalid_grant' },
    ];
    for (const body of cases) {
      const response = await s.admin('PUT', '/v1/providers/p1', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_request' });
    }
    const unknown = await s.admin('PUT', '/v1/providers/p1', { preset: 'myspace', client_id: 'c' });
    expect(unknown.json().message).toContain('preset');
    const missing = await s.admin('PUT', '/v1/providers/p1', { preset: 'okta', client_id: 'c' });
    expect(missing.json().message).toBe('preset_params.domain: is required by preset okta');
    expect(await dumpTables(s, ['providers'])).toEqual(before);
    expect((await s.admin('GET', '/v1/providers/p1')).statusCode).toBe(404);
  });

  it('preset "oidc" discovers an issuer’s endpoints; overrides still win', async () => {
    s = await startTestServer({ backend });
    const issuer = new URL(s.provider.tokenUrl).origin;
    const put = await s.admin('PUT', '/v1/providers/idp', {
      preset: 'oidc',
      issuer,
      client_id: s.provider.clientId,
      client_secret: s.provider.clientSecret,
      scopes: ['openid', 'offline_access'],
      reuse_grace_seconds: 5,
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({
      issuer,
      token_url: s.provider.tokenUrl,
      authorize_url: s.provider.authorizeUrl,
      revocation_url: s.provider.revocationUrl,
      introspection_url: s.provider.introspectionUrl,
      client_auth: 'client_secret_basic',
      scopes: ['openid', 'offline_access'],
      reuse_grace_seconds: 5,
    });
    expect(put.json().preset).toBeUndefined();
    expect(put.body).not.toContain(s.provider.clientSecret);
  });
});

describe('GET /v1/presets', () => {
  it('lists every catalog preset and "oidc", for the admin only', async () => {
    s = await startTestServer();
    const list = await s.admin('GET', '/v1/presets');
    expect(list.statusCode).toBe(200);
    const presets = list.json<{ presets: { name: string; params: Record<string, unknown> }[] }>()
      .presets;
    expect(presets.map((p) => p.name)).toEqual([...PRESET_NAMES, 'oidc']);
    expect(presets.find((p) => p.name === 'okta')).toMatchObject({
      token_url: 'https://{domain}/oauth2/{authorizationServer}/v1/token',
      params: { domain: null, authorizationServer: 'default' },
    });
    const client = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.read'] },
    ]);
    const refused = await s.call({ method: 'GET', url: '/v1/presets', key: client.apiKey });
    expect(refused.statusCode).toBe(403);
    const [denial] = (await auditRows(s)).filter((r) => r.outcome === 'forbidden');
    expect(denial).toMatchObject({ action: 'preset.list', actor: client.id });
  });
});
