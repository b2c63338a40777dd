// Against an independent, certified authorization server (oidc-provider on loopback, refresh
// token rotation with reuse revoking the grant, 1-minute access tokens): the whole connect
// flow, refreshes from several processes, revocation and introspection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  authorizationCodeGrant,
  createAuthorizationRequest,
  discoverProvider,
  introspectToken,
  KeyRing,
  NeedsReauthError,
  openField,
  parseAuthorizationResponse,
  revokeToken,
  type ProviderConfig,
} from '@tokenwarden/core';
import { openBroker, type BrokerFixture, type OpenedBroker } from '@tokenwarden/testkit';
import { startOidcServer, type OidcServer } from '@tokenwarden/testkit/oidc';
import { afterEach, expect, it } from 'vitest';
import { RoundsWorker } from './rounds.ts';

let oidc: OidcServer | undefined;
let opened: OpenedBroker | undefined;
let dir: string | undefined;
afterEach(async () => {
  await opened?.close();
  await oidc?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('connect flow, 20 refresh rounds in 3 processes, introspection, revocation → needs_reauth', async () => {
  oidc = await startOidcServer({ accessTokenTtl: 60 });
  dir = mkdtempSync(join(tmpdir(), 'tw-oidc-'));
  const discovered = await discoverProvider(oidc.issuer);
  expect(discovered).toMatchObject({
    issuer: oidc.issuer,
    tokenUrl: `${oidc.issuer}/token`,
    revocationUrl: `${oidc.issuer}/token/revocation`,
    introspectionUrl: `${oidc.issuer}/token/introspection`,
  });
  const config: ProviderConfig = {
    ...discovered,
    name: 'oidc',
    clientId: oidc.clientId,
    clientSecret: oidc.clientSecret,
    scopes: ['openid', 'offline_access'],
    // oidc-provider issues a refresh token for offline_access only with consent asked for.
    authorizeParams: { prompt: 'consent' },
    rotatesRefreshTokens: true,
    reuseDetection: true,
    defaultAccessTtlSeconds: 60,
  };
  const fixture: BrokerFixture = {
    dbPath: join(dir, 'tokenwarden.sqlite'),
    keys: KeyRing.generate('k1').serialize(),
    provider: config,
    leaseMs: 5_000,
    maxWaitMs: 15_000,
    backoff: { baseMs: 20, maxMs: 200 },
  };
  opened = await openBroker(fixture);
  const { broker, keyRing } = opened;
  const provider = (await broker.providers.get('oidc'))!;

  // The connect flow: authorize → login and consent → callback → code exchange → connection.
  const request = await createAuthorizationRequest(provider, { redirectUri: oidc.redirectUri });
  const callback = await oidc.authorize(request.url);
  expect(callback.get('iss')).toBe(oidc.issuer);
  const parsed = parseAuthorizationResponse(provider, callback, request.state);
  if (parsed.kind !== 'code') throw new Error(`no code: ${JSON.stringify(parsed)}`);
  const outcome = await authorizationCodeGrant(provider, {
    code: parsed.code,
    codeVerifier: request.codeVerifier,
    redirectUri: oidc.redirectUri,
  });
  if (outcome.kind !== 'tokens') throw new Error(`no tokens: ${JSON.stringify(outcome)}`);
  expect(outcome.refreshToken).toBeDefined();
  // The code is single-use at the server too.
  expect(
    await authorizationCodeGrant(provider, {
      code: parsed.code,
      codeVerifier: request.codeVerifier,
      redirectUri: oidc.redirectUri,
    }),
  ).toMatchObject({ kind: 'refused', error: 'invalid_grant' });
  // ...and that replay revoked the grant (RFC 6749 §4.1.2): connect again for a live one.
  const again = await createAuthorizationRequest(provider, { redirectUri: oidc.redirectUri });
  const second = parseAuthorizationResponse(provider, await oidc.authorize(again.url), again.state);
  if (second.kind !== 'code') throw new Error('no code');
  const tokens = await authorizationCodeGrant(provider, {
    code: second.code,
    codeVerifier: again.codeVerifier,
    redirectUri: oidc.redirectUri,
  });
  if (tokens.kind !== 'tokens') throw new Error(`no tokens: ${JSON.stringify(tokens)}`);
  const { id } = await broker.importCredential({
    provider: 'oidc',
    owner: 'user-42',
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresIn: tokens.expiresIn,
    scope: tokens.scope,
  });

  // Repeated refreshes from 3 processes × 5 callers: every caller gets the one new token.
  const sql = new Database(fixture.dbPath);
  const workers = await Promise.all(
    Array.from({ length: 3 }, () => RoundsWorker.start(fixture, id, 5)),
  );
  const versions = new Set<number>();
  try {
    for (let round = 1; round <= 20; round++) {
      sql.prepare('update credentials set access_expires_at = 0 where id = ?').run(id);
      for (const worker of workers) worker.send(round);
      const got = (await Promise.all(workers.map((w) => w.answer()))).flat();
      expect(got.filter((g) => g.error)).toEqual([]);
      expect(new Set(got.map((g) => g.token)).size).toBe(1);
      versions.add(got[0]!.version!);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  expect(versions.size).toBe(20);
  expect((await broker.getConnection(id)).status).toBe('active');

  // Introspection: the current access token is active.
  const current = await broker.getAccessToken(id);
  expect(current.version).toBe(21);
  expect(await introspectToken(provider, current.accessToken, 'access_token')).toMatchObject({
    kind: 'introspected',
    result: { active: true, clientId: oidc.clientId },
  });

  // Revocation of the stored refresh token (as deleting a connection would do).
  const row = sql.prepare('select refresh_token from credentials where id = ?').get(id) as {
    refresh_token: string;
  };
  const refreshToken = openField(keyRing, row.refresh_token, {
    credentialId: id,
    field: 'refresh_token',
  });
  expect(await introspectToken(provider, refreshToken, 'refresh_token')).toMatchObject({
    result: { active: true },
  });
  expect(await revokeToken(provider, refreshToken, 'refresh_token')).toEqual({ kind: 'revoked' });
  expect(await introspectToken(provider, refreshToken, 'refresh_token')).toMatchObject({
    result: { active: false },
  });
  // Revoking the refresh token revoked its grant, access tokens included (RFC 7009 §2.1).
  expect(await introspectToken(provider, current.accessToken, 'access_token')).toMatchObject({
    result: { active: false },
  });
  sql.prepare('update credentials set access_expires_at = 0 where id = ?').run(id);
  sql.close();
  const error = (await broker.getAccessToken(id).catch((e: unknown) => e)) as NeedsReauthError;
  expect(error).toBeInstanceOf(NeedsReauthError);
  expect(error.reason).toBe('invalid_grant');
});
