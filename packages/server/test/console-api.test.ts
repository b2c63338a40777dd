// The console's API over real HTTP handling (inject) on a real SQLite store: the table's search
// and "expires within", a connection's grants, the overview's figures, and the admin API behind
// the session: CSRF on its writes, no token route, hidden from the docs. Sessions themselves
// are console-session.test.ts; the pages in Chromium console-browser.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
let cookie: string;
let csrf: string;
let overdueId: string;

beforeAll(async () => {
  s = await startTestServer();
  await s.putProvider();
  await s.putProvider('other');
  // Ids are base64url, so a search with `@` or `%` in it can only match an owner.
  await s.importGrant({ owner: 'Alice@x_1' });
  await s.importGrant({ owner: 'bob@xy1', provider: 'other' });
  // Expired at import and never refreshed (no scheduler here): its refresh is overdue.
  overdueId = (await s.importGrant({ owner: 'carol', expiresIn: 0 })).id;
  const signIn = await s.app.inject({
    method: 'POST',
    url: '/v1/console/session',
    payload: { admin_key: s.adminKey },
  });
  cookie = String(signIn.headers['set-cookie']).split(';')[0]!;
  csrf = signIn.json<{ csrf_token: string }>().csrf_token;
});
afterAll(async () => s?.close());

const get = (url: string) => s.app.inject({ url, headers: { cookie } });
const owners = async (query: string) => {
  const response = await get(`/v1/console/connections?${query}`);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ connections: { owner: string }[] }>().connections.map((c) => c.owner);
};

