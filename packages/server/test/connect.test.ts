// The connect flow over HTTP against the test provider: POST /v1/connect/sessions → the
// provider's authorize endpoint (real HTTP) → GET /v1/connect/callback → 303 to the backend with
// connection_id; its abuse (replayed, expired, unknown, missing and foreign state, provider
// errors), refused starts and grant checks — each a clear answer with nothing created.
import { KeyRing, type ConnectionEvent } from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { buildServer, hashApiKey } from '../src/index.ts';
import { BACKEND, count, pathOf, sqlRows } from './connect-helpers.ts';
import {
  auditRows,
  BACKENDS,
  databaseText,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from './helpers.ts';

const CALLBACK = 'http://127.0.0.1:9/v1/connect/callback';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

async function setup(backend: 'sqlite' | 'postgres', options: TestServerOptions = {}) {
  const events: ConnectionEvent[] = [];
  s = await startTestServer({
    backend,
    ...options,
    server: {
      connect: { callbackUrl: CALLBACK },
      ...options.server,
      broker: { onConnectionEvent: (event) => events.push(event), ...options.server?.broker },
    },
  });
  const put = await s.admin('PUT', '/v1/providers/test', {
    token_url: s.provider.tokenUrl,
    authorize_url: s.provider.authorizeUrl,
    client_id: s.provider.clientId,
    client_secret: s.provider.clientSecret,
    scopes: ['read'],
  });
  expect(put.statusCode).toBe(200);
  return events;
}

async function start(key: string, body: Record<string, unknown> = {}) {
  return s.call({
    method: 'POST',
    url: '/v1/connect/sessions',
    key,
    body: { provider: 'test', owner: 'user-7', redirect_uri: BACKEND, ...body },
  });
}

/** The browser at the provider: it approves at once and redirects to the callback. */
async function authorize(authorizeUrl: string): Promise<URL> {
  const res = await fetch(authorizeUrl, { redirect: 'manual' });
  await res.body?.cancel();
  const location = new URL(res.headers.get('location')!);
  expect(location.href.startsWith(CALLBACK)).toBe(true);
  return location;
}

/** The browser back at Tokenwarden's callback. */
function callback(location: URL | string) {
  return s.call({ method: 'GET', url: pathOf(location) });
}

function backTo(response: { statusCode: number; headers: Record<string, unknown> }): URL {
  expect(response.statusCode).toBe(303);
  const url = new URL(String(response.headers.location));
  expect(url.origin + url.pathname).toBe('https://app.example/integrations/done');
  expect(url.searchParams.get('tab')).toBe('crm');
  return url;
}

/** No state, code or token in any audit row or log line. */
async function expectNoSecrets(secrets: string[]) {
  const audit = JSON.stringify(await auditRows(s));
  const logs = s.logLines.join('\n');
  for (const secret of secrets) {
    expect(audit).not.toContain(secret);
    expect(logs).not.toContain(secret);
  }
}

describe.each(BACKENDS)('connect flow over HTTP on %s', (backend) => {
  it('authorize URL → provider → callback → 303 with connection_id; the token is handed out', async () => {
    await setup(backend);
    const client = await s.createClient([
      { owner: 'user-7', provider: 'test', actions: ['connections.write', 'token.read'] },
    ]);
    const started = await start(client.apiKey);
    expect(started.statusCode).toBe(201);
    expect(started.headers['cache-control']).toBe('no-store');
    const { authorize_url, expires_at } = started.json<{
      authorize_url: string;
      expires_at: string;
    }>();
    expect(Date.parse(expires_at) - Date.now()).toBeGreaterThan(9 * 60_000);
    const request = new URL(authorize_url);
    expect(request.origin + request.pathname).toBe(s.provider.authorizeUrl);
    expect(request.searchParams.get('redirect_uri')).toBe(CALLBACK);
    expect(request.searchParams.get('code_challenge_method')).toBe('S256');
    expect(request.searchParams.get('scope')).toBe('read');
    const state = request.searchParams.get('state')!;
    expect(await count(s, 'connect_sessions')).toBe(1);

    const location = await authorize(authorize_url);
    const code = location.searchParams.get('code')!;
    const done = await callback(location);
    expect(done.headers['cache-control']).toBe('no-store');
    expect(done.headers['referrer-policy']).toBe('no-referrer');
    const id = backTo(done).searchParams.get('connection_id')!;
    expect(id).toMatch(/^conn_/);
    expect(s.provider.stats().codeExchanges).toBe(1);
    expect(await count(s, 'connect_sessions')).toBe(0);

    const connection = await s.admin('GET', `/v1/connections/${id}`);
    expect(connection.json()).toMatchObject({
      owner: 'user-7',
      provider: 'test',
      status: 'active',
      version: 1,
      has_refresh_token: true,
      scope: 'read',
    });
    const token = await s.call({
      method: 'POST',
      url: `/v1/connections/${id}/token`,
      key: client.apiKey,
      body: {},
    });
    expect(token.statusCode).toBe(200);
    const accessToken = token.json<{ access_token: string }>().access_token;
    expect(s.provider.isAccessTokenValid(accessToken)).toBe(true);

    const rows = await auditRows(s);
    expect(
      rows
        .filter((r) => r.action.startsWith('connect.'))
        .map((r) => [r.action, r.actor, r.outcome, r.owner, r.provider, r.connection_id]),
    ).toEqual([
      ['connect.start', client.id, 'ok', 'user-7', 'test', null],
      ['connect.callback', 'browser', 'ok', 'user-7', 'test', id],
    ]);
    expect(rows.find((r) => r.action === 'connect.start')!.detail).toMatchObject({
      redirect_to: 'https://app.example/integrations/done',
      reauthorize: false,
    });
    await expectNoSecrets([state, code, accessToken]);
    // Nor in the database: the session kept the state as a hash, the tokens are sealed.
    const stored = await databaseText(s);
    for (const secret of [state, code, accessToken]) expect(stored).not.toContain(secret);
  });

  it('re-authorizes a needs_reauth connection through the flow: same id, active, recovered', async () => {
    const events = await setup(backend);
    const { id } = await s.importGrant({ owner: 'user-7', expiresIn: 0 });
    s.provider.injectFailures({ kind: 'invalid_grant' });
    const dead = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(dead.json()).toMatchObject({ error: 'needs_reauth' });
    const before = (await s.admin('GET', `/v1/connections/${id}`)).json<{ version: number }>();

    // Another owner's connection id is refused, and no session is stored.
    const wrongOwner = await start(s.adminKey, { owner: 'user-8', connection_id: id });
    expect(wrongOwner.statusCode).toBe(400);
    expect(wrongOwner.json()).toMatchObject({ error: 'invalid_request' });
    expect(await count(s, 'connect_sessions')).toBe(0);

    const started = await start(s.adminKey, { connection_id: id });
    expect(started.statusCode).toBe(201);
    const done = await callback(await authorize(started.json().authorize_url));
    expect(backTo(done).searchParams.get('connection_id')).toBe(id);
    expect((await s.admin('GET', `/v1/connections/${id}`)).json()).toMatchObject({
      id,
      status: 'active',
      version: before.version + 1,
    });
    expect(await count(s, 'credentials')).toBe(1);
    expect(events.filter((e) => e.type === 'recovered')).toEqual([
      expect.objectContaining({ connectionId: id, previousStatus: 'needs_reauth' }),
    ]);
    const row = (await auditRows(s)).find((r) => r.action === 'connect.callback')!;
    expect(row).toMatchObject({ outcome: 'ok', connection_id: id });
    expect(row.detail).toMatchObject({
      reauthorized: true,
      recovered: true,
      version: before.version + 1,
    });
    expect((await s.admin('POST', `/v1/connections/${id}/token`, {})).statusCode).toBe(200);
  });

  it('refuses replayed, expired, unknown and missing states with 400 before anything is sent', async () => {
    await setup(backend);
    const first = await start(s.adminKey);
    const location = await authorize(first.json().authorize_url);
    backTo(await callback(location));
    expect(await count(s, 'credentials')).toBe(1);
    const exchanges = s.provider.stats().tokenRequests;

    // Replayed: the session was used up by the first callback.
    const replayed = await callback(location);
    expect(replayed.statusCode).toBe(400);
    expect(replayed.json()).toEqual({
      error: 'invalid_request',
      message: 'state: is unknown, expired or already used',
    });

    // Expired: the session's time is up by the database clock.
    const second = await start(s.adminKey);
    const late = await authorize(second.json().authorize_url);
    await sqlRows(s, 'update connect_sessions set expires_at = created_at');
    const expired = await callback(late);
    expect(expired.statusCode).toBe(400);
    expect(expired.json()).toMatchObject({ error: 'invalid_request' });
    expect(await count(s, 'connect_sessions')).toBe(0);

    // Unknown, missing, repeated.
    const third = await start(s.adminKey);
    const valid = await authorize(third.json().authorize_url);
    const made = new URL(valid);
    made.searchParams.set('state', 'made-up-state');
    const missing = new URL(valid);
    missing.searchParams.delete('state');
    const twice = new URL(valid);
    twice.searchParams.append('state', valid.searchParams.get('state')!);
    for (const url of [made, missing, twice]) {
      const refused = await callback(url);
      expect(refused.statusCode, url.search).toBe(400);
      expect(refused.json()).toMatchObject({ error: 'invalid_request' });
    }
    expect(s.provider.stats().tokenRequests).toBe(exchanges);
    expect(await count(s, 'credentials')).toBe(1);
    const refusals = (await auditRows(s)).filter(
      (r) => r.action === 'connect.callback' && r.outcome !== 'ok',
    );
    expect(refusals.map((r) => [r.actor, r.outcome, r.detail])).toEqual(
      Array(5).fill(['browser', 'invalid_request', { field: 'state' }]),
    );
    await expectNoSecrets([
      location.searchParams.get('state')!,
      location.searchParams.get('code')!,
      valid.searchParams.get('code')!,
    ]);
  });

  it("another session's state with this code: error= back to the backend, nothing created", async () => {
    await setup(backend);
    const alice = await start(s.adminKey, { owner: 'alice' });
    const mallory = await start(s.adminKey, { owner: 'mallory' });
    const aliceBack = await authorize(alice.json().authorize_url);
    const malloryBack = await authorize(mallory.json().authorize_url);
    // Mallory's code presented with Alice's state (login CSRF): the verifiers do not match.
    const mixed = new URL(malloryBack);
    mixed.searchParams.set('state', aliceBack.searchParams.get('state')!);
    const answer = backTo(await callback(mixed));
    expect(answer.searchParams.get('error')).toBe('invalid_grant');
    expect(answer.searchParams.get('connection_id')).toBeNull();
    expect(await count(s, 'credentials')).toBe(0);
    // Alice's session is used up; Mallory's own still works.
    expect((await callback(aliceBack)).statusCode).toBe(400);
    const ok = backTo(await callback(malloryBack));
    expect(ok.searchParams.get('connection_id')).toMatch(/^conn_/);
    expect(await count(s, 'credentials')).toBe(1);
    const failed = (await auditRows(s)).find((r) => r.outcome === 'connect_failed')!;
    expect(failed).toMatchObject({ action: 'connect.callback', actor: 'browser' });
    expect(failed.detail).toEqual({ error: 'invalid_grant' });
  });

  it('a provider error (access_denied) comes back to the backend as error=, nothing created', async () => {
    await setup(backend);
    s.provider.configure({ authorizeError: 'access_denied' });
    const started = await start(s.adminKey);
    const answer = backTo(await callback(await authorize(started.json().authorize_url)));
    expect(answer.searchParams.get('error')).toBe('access_denied');
    expect(s.provider.stats().tokenRequests).toBe(0);
    expect(await count(s, 'credentials')).toBe(0);
    expect(await count(s, 'connect_sessions')).toBe(0);
  });

  it('refuses bad starts with typed errors and stores no session', async () => {
    await setup(backend);
    const bad: [Record<string, unknown>, number, string][] = [
      [{ redirect_uri: 'http://app.example/done' }, 400, 'invalid_request'],
      [{ redirect_uri: '/relative/path' }, 400, 'invalid_request'],
      [{ redirect_uri: 'https://app.example/done#frag' }, 400, 'invalid_request'],
      [{ redirect_uri: 'https://user:pw@app.example/done' }, 400, 'invalid_request'],
      [{ redirect_uri: 'javascript:alert(1)' }, 400, 'invalid_request'],
      [{ redirect_uri: 'ftp://app.example/done' }, 400, 'invalid_request'],
      [{ redirect_uri: 'https://app.example/do\nne' }, 400, 'invalid_request'],
      [{ redirect_uri: 'https://app.example/do ne' }, 400, 'invalid_request'],
      [{ redirect_uri: `https://app.example/${'a'.repeat(2100)}` }, 400, 'invalid_request'],
      [{ owner: '*' }, 400, 'invalid_request'],
      [{ owner: '' }, 400, 'invalid_request'],
      [{ scopes: ['has space'] }, 400, 'invalid_request'],
      [{ extra: true }, 400, 'invalid_request'],
      [{ provider: 'nope' }, 400, 'unknown_provider'],
      [{ connection_id: 'conn_missing' }, 404, 'not_found'],
    ];
    for (const [body, status, code] of bad) {
      const response = await start(s.adminKey, body);
      expect(response.statusCode, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(response.json()).toMatchObject({ error: code });
    }
    // A provider without an authorization endpoint has no connect flow.
    await s.putProvider('no-authorize');
    const noAuthorize = await start(s.adminKey, { provider: 'no-authorize' });
    expect(noAuthorize.json()).toMatchObject({ error: 'invalid_request' });
    expect(noAuthorize.json().message).toContain('authorize_url');
    // http on loopback is fine (a backend in development).
    expect((await start(s.adminKey, { redirect_uri: 'http://127.0.0.1:3000/cb' })).statusCode).toBe(
      201,
    );
    expect(await count(s, 'connect_sessions')).toBe(1);
    expect(await count(s, 'credentials')).toBe(0);
  });

  it('needs connections.write on the owner and provider; refusals are audited', async () => {
    await setup(backend);
    const reader = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.read', 'token.read'] },
    ]);
    const otherOwner = await s.createClient([
      { owner: 'user-8', provider: 'test', actions: ['connections.write'] },
    ]);
    for (const key of [reader.apiKey, otherOwner.apiKey]) {
      const refused = await start(key);
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ error: 'forbidden' });
    }
    expect((await start('nope')).statusCode).toBe(401);
    expect((await start(otherOwner.apiKey, { owner: 'user-8' })).statusCode).toBe(201);
    const denials = (await auditRows(s)).filter((r) => r.outcome === 'forbidden');
    expect(denials.map((r) => [r.action, r.actor, r.owner, r.provider])).toEqual([
      ['connect.start', reader.id, 'user-7', 'test'],
      ['connect.start', otherOwner.id, 'user-7', 'test'],
    ]);
    expect(await count(s, 'connect_sessions')).toBe(1);
  });
});

