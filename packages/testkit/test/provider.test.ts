import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  parseProviderArgs,
  RemoteTestProvider,
  spawnTs,
  startProviderProcess,
  TestProvider,
  tokenFingerprint,
} from '@tokenwarden/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

interface Client {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
}

interface RefreshOptions {
  auth?: 'basic' | 'post';
  secret?: string;
  signal?: AbortSignal;
  form?: Record<string, string>;
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding. */
function basicAuth(id: string, secret: string): string {
  const enc = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

async function refresh(client: Client, refreshToken: string, opts: RefreshOptions = {}) {
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken });
  for (const [key, value] of Object.entries(opts.form ?? {})) form.set(key, value);
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded',
  };
  const secret = opts.secret ?? client.clientSecret;
  if ((opts.auth ?? 'basic') === 'basic') {
    headers.Authorization = basicAuth(client.clientId, secret);
  } else {
    form.set('client_id', client.clientId);
    form.set('client_secret', secret);
  }
  const res = await fetch(client.tokenUrl, {
    method: 'POST',
    headers,
    body: form,
    signal: opts.signal,
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function resource(url: string, accessToken: string): Promise<Response> {
  return fetch(`${url}/resource`, { headers: { Authorization: `Bearer ${accessToken}` } });
}

describe('TestProvider', () => {
  let provider: TestProvider;
  beforeEach(async () => {
    provider = await TestProvider.start();
  });
  afterEach(async () => {
    await provider.close();
  });

  describe('client authentication', () => {
    it('accepts client_secret_basic and client_secret_post', async () => {
      const grant = provider.issueGrant();
      const first = await refresh(provider, grant.refresh_token, { auth: 'basic' });
      expect(first.status).toBe(200);
      const second = await refresh(provider, first.json!.refresh_token as string, { auth: 'post' });
      expect(second.status).toBe(200);
      expect(provider.stats()).toMatchObject({ tokenRequests: 2, redemptions: 2 });
    });

    it('refuses a wrong or missing secret with 401 invalid_client and redeems nothing', async () => {
      const grant = provider.issueGrant();
      const basic = await refresh(provider, grant.refresh_token, { secret: 'nope' });
      expect(basic.status).toBe(401);
      expect(basic.json).toEqual({ error: 'invalid_client' });
      expect(basic.headers.get('www-authenticate')).toMatch(/^Basic /);
      const post = await refresh(provider, grant.refresh_token, { auth: 'post', secret: 'nope' });
      expect(post.status).toBe(401);
      const none = await fetch(provider.tokenUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x' }),
      });
      expect(none.status).toBe(401);
      expect(provider.stats()).toMatchObject({ tokenRequests: 3, redemptions: 0 });
      expect((await refresh(provider, grant.refresh_token)).status).toBe(200);
    });

    it('form-decodes Basic credentials (RFC 6749 §2.3.1)', async () => {
      const odd = await TestProvider.start({ clientId: 'id:with colon', clientSecret: 'se+cr%t/' });
      try {
        const grant = odd.issueGrant();
        expect((await refresh(odd, grant.refresh_token)).status).toBe(200);
        // The same credentials without the form-encoding step are not the same credentials.
        const raw = `Basic ${Buffer.from('id:with colon:se+cr%t/').toString('base64')}`;
        const res = await fetch(odd.tokenUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: raw },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x' }),
        });
        expect(res.status).toBe(401);
      } finally {
        await odd.close();
      }
    });
  });

  describe('refresh token rotation', () => {
    it('spends the old refresh token and supersedes the old access token', async () => {
      provider.configure({ reuseDetection: false });
      const grant = provider.issueGrant({ scope: 'read write' });
      const res = await refresh(provider, grant.refresh_token);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.json).toEqual({
        access_token: expect.stringMatching(/^at_[\w-]{32}$/),
        token_type: 'Bearer',
        expires_in: 3600,
        refresh_token: expect.stringMatching(/^rt_[\w-]{32}$/),
        scope: 'read write',
      });
      expect(provider.isAccessTokenValid(grant.access_token)).toBe(false);
      expect(provider.isAccessTokenValid(res.json!.access_token as string)).toBe(true);

      const replay = await refresh(provider, grant.refresh_token);
      expect(replay.status).toBe(400);
      expect(replay.json!.error).toBe('invalid_grant');
      // Without reuse detection the family survives: the newest token still works.
      expect((await refresh(provider, res.json!.refresh_token as string)).status).toBe(200);
      expect(provider.stats()).toMatchObject({
        tokenRequests: 3,
        redemptions: 2,
        reuseViolations: 1,
        revokedFamilies: 0,
        invalidGrants: 1,
      });
    });

    it('answers a replay inside the grace window with a new pair', async () => {
      provider.configure({ reuseGraceMs: 10_000 });
      const grant = provider.issueGrant();
      const a = await refresh(provider, grant.refresh_token);
      const b = await refresh(provider, grant.refresh_token);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(b.json!.access_token).not.toBe(a.json!.access_token);
      expect(b.json!.refresh_token).not.toBe(a.json!.refresh_token);
      const stats = provider.stats();
      expect(stats).toMatchObject({ redemptions: 2, graceRedemptions: 1, reuseViolations: 0 });
      expect(stats.redemptionsByToken).toEqual({ [tokenFingerprint(grant.refresh_token)]: 2 });
      expect(JSON.stringify(stats)).not.toContain(grant.refresh_token);
    });

    it('revokes the whole family on a replay outside the grace window', async () => {
      provider.configure({ reuseGraceMs: 30 });
      const grant = provider.issueGrant();
      const other = provider.issueGrant();
      const first = await refresh(provider, grant.refresh_token);
      const newest = first.json!.refresh_token as string;
      await new Promise((resolve) => setTimeout(resolve, 60));

      expect((await refresh(provider, grant.refresh_token)).status).toBe(400);
      const afterRevoke = await refresh(provider, newest);
      expect(afterRevoke.status).toBe(400);
      expect(afterRevoke.json!.error).toBe('invalid_grant');
      expect(provider.isAccessTokenValid(first.json!.access_token as string)).toBe(false);
      // Other families are untouched.
      expect((await refresh(provider, other.refresh_token)).status).toBe(200);
      expect(provider.stats()).toMatchObject({
        tokenRequests: 4,
        redemptions: 2,
        graceRedemptions: 0,
        reuseViolations: 1,
        revokedFamilies: 1,
        invalidGrants: 2,
      });
    });

    it('lets concurrent redemptions of one token trip reuse detection', async () => {
      provider.configure({ latencyMs: 50 });
      const grant = provider.issueGrant();
      const results = await Promise.all([
        refresh(provider, grant.refresh_token),
        refresh(provider, grant.refresh_token),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
      const winner = results.find((r) => r.status === 200)!;
      expect(provider.isAccessTokenValid(winner.json!.access_token as string)).toBe(false);
      expect((await refresh(provider, winner.json!.refresh_token as string)).status).toBe(400);
      expect(provider.stats()).toMatchObject({ redemptions: 1, revokedFamilies: 1 });
    });

    it('lets a refresh token be reused when rotation is off', async () => {
      provider.configure({ rotation: false });
      const grant = provider.issueGrant();
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await refresh(provider, grant.refresh_token));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(answers.every((r) => !('refresh_token' in r.json!))).toBe(true);
      // Google-style: earlier access tokens stay valid until they expire.
      expect(
        answers.every((r) => provider.isAccessTokenValid(r.json!.access_token as string)),
      ).toBe(true);
      expect(provider.stats()).toMatchObject({ redemptions: 3, reuseViolations: 0 });
      expect(provider.stats().redemptionsByToken[tokenFingerprint(grant.refresh_token)]).toBe(3);
    });

    it('reports refresh_token_expires_in and expires refresh tokens when configured', async () => {
      provider.configure({ refreshTokenTtlSeconds: 0.05, accessTokenTtlSeconds: 60 });
      const res = await refresh(provider, provider.issueGrant().refresh_token);
      expect(res.json).toMatchObject({ expires_in: 60, refresh_token_expires_in: 0.05 });
      await new Promise((resolve) => setTimeout(resolve, 80));
      const late = await refresh(provider, res.json!.refresh_token as string);
      expect(late.json!.error).toBe('invalid_grant');
    });
  });

  describe('request validation', () => {
    it('refuses unknown tokens, other grant types, wrong paths and oversized bodies', async () => {
      const unknown = await refresh(provider, 'rt_not-issued');
      expect([unknown.status, unknown.json!.error]).toEqual([400, 'invalid_grant']);
      const grantType = await refresh(provider, 'x', { form: { grant_type: 'password' } });
      expect([grantType.status, grantType.json!.error]).toEqual([400, 'unsupported_grant_type']);
      expect((await fetch(`${provider.url}/nowhere`)).status).toBe(404);
      const big = await refresh(provider, 'x', { form: { padding: 'a'.repeat(70_000) } });
      expect(big.status).toBe(413);
      expect(provider.stats()).toMatchObject({ tokenRequests: 3, invalidGrants: 1 });
    });
  });

  describe('injected failures', () => {
    it('server_error and rate_limited do not redeem, and are consumed in order', async () => {
      const grant = provider.issueGrant();
      provider.injectFailures(
        { kind: 'server_error', times: 2 },
        { kind: 'server_error', status: 503 },
        { kind: 'rate_limited', retryAfterSeconds: 7 },
      );
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        const res = await refresh(provider, grant.refresh_token);
        statuses.push(res.status);
        if (res.status === 429) {
          expect(res.headers.get('retry-after')).toBe('7');
          expect(res.json!.error).toBe('slow_down');
        } else {
          expect(res.json).toEqual({ error: 'server_error' });
        }
      }
      expect(statuses).toEqual([500, 500, 503, 429]);
      expect((await refresh(provider, grant.refresh_token)).status).toBe(200);
      expect(provider.stats()).toMatchObject({ tokenRequests: 5, redemptions: 1 });
    });

    it('hang never answers and does not redeem; with afterRedeem the token is spent', async () => {
      const grant = provider.issueGrant();
      provider.injectFailures({ kind: 'hang' }, { kind: 'hang', afterRedeem: true });
      const abort = () => AbortSignal.timeout(150);
      await expect(refresh(provider, grant.refresh_token, { signal: abort() })).rejects.toThrow();
      expect(provider.stats().redemptions).toBe(0);
      await expect(refresh(provider, grant.refresh_token, { signal: abort() })).rejects.toThrow();
      expect(provider.stats().redemptions).toBe(1);
      // The answer was lost, the redemption was not: a retry is a reuse and kills the family.
      expect((await refresh(provider, grant.refresh_token)).status).toBe(400);
      expect(provider.stats()).toMatchObject({ tokenRequests: 3, revokedFamilies: 1 });
    });

    it('malformed_json is 200 application/json that does not parse', async () => {
      const grant = provider.issueGrant();
      provider.injectFailures(
        { kind: 'malformed_json' },
        { kind: 'malformed_json', afterRedeem: true },
      );
      for (let i = 0; i < 2; i++) {
        const res = await refresh(provider, grant.refresh_token);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/json');
        expect(res.json).toBeUndefined();
      }
      expect(provider.stats().redemptions).toBe(1);
      expect((await refresh(provider, grant.refresh_token)).status).toBe(400);
    });

    it('error_200 says no with HTTP 200, oauth and slack style', async () => {
      const grant = provider.issueGrant();
      provider.injectFailures(
        { kind: 'error_200' },
        { kind: 'error_200', style: 'slack' },
        { kind: 'error_200', error: 'bad_refresh_token' },
      );
      const bodies = [];
      for (let i = 0; i < 3; i++) {
        const res = await refresh(provider, grant.refresh_token);
        expect(res.status).toBe(200);
        bodies.push(res.json);
      }
      expect(bodies).toEqual([
        { error: 'invalid_grant' },
        { ok: false, error: 'invalid_refresh_token' },
        { error: 'bad_refresh_token' },
      ]);
      expect(provider.stats()).toMatchObject({ redemptions: 0, invalidGrants: 3 });
      expect((await refresh(provider, grant.refresh_token)).status).toBe(200);
    });

    it('invalid_grant refuses a good token without spending it', async () => {
      const grant = provider.issueGrant();
      provider.injectFailures({ kind: 'invalid_grant' });
      const res = await refresh(provider, grant.refresh_token);
      expect(res.status).toBe(400);
      expect(res.json).toEqual({
        error: 'invalid_grant',
        error_description: 'Token has been expired or revoked.',
      });
      expect((await refresh(provider, grant.refresh_token)).status).toBe(200);
      expect(provider.stats()).toMatchObject({ redemptions: 1, invalidGrants: 1 });
    });

    it('missing_expires_in and string_expires_in redeem with an odd expires_in', async () => {
      const grant = provider.issueGrant();
      provider.injectFailures({ kind: 'missing_expires_in' }, { kind: 'string_expires_in' });
      const missing = await refresh(provider, grant.refresh_token);
      expect(missing.status).toBe(200);
      expect(missing.json).not.toHaveProperty('expires_in');
      const asString = await refresh(provider, missing.json!.refresh_token as string);
      expect(asString.json!.expires_in).toBe('3600');
      expect(provider.stats().redemptions).toBe(2);
    });

    it('no_refresh_token redeems but leaves the old refresh token valid', async () => {
      const grant = provider.issueGrant();
      provider.injectFailures({ kind: 'no_refresh_token' });
      const res = await refresh(provider, grant.refresh_token);
      expect(res.status).toBe(200);
      expect(res.json).not.toHaveProperty('refresh_token');
      const again = await refresh(provider, grant.refresh_token);
      expect(again.status).toBe(200);
      expect(again.json).toHaveProperty('refresh_token');
      expect(provider.stats()).toMatchObject({ redemptions: 2, reuseViolations: 0 });
    });

    it('rejects malformed failure specs', () => {
      expect(() => provider.injectFailures({ kind: 'server_error', status: 404 })).toThrow(/5xx/);
      expect(() => provider.injectFailures({ kind: 'hang', times: 0 })).toThrow(/times/);
    });
  });

  it('applies latency before answering', async () => {
    provider.configure({ latencyMs: 120 });
    const started = performance.now();
    const res = await refresh(provider, provider.issueGrant().refresh_token);
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('protects /resource with the access tokens it issued', async () => {
    const grant = provider.issueGrant();
    const ok = await resource(provider.url, grant.access_token);
    expect([ok.status, await ok.json()]).toEqual([200, { ok: true }]);
    const bad = await resource(provider.url, 'at_forged');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const expired = provider.issueGrant({ accessTokenTtlSeconds: 0 });
    expect(provider.isAccessTokenValid(expired.access_token)).toBe(false);
    expect((await resource(provider.url, expired.access_token)).status).toBe(401);
    await refresh(provider, grant.refresh_token);
    expect((await resource(provider.url, grant.access_token)).status).toBe(401);
  });

  it('counts /resource requests and 401s; expireAccessTokens makes issued tokens stale', async () => {
    const a = provider.issueGrant();
    const b = provider.issueGrant();
    expect((await resource(provider.url, a.access_token)).status).toBe(200);
    expect((await resource(provider.url, 'at_forged')).status).toBe(401);
    expect(provider.expireAccessTokens()).toBe(2);
    expect(provider.expireAccessTokens()).toBe(0);
    expect((await resource(provider.url, a.access_token)).status).toBe(401);
    expect((await resource(provider.url, b.access_token)).status).toBe(401);
    // The refresh token still works, and what it brings is accepted.
    const fresh = await refresh(provider, a.refresh_token);
    expect(fresh.status).toBe(200);
    expect((await resource(provider.url, fresh.json!.access_token as string)).status).toBe(200);
    expect(provider.stats()).toMatchObject({
      resourceRequests: 5,
      resourceRejections: 3,
      redemptions: 1,
    });
  });

  it('reset clears tokens, stats and queued failures', async () => {
    const grant = provider.issueGrant();
    provider.injectFailures({ kind: 'server_error', times: 5 });
    await refresh(provider, grant.refresh_token);
    provider.reset();
    expect(provider.stats()).toEqual({
      tokenRequests: 0,
      redemptions: 0,
      graceRedemptions: 0,
      reuseViolations: 0,
      revokedFamilies: 0,
      redemptionsByToken: {},
      invalidGrants: 0,
      resourceRequests: 0,
      resourceRejections: 0,
      clientCredentialsGrants: 0,
      authorizationCodes: 0,
      codeExchanges: 0,
      revocations: 0,
      introspections: 0,
    });
    const res = await refresh(provider, grant.refresh_token);
    expect([res.status, res.json!.error]).toEqual([400, 'invalid_grant']);
  });

  it('close() ends hanging requests', async () => {
    provider.injectFailures({ kind: 'hang' });
    const pending = refresh(provider, provider.issueGrant().refresh_token);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await provider.close();
    await expect(pending).rejects.toThrow();
    provider = await TestProvider.start(); // for afterEach
  });
});