describe('the console API', () => {
  it('searches owners and ids ignoring case, LIKE characters literally; filters by end', async () => {
    expect(await owners('search=alice@')).toEqual(['Alice@x_1']);
    expect(await owners('search=CE@X')).toEqual(['Alice@x_1']);
    // `_` and `%` are characters here, not wildcards: as a wildcard `_` would match bob's `y`.
    expect(await owners('search=%25')).toEqual([]);
    expect(await owners('search=@x_')).toEqual(['Alice@x_1']);
    expect(await owners(`search=${overdueId.slice(5, 15)}`)).toEqual(['carol']);
    // Their refresh tokens have no known expiry: none ends, however far ahead one looks.
    expect(await owners('ends_within=999999999')).toEqual([]);
    expect(await owners('search=o&provider=other')).toEqual(['bob@xy1']);
  });

  it('refuses bad filters with invalid_request', async () => {
    for (const query of ['ends_within=-1', 'ends_within=1h', 'search=', 'status=dead', 'limit=0']) {
      const response = await get(`/v1/console/connections?${query}`);
      expect(response.statusCode, query).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_request' });
    }
    const missing = await get('/v1/console/connections/conn_nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found' });
  });

  it("shows a connection's grants: live clients whose grants cover it, and what they allow", async () => {
    const covering = await s.createClient([
      { owner: 'carol', provider: '*', actions: ['token.read'] },
      { owner: '*', provider: 'test', actions: ['connections.read'] },
    ]);
    await s.createClient([{ owner: 'bob@xy1', provider: '*', actions: ['token.read'] }]);
    const revoked = await s.createClient([{ owner: '*', provider: '*', actions: ['proxy'] }]);
    await s.admin('DELETE', `/v1/clients/${revoked.id}`);
    const detail = await get(`/v1/console/connections/${overdueId}`);
    expect(detail.json()).toMatchObject({
      connection: { id: overdueId, owner: 'carol', last_refresh_at: null },
      grants: [
        {
          client_id: covering.id,
          client_name: 'worker',
          actions: ['token.read', 'connections.read'],
        },
      ],
    });
  });

  it("folds a connection's runs of hand-outs into one timeline entry", async () => {
    const { id } = await s.importGrant({ owner: 'erin', provider: 'other' });
    for (let i = 0; i < 3; i++) await s.admin('POST', `/v1/connections/${id}/token`, {});
    const { entries } = (await get(`/v1/console/connections/${id}/timeline`)).json();
    expect(entries).toMatchObject([
      { action: 'token.read', actor: 'admin', outcome: 'ok', count: 3 },
      { action: 'connection.create', actor: 'admin', outcome: 'ok', count: 1 },
    ]);
    expect(Date.parse(entries[0].first_at)).toBeLessThanOrEqual(Date.parse(entries[0].at));
    await s.admin('DELETE', `/v1/connections/${id}`);
  });

  it('counts connections, overdue refreshes and refreshes per minute for the overview', async () => {
    const before = (await get('/v1/console/overview')).json();
    expect(before.counts).toEqual([
      { provider: 'other', status: 'active', count: 1 },
      { provider: 'test', status: 'active', count: 2 },
    ]);
    expect(before.scheduler.overdue).toBe(1);
    expect(before.scheduler.lag_ms).toBeGreaterThanOrEqual(0);
    expect(before.refreshes.buckets).toEqual([]);

    // One refresh that works (carol's token is handed out), one the provider refuses.
    expect((await s.admin('POST', `/v1/connections/${overdueId}/token`, {})).statusCode).toBe(200);
    const dead = await s.importGrant({ owner: 'dave', expiresIn: 0 });
    s.provider.injectFailures({ kind: 'invalid_grant' });
    await s.admin('POST', `/v1/connections/${dead.id}/token`, {});
    const after = (await get('/v1/console/overview')).json();
    expect(after.scheduler.overdue).toBe(0);
    expect(after.counts).toContainEqual({ provider: 'test', status: 'needs_reauth', count: 1 });
    const minute = expect.stringMatching(/:00\.000Z$/);
    expect(after.refreshes.buckets).toEqual([
      { provider: 'test', outcome: 'needs_reauth', at: minute, count: 1 },
      { provider: 'test', outcome: 'ok', at: minute, count: 1 },
    ]);
    expect(after.breakers).toEqual([
      { provider: 'test', state: 'closed', consecutive_failures: 0, refusing_for_ms: 0 },
    ]);
    const refreshed = (await get(`/v1/console/connections/${overdueId}`)).json();
    expect(Date.parse(refreshed.connection.last_refresh_at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('opens the admin API behind the session: reads, writes with the CSRF token only', async () => {
    expect((await get('/v1/console/api/v1/providers')).json().providers).toHaveLength(2);
    const create = (headers: Record<string, string>) =>
      s.app.inject({
        method: 'POST',
        url: '/v1/console/api/v1/clients',
        headers: { cookie, ...headers },
        payload: { name: 'from-console', grants: [] },
      });
    const refused = await create({});
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'forbidden' });
    expect(await create({ 'x-csrf-token': 'A'.repeat(43) }).then((r) => r.statusCode)).toBe(403);
    const created = await create({ 'x-csrf-token': csrf });
    expect(created.statusCode).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    // The API's own validation answers, as it does at /v1.
    const bad = await s.app.inject({
      method: 'PUT',
      url: '/v1/console/api/v1/providers/x',
      headers: { cookie, 'x-csrf-token': csrf },
      payload: { preset: 'nope', client_id: 'c' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request' });
    // Without the session, or with only the admin key: nothing.
    const anonymous = await s.app.inject({ url: '/v1/console/api/v1/providers' });
    expect(anonymous.statusCode).toBe(401);
    const bearer = await s.app.inject({
      url: '/v1/console/api/v1/providers',
      headers: { authorization: `Bearer ${s.adminKey}` },
    });
    expect(bearer.statusCode).toBe(401);
  });

  it('answers as /v1 does', async () => {
    await s.admin('POST', '/v1/webhooks', { url: 'https://hooks.example/tw' });
    for (const path of [
      '/v1/providers',
      '/v1/providers/test',
      '/v1/presets',
      '/v1/clients',
      '/v1/webhooks',
    ]) {
      const [direct, console] = await Promise.all([
        s.admin('GET', path),
        get(`/v1/console/api${path}`),
      ]);
      expect(console.statusCode, path).toBe(200);
      // The same fields and values (the /v1 serializer orders keys by its schema).
      expect(console.json(), path).toEqual(direct.json());
    }
  });

  it('has no route that hands out a token, and none of it is in the OpenAPI document', async () => {
    for (const path of ['token', 'rejected']) {
      const response = await s.app.inject({
        method: 'POST',
        url: `/v1/console/api/v1/connections/${overdueId}/${path}`,
        headers: { cookie, 'x-csrf-token': csrf },
        payload: {},
      });
      expect(response.statusCode, path).toBe(404);
    }
    const proxied = await get(`/v1/console/api/v1/proxy/${overdueId}/anything`);
    expect(proxied.statusCode).toBe(404);
    const docs = await s.app.inject({ url: '/docs/json' });
    expect(docs.body).not.toContain('/v1/console');
    expect(Object.keys(docs.json().paths)).toContain('/v1/providers/{name}');
  });
});
