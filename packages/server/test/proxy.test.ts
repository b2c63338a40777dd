// Proxy mode: a worker with the proxy action calls the provider's API through Tokenwarden and
// never holds the token. A real resource server on loopback checks every bearer against the
// tokens the test provider issued.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { patternSha256 } from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, closedPort, type AuditRow } from './helpers.ts';
import { putProvider, rawRequest, startProxySetup, type ProxySetup } from './proxy-helpers.ts';

let p: ProxySetup | undefined;
afterEach(async () => {
  await p?.close();
  p = undefined;
});

const TEN_MB = 10 * 1024 * 1024;
/** Headers each hop sets for itself. */
const PER_HOP = ['date', 'connection', 'keep-alive', 'x-request-id', 'transfer-encoding'];

/** The proxy's audit rows, oldest first (of the last 200 events). */
async function proxyRows(setup: ProxySetup): Promise<AuditRow[]> {
  return (await auditRows(setup.s)).filter((row) => row.action === 'proxy');
}

function withoutPerHop(headers: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_HOP.includes(name)));
}

describe('proxy mode', () => {
  it('answers a worker holding only `proxy` byte for byte (status, headers, 10 MB), and refuses it the token', async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    const proxied = await p.call(`/v1/proxy/${id}/bytes/${TEN_MB}`);
    expect(proxied.status).toBe(200);
    expect(proxied.body.length).toBe(TEN_MB);
    expect(createHash('sha256').update(proxied.body).digest('hex')).toBe(patternSha256(TEN_MB));
    // The same request straight to the resource server, with the token: the same headers.
    const direct = await fetch(`${p.resource.url}/bytes/${TEN_MB}`, {
      headers: { authorization: `Bearer ${p.connection.accessToken}` },
    });
    await direct.arrayBuffer();
    const directHeaders: Record<string, unknown> = Object.fromEntries(direct.headers);
    directHeaders['set-cookie'] = direct.headers.getSetCookie();
    expect(withoutPerHop(proxied.headers)).toEqual(withoutPerHop(directHeaders));
    expect(proxied.headers['content-length']).toBe(String(TEN_MB));
    // Chunked stays chunked: no length is made up.
    const chunked = await p.call(`/v1/proxy/${id}/bytes/1000?chunked=1`);
    expect(chunked.headers['content-length']).toBeUndefined();
    expect(chunked.headers['transfer-encoding']).toBe('chunked');
    expect(chunked.body.length).toBe(1000);

    const token = await p.call(`/v1/connections/${id}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(token.status).toBe(403);
    expect(JSON.parse(token.text)).toMatchObject({ error: 'forbidden' });
  });

  it("sends the connection's token, never the worker's key, host or hop-by-hop headers; passes method, query, body and compression through", async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    const body = Buffer.from('{"text":"hello"}');
    const answer = await rawRequest(p.base, `/v1/proxy/${id}/echo/a%2Fb/c?x=1&y=%20z`, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${p.worker.apiKey}`,
        'content-type': 'application/json',
        'x-custom': 'kept',
        connection: 'x-hop',
        'x-hop': 'dropped',
        'proxy-authorization': 'Basic c2VjcmV0',
        host: 'evil.example',
        'tokenwarden-upstream': p.resource.url,
      },
      body,
    });
    expect(answer.status).toBe(200);
    const echoed = JSON.parse(answer.text) as {
      method: string;
      path: string;
      query: string;
      headers: Record<string, string>;
      bytes: number;
      sha256: string;
    };
    expect(echoed).toMatchObject({
      method: 'PATCH',
      path: '/echo/a%2Fb/c',
      query: '?x=1&y=%20z',
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    expect(echoed.headers).toMatchObject({
      'content-type': 'application/json',
      'x-custom': 'kept',
      host: new URL(p.resource.url).host,
    });
    for (const dropped of ['x-hop', 'proxy-authorization', 'tokenwarden-upstream']) {
      expect(echoed.headers[dropped]).toBeUndefined();
    }
    const seen = p.resource.requests.at(-1)!;
    expect(seen.tokenValid).toBe(true);
    expect(seen.headers.authorization).toBe(`Bearer ${p.connection.accessToken}`);

    const gzip = await p.call(`/v1/proxy/${id}/gzip`, { headers: { 'accept-encoding': 'gzip' } });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gzip.headers['content-length']).toBe(String(gzip.body.length));
    expect(JSON.parse(gunzipSync(gzip.body).toString())).toMatchObject({ compressed: true });

    const redirect = await p.call(`/v1/proxy/${id}/redirect`);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('https://elsewhere.example/landing');
    expect(p.resource.requests.filter((r) => r.url === '/redirect')).toHaveLength(1);

    const head = await p.call(`/v1/proxy/${id}/bytes/1000`, { method: 'HEAD' });
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([
      200,
      '1000',
      0,
    ]);
    // TRACE would echo this hop's request, the worker's key in it: not a proxied method.
    expect((await p.call(`/v1/proxy/${id}/echo`, { method: 'TRACE' })).status).toBe(404);

    for (const status of [204, 404, 500]) {
      const answered = await p.call(`/v1/proxy/${id}/status/${status}`);
      expect(answered.status).toBe(status);
      expect(answered.headers['tokenwarden-error']).toBeUndefined();
    }
  });

  it('refuses what would leave the base URL or the grant, typed, with nothing sent upstream', async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    const key = { authorization: `Bearer ${p.worker.apiKey}` };
    const escapes = [
      `/v1/proxy/${id}/../admin`,
      `/v1/proxy/${id}/a/%2e%2e/%2E%2E/admin`,
      `/v1/proxy/${id}/a/..%2f..%2fadmin`,
      `/v1/proxy/${id}/a/%2F..%5C..`,
      `/v1/proxy/${id}/a\\..\\..\\admin`,
      `/v1/proxy/${id}/https://evil.example/x`,
      `/v1/proxy/${id}/https:%2F%2Fevil.example/x`,
      `/v1/proxy/${id}//evil.example/x`,
      `/v1/proxy/${id}/a%00b`,
    ];
    for (const target of escapes) {
      const answer = await rawRequest(p.base, target, { headers: key });
      expect([answer.status, target]).toEqual([400, target]);
      expect(JSON.parse(answer.text)).toMatchObject({ error: 'invalid_request' });
      expect(answer.headers['tokenwarden-error']).toBe('invalid_request');
    }
    // The request target in absolute form names another host: the route may not be found, but
    // nothing reaches any upstream.
    const absolute = await rawRequest(p.base, `http://evil.example/v1/proxy/${id}/json`, {
      headers: key,
    });
    expect(absolute.status).toBeGreaterThanOrEqual(400);
    const otherUpstream = await p.call(`/v1/proxy/${id}/json`, {
      headers: { 'tokenwarden-upstream': 'https://evil.example' },
    });
    expect(otherUpstream.status).toBe(400);
    expect(otherUpstream.text).toMatch(/tokenwarden-upstream must be one of/);

    const tokenOnly = await p.s.createClient([
      { owner: '*', provider: 'test', actions: ['token.read'] },
    ]);
    const noProxyGrant = await p.call(`/v1/proxy/${id}/json`, { key: tokenOnly.apiKey });
    expect(noProxyGrant.status).toBe(403);
    expect(JSON.parse(noProxyGrant.text)).toMatchObject({ error: 'forbidden' });
    const stranger = await p.s.createClient([
      { owner: 'someone-else', provider: 'test', actions: ['proxy'] },
    ]);
    expect((await p.call(`/v1/proxy/${id}/json`, { key: stranger.apiKey })).status).toBe(404);
    const badKey = await p.call(`/v1/proxy/${id}/json`, { key: 'tw_not_a_key' });
    expect(badKey.status).toBe(401);
    expect(badKey.headers['tokenwarden-error']).toBe('unauthorized');

    // A provider without api_base_urls.
    await putProvider(p.s, [], 'bare');
    const bare = await p.s.admin('POST', '/v1/connections', {
      provider: 'bare',
      owner: 'user-a',
      access_token: p.s.provider.issueGrant().access_token,
    });
    const unconfigured = await p.call(`/v1/proxy/${bare.json<{ id: string }>().id}/json`, {
      key: p.s.adminKey,
    });
    expect(unconfigured.status).toBe(400);
    expect(JSON.parse(unconfigured.text)).toMatchObject({ error: 'proxy_not_configured' });

    // A connection whose refresh token was refused: needs_reauth, before and after.
    const dead = await p.s.importGrant({ expiresIn: 0 });
    p.s.provider.injectFailures({ kind: 'invalid_grant' });
    for (let i = 0; i < 2; i++) {
      const answer = await p.call(`/v1/proxy/${dead.id}/json`);
      expect(answer.status).toBe(409);
      expect(JSON.parse(answer.text)).toMatchObject({ error: 'needs_reauth' });
    }
    expect(p.resource.stats.requests).toBe(0);
    const refusals = (await proxyRows(p)).map((row) => row.outcome);
    expect(refusals).toContain('forbidden');
    expect(refusals).toContain('needs_reauth');
    expect(refusals).toContain('proxy_not_configured');
  });

  it('answers upstream failures with their own typed errors, distinct from Tokenwarden’s', async () => {
    p = await startProxySetup({
      server: { proxy: { headersTimeoutMs: 300, idleTimeoutMs: 300, connectTimeoutMs: 1000 } },
    });
    const { id } = p.connection;
    const hang = await p.call(`/v1/proxy/${id}/hang`);
    expect(hang.status).toBe(504);
    expect(JSON.parse(hang.text)).toMatchObject({ error: 'upstream_timeout' });
    expect(hang.headers['tokenwarden-error']).toBe('upstream_timeout');
    // A small answer is held whole before it goes back: one that stops is answered 504.
    const stalled = await p.call(`/v1/proxy/${id}/stall`);
    expect([stalled.status, stalled.headers['tokenwarden-error']]).toEqual([
      504,
      'upstream_timeout',
    ]);
    // A large one streams: the headers came, then the body stopped, and the answer is cut off.
    await expect(p.call(`/v1/proxy/${id}/stall/${1024 * 1024}`)).rejects.toThrow();
    await putProvider(p.s, [`http://127.0.0.1:${await closedPort()}`]);
    // The provider registry caches what it read: wait for this replica to see the new URL.
    await expect
      .poll(async () => (await p!.call(`/v1/proxy/${id}/json`)).status, { timeout: 10_000 })
      .toBe(502);
    const refused = await p.call(`/v1/proxy/${id}/json`);
    expect(JSON.parse(refused.text)).toMatchObject({ error: 'upstream_unreachable' });
    expect(refused.text).toMatch(/ECONNREFUSED/);
    const outcomes = (await proxyRows(p)).map((row) => row.outcome);
    expect(outcomes).toEqual(expect.arrayContaining(['upstream_timeout', 'upstream_unreachable']));
    expect(outcomes.filter((o) => o === 'upstream_timeout')).toHaveLength(3);
  });

  it('audits each proxied call once (no query, no header, no token) and counts it per provider', async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    const upload = Buffer.alloc(3000, 1);
    const answer = await p.call(`/v1/proxy/${id}/upload?secret=query-value`, {
      method: 'POST',
      body: upload,
    });
    expect(JSON.parse(answer.text)).toMatchObject({ bytes: 3000 });
    const rows = (await proxyRows(p)).filter((r) => r.outcome === 'ok');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor: p.worker.id,
      connection_id: id,
      owner: 'user-a',
      provider: 'test',
      request_id: answer.headers['x-request-id'],
      detail: {
        method: 'POST',
        upstream: p.resource.url,
        path: '/upload',
        status: 200,
        bytes_up: 3000,
        bytes_down: answer.body.length,
        retried: false,
      },
    });
    expect(JSON.stringify(rows)).not.toMatch(/query-value/);
    const metrics = await p.s.admin('GET', '/metrics');
    expect(metrics.body).toMatch(
      /tokenwarden_proxy_request_duration_seconds_count\{provider="test",status="200"\} 1/,
    );
    expect(metrics.body).toMatch(
      /tokenwarden_proxy_bytes_total\{provider="test",direction="upstream"\} 3000/,
    );
  });

  it('retries a held body once after a 401 with the fresh token, and returns the 401 of a streamed one', async () => {
    p = await startProxySetup({ server: { proxy: { replayLimitBytes: 1000 } } });
    const { id } = p.connection;
    p.s.provider.expireAccessTokens();
    const small = await p.call(`/v1/proxy/${id}/upload?hash=1`, {
      method: 'PUT',
      body: Buffer.alloc(1000, 2),
    });
    expect(small.status).toBe(200);
    expect(JSON.parse(small.text)).toMatchObject({ bytes: 1000 });
    expect(p.s.provider.stats().redemptions).toBe(1);
    expect(p.resource.stats).toEqual({ requests: 2, rejected: 1 });

    p.s.provider.expireAccessTokens();
    // Over the limit and with no length given: streamed, so it cannot be sent twice.
    async function* chunks() {
      yield Buffer.alloc(800, 3);
      yield Buffer.alloc(800, 4);
    }
    const large = await p.call(`/v1/proxy/${id}/upload`, {
      method: 'PUT',
      body: Readable.from(chunks()),
    });
    expect(large.status).toBe(401);
    expect(large.headers['tokenwarden-error']).toBeUndefined();
    // The rejection was still reported: the next call goes out with the fresh token.
    await expect.poll(() => p!.s.provider.stats().redemptions).toBe(2);
    const next = await p.call(`/v1/proxy/${id}/json`);
    expect(next.status).toBe(200);
    // A 403 that names invalid_token (RFC 6750 §3.1) is a refusal of the token too.
    p.s.provider.expireAccessTokens();
    const forbidden = await p.call(`/v1/proxy/${id}/forbidden-when-stale`);
    expect(forbidden.status).toBe(200);
    expect(p.s.provider.stats().redemptions).toBe(3);
    const retried = (await proxyRows(p)).map((row) => row.detail?.retried);
    expect(retried).toEqual([true, false, false, true]);
  });
});

