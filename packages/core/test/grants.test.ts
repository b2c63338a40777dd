// The grants other than refresh_token, end to end against the test provider on loopback:
// authorization code with PKCE, client credentials (machine tokens, also across processes),
// RFC 7009 revocation, RFC 7662 introspection, discovery, presets and re-authorization.
import { join } from 'node:path';
import {
  authorizationCodeGrant,
  createAuthorizationRequest,
  CredentialBroker,
  discoverProvider,
  InvalidInputError,
  introspectToken,
  NeedsReauthError,
  NotFoundError,
  parseAuthorizationResponse,
  ProviderRegistry,
  RefreshUnavailableError,
  resolvePreset,
  resolveProvider,
  revokeToken,
  type ConnectionEvent,
  type ResolvedProvider,
} from '@tokenwarden/core';
import { fixtureEnv, runWorkers, tokenFingerprint } from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

const REDIRECT = 'https://app.example/oauth/callback';

/** The scenario's provider with every endpoint of the test provider configured. */
async function fullProvider(extra: Record<string, unknown> = {}): Promise<ResolvedProvider> {
  s.broker.configureProvider({
    ...s.fixture.provider,
    authorizeUrl: s.provider.authorizeUrl,
    revocationUrl: s.provider.revocationUrl,
    introspectionUrl: s.provider.introspectionUrl,
    scopes: ['read', 'write'],
    ...extra,
  });
  return (await s.broker.providers.get('test'))!;
}

/** What a browser does: follow the authorization URL, come back with the redirect. */
async function visit(url: string): Promise<URLSearchParams> {
  const res = await fetch(url, { redirect: 'manual' });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location')!).searchParams;
}

