// The connect flow (state + PKCE, single-use sessions of 10 minutes) against the test provider,
// and its abuse: replayed, expired, unknown and foreign states, a verifier that will not open,
// and provider errors — each a clear error, with no connection created.
import {
  ConnectFlow,
  InvalidInputError,
  NotFoundError,
  openPostgresStore,
  openSqliteStore,
  UnknownProviderError,
  type ConnectResult,
  type KyselyStore,
} from '@tokenwarden/core';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

const CALLBACK = 'https://tokenwarden.example/v1/connect/callback';
const BACKEND = 'https://app.example/integrations/done?tab=google';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

async function setup(ttlMs?: number) {
  s = await scenario();
  s.broker.configureProvider({ ...s.fixture.provider, authorizeUrl: s.provider.authorizeUrl });
  return new ConnectFlow({
    broker: s.broker,
    store: s.store.connect,
    keyRing: s.keyRing,
    callbackUri: CALLBACK,
    ttlMs,
  });
}

/** The browser: authorize URL → (the test provider approves at once) → the callback's query. */
async function visit(authorizeUrl: string): Promise<URLSearchParams> {
  const res = await fetch(authorizeUrl, { redirect: 'manual' });
  const location = new URL(res.headers.get('location')!);
  expect(location.href.startsWith(CALLBACK)).toBe(true);
  return location.searchParams;
}

const connections = () =>
  (s.sql.prepare('select count(*) as n from credentials').get() as { n: number }).n;

