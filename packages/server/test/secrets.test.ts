import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS, databaseText, dumpTables, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

const CLIENT_SECRET = 'cs-SECRET-5b1f0c9a';

/**
 * Drives every kind of request, good and bad, with known secrets, then looks for them in the
 * log lines, the audit rows and the database itself. The token endpoint's own response is the
 * only place an access token may appear.
 */
describe.each(BACKENDS)('no secret outside the token response on %s', (backend) => {
  it('keeps tokens, refresh tokens, client secrets and API keys out of logs, audit, database and other responses', async () => {
    s = await startTestServer({ backend, provider: { clientSecret: CLIENT_SECRET } });
    const responses: { name: string; response: LightMyRequestResponse }[] = [];
    const tokenResponses: LightMyRequestResponse[] = [];
    const record = (name: string, response: LightMyRequestResponse) => {
      responses.push({ name, response });
      return response;
    };

    record(
      'put provider',
      await s.admin('PUT', '/v1/providers/test', {
        token_url: s.provider.tokenUrl,
        client_id: s.provider.clientId,
        client_secret: CLIENT_SECRET,
      }),
    );
    const created = await s.admin('POST', '/v1/clients', {
      name: 'worker',
      grants: [
        {
          owner: 'user-a',
          provider: 'test',
          actions: ['token.read', 'connections.read', 'connections.write'],
        },
      ],
    });
    const apiKey = created.json<{ api_key: string }>().api_key;
    const clientId = created.json<{ id: string }>().id;
    const grant = s.provider.issueGrant();
    const second = s.provider.issueGrant();
    const as = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) =>
      s.call({ method, url, body, key: apiKey });

    // Good requests: import (already expired), hand-outs that refresh, a rejection report.
    const imported = record(
      'import',
      await as('POST', '/v1/connections', {
        provider: 'test',
        owner: 'user-a',
        access_token: grant.access_token,
        refresh_token: grant.refresh_token,
        expires_in: 0,
      }),
    );
    const id = imported.json<{ id: string }>().id;
    tokenResponses.push(await as('POST', `/v1/connections/${id}/token`, {}));
    tokenResponses.push(await as('POST', `/v1/connections/${id}/token/rejected`, { version: 2 }));
    tokenResponses.push(await as('POST', `/v1/connections/${id}/token`, { min_ttl: 60 }));
    record('read', await as('GET', `/v1/connections/${id}`));
    record('list', await as('GET', '/v1/connections'));
    record('providers', await s.admin('GET', '/v1/providers'));
    record('clients', await s.admin('GET', '/v1/clients'));

    // Bad requests carrying secrets in every wrong place.
    record(
      'malformed',
      await as(
        'POST',
        '/v1/connections',
        `{"access_token": "${second.access_token}", "refresh_token": "${second.refresh_token}"`,
      ),
    );
    record(
      'unknown field',
      await as('POST', '/v1/connections', {
        provider: 'test',
        owner: 'user-a',
        access_token: second.access_token,
        refreshToken: second.refresh_token,
      }),
    );
    record(
      'secret as owner',
      await as('POST', '/v1/connections', {
        provider: 'test',
        owner: `${second.refresh_token} `,
        access_token: second.access_token,
      }),
    );
    record(
      'forbidden import',
      await as('POST', '/v1/connections', {
        provider: 'test',
        owner: 'user-b',
        access_token: second.access_token,
        refresh_token: second.refresh_token,
      }),
    );
    record(
      'unknown provider',
      await as('POST', '/v1/connections', {
        provider: 'nope',
        owner: 'user-a',
        access_token: second.access_token,
        refresh_token: second.refresh_token,
      }),
    );
    record(
      'bad provider',
      await s.admin('PUT', '/v1/providers/test2', {
        token_url: 'http://evil.example/token',
        client_id: 'c',
        client_secret: CLIENT_SECRET,
      }),
    );
    record('wrong key', await s.call({ method: 'GET', url: '/v1/clients', key: `${s.adminKey}x` }));
    record(
      'key in query',
      await s.call({
        method: 'GET',
        url: `/v1/connections?owner=${encodeURIComponent(apiKey)}`,
        key: 'nope',
      }),
    );

    // Revoked, then refused; and a connection whose refresh token the provider refuses.
    record('revoke', await s.admin('DELETE', `/v1/clients/${clientId}`));
    record('revoked', await as('POST', `/v1/connections/${id}/token`, {}));
    const dead = await s.importGrant({ expiresIn: 0 });
    s.provider.injectFailures({ kind: 'invalid_grant' });
    record('needs reauth', await s.admin('POST', `/v1/connections/${dead.id}/token`, {}));
    record('deleted', await s.admin('DELETE', `/v1/connections/${id}`));
    record('metrics', await s.call({ method: 'GET', url: '/metrics' }));
    record('audit', await s.admin('GET', '/v1/audit?limit=200'));

    expect(tokenResponses.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    const issuedAccessTokens = tokenResponses.map(
      (r) => r.json<{ access_token: string }>().access_token,
    );
    const apiKeySecret = apiKey.slice(-43);
    const secrets: Record<string, string> = {
      'the imported access token': grant.access_token,
      'the imported refresh token': grant.refresh_token,
      'a refused access token': second.access_token,
      'a refused refresh token': second.refresh_token,
      'the dead refresh token': dead.refreshToken,
      'the client secret': CLIENT_SECRET,
      'the API key': apiKey,
      "the API key's secret": apiKeySecret,
      'the admin key': s.adminKey,
      ...Object.fromEntries(
        issuedAccessTokens.map((token, i) => [`issued access token ${i}`, token]),
      ),
    };

    await s.app.close(); // flushes the audit buffer
    const logs = s.logLines.join('\n');
    const audit = JSON.stringify((await dumpTables(s, ['audit_events'])).audit_events);
    const database = await databaseText(s);
    // The checks below must not be vacuous: the log, the audit and the database hold real data.
    expect(s.logLines.length).toBeGreaterThan(20);
    expect(logs).toContain('"route":"/v1/connections/:id/token"');
    expect(audit).toContain('token.rejected');
    expect(database).toContain(id);

    for (const [what, secret] of Object.entries(secrets)) {
      expect(logs.includes(secret), `${what} in the log`).toBe(false);
      expect(audit.includes(secret), `${what} in the audit`).toBe(false);
      expect(database.includes(secret), `${what} in the database`).toBe(false);
      for (const { name, response } of responses) {
        expect(response.body.includes(secret), `${what} in the ${name} response`).toBe(false);
      }
    }
  });
});
