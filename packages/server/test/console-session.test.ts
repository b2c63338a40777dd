// The console's sessions over real HTTP handling (inject) on real stores: sign-in, the cookie's
// flags, CSRF, sign-out, expiry, replicas. The browser's view is console-browser.test.ts.
import { KeyRing } from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_TTL_MS, SessionSigner } from '../src/auth/console-session.ts';
import { startTestServer, type TestServer } from './helpers.ts';

let servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.reverse()) await server.close();
  servers = [];
});

async function server(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const started = await startTestServer(options);
  servers.push(started);
  return started;
}

async function signIn(s: TestServer, host = 'localhost') {
  const response = await s.app.inject({
    method: 'POST',
    url: '/v1/console/session',
    headers: { host },
    payload: { admin_key: s.adminKey },
  });
  expect(response.statusCode).toBe(201);
  const setCookie = String(response.headers['set-cookie']);
  const cookie = setCookie.split(';')[0]!;
  return { cookie, setCookie, csrf: response.json<{ csrf_token: string }>().csrf_token };
}

describe('console sessions', () => {
  it('exchanges the admin key for an HttpOnly, SameSite=Strict cookie; Secure off loopback', async () => {
    const s = await server();
    const local = await signIn(s);
    expect(local.setCookie).toMatch(
      /^tw_console_session=[^;]+; Path=\/v1\/console; Max-Age=1800; HttpOnly; SameSite=Strict$/,
    );
    const remote = await signIn(s, 'tokenwarden.example');
    expect(remote.setCookie).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    // The admin key is nowhere in what the browser gets back.
    expect(local.setCookie).not.toContain(s.adminKey);
  });

  it('refuses a wrong key, a client key and a malformed body, with typed errors', async () => {
    const s = await server();
    await s.putProvider();
    const client = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.read'] },
    ]);
    for (const admin_key of ['tw_nope', client.apiKey]) {
      const response = await s.app.inject({
        method: 'POST',
        url: '/v1/console/session',
        payload: { admin_key },
      });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: 'unauthorized' });
      expect(response.headers['set-cookie']).toBeUndefined();
      expect(response.body).not.toContain(admin_key);
    }
    const malformed = await s.app.inject({
      method: 'POST',
      url: '/v1/console/session',
      payload: { admin_key: s.adminKey, remember: true },
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('lists connections for a session, never a token; no session, a forged one: 401', async () => {
    const s = await server();
    await s.putProvider();
    const grant = await s.importGrant({ owner: 'user-1' });
    const { cookie } = await signIn(s);
    const listed = await s.app.inject({ url: '/v1/console/connections', headers: { cookie } });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().connections).toMatchObject([{ id: grant.id, owner: 'user-1' }]);
    expect(listed.body).not.toContain(grant.accessToken);
    expect(listed.body).not.toContain(grant.refreshToken);

    const forged = cookie.replace(
      /.~[^~]+$/,
      (tail) => (tail[0] === 'A' ? 'B' : 'A') + tail.slice(1),
    );
    for (const headers of [{}, { cookie: forged }, { cookie: 'tw_console_session=x' }]) {
      const refused = await s.app.inject({ url: '/v1/console/connections', headers });
      expect(refused.statusCode).toBe(401);
      expect(refused.json()).toMatchObject({ error: 'unauthorized' });
    }
    // The admin key as a bearer does not open the console's API: it is the cookie's alone.
    const bearer = await s.app.inject({
      url: '/v1/console/connections',
      headers: { authorization: `Bearer ${s.adminKey}` },
    });
    expect(bearer.statusCode).toBe(401);
  });

  it('pages connections by keyset and filters them by owner, provider and status', async () => {
    const s = await server();
    await s.putProvider();
    await s.putProvider('other');
    const ids = [];
    for (const owner of ['u1', 'u2', 'u3']) ids.push((await s.importGrant({ owner })).id);
    ids.push((await s.importGrant({ owner: 'u1', provider: 'other' })).id);
    ids.sort();
    const { cookie } = await signIn(s);
    const list = async (query: string) => {
      const response = await s.app.inject({
        url: `/v1/console/connections?${query}`,
        headers: { cookie },
      });
      expect(response.statusCode, response.body).toBe(200);
      return response.json<{
        connections: { id: string; owner: string }[];
        next_cursor: string | null;
      }>();
    };
    const first = await list('limit=3');
    expect(first.connections.map((c) => c.id)).toEqual(ids.slice(0, 3));
    const second = await list(`limit=3&cursor=${first.next_cursor}`);
    expect(second).toEqual({
      connections: [expect.objectContaining({ id: ids[3] })],
      next_cursor: null,
    });
    expect((await list('owner=u1')).connections).toHaveLength(2);
    expect((await list('owner=u1&provider=other')).connections).toHaveLength(1);
    expect((await list('status=needs_reauth')).connections).toHaveLength(0);
    const bad = await s.app.inject({
      url: '/v1/console/connections?status=dead',
      headers: { cookie },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request' });
  });

  it("answers a connection's timeline behind the session; a bad id is a typed error", async () => {
    const s = await server();
    await s.putProvider();
    const { id } = await s.importGrant({ owner: 'u1' });
    const { cookie } = await signIn(s);
    const url = `/v1/console/connections/${id}/timeline`;
    expect((await s.app.inject({ url })).statusCode).toBe(401);
    const timeline = await s.app.inject({ url, headers: { cookie } });
    expect(timeline.statusCode).toBe(200);
    expect(timeline.json()).toEqual({
      entries: [expect.objectContaining({ action: 'connection.create', actor: 'admin', count: 1 })],
    });
    const bad = await s.app.inject({
      url: '/v1/console/connections/%20/timeline',
      headers: { cookie },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('refuses a write without the CSRF token; signs out with it', async () => {
    const s = await server();
    const { cookie, csrf } = await signIn(s);
    for (const headers of [{ cookie }, { cookie, 'x-csrf-token': csrf.slice(1) + 'x' }]) {
      const refused = await s.app.inject({ method: 'DELETE', url: '/v1/console/session', headers });
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ error: 'forbidden' });
    }
    const out = await s.app.inject({
      method: 'DELETE',
      url: '/v1/console/session',
      headers: { cookie, 'x-csrf-token': csrf },
    });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(
      /^tw_console_session=; Path=\/v1\/console; Max-Age=0;/,
    );
  });

  it('holds across replicas sharing the key ring (Postgres), and only theirs', async () => {
    const a = await server({ backend: 'postgres' });
    const b = await server({ replicaOf: a });
    const { cookie, csrf } = await signIn(a);
    const onB = await b.app.inject({ url: '/v1/console/session', headers: { cookie } });
    expect(onB.statusCode).toBe(200);
    expect(onB.json()).toMatchObject({ csrf_token: csrf });
    const other = await server();
    const elsewhere = await other.app.inject({ url: '/v1/console/session', headers: { cookie } });
    expect(elsewhere.statusCode).toBe(401);
  });

  it('ends a session at its expiry, and keeps one signed by a key still in the ring', () => {
    const old = KeyRing.generate('k1');
    const { token } = new SessionSigner(old).issue(1_000_000_000_000);
    const signer = new SessionSigner(old);
    expect(signer.verify(token, 1_000_000_000_000 + SESSION_TTL_MS - 1)).toBeDefined();
    expect(signer.verify(token, 1_000_000_000_000 + SESSION_TTL_MS)).toBeUndefined();
    const rotated = KeyRing.parse(`${KeyRing.generate('k2').serialize()},${old.serialize()}`);
    expect(new SessionSigner(rotated).verify(token, 1_000_000_000_001)).toBeDefined();
    expect(
      new SessionSigner(KeyRing.generate('k1')).verify(token, 1_000_000_000_001),
    ).toBeUndefined();
  });

  it('serves the page with a strict CSP and hashed assets cached for good; hidden from the docs', async () => {
    const s = await server();
    const page = await s.app.inject({ url: '/console' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.headers['cache-control']).toBe('no-cache');
    // One folder per build, named by its hash: app.js and the modules it imports, and the CSS.
    const [, script, build] = /src="(\/console\/assets\/([\w-]{12})\/app\.js)"/.exec(page.body)!;
    for (const url of [
      script!,
      `/console/assets/${build}/http.js`,
      `/console/assets/${build}/console.css`,
    ]) {
      const asset = await s.app.inject({ url });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['content-type']).toMatch(/javascript|css/);
      expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    for (const hidden of [
      `/console/assets/${build}/app.d.ts`,
      `/console/assets/${build}/app.js.map`,
      `/console/assets/${build}/../package.json`,
      '/console/assets/app.js',
      '/console/assets/AAAAAAAAAAAA/app.js',
    ]) {
      expect((await s.app.inject({ url: hidden })).statusCode).toBe(404);
    }
    const docs = await s.app.inject({ url: '/docs/json' });
    expect(docs.body).not.toContain('/v1/console');
    expect(docs.body).not.toContain('"/console');
  });
});