describe('connect flow edge cases', () => {
  it('a short session TTL: the callback after it is refused, nothing created', async () => {
    await setup('sqlite', { server: { connect: { callbackUrl: CALLBACK, ttlMs: 1 } } });
    const started = await start(s.adminKey);
    const location = await authorize(started.json().authorize_url);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const late = await callback(location);
    expect(late.statusCode).toBe(400);
    expect(late.json()).toMatchObject({ error: 'invalid_request' });
    expect(s.provider.stats().tokenRequests).toBe(0);
    expect(await count(s, 'credentials')).toBe(0);
  });

  it('a verifier that will not open (moved between sessions): error=decrypt_failed back to the backend, nothing created', async () => {
    await setup('sqlite');
    const a = await start(s.adminKey, { owner: 'a' });
    await start(s.adminKey, { owner: 'b' });
    const location = await authorize(a.json().authorize_url);
    const rows = await sqlRows(s, 'select state_hash, code_verifier from connect_sessions');
    await sqlRows(s, 'update connect_sessions set code_verifier = ? where state_hash = ?', [
      rows[1]!.code_verifier,
      rows[0]!.state_hash,
    ]);
    await sqlRows(s, 'update connect_sessions set code_verifier = ? where state_hash = ?', [
      rows[0]!.code_verifier,
      rows[1]!.state_hash,
    ]);
    const answer = backTo(await callback(location));
    expect(answer.searchParams.get('error')).toBe('decrypt_failed');
    expect(s.provider.stats().tokenRequests).toBe(0);
    expect(await count(s, 'credentials')).toBe(0);
    const [row] = (await auditRows(s)).filter((r) => r.action === 'connect.callback');
    expect(row).toMatchObject({ actor: 'browser', outcome: 'connect_failed' });
    await expectNoSecrets([
      location.searchParams.get('state')!,
      location.searchParams.get('code')!,
    ]);
  });

  it('a HEAD request does not use up the session', async () => {
    await setup('sqlite');
    const started = await start(s.adminKey);
    const location = await authorize(started.json().authorize_url);
    const head = await s.app.inject({ method: 'HEAD', url: pathOf(location) });
    expect(head.statusCode).toBe(404);
    expect(await count(s, 'connect_sessions')).toBe(1);
    expect(backTo(await callback(location)).searchParams.get('connection_id')).toMatch(/^conn_/);
  });

  it('documents the new routes in the OpenAPI document; the callback needs no key', async () => {
    await setup('sqlite');
    const spec = (await s.call({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, Record<string, { tags?: string[]; security?: unknown[] }>>;
    }>();
    expect(spec.paths['/v1/connect/sessions']!.post!.tags).toEqual(['connect']);
    expect(spec.paths['/v1/connect/callback']!.get!.security).toEqual([]);
    expect(spec.paths['/v1/connections/{id}/introspect']!.post!.tags).toEqual(['connections']);
    expect(spec.paths['/v1/connections/{id}/tokens']!.put!.tags).toEqual(['connections']);
    expect(spec.paths['/v1/presets']!.get!.tags).toEqual(['providers']);
  });
});

describe('connect flow settings', () => {
  it('allows only the configured redirect origins', async () => {
    await setup('sqlite', {
      server: { connect: { callbackUrl: CALLBACK, redirectOrigins: ['https://app.example'] } },
    });
    expect((await start(s.adminKey)).statusCode).toBe(201);
    const elsewhere = await start(s.adminKey, { redirect_uri: 'https://evil.example/done' });
    expect(elsewhere.statusCode).toBe(400);
    expect(elsewhere.json()).toMatchObject({ error: 'invalid_request' });
    expect(await count(s, 'connect_sessions')).toBe(1);
  });

  it('is off without a callback URL: both routes answer not_found', async () => {
    s = await startTestServer();
    await s.putProvider();
    const started = await start(s.adminKey);
    expect(started.statusCode).toBe(404);
    expect(started.json()).toMatchObject({ error: 'not_found' });
    const back = await s.call({ method: 'GET', url: '/v1/connect/callback?state=x&code=y' });
    expect(back.statusCode).toBe(404);
  });

  it('refuses a malformed callback URL or redirect origin at start-up', async () => {
    s = await startTestServer();
    const base = {
      store: s.store,
      keyRing: KeyRing.parse(s.keys),
      adminKeyHash: hashApiKey(s.adminKey),
      logger: false as const,
      scheduler: false,
    };
    await expect(buildServer({ ...base, connect: { callbackUrl: 'not a url' } })).rejects.toThrow(
      /redirect_uri/,
    );
    await expect(
      buildServer({
        ...base,
        connect: { callbackUrl: CALLBACK, redirectOrigins: ['https://a.example/path'] },
      }),
    ).rejects.toThrow(/redirectOrigins/);
  });
});
