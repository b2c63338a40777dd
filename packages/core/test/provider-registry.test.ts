import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DecryptError,
  InvalidInputError,
  KeyRing,
  keyIdOf,
  openPostgresStore,
  openSqliteStore,
  ProviderRegistry,
  rotateKeys,
  type KyselyStore,
  type ProviderConfig,
} from '@tokenwarden/core';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const SECRET = 'client-SECRET-a1b2c3';
const OTHER_SECRET = 'client-SECRET-z9y8x7';

const acme: ProviderConfig = {
  name: 'acme',
  tokenUrl: 'https://acme.example/oauth/token',
  authorizeUrl: 'https://acme.example/oauth/authorize',
  revocationUrl: 'https://acme.example/oauth/revoke',
  scopes: ['read', 'write:all'],
  clientId: 'acme-client',
  clientSecret: SECRET,
  clientAuth: 'client_secret_post',
  reuseGraceSeconds: 30,
};

interface Backend {
  dir: string;
  /** Another handle on the same database: another replica. */
  open(): KyselyStore;
  cleanup(): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-registry-'));
  const opened: KyselyStore[] = [];
  return {
    dir,
    open() {
      const store = openSqliteStore({ path: join(dir, 'tw.sqlite') });
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.allSettled(opened.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresBackend(): Promise<Backend> {
  const database = await createTestDatabase();
  const opened: KyselyStore[] = [];
  return {
    dir: '',
    open() {
      const store = openPostgresStore({ connectionString: database.url, poolMax: 2 });
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.allSettled(opened.map((s) => s.close()));
      await database.drop();
    },
  };
}

describe.each([
  ['sqlite', sqliteBackend],
  ['postgres', postgresBackend],
] as const)('ProviderRegistry on %s', (_, makeBackend) => {
  let backend: Backend;
  let store: KyselyStore;
  const keyRing = KeyRing.generate('k1');
  const registry = (options: { cacheMs?: number; ring?: KeyRing; on?: KyselyStore } = {}) =>
    new ProviderRegistry({
      keyRing: options.ring ?? keyRing,
      store: (options.on ?? store).service,
      cacheMs: options.cacheMs,
    });

  beforeEach(async () => {
    backend = await makeBackend();
    store = backend.open();
    await store.migrate();
  });
  afterEach(async () => {
    await backend.cleanup();
  });

  it('stores a provider with its secret sealed and gives it back resolved', async () => {
    const put = await registry().put(acme);
    expect(put).toMatchObject({
      ...acme,
      tokenUrl: 'https://acme.example/oauth/token',
      defaultAccessTtlSeconds: 3600,
      rotatesRefreshTokens: true,
    });
    const row = (await store.service.getProvider('acme'))!;
    expect(row.clientSecret).toMatch(/^tw1\.k1\./);
    expect(JSON.stringify(row)).not.toContain(SECRET);
    // Only what was configured is kept, so defaults may still evolve.
    expect(JSON.parse(row.config)).toEqual({
      tokenUrl: acme.tokenUrl,
      authorizeUrl: acme.authorizeUrl,
      revocationUrl: acme.revocationUrl,
      scopes: acme.scopes,
      clientId: acme.clientId,
      clientAuth: acme.clientAuth,
      reuseGraceSeconds: 30,
    });
    // A fresh registry (another replica) reads and opens it.
    expect(await registry().get('acme')).toEqual(put);
  });

  it('never stores a property it does not know, such as a mis-spelt secret', async () => {
    await registry().put({ ...acme, client_secret: OTHER_SECRET } as ProviderConfig);
    expect(JSON.stringify(await store.service.getProvider('acme'))).not.toContain(OTHER_SECRET);
  });

  it('refuses a provider without a client secret (every request would fail), and stores nothing', async () => {
    const { clientSecret: _, ...publicClient } = acme;
    await expect(registry().put(publicClient)).rejects.toMatchObject({
      code: 'invalid_input',
      field: 'client_secret',
    });
    expect(await store.service.getProvider('acme')).toBeUndefined();
  });

  it('still reads a provider stored without a client secret before that rule', async () => {
    const { clientSecret: _, ...publicClient } = acme;
    await store.service.putProvider({
      name: 'acme',
      config: JSON.stringify({ ...publicClient, name: undefined }),
      clientSecret: null,
    });
    expect((await registry().get('acme'))!.clientSecret).toBeUndefined();
  });

  it('refuses a secret moved to another provider with decrypt_failed', async () => {
    await registry().put(acme);
    await registry().put({ ...acme, name: 'globex', clientSecret: OTHER_SECRET });
    const acmeRow = (await store.service.getProvider('acme'))!;
    const globexRow = (await store.service.getProvider('globex'))!;
    await store.service.putProvider({ ...globexRow, clientSecret: acmeRow.clientSecret });

    const error = await registry()
      .get('globex')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecryptError);
    expect((error as DecryptError).code).toBe('decrypt_failed');
    expect((error as Error).message).not.toContain(SECRET);
    expect((error as Error).message).not.toContain(acmeRow.clientSecret);
    expect((await registry().get('acme'))!.clientSecret).toBe(SECRET);
  });

  it('shows a change made by another replica within cacheMs', async () => {
    const other = backend.open();
    const mine = registry({ cacheMs: 20 });
    const theirs = registry({ cacheMs: 20, on: other });
    await mine.put(acme);
    expect((await theirs.get('acme'))!.clientId).toBe('acme-client');
    expect(await theirs.get('globex')).toBeUndefined();

    await mine.put({ ...acme, clientId: 'acme-client-2' });
    await mine.put({ ...acme, name: 'globex' });
    // A name it did not find is looked up again at once; what it read may be used for cacheMs
    // (the read counts are checked below, without a clock).
    expect((await theirs.get('globex'))!.name).toBe('globex');
    await sleep(30);
    expect((await theirs.get('acme'))!.clientId).toBe('acme-client-2');
    expect((await theirs.get('globex'))!.name).toBe('globex');
    // The replica that wrote it uses it at once.
    expect((await mine.get('acme'))!.clientId).toBe('acme-client-2');
  });

  /** A registry on another handle that counts its reads of the store. */
  const counting = (cacheMs: number) => {
    const counter = { reads: 0 };
    const service = store.service;
    const registry = new ProviderRegistry({
      keyRing,
      store: Object.assign(Object.create(service) as typeof service, {
        getProvider(name: string) {
          counter.reads++;
          return service.getProvider(name);
        },
      }),
      cacheMs,
    });
    return { registry, counter };
  };

  it('reads a provider once, also for concurrent lookups, while it is cached', async () => {
    await registry().put(acme);
    const { registry: cached, counter } = counting(60_000);
    await Promise.all(Array.from({ length: 10 }, () => cached.get('acme')));
    expect(counter.reads).toBe(1);
    await cached.get('acme');
    expect(counter.reads).toBe(1);
    // Unknown names are not remembered, so made-up names cannot fill the cache.
    await Promise.all(Array.from({ length: 10 }, () => cached.get('nope')));
    expect(counter.reads).toBe(2);
    await cached.get('nope');
    expect(counter.reads).toBe(3);
  });

  it('reads a provider again once cacheMs has passed', async () => {
    await registry().put(acme);
    const { registry: shortLived, counter } = counting(20);
    await shortLived.get('acme');
    await sleep(30);
    await shortLived.get('acme');
    expect(counter.reads).toBe(2);
  });

  it('lists stored and code-defined providers by name; code wins until put', async () => {
    const mine = registry();
    await mine.put(acme);
    await mine.put({ ...acme, name: 'globex', clientId: 'stored' });
    mine.define({ ...acme, name: 'globex', clientId: 'in-code' });
    mine.define({ ...acme, name: 'initech' });
    expect((await mine.list()).map((p) => [p.name, p.clientId])).toEqual([
      ['acme', 'acme-client'],
      ['globex', 'in-code'],
      ['initech', 'acme-client'],
    ]);
    expect((await mine.get('globex'))!.clientId).toBe('in-code');
    await mine.put({ ...acme, name: 'globex', clientId: 'put-later' });
    expect((await mine.get('globex'))!.clientId).toBe('put-later');
    // Another replica sees only what is stored.
    expect((await registry().list()).map((p) => p.name)).toEqual(['acme', 'globex']);
  });

  it('answers undefined for an unknown or impossible name', async () => {
    expect(await registry().get('nope')).toBeUndefined();
    expect(await registry().get('*')).toBeUndefined();
    expect(await registry().get('../x')).toBeUndefined();
  });

  const invalid: [string, Partial<ProviderConfig> & Record<string, unknown>, string][] = [
    ['an http token URL off loopback', { tokenUrl: 'http://acme.example/token' }, 'token_url'],
    ['a token URL that does not parse', { tokenUrl: 'not a url' }, 'token_url'],
    ['an http authorize URL', { authorizeUrl: 'http://acme.example/authorize' }, 'authorize_url'],
    [
      'a revocation URL with another scheme',
      { revocationUrl: 'ftp://acme.example/r' },
      'revocation_url',
    ],
    ['a scope with a space', { scopes: ['read write'] }, 'scopes'],
    ['scopes that are not a list', { scopes: 'read' as unknown as string[] }, 'scopes'],
    ['the wildcard as a name', { name: '*' }, 'name'],
    ['a name with a slash', { name: 'a/b' }, 'name'],
    ['an empty client id', { clientId: '' }, 'client_id'],
    ['an empty client secret', { clientSecret: '' }, 'client_secret'],
    [
      'an unknown client auth',
      { clientAuth: 'private_key_jwt' as 'client_secret_post' },
      'client_auth',
    ],
    ['a negative grace window', { reuseGraceSeconds: -1 }, 'reuse_grace_seconds'],
  ];
  it.each(invalid)('refuses %s with invalid_input and stores nothing', async (_, bad, field) => {
    const error = await registry()
      .put({ ...acme, ...bad })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).code).toBe('invalid_input');
    expect((error as InvalidInputError).field).toBe(field);
    expect((error as Error).message).not.toContain(SECRET);
    expect(await store.service.listProviders()).toEqual([]);
  });

  it('accepts plain http on loopback', async () => {
    const put = await registry().put({
      ...acme,
      tokenUrl: 'http://127.0.0.1:8080/token',
      authorizeUrl: 'http://localhost/authorize',
      revocationUrl: 'http://[::1]:9/revoke',
    });
    expect(put.revocationUrl).toBe('http://[::1]:9/revoke');
  });

  it('re-encrypts provider secrets when the keys rotate', async () => {
    await registry().put(acme);
    // Stored before a client secret was required: nothing to re-encrypt.
    await store.service.putProvider({
      name: 'public',
      config: JSON.stringify({ ...acme, name: undefined, clientSecret: undefined }),
      clientSecret: null,
    });
    const rotated = keyRing.withNewActiveKey('k2');
    const result = await rotateKeys({ store, keyRing: rotated, service: store.service });
    expect(result).toEqual({
      resealed: 0,
      skipped: 0,
      providerSecrets: { resealed: 1, skipped: 0 },
    });
    expect(keyIdOf((await store.service.getProvider('acme'))!.clientSecret!)).toBe('k2');
    const onlyK2 = new KeyRing([{ id: 'k2', key: rotated.get('k2')! }]);
    expect((await registry({ ring: onlyK2 }).get('acme'))!.clientSecret).toBe(SECRET);
    const again = await rotateKeys({ store, keyRing: rotated, service: store.service });
    expect(again.providerSecrets).toEqual({ resealed: 0, skipped: 0 });
  });
});

describe('ProviderRegistry on a SQLite file', () => {
  it('leaves no plaintext client secret anywhere in the database files', async () => {
    const backend = await sqliteBackend();
    try {
      const store = backend.open();
      await store.migrate();
      const registry = new ProviderRegistry({
        keyRing: KeyRing.generate('k1'),
        store: store.service,
      });
      await registry.put(acme);
      await registry.put({ ...acme, clientSecret: OTHER_SECRET }); // the replaced one too
      await store.close();
      const files = readdirSync(backend.dir);
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        const bytes = readFileSync(join(backend.dir, file));
        expect(bytes.includes(SECRET), file).toBe(false);
        expect(bytes.includes(OTHER_SECRET), file).toBe(false);
      }
      const reopened = backend.open();
      expect(await reopened.service.listProviders()).toHaveLength(1);
    } finally {
      await backend.cleanup();
    }
  });
});

describe('ProviderRegistry without a store', () => {
  it('keeps put providers in memory', async () => {
    const registry = new ProviderRegistry({ keyRing: KeyRing.generate('k1') });
    await registry.put(acme);
    expect((await registry.get('acme'))!.clientSecret).toBe(SECRET);
    expect((await registry.list()).map((p) => p.name)).toEqual(['acme']);
    expect(await registry.get('globex')).toBeUndefined();
  });
});
