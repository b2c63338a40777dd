// A provider on day two: one setting changed without losing the client secret (PATCH), a PUT
// that would drop the secret refused, a check of the settings against the token endpoint that
// redeems nothing, and errors that say which values exist.
import { PRESET_NAMES } from '@tokenwarden/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closedPort, startTestServer, type TestServer } from './helpers.ts';

describe('providers on day two', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    await s.putProvider('test');
    s.provider.reset();
  });

  const show = async (name = 'test') => (await s.admin('GET', `/v1/providers/${name}`)).json();

  describe('PATCH /v1/providers/{name}', () => {
    it('changes one setting and keeps the stored client secret', async () => {
      const before = await show();
      const response = await s.admin('PATCH', '/v1/providers/test', {
        rotates_refresh_tokens: false,
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ ...before, rotates_refresh_tokens: false });
      expect(await show()).toEqual({ ...before, rotates_refresh_tokens: false });

      // The kept secret still authenticates: an expired connection is refreshed with it.
      const { id } = await s.importGrant({ expiresIn: 0 });
      const token = await s.admin('POST', `/v1/connections/${id}/token`, {});
      expect(token.statusCode).toBe(200);
      expect(s.provider.stats().redemptions).toBe(1);
    });

    it('merges maps member by member and removes a setting given as null', async () => {
      await s.admin('PATCH', '/v1/providers/test', {
        authorize_params: { prompt: 'consent', access_type: 'offline' },
        scopes: ['a', 'b'],
      });
      const response = await s.admin('PATCH', '/v1/providers/test', {
        authorize_params: { prompt: null },
        scopes: null,
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ authorize_params: { access_type: 'offline' } });
      expect(response.json().scopes).toEqual([]);
    });

    it('refuses to drop the client secret: every client authentication method sends one', async () => {
      const response = await s.admin('PATCH', '/v1/providers/test', { client_secret: null });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({
        error: 'invalid_request',
        message: expect.stringMatching(/^client_secret: is required for client_auth /),
      });
      expect(await show()).toMatchObject({ has_client_secret: true });
      expect(s.provider.stats().tokenRequests).toBe(0);
    });

    it('follows the preset: only what was given is stored, not what the preset filled in', async () => {
      const put = await s.admin('PUT', '/v1/providers/okta', {
        preset: 'okta',
        preset_params: { domain: 'acme.okta.com' },
        client_id: 'c',
        client_secret: 's',
      });
      expect(put.statusCode).toBe(200);
      const patched = await s.admin('PATCH', '/v1/providers/okta', {
        preset_params: { authorizationServer: 'custom' },
      });
      expect(patched.statusCode).toBe(200);
      expect(patched.json()).toMatchObject({
        preset: 'okta',
        preset_params: { domain: 'acme.okta.com', authorizationServer: 'custom' },
        token_url: 'https://acme.okta.com/oauth2/custom/v1/token',
      });
    });

    it.each([
      [
        'a merge without token_url or preset',
        'okta',
        { preset: null },
        /^token_url: is required unless a preset is given/,
      ],
      [
        'a plain http token_url off loopback',
        'test',
        { token_url: 'http://acme.example/token' },
        /^token_url: /,
      ],
      ['client_id removed', 'test', { client_id: null }, /client_id must be string/],
      ['an unknown setting', 'test', { client_secrte: 'x' }, /unknown field "client_secrte"/],
      ['an empty patch', 'test', {}, /fewer than 1 properties/],
    ])('refuses %s as invalid_request and stores nothing', async (_, name, patch, message) => {
      await s.admin('PUT', '/v1/providers/okta', {
        preset: 'okta',
        preset_params: { domain: 'acme.okta.com' },
        client_id: 'c',
        client_secret: 's',
      });
      const before = await show(name);
      const response = await s.admin('PATCH', `/v1/providers/${name}`, patch);
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toBe('invalid_request');
      expect(response.json().message).toMatch(message);
      expect(await show(name)).toEqual(before);
    });

    it('answers not_found for a provider that does not exist', async () => {
      const response = await s.admin('PATCH', '/v1/providers/nope', { client_id: 'c' });
      expect(response.statusCode).toBe(404);
      expect(response.json().error).toBe('not_found');
      expect((await s.admin('GET', '/v1/providers/nope')).statusCode).toBe(404);
    });
  });

  describe('PUT /v1/providers/{name}', () => {
    it('refuses to drop a stored client secret by leaving it out, naming the fix', async () => {
      const response = await s.admin('PUT', '/v1/providers/test', {
        token_url: s.provider.tokenUrl,
        client_id: s.provider.clientId,
        rotates_refresh_tokens: false,
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({
        error: 'invalid_request',
        message:
          'client_secret: provider test has a stored client_secret that this PUT would drop: send ' +
          'it again, send "client_secret": null to drop it, or change single settings with ' +
          'PATCH /v1/providers/test',
      });
      expect(await show()).toMatchObject({ has_client_secret: true, rotates_refresh_tokens: true });
    });

    it('refuses a PUT that leaves no client secret, with null as without one', async () => {
      const body = { token_url: s.provider.tokenUrl, client_id: s.provider.clientId };
      const required = /^client_secret: is required for client_auth /;
      const dropped = await s.admin('PUT', '/v1/providers/test', { ...body, client_secret: null });
      expect(dropped.statusCode).toBe(400);
      expect(dropped.json().message).toMatch(required);
      expect(await show()).toMatchObject({ has_client_secret: true });
      const fresh = await s.admin('PUT', '/v1/providers/fresh', body);
      expect(fresh.statusCode).toBe(400);
      expect(fresh.json().message).toMatch(required);
    });

    it('names the presets that exist when the one given does not', async () => {
      const response = await s.admin('PUT', '/v1/providers/x', { preset: 'gogle', client_id: 'c' });
      expect(response.statusCode).toBe(400);
      expect(response.json().message).toBe(
        `body/preset must be one of ${[...PRESET_NAMES, 'oidc'].join(', ')}`,
      );
    });
  });

  describe('POST /v1/providers/{name}/test', () => {
    it('reads invalid_grant for a made-up refresh token as reachable and accepted', async () => {
      const response = await s.admin('POST', '/v1/providers/test/test');
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        name: 'test',
        token_url: s.provider.tokenUrl,
        verdict: 'accepted',
        code: 'invalid_grant',
      });
      expect(response.json().message).toMatch(/is reachable and accepts client/);
      // One request, refused: nothing was redeemed.
      expect(s.provider.stats()).toMatchObject({
        tokenRequests: 1,
        invalidGrants: 1,
        redemptions: 0,
      });
    });

    it('reports a wrong client secret as client_rejected', async () => {
      await s.admin('PATCH', '/v1/providers/test', { client_secret: 'not-the-secret' });
      const response = await s.admin('POST', '/v1/providers/test/test');
      expect(response.json()).toMatchObject({ verdict: 'client_rejected', code: 'invalid_client' });
      expect(response.json().message).toMatch(/check client_id, client_secret and client_auth/);
      expect(response.body).not.toContain('not-the-secret');
    });

    it('reports a token endpoint that does not answer as unreachable', async () => {
      const port = await closedPort();
      await s.admin('PATCH', '/v1/providers/test', {
        token_url: `http://127.0.0.1:${port}/token`,
      });
      const refused = await s.admin('POST', '/v1/providers/test/test');
      expect(refused.json()).toMatchObject({ verdict: 'unreachable', code: 'network_error' });

      await s.putProvider('test');
      s.provider.injectFailures({ kind: 'server_error', status: 503 });
      const down = await s.admin('POST', '/v1/providers/test/test');
      expect(down.json()).toMatchObject({ verdict: 'unreachable', code: 'server_error' });
      expect(down.json().message).toMatch(/did not answer the token request \(a 5xx/);
    });

    it('answers not_found for a provider that does not exist, and needs the admin key', async () => {
      expect((await s.admin('POST', '/v1/providers/nope/test')).statusCode).toBe(404);
      const client = await s.createClient([{ owner: '*', provider: '*', actions: ['token.read'] }]);
      const response = await s.call({
        method: 'POST',
        url: '/v1/providers/test/test',
        key: client.apiKey,
      });
      expect(response.statusCode).toBe(403);
      expect(s.provider.stats().tokenRequests).toBe(0);
    });
  });

  describe('DELETE /v1/providers/{name}', () => {
    it('deletes a provider no connection uses; refuses one in use, an unknown one, a client', async () => {
      await s.putProvider('spare');
      const client = await s.createClient([{ owner: '*', provider: '*', actions: ['token.read'] }]);
      const byClient = await s.call({
        method: 'DELETE',
        url: '/v1/providers/spare',
        key: client.apiKey,
      });
      expect(byClient.statusCode).toBe(403);

      expect((await s.admin('DELETE', '/v1/providers/spare')).statusCode).toBe(204);
      expect((await s.admin('GET', '/v1/providers/spare')).statusCode).toBe(404);
      // The registry forgot it at once: a connection for it is refused.
      const orphan = await s.admin('POST', '/v1/connections', {
        provider: 'spare',
        owner: 'o',
        access_token: 'x',
      });
      expect(orphan.json()).toMatchObject({ error: 'unknown_provider' });
      const again = await s.admin('DELETE', '/v1/providers/spare');
      expect(again.statusCode).toBe(404);
      expect(again.json()).toMatchObject({ error: 'not_found' });

      await s.importGrant();
      const inUse = await s.admin('DELETE', '/v1/providers/test');
      expect(inUse.statusCode).toBe(400);
      expect(inUse.json()).toMatchObject({ error: 'invalid_request' });
      expect(inUse.json().message).toMatch(/^provider test still has connections \(conn_\S+ among/);
      expect((await s.admin('GET', '/v1/providers/test')).statusCode).toBe(200);

      const audit = await s.admin('GET', '/v1/audit?limit=200');
      const outcomes = audit
        .json<{ events: { action: string; outcome: string }[] }>()
        .events.filter((e) => e.action === 'provider.delete')
        .map((e) => e.outcome);
      expect(outcomes).toEqual(['invalid_request', 'not_found', 'ok', 'forbidden']);
    });
  });

  it('names the grant actions that exist when one does not', async () => {
    const response = await s.admin('POST', '/v1/clients', {
      name: 'w',
      grants: [{ owner: '*', provider: '*', actions: ['token.raed'] }],
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toBe(
      'body/grants/0/actions/0 must be one of token.read, proxy, connections.read, connections.write',
    );
  });

  it('documents PATCH and the test route in the OpenAPI document', async () => {
    const doc = (await s.call({ method: 'GET', url: '/docs/json' })).json();
    const patch = doc.paths['/v1/providers/{name}'].patch;
    expect(patch.requestBody.content['application/json'].schema.properties).toHaveProperty(
      'client_secret',
    );
    expect(Object.keys(patch.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '404']),
    );
    const test = doc.paths['/v1/providers/{name}/test'].post;
    expect(
      test.responses['200'].content['application/json'].schema.properties.verdict.enum,
    ).toEqual(['accepted', 'client_rejected', 'unreachable', 'unexpected']);
  });
});