describe('authorization code with PKCE (RFC 6749 §4.1, RFC 7636)', () => {
  it('authorize → callback → code exchange → import → refresh', async () => {
    s = await scenario();
    const provider = await fullProvider({ authorizeParams: { access_type: 'offline' } });
    const request = await createAuthorizationRequest(provider, { redirectUri: REDIRECT });
    const url = new URL(request.url);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: provider.clientId,
      redirect_uri: REDIRECT,
      scope: 'read write',
      state: request.state,
      code_challenge_method: 'S256',
      access_type: 'offline',
    });
    expect(url.searchParams.get('code_challenge')).not.toContain(request.codeVerifier);
    expect(request.url).not.toContain(request.codeVerifier);

    const callback = await visit(request.url);
    const parsed = parseAuthorizationResponse(provider, callback, request.state);
    expect(parsed.kind).toBe('code');
    const outcome = await authorizationCodeGrant(provider, {
      code: (parsed as { code: string }).code,
      codeVerifier: request.codeVerifier,
      redirectUri: REDIRECT,
    });
    expect(outcome).toMatchObject({ kind: 'tokens', tokenType: 'Bearer', scope: 'read write' });
    if (outcome.kind !== 'tokens') throw new Error('unreachable');
    const { id } = await s.broker.importCredential({
      provider: 'test',
      owner: 'user-1',
      accessToken: outcome.accessToken,
      refreshToken: outcome.refreshToken,
      expiresIn: 0,
    });
    expect((await s.broker.getAccessToken(id)).version).toBe(2);
    expect(s.provider.stats()).toMatchObject({ codeExchanges: 1, redemptions: 1 });
  });

  it('refuses a wrong, missing or repeated state, and reports the provider error', async () => {
    s = await scenario();
    const provider = await fullProvider();
    const request = await createAuthorizationRequest(provider, { redirectUri: REDIRECT });
    const callback = await visit(request.url);
    const other = await createAuthorizationRequest(provider, { redirectUri: REDIRECT });
    expect(parseAuthorizationResponse(provider, callback, other.state)).toEqual({
      kind: 'invalid',
      error: 'invalid_state',
    });
    const stripped = new URLSearchParams(callback);
    stripped.delete('state');
    expect(parseAuthorizationResponse(provider, stripped, request.state).kind).toBe('invalid');
    const doubled = new URLSearchParams(callback);
    doubled.append('state', request.state);
    expect(parseAuthorizationResponse(provider, doubled, request.state).kind).toBe('invalid');

    s.provider.configure({ authorizeError: 'access_denied' });
    const denied = await createAuthorizationRequest(provider, { redirectUri: REDIRECT });
    expect(parseAuthorizationResponse(provider, await visit(denied.url), denied.state)).toEqual({
      kind: 'error',
      error: 'access_denied',
    });
  });

  it('checks the issuer (RFC 9207) when it is configured', async () => {
    s = await scenario();
    const provider = await fullProvider({ issuer: 'https://someone-else.example' });
    const request = await createAuthorizationRequest(provider, { redirectUri: REDIRECT });
    const callback = await visit(request.url); // iss = the test provider
    expect(parseAuthorizationResponse(provider, callback, request.state)).toEqual({
      kind: 'invalid',
      error: 'invalid_response',
    });
  });

  it('a replayed code, a wrong verifier: refused; a missing verifier is never sent', async () => {
    s = await scenario();
    const provider = await fullProvider();
    const request = await createAuthorizationRequest(provider, { redirectUri: REDIRECT });
    const code = (await visit(request.url)).get('code')!;
    const wrong = await authorizationCodeGrant(provider, {
      code,
      codeVerifier: 'x'.repeat(43),
      redirectUri: REDIRECT,
    });
    expect(wrong).toEqual({ kind: 'refused', error: 'invalid_grant' });
    await expect(
      authorizationCodeGrant(provider, { code, codeVerifier: '', redirectUri: REDIRECT }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    const requests = s.provider.stats().tokenRequests;
    const good = await authorizationCodeGrant(provider, {
      code,
      codeVerifier: request.codeVerifier,
      redirectUri: REDIRECT,
    });
    expect(good.kind).toBe('tokens');
    const replay = await authorizationCodeGrant(provider, {
      code,
      codeVerifier: request.codeVerifier,
      redirectUri: REDIRECT,
    });
    expect(replay).toEqual({ kind: 'refused', error: 'invalid_grant' });
    expect(s.provider.stats().tokenRequests).toBe(requests + 2);
    // The replay revoked what the code had been exchanged for (RFC 6749 §4.1.2).
    if (good.kind === 'tokens') expect(s.provider.isAccessTokenValid(good.accessToken)).toBe(false);
  });

  it('refuses unusable redirect URIs and providers without an authorization endpoint', async () => {
    s = await scenario();
    const provider = await fullProvider();
    for (const redirectUri of ['http://app.example/cb', 'https://app.example/cb#x', 'nope']) {
      await expect(createAuthorizationRequest(provider, { redirectUri })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
    }
    s.broker.configureProvider({ ...s.fixture.provider }); // no authorizeUrl
    await expect(
      createAuthorizationRequest((await s.broker.providers.get('test'))!, {
        redirectUri: REDIRECT,
      }),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('slack-user: the user pair under authed_user, as a Bearer token', async () => {
    s = await scenario({ provider: { personality: 'slack' } });
    const base = { ...s.fixture.provider, authorizeUrl: s.provider.authorizeUrl };
    for (const [preset, type] of [
      ['slack', 'bot'],
      ['slack-user', 'user'],
    ] as const) {
      const provider = resolveProvider({
        ...base,
        preset,
        rotatesRefreshTokens: undefined,
        reuseDetection: undefined,
      });
      const request = await createAuthorizationRequest(provider, { redirectUri: REDIRECT });
      const code = (await visit(request.url)).get('code')!;
      const outcome = await authorizationCodeGrant(provider, {
        code,
        codeVerifier: request.codeVerifier,
        redirectUri: REDIRECT,
      });
      expect(outcome).toMatchObject({ kind: 'tokens', tokenType: 'Bearer' });
      if (outcome.kind !== 'tokens') throw new Error('unreachable');
      // The test provider names each family's token type in refresh answers: bot or user.
      const refreshed = await fetch(s.provider.tokenUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: outcome.refreshToken!,
          client_id: provider.clientId,
          client_secret: provider.clientSecret!,
        }),
      });
      expect(((await refreshed.json()) as { token_type: string }).token_type).toBe(type);
    }
  });
});

describe('machine tokens (client_credentials, RFC 6749 §4.4)', () => {
  it('fetched once for many concurrent callers when expired, never a refresh token', async () => {
    s = await scenario({ config: { grantType: 'client_credentials', scopes: ['jobs'] } });
    const info = await s.broker.createMachineConnection({ provider: 'test', owner: 'svc' });
    expect(info).toMatchObject({ hasRefreshToken: false, scope: 'jobs', status: 'active' });
    expect(s.provider.stats().clientCredentialsGrants).toBe(1);
    const first = await s.broker.getAccessToken(info.id);
    expect(first.version).toBe(1);
    await s.expire(info.id);
    const all = await Promise.all(
      Array.from({ length: 100 }, () => s.broker.getAccessToken(info.id)),
    );
    expect(new Set(all.map((t) => t.accessToken)).size).toBe(1);
    expect(all[0]!.version).toBe(2);
    expect(s.provider.isAccessTokenValid(all[0]!.accessToken)).toBe(true);
    expect(s.provider.stats()).toMatchObject({ clientCredentialsGrants: 2, redemptions: 0 });
    expect((await s.broker.getConnection(info.id)).hasRefreshToken).toBe(false);
    // The scheduler's refresh_at is set for machine tokens too.
    const row = s.sql.prepare('select refresh_at from credentials where id = ?').get(info.id);
    expect((row as { refresh_at: number | null }).refresh_at).toBeGreaterThan(0);
  });

  it.each([
    ['on one SQLite file', 'sqlite'],
    ['on one Postgres', 'postgres'],
  ] as const)('one fetch across 4 processes × 25 callers %s', async (_, backend) => {
    s = await scenario({
      backend,
      provider: { latencyMs: 100 },
      config: { grantType: 'client_credentials' },
    });
    const { id } = await s.broker.createMachineConnection({ provider: 'test', owner: 'svc' });
    await s.expire(id);
    const results = await runWorkers<{ token?: string; version?: number; error?: string }[]>({
      script: join(import.meta.dirname, 'workers', 'machine-worker.ts'),
      args: [id, '25'],
      count: 4,
      barrier: true,
      env: fixtureEnv(s.fixture),
    });
    const got = results.flatMap((r) => r.result ?? [{ error: `exit ${r.exitCode} ${r.stderr}` }]);
    expect(got).toHaveLength(100);
    expect(got.filter((g) => g.error)).toEqual([]);
    expect(new Set(got.map((g) => g.token)).size).toBe(1);
    expect(new Set(got.map((g) => g.version))).toEqual(new Set([2]));
    expect(s.provider.stats().clientCredentialsGrants).toBe(2);
    const token = await s.broker.getAccessToken(id);
    expect(tokenFingerprint(token.accessToken)).toBe(got[0]!.token);
  });

  it('a refused client is refresh_unavailable, never needs_reauth; nothing stored on create', async () => {
    s = await scenario({
      config: { grantType: 'client_credentials' },
      fixture: { maxWaitMs: 200 },
    });
    const { id } = await s.broker.createMachineConnection({ provider: 'test', owner: 'svc' });
    s.provider.configure({ clientSecret: 'rotated-elsewhere' });
    await s.expire(id);
    const error = (await s.broker.getAccessToken(id).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect((error as RefreshUnavailableError).lastError).toBe('invalid_client');
    expect((await s.broker.getConnection(id)).status).toBe('active');
    const count = () =>
      (s.sql.prepare('select count(*) as n from credentials').get() as { n: number }).n;
    const rows = count();
    await expect(
      s.broker.createMachineConnection({ provider: 'test', owner: 'svc' }),
    ).rejects.toBeInstanceOf(RefreshUnavailableError);
    expect(count()).toBe(rows);
  });

  it('refuses a refresh token for a machine provider and machine creation for a user provider', async () => {
    s = await scenario({ config: { grantType: 'client_credentials' } });
    await expect(
      s.broker.importCredential({
        provider: 'test',
        owner: 'svc',
        accessToken: 'at_x',
        refreshToken: 'rt_x',
      }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    s.broker.configureProvider({ ...s.fixture.provider, grantType: 'refresh_token' });
    await expect(
      s.broker.createMachineConnection({ provider: 'test', owner: 'svc' }),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('revocation (RFC 7009) and introspection (RFC 7662)', () => {
  it('introspects active tokens, revokes the grant, and the next refresh needs re-authorization', async () => {
    s = await scenario();
    const provider = await fullProvider();
    const { id, refreshToken } = await s.importGrant();
    const token = await s.broker.getAccessToken(id);
    const active = await introspectToken(provider, token.accessToken, 'access_token');
    expect(active).toMatchObject({ kind: 'introspected', result: { active: true } });
    if (active.kind === 'introspected') {
      expect(active.result.exp! * 1000).toBeGreaterThan(Date.now());
    }
    // The original refresh token was spent by the refresh: inactive.
    expect(await introspectToken(provider, refreshToken, 'refresh_token')).toEqual({
      kind: 'introspected',
      result: { active: false },
    });
    expect(await revokeToken(provider, token.accessToken, 'access_token')).toEqual({
      kind: 'revoked',
    });
    expect(await introspectToken(provider, token.accessToken, 'access_token')).toMatchObject({
      result: { active: false },
    });
    // An unknown token is a success too (§2.2).
    expect(await revokeToken(provider, 'never-issued', 'refresh_token')).toEqual({
      kind: 'revoked',
    });
    expect(s.provider.stats()).toMatchObject({ revocations: 2, introspections: 3 });
  });

  it('revoking the refresh token kills the family: the next refresh is needs_reauth', async () => {
    s = await scenario();
    const provider = await fullProvider();
    const { id, refreshToken } = await s.importGrant();
    expect((await revokeToken(provider, refreshToken, 'refresh_token')).kind).toBe('revoked');
    const error = (await s.broker.getAccessToken(id).catch((e: unknown) => e)) as NeedsReauthError;
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect(error.reason).toBe('invalid_grant');
  });

  it('on a connection: broker.introspect and broker.revokeAtProvider, the token never returned', async () => {
    s = await scenario();
    await fullProvider();
    const { id } = await s.importGrant();
    const token = await s.broker.getAccessToken(id);
    const active = await s.broker.introspect(id);
    expect(active).toMatchObject({ kind: 'introspected', result: { active: true } });
    expect(JSON.stringify(active)).not.toContain(token.accessToken);
    expect(await s.broker.introspect(id, { token: 'refresh_token' })).toMatchObject({
      result: { active: true },
    });
    const revoked = await s.broker.revokeAtProvider(id);
    expect(revoked).toEqual({ kind: 'revoked' });
    expect(await s.broker.introspect(id)).toMatchObject({ result: { active: false } });
    await s.expire(id);
    await expect(s.broker.getAccessToken(id)).rejects.toBeInstanceOf(NeedsReauthError);
    await expect(s.broker.introspect('conn_missing')).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      s.broker.introspect(id, { token: 'id_token' as 'access_token' }),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('unsupported when not configured; a wrong client secret is a typed failure', async () => {
    s = await scenario();
    const bare = (await s.broker.providers.get('test'))!;
    expect(await revokeToken(bare, 'x', 'refresh_token')).toEqual({ kind: 'unsupported' });
    expect(await introspectToken(bare, 'x', 'access_token')).toEqual({ kind: 'unsupported' });
    const wrong = await fullProvider({ clientSecret: 'wrong-secret' });
    const revoked = await revokeToken(wrong, 'x', 'refresh_token');
    expect(revoked).toMatchObject({ kind: 'failed', error: 'invalid_client' });
    expect(JSON.stringify(revoked)).not.toContain('wrong-secret');
    expect(await introspectToken(wrong, 'x', 'access_token')).toMatchObject({
      kind: 'failed',
      error: 'invalid_client',
    });
  });

  it('429 and 5xx are typed failures with their Retry-After; an unreachable endpoint is network_error', async () => {
    s = await scenario();
    const provider = await fullProvider();
    const answer = (status: number, headers: Record<string, string> = {}) => ({
      fetch: async () => new Response('busy', { status, headers }),
    });
    expect(
      await revokeToken(provider, 'x', 'refresh_token', answer(429, { 'Retry-After': '7' })),
    ).toEqual({ kind: 'failed', error: 'rate_limited', retryAfterMs: 7_000 });
    expect(await introspectToken(provider, 'x', 'access_token', answer(503))).toEqual({
      kind: 'failed',
      error: 'server_error',
      retryAfterMs: undefined,
    });
    const unreachable = {
      fetch: async (): Promise<Response> => {
        throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      },
    };
    expect(await revokeToken(provider, 'x', 'refresh_token', unreachable)).toEqual({
      kind: 'failed',
      error: 'network_error',
      retryAfterMs: undefined,
    });
  });
});

describe('presets and discovery', () => {
  it('fills a preset URL template, lets every setting be overridden, refuses what is missing', () => {
    const okta = resolveProvider(
      resolvePreset('okta', {
        name: 'okta',
        clientId: 'id',
        presetParams: { domain: 'acme.okta.com' },
      }),
    );
    expect(okta).toMatchObject({
      tokenUrl: 'https://acme.okta.com/oauth2/default/v1/token',
      introspectionUrl: 'https://acme.okta.com/oauth2/default/v1/introspect',
      reuseGraceSeconds: 30,
      clientAuth: 'client_secret_basic',
    });
    const proxied = resolveProvider({
      name: 'g',
      preset: 'google',
      clientId: 'id',
      tokenUrl: 'https://proxy.internal/google/token',
      defaultAccessTtlSeconds: 1800,
    });
    expect(proxied).toMatchObject({
      tokenUrl: 'https://proxy.internal/google/token',
      revocationUrl: 'https://oauth2.googleapis.com/revoke',
      defaultAccessTtlSeconds: 1800,
      rotatesRefreshTokens: false,
    });
    const bad = [
      () => resolvePreset('okta', { name: 'o', clientId: 'id' }),
      () => resolvePreset('nope', { name: 'o', clientId: 'id' }),
      () =>
        resolvePreset('okta', {
          name: 'o',
          clientId: 'id',
          presetParams: { domain: 'evil.example/path?' },
        }),
      () => resolvePreset('google', { name: 'o', clientId: 'id', presetParams: { tenant: 'x' } }),
      () => resolveProvider({ name: 'o', clientId: 'id' }),
    ];
    for (const call of bad) expect(call).toThrow(InvalidInputError);
  });

  it('stores a preset with its overrides and reads it back resolved', async () => {
    s = await scenario();
    const registry = new ProviderRegistry({ keyRing: s.keyRing, store: s.store.service });
    await registry.put({
      name: 'ms',
      preset: 'microsoft',
      presetParams: { tenant: 'contoso.onmicrosoft.com' },
      clientId: 'id',
      clientSecret: 'client-secret-xyz',
      deadTokenErrors: ['invalid_grant'],
    });
    const replica = new ProviderRegistry({ keyRing: s.keyRing, store: s.store.service });
    expect(await replica.get('ms')).toMatchObject({
      preset: 'microsoft',
      tokenUrl: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
      rotatesRefreshTokens: true,
      reuseDetection: false,
      deadTokenErrors: ['invalid_grant'],
      clientSecret: 'client-secret-xyz',
    });
  });

  it('discovers an issuer, and refuses one that is not what it claims', async () => {
    s = await scenario();
    const found = await discoverProvider(s.provider.url);
    expect(found).toEqual({
      issuer: s.provider.url,
      tokenUrl: s.provider.tokenUrl,
      authorizeUrl: s.provider.authorizeUrl,
      revocationUrl: s.provider.revocationUrl,
      introspectionUrl: s.provider.introspectionUrl,
      clientAuth: 'client_secret_basic',
    });
    const provider = resolveProvider({ ...found, name: 'oidc', clientId: s.provider.clientId });
    expect(provider.issuer).toBe(s.provider.url);
    await expect(discoverProvider(`${s.provider.url}/other`)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(discoverProvider('http://example.com')).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('re-authorization', () => {
  it('a needs_reauth connection becomes active again: same id, bumped version, recovered event', async () => {
    const events: ConnectionEvent[] = [];
    s = await scenario();
    // The helper's broker has no onConnectionEvent: open a second one on the same store.
    const broker = new CredentialBroker({
      store: s.store,
      keyRing: s.keyRing,
      providers: [s.fixture.provider],
      onConnectionEvent: (e) => events.push(e),
      backoff: { baseMs: 20, maxMs: 200 },
    });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'invalid_grant' });
    await expect(broker.getAccessToken(id)).rejects.toBeInstanceOf(NeedsReauthError);
    const dead = await broker.getConnection(id);
    expect(dead.status).toBe('needs_reauth');

    const grant = s.provider.issueGrant();
    const info = await broker.reauthorize(id, {
      owner: 'user-1',
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      expiresIn: 0,
    });
    expect(info).toMatchObject({
      id,
      status: 'active',
      statusReason: null,
      version: dead.version + 1,
      recovered: true,
      failures: 0,
      lastError: null,
    });
    expect(events.filter((e) => e.type === 'recovered')).toEqual([
      {
        type: 'recovered',
        connectionId: id,
        provider: 'test',
        version: dead.version + 1,
        previousStatus: 'needs_reauth',
        previousReason: 'invalid_grant',
      },
    ]);
    // The new refresh token is the one redeemed next.
    const token = await broker.getAccessToken(id);
    expect(token.version).toBe(dead.version + 2);
    expect(s.provider.stats().redemptionsByToken[tokenFingerprint(grant.refresh_token)]).toBe(1);

    // Re-authorizing an active connection replaces its tokens without a recovered event.
    const again = s.provider.issueGrant();
    const replaced = await broker.reauthorize(id, {
      accessToken: again.access_token,
      refreshToken: again.refresh_token,
      expiresIn: 3600,
    });
    expect(replaced.recovered).toBe(false);
    expect((await broker.getAccessToken(id)).accessToken).toBe(again.access_token);
    expect(events.filter((e) => e.type === 'recovered')).toHaveLength(1);
  });

  it('refuses another owner, bad tokens and unknown ids, and changes nothing', async () => {
    s = await scenario();
    const { id } = await s.importGrant();
    const before = await s.broker.getConnection(id);
    await expect(
      s.broker.reauthorize(id, { owner: 'someone-else', accessToken: 'at_x' }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      s.broker.reauthorize(id, { accessToken: 'has space', refreshToken: 'rt' }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      s.broker.reauthorize('conn_missing', { accessToken: 'at' }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await s.broker.getConnection(id)).toEqual(before);
  });
});