describe('connect flow', () => {
  it('authorize → callback → connection, then back to the backend with its id', async () => {
    const connect = await setup();
    const { authorizeUrl, expiresAt } = await connect.start({
      provider: 'test',
      owner: 'user-7',
      scopes: ['read'],
      redirectUri: BACKEND,
    });
    expect(expiresAt - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(new URL(authorizeUrl).searchParams.get('redirect_uri')).toBe(CALLBACK);
    const params = await visit(authorizeUrl);
    const result = await connect.complete(params);
    if (result.kind !== 'connected') throw new Error(JSON.stringify(result));
    expect(result).toMatchObject({ reauthorized: false });
    expect(result.connection).toMatchObject({
      owner: 'user-7',
      provider: 'test',
      status: 'active',
    });
    const back = new URL(result.redirectTo);
    expect(back.origin + back.pathname).toBe('https://app.example/integrations/done');
    expect(back.searchParams.get('tab')).toBe('google');
    expect(back.searchParams.get('connection_id')).toBe(result.connection.id);
    // The connection refreshes like an imported one.
    await s.expire(result.connection.id);
    expect((await s.broker.getAccessToken(result.connection.id)).version).toBe(2);
    // Nothing about the session remains, and it never held the state or the verifier in clear.
    expect(s.sql.prepare('select count(*) as n from connect_sessions').get()).toEqual({ n: 0 });
  });

  it('stores the state only as a hash and the verifier sealed', async () => {
    const connect = await setup();
    const { authorizeUrl } = await connect.start({
      provider: 'test',
      owner: 'u',
      redirectUri: BACKEND,
    });
    const state = new URL(authorizeUrl).searchParams.get('state')!;
    const row = s.sql.prepare('select * from connect_sessions').get() as Record<string, string>;
    expect(row.state_hash).not.toBe(state);
    expect(row.code_verifier).toMatch(/^tw1\./);
    expect(readFileSync(s.fixture.dbPath).includes(Buffer.from(state))).toBe(false);
  });

  it('a replayed state is refused before anything is sent', async () => {
    const connect = await setup();
    const { authorizeUrl } = await connect.start({
      provider: 'test',
      owner: 'u',
      redirectUri: BACKEND,
    });
    const params = await visit(authorizeUrl);
    expect((await connect.complete(params)).kind).toBe('connected');
    const requests = s.provider.stats().tokenRequests;
    await expect(connect.complete(params)).rejects.toBeInstanceOf(InvalidInputError);
    expect(s.provider.stats().tokenRequests).toBe(requests);
    expect(connections()).toBe(1);
  });

  it('an expired state is refused, and so are unknown and missing ones', async () => {
    const connect = await setup(1);
    const { authorizeUrl } = await connect.start({
      provider: 'test',
      owner: 'u',
      redirectUri: BACKEND,
    });
    const params = await visit(authorizeUrl);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const error = (await connect.complete(params).catch((e: unknown) => e)) as InvalidInputError;
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.field).toBe('state');
    const unknown = new URLSearchParams(params);
    unknown.set('state', 'made-up');
    await expect(connect.complete(unknown)).rejects.toBeInstanceOf(InvalidInputError);
    const missing = new URLSearchParams(params);
    missing.delete('state');
    await expect(connect.complete(missing)).rejects.toBeInstanceOf(InvalidInputError);
    expect(s.provider.stats().tokenRequests).toBe(0);
    expect(connections()).toBe(0);
  });

  it("another session's state with this code: the verifier does not match, nothing created", async () => {
    const connect = await setup();
    const a = await connect.start({ provider: 'test', owner: 'alice', redirectUri: BACKEND });
    const b = await connect.start({ provider: 'test', owner: 'mallory', redirectUri: BACKEND });
    const paramsA = await visit(a.authorizeUrl);
    const paramsB = await visit(b.authorizeUrl);
    // Mallory's code presented with Alice's state (a login-CSRF attempt).
    const mixed = new URLSearchParams(paramsB);
    mixed.set('state', paramsA.get('state')!);
    const result = await connect.complete(mixed);
    expect(result).toMatchObject({ kind: 'failed', error: 'invalid_grant' });
    expect(new URL((result as { redirectTo: string }).redirectTo).searchParams.get('error')).toBe(
      'invalid_grant',
    );
    expect(connections()).toBe(0);
    // Alice's session was used up by that attempt; Mallory's is untouched.
    await expect(connect.complete(paramsA)).rejects.toBeInstanceOf(InvalidInputError);
    expect((await connect.complete(paramsB)).kind).toBe('connected');
  });

  it('a verifier that will not open (moved from another session) fails typed, nothing created', async () => {
    const connect = await setup();
    const a = await connect.start({ provider: 'test', owner: 'a', redirectUri: BACKEND });
    await connect.start({ provider: 'test', owner: 'b', redirectUri: BACKEND });
    const params = await visit(a.authorizeUrl);
    const rows = s.sql.prepare('select state_hash, code_verifier from connect_sessions').all() as {
      state_hash: string;
      code_verifier: string;
    }[];
    s.sql
      .prepare('update connect_sessions set code_verifier = ? where state_hash = ?')
      .run(rows[1]!.code_verifier, rows[0]!.state_hash);
    s.sql
      .prepare('update connect_sessions set code_verifier = ? where state_hash = ?')
      .run(rows[0]!.code_verifier, rows[1]!.state_hash);
    // The session is spent: the backend still hears of it, as error=, and nothing is sent.
    const result = await connect.complete(params);
    expect(result).toMatchObject({ kind: 'failed', error: 'decrypt_failed' });
    expect(new URL(result.redirectTo).searchParams.get('error')).toBe('decrypt_failed');
    expect(s.provider.stats().tokenRequests).toBe(0);
    expect(connections()).toBe(0);
  });

  it('tokens that cannot be stored are revoked at the provider and reported as error=', async () => {
    const connect = await setup();
    s.broker.configureProvider({
      ...s.fixture.provider,
      authorizeUrl: s.provider.authorizeUrl,
      revocationUrl: s.provider.revocationUrl,
    });
    const { id } = await s.importGrant();
    const { authorizeUrl } = await connect.start({
      provider: 'test',
      owner: 'user-1',
      redirectUri: BACKEND,
      connectionId: id,
    });
    // Deleted while its owner was at the provider: the new tokens have nowhere to go.
    await s.broker.deleteCredential(id);
    const result = await connect.complete(await visit(authorizeUrl));
    expect(result).toMatchObject({ kind: 'failed', error: 'not_found' });
    expect(new URL(result.redirectTo).searchParams.get('error')).toBe('not_found');
    expect(connections()).toBe(0);
    expect(s.provider.stats()).toMatchObject({ tokenRequests: 1, revocations: 2 });
  });

  it('a provider error comes back to the backend as error=, nothing created', async () => {
    const connect = await setup();
    s.provider.configure({ authorizeError: 'access_denied' });
    const { authorizeUrl } = await connect.start({
      provider: 'test',
      owner: 'u',
      redirectUri: BACKEND,
    });
    const result: ConnectResult = await connect.complete(await visit(authorizeUrl));
    expect(result).toMatchObject({ kind: 'failed', error: 'access_denied' });
    expect(new URL(result.redirectTo).searchParams.get('error')).toBe('access_denied');
    expect(s.provider.stats().tokenRequests).toBe(0);
    expect(connections()).toBe(0);
  });

  it('re-authorizes a needs_reauth connection: same id, active, bumped version', async () => {
    const connect = await setup();
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'invalid_grant' });
    await expect(s.broker.getAccessToken(id)).rejects.toThrow();
    const dead = await s.broker.getConnection(id);
    expect(dead.status).toBe('needs_reauth');
    await expect(
      connect.start({ provider: 'test', owner: 'other', redirectUri: BACKEND, connectionId: id }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    const { authorizeUrl } = await connect.start({
      provider: 'test',
      owner: 'user-1',
      redirectUri: BACKEND,
      connectionId: id,
    });
    const result = await connect.complete(await visit(authorizeUrl));
    expect(result).toMatchObject({
      kind: 'connected',
      reauthorized: true,
      connection: { id, status: 'active', version: dead.version + 1 },
    });
    expect(connections()).toBe(1);
  });

  it('refuses bad starts with typed errors and stores no session', async () => {
    const connect = await setup();
    const base = { provider: 'test', owner: 'u', redirectUri: BACKEND };
    await expect(connect.start({ ...base, provider: 'nope' })).rejects.toBeInstanceOf(
      UnknownProviderError,
    );
    for (const bad of [
      { ...base, redirectUri: 'http://app.example/x' },
      { ...base, owner: '' },
      { ...base, scopes: ['has space'] },
    ]) {
      await expect(connect.start(bad)).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(connect.start({ ...base, connectionId: 'conn_missing' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(s.sql.prepare('select count(*) as n from connect_sessions').get()).toEqual({ n: 0 });
  });
});

describe.each(['sqlite', 'postgres'] as const)('ConnectSessionStore on %s', (backend) => {
  let store: KyselyStore;
  let cleanup: () => Promise<void>;
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  it('takes a session once, and never an expired one', async () => {
    if (backend === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'tw-connect-'));
      store = openSqliteStore({ path: join(dir, 'tw.sqlite') });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    } else {
      const database = await createTestDatabase();
      store = openPostgresStore({ connectionString: database.url, poolMax: 2 });
      cleanup = () => database.drop();
    }
    await store.migrate();
    const session = {
      provider: 'p',
      owner: 'o',
      scopes: ['a', 'b'],
      redirectUri: BACKEND,
      callbackUri: CALLBACK,
      codeVerifier: 'sealed',
      connectionId: null,
    };
    const live = await store.connect.insertConnectSession({
      ...session,
      stateHash: 'h1',
      ttlMs: 600_000,
    });
    expect(live.expiresAt - live.createdAt).toBe(600_000);
    await store.connect.insertConnectSession({ ...session, stateHash: 'h2', ttlMs: 0 });
    const [first, second] = await Promise.all([
      store.connect.takeConnectSession('h1'),
      store.connect.takeConnectSession('h1'),
    ]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
    expect(first ?? second).toMatchObject({ owner: 'o', scopes: ['a', 'b'], connectionId: null });
    expect(await store.connect.takeConnectSession('h2')).toBeUndefined();
    await store.connect.insertConnectSession({ ...session, stateHash: 'h3', ttlMs: 0 });
    await store.connect.insertConnectSession({ ...session, stateHash: 'h4', ttlMs: 600_000 });
    // Inserting h4 purged the expired h3; either way an expired session is never returned.
    expect(await store.connect.takeConnectSession('h3')).toBeUndefined();
    expect(await store.connect.takeConnectSession('h4')).toBeDefined();
  });
});