describe('provider in a child process', () => {
  it('is driven through the admin endpoints by RemoteTestProvider', async () => {
    const child = await startProviderProcess({ accessTokenTtlSeconds: 120 });
    try {
      const { provider } = child;
      expect(child.tokenUrl).toBe(`${child.url}/token`);
      const grant = await provider.issueGrant({ scope: 'files' });
      expect(grant.expires_in).toBe(120);
      const first = await refresh(child, grant.refresh_token);
      expect(first.json).toMatchObject({ expires_in: 120, scope: 'files' });

      await provider.injectFailures({ kind: 'rate_limited', retryAfterSeconds: 3 });
      expect((await refresh(child, first.json!.refresh_token as string)).status).toBe(429);
      expect(await provider.stats()).toMatchObject({ tokenRequests: 2, redemptions: 1 });

      await provider.configure({ rotation: false });
      const again = await refresh(child, first.json!.refresh_token as string);
      expect(again.status).toBe(200);
      expect(again.json).not.toHaveProperty('refresh_token');
      await expect(provider.configure({ rotaton: false } as never)).rejects.toThrow(
        /unknown option rotaton/,
      );

      const current = again.json!.access_token as string;
      expect((await resource(child.url, current)).status).toBe(200);
      expect(await provider.expireAccessTokens()).toBeGreaterThanOrEqual(1);
      expect((await resource(child.url, current)).status).toBe(401);
      expect(await provider.stats()).toMatchObject({ resourceRequests: 2, resourceRejections: 1 });

      await provider.reset();
      expect(await provider.stats()).toMatchObject({ tokenRequests: 0, redemptions: 0 });
      expect((await refresh(child, grant.refresh_token)).status).toBe(400);
    } finally {
      await child.stop();
    }
    await expect(fetch(`${child.url}/__admin/stats`)).rejects.toThrow();
  });

  it('takes CLI flags, announces itself on one line and exits on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../src/provider/main.ts', import.meta.url));
    const proc = spawnTs(main, ['--access-ttl', '60', '--rotation=false', '--client-id', 'cli']);
    const exited = once(proc, 'exit');
    const [line] = (await once(proc.stdout!, 'data')) as [Buffer];
    const info = JSON.parse(line.toString()) as Record<string, string>;
    expect(info).toEqual({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      tokenUrl: `${info.url}/token`,
      clientId: 'cli',
      clientSecret: 'tw-test-secret',
    });
    const remote = new RemoteTestProvider(info.url!);
    const grant = await remote.issueGrant();
    expect(grant.expires_in).toBe(60);
    const client = { tokenUrl: info.tokenUrl!, clientId: 'cli', clientSecret: 'tw-test-secret' };
    expect((await refresh(client, grant.refresh_token)).json).not.toHaveProperty('refresh_token');
    proc.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
  });

  it('parses provider arguments', () => {
    expect(
      parseProviderArgs([
        '--options',
        '{"latencyMs":5,"port":0}',
        '--rotation',
        'false',
        '--grace-ms=250',
        '--reuse-detection',
        '--latency-ms',
        '10',
      ]),
    ).toEqual({ latencyMs: 10, port: 0, rotation: false, reuseGraceMs: 250, reuseDetection: true });
    expect(() => parseProviderArgs(['--rotaton'])).toThrow(/unknown option/);
    expect(() => parseProviderArgs(['--access-ttl', 'soon'])).toThrow(/number/);
  });
});