describe.each(BACKENDS)('proxy mode under load on %s', (backend) => {
  it('200 concurrent calls on an expired token: one redemption, 200 upstream answers', async () => {
    p = await startProxySetup({ backend, expiresIn: 0 });
    const { id } = p.connection;
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => p!.call(`/v1/proxy/${id}/json`)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(200).fill(200));
    expect(p.s.provider.stats().redemptions).toBe(1);
    expect(p.resource.stats).toEqual({ requests: 200, rejected: 0 });
  });

  it('200 concurrent calls all refused the current token: one refresh, each retried once and answered', async () => {
    p = await startProxySetup({ backend });
    const { id } = p.connection;
    expect((await p.call(`/v1/proxy/${id}/json`)).status).toBe(200);
    p.s.provider.expireAccessTokens();
    p.resource.holdRejections(200);
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => p!.call(`/v1/proxy/${id}/json`)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(200).fill(200));
    expect(p.s.provider.stats().redemptions).toBe(1);
    expect(p.resource.stats).toEqual({ requests: 1 + 400, rejected: 200 });
    // Each of the 200 was refused once and sent once more: none twice, none given up.
    const metrics = (await p.s.admin('GET', '/metrics')).body;
    expect(metrics).toMatch(
      /tokenwarden_proxy_token_rejections_total\{provider="test",retried="true"\} 200\n/,
    );
    expect(metrics).not.toMatch(/tokenwarden_proxy_token_rejections_total\{[^}]*retried="false"/);
  });
});

describe('proxy mode keeps tokens secret', () => {
  it('shows no token in any answer, log line or audit row', async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    const answers = [
      await p.call(`/v1/proxy/${id}/echo`, { method: 'POST', body: 'x' }),
      await p.call(`/v1/proxy/${id}/json`),
    ];
    p.s.provider.expireAccessTokens();
    answers.push(await p.call(`/v1/proxy/${id}/json`));
    answers.push(await p.call(`/v1/proxy/${id}/../x`));
    answers.push(await p.call(`/v1/proxy/${id}/status/401`));
    const audit = JSON.stringify(await auditRows(p.s));
    const seen = [...p.tokensSeen, p.connection.accessToken, p.connection.refreshToken];
    expect(p.tokensSeen.size).toBeGreaterThanOrEqual(2);
    const everything = [
      ...answers.map((a) => `${JSON.stringify(a.headers)}\n${a.text}`),
      ...p.s.logLines,
      audit,
    ].join('\n');
    for (const token of seen) expect(everything).not.toContain(token);
    expect(p.s.logLines.some((line) => line.includes('/v1/proxy/'))).toBe(true);
  });
});