describe('TestProvider quirks (provider-quirks.md)', () => {
  let provider: TestProvider;
  afterEach(async () => {
    await provider?.close();
  });
  const start = async (options: Parameters<typeof TestProvider.start>[0]) => {
    provider = await TestProvider.start(options);
    return provider;
  };

  it.each([
    ['slack', 200, { ok: false, error: 'invalid_refresh_token' }],
    ['hubspot', 400, { status: 'BAD_REFRESH_TOKEN', message: 'missing or unknown refresh token' }],
    ['zoom', 400, { reason: 'Invalid Token!', error: 'invalid_request' }],
    [
      'auth0',
      403,
      { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' },
    ],
    [
      'google',
      400,
      { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' },
    ],
  ] as const)('refuses a dead refresh token %s-style', async (personality, status, body) => {
    await start({ personality });
    const res = await refresh(provider, 'rt_unknown');
    expect([res.status, res.json]).toEqual([status, body]);
    expect(provider.stats().invalidGrants).toBe(1);
  });

  it('github: form-encoded answers and HTTP 200 errors unless Accept: application/json', async () => {
    await start({ personality: 'github' });
    const grant = provider.issueGrant();
    const form = await refresh(provider, grant.refresh_token);
    expect(form.status).toBe(200);
    expect(form.headers.get('content-type')).toMatch(/x-www-form-urlencoded/);
    const parsed = new URLSearchParams(form.text);
    expect(parsed.get('access_token')).toMatch(/^at_/);
    expect(parsed.get('expires_in')).toBe('28800');
    const dead = await refresh(provider, grant.refresh_token);
    expect(dead.status).toBe(200);
    expect(new URLSearchParams(dead.text).get('error')).toBe('bad_refresh_token');
    const json = await fetch(provider.tokenUrl, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Accept: 'application/json',
        Authorization: basicAuth(provider.clientId, provider.clientSecret),
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'rt_x' }),
    });
    expect(await json.json()).toMatchObject({ error: 'bad_refresh_token' });
  });

  it('salesforce: no expires_in but issued_at in epoch ms; a concurrent refresh is refused', async () => {
    await start({ personality: 'salesforce', latencyMs: 100 });
    const grant = provider.issueGrant();
    const [a, b] = await Promise.all([
      refresh(provider, grant.refresh_token),
      refresh(provider, grant.refresh_token),
    ]);
    const ok = [a, b].find((r) => r.status === 200)!;
    const busy = [a, b].find((r) => r.status !== 200)!;
    expect(ok.json).not.toHaveProperty('expires_in');
    expect(ok.json).not.toHaveProperty('refresh_token');
    expect(Number(ok.json!.issued_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(busy.json).toEqual({
      error: 'invalid_grant',
      error_description: 'token request is already being processed',
    });
    expect(provider.stats().redemptions).toBe(1);
    // Without rotation the same refresh token keeps working afterwards.
    expect((await refresh(provider, grant.refresh_token)).status).toBe(200);
  });

  it('mezzio: expires_in as a string', async () => {
    await start({ personality: 'mezzio' });
    const res = await refresh(provider, provider.issueGrant().refresh_token);
    expect(res.json!.expires_in).toBe('3600');
  });

  it('microsoft: a new refresh token each time, the old one not revoked', async () => {
    await start({ personality: 'microsoft' });
    const grant = provider.issueGrant();
    const first = await refresh(provider, grant.refresh_token);
    expect(first.json!.refresh_token).not.toBe(grant.refresh_token);
    expect((await refresh(provider, grant.refresh_token)).status).toBe(200);
    expect(provider.stats()).toMatchObject({ redemptions: 2, reuseViolations: 0 });
  });

  it('atlassian: JSON bodies only, 403 refusals, every 2nd refresh without a new refresh token', async () => {
    await start({ personality: 'atlassian' });
    const grant = provider.issueGrant();
    expect((await refresh(provider, grant.refresh_token)).status).toBe(400); // a form
    const post = (refreshToken: string) =>
      fetch(provider.tokenUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
          client_id: provider.clientId,
          client_secret: provider.clientSecret,
        }),
      }).then(async (r) => ({
        status: r.status,
        json: (await r.json()) as Record<string, string>,
      }));
    const first = await post(grant.refresh_token);
    expect(first.json.refresh_token).toMatch(/^rt_/);
    const second = await post(first.json.refresh_token!);
    expect(second.status).toBe(200);
    expect(second.json).not.toHaveProperty('refresh_token');
    expect((await post(first.json.refresh_token!)).status).toBe(200); // kept valid
    expect((await post('rt_unknown')).status).toBe(403);
  });

  it('google: a new grant past the cap silently revokes the oldest', async () => {
    await start({ personality: 'google', maxGrantsPerSubject: 2 });
    const [a, b, c] = [provider.issueGrant(), provider.issueGrant(), provider.issueGrant()];
    expect((await refresh(provider, a.refresh_token)).status).toBe(400);
    expect((await refresh(provider, b.refresh_token)).status).toBe(200);
    expect((await refresh(provider, c.refresh_token)).status).toBe(200);
    // Another user's grants do not count against this one's.
    provider.issueGrant({ subject: 'someone-else' });
    expect((await refresh(provider, b.refresh_token)).status).toBe(200);
  });

  it('client_credentials: an access token without a refresh token', async () => {
    await start({});
    const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'jobs' });
    const res = await fetch(provider.tokenUrl, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: basicAuth(provider.clientId, provider.clientSecret),
      },
      body: form,
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'jobs' });
    expect(body).not.toHaveProperty('refresh_token');
    expect(provider.isAccessTokenValid(body.access_token as string)).toBe(true);
    expect(provider.stats().clientCredentialsGrants).toBe(1);
  });

  describe('authorization code with PKCE', () => {
    const verifier = 'v'.repeat(43);
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirectUri = 'http://127.0.0.1:9/callback';

    async function authorize(params: Record<string, string> = {}) {
      const url = new URL(provider.authorizeUrl);
      const query = {
        response_type: 'code',
        client_id: provider.clientId,
        redirect_uri: redirectUri,
        state: 'st',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...params,
      };
      for (const [k, v] of Object.entries(query)) if (v !== '') url.searchParams.set(k, v);
      const res = await fetch(url, { redirect: 'manual' });
      return { status: res.status, location: new URL(res.headers.get('location') ?? 'x:/') };
    }
    const exchange = (code: string, codeVerifier = verifier) =>
      refresh(provider, 'unused', {
        form: {
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          ...(codeVerifier === '' ? {} : { code_verifier: codeVerifier }),
        },
      });

    it('redirects with a code and state, exchanges it once, and revokes on reuse', async () => {
      await start({});
      const { status, location } = await authorize();
      expect(status).toBe(302);
      expect(location.searchParams.get('state')).toBe('st');
      expect(location.searchParams.get('iss')).toBe(provider.url);
      const code = location.searchParams.get('code')!;
      const tokens = await exchange(code);
      expect(tokens.status).toBe(200);
      expect(tokens.json!.refresh_token).toMatch(/^rt_/);
      const again = await exchange(code);
      expect([again.status, again.json!.error]).toEqual([400, 'invalid_grant']);
      expect(provider.isAccessTokenValid(tokens.json!.access_token as string)).toBe(false);
      expect(provider.stats()).toMatchObject({ authorizationCodes: 1, codeExchanges: 1 });
    });

    it('refuses a wrong or missing verifier, and a request without PKCE', async () => {
      await start({});
      const code = (await authorize()).location.searchParams.get('code')!;
      expect((await exchange(code, 'w'.repeat(43))).json!.error).toBe('invalid_grant');
      expect((await exchange(code, '')).json!.error).toBe('invalid_grant');
      const noPkce = await authorize({ code_challenge: '', code_challenge_method: '' });
      expect(noPkce.location.searchParams.get('error')).toBe('invalid_request');
    });

    it('sends the configured error back to the redirect URI', async () => {
      await start({ authorizeError: 'access_denied' });
      const { location } = await authorize();
      expect(location.searchParams.get('error')).toBe('access_denied');
      expect(location.searchParams.get('state')).toBe('st');
      expect(location.searchParams.has('code')).toBe(false);
    });

    it('slack: the user pair under authed_user, the bot pair at the top', async () => {
      await start({ personality: 'slack' });
      const code = (await authorize()).location.searchParams.get('code')!;
      const res = await exchange(code);
      expect(res.json).toMatchObject({ ok: true, token_type: 'bot' });
      expect(res.json!.authed_user).toMatchObject({ token_type: 'user' });
    });
  });

  it('revokes a refresh token with its family (RFC 7009) and introspects (RFC 7662)', async () => {
    await start({});
    const grant = provider.issueGrant({ scope: 'read' });
    const call = (path: string, token: string) =>
      fetch(`${provider.url}${path}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Authorization: basicAuth(provider.clientId, provider.clientSecret),
        },
        body: new URLSearchParams({ token }),
      });
    expect(await (await call('/introspect', grant.access_token)).json()).toMatchObject({
      active: true,
      scope: 'read',
    });
    expect(await (await call('/introspect', grant.refresh_token)).json()).toMatchObject({
      active: true,
    });
    expect((await call('/revoke', grant.refresh_token)).status).toBe(200);
    expect(await (await call('/introspect', grant.access_token)).json()).toEqual({
      active: false,
    });
    expect((await call('/revoke', 'never-issued')).status).toBe(200);
    expect((await refresh(provider, grant.refresh_token)).status).toBe(400);
    expect(provider.stats()).toMatchObject({ revocations: 2, introspections: 3 });
  });

  it('hostile answers: huge, not JSON, wrong types, and a slow drip', async () => {
    await start({});
    provider.injectFailures(
      { kind: 'huge_body', bytes: 300_000 },
      { kind: 'wrong_content_type' },
      { kind: 'wrong_types' },
      { kind: 'slow_drip', intervalMs: 20 },
    );
    const grant = provider.issueGrant();
    expect((await refresh(provider, grant.refresh_token)).text.length).toBe(300_000);
    const html = await refresh(provider, grant.refresh_token);
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect((await refresh(provider, grant.refresh_token)).json!.access_token).toBe(12345);
    const drip = await refresh(provider, grant.refresh_token);
    expect(drip.json).toMatchObject({ access_token: 'at_drip' });
    expect(provider.stats().redemptions).toBe(0);
  });
});
