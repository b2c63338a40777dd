import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkKeyRing,
  CredentialBroker,
  KeyRing,
  KeyRingError,
  keyCheckSetting,
  loadKeyRing,
  openEmbedded,
  openPostgresStore,
  openSqliteStore,
  rotateKeys,
  sealProviderSecret,
  writeKeyFile,
  type KyselyStore,
} from '@tokenwarden/core';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tw-embedded-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the embedded default', () => {
  it('generates a 0600 key file with a warning on first use, and reuses it after', async () => {
    const warnings: string[] = [];
    const first = await openEmbedded({ directory: dir, env: {}, warn: (m) => warnings.push(m) });
    await first.store.close();
    expect(first.dbPath).toBe(join(dir, 'tokenwarden.sqlite'));
    expect(statSync(join(dir, 'tokenwarden.keys')).mode & 0o777).toBe(0o600);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('Back the file up');

    const second = await openEmbedded({ directory: dir, env: {}, warn: (m) => warnings.push(m) });
    await second.store.close();
    expect(second.keyRing.activeKeyId).toBe(first.keyRing.activeKeyId);
    expect(warnings).toHaveLength(1);
  });

  it('uses TOKENWARDEN_KEYS and TOKENWARDEN_DB when set, generating nothing', async () => {
    const keys = KeyRing.generate('mine').serialize();
    const embedded = await openEmbedded({
      directory: dir,
      env: { TOKENWARDEN_KEYS: keys, TOKENWARDEN_DB: 'other.sqlite' },
    });
    await embedded.store.close();
    expect(embedded.keyRing.activeKeyId).toBe('mine');
    expect(embedded.dbPath).toBe(join(dir, 'other.sqlite'));
    expect(() => statSync(join(dir, 'tokenwarden.keys'))).toThrow();
  });

  it('never generates a key for a shared database: without keys, loading refuses and says why', () => {
    const error = (() => {
      try {
        loadKeyRing({ env: {} });
      } catch (e) {
        return e;
      }
    })() as KeyRingError;
    expect(error).toBeInstanceOf(KeyRingError);
    expect(error.code).toBe('key_ring_invalid');
    expect(error.message).toContain('TOKENWARDEN_KEYS');
    expect(error.message).toContain('shared database never gets a generated key');
  });
});

/** Imports one connection: the database now holds ciphertexts under the ring's active key. */
async function importOne(store: KyselyStore, keyRing: KeyRing): Promise<string> {
  const broker = new CredentialBroker({
    store,
    keyRing,
    providers: [
      { name: 'acme', tokenUrl: 'https://acme.example/token', clientId: 'c', clientSecret: 's' },
    ],
  });
  const { id } = await broker.importCredential({
    provider: 'acme',
    owner: 'user-1',
    accessToken: 'at-secret',
    refreshToken: 'rt-secret',
    expiresIn: 3600,
  });
  return id;
}

async function refusal(fn: () => Promise<unknown>): Promise<KeyRingError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KeyRingError);
    return error as KeyRingError;
  }
  throw new Error('expected a KeyRingError');
}

describe('the embedded default and its key file', () => {
  // The process's working directory is the test runner's, never `dir`: what is found or
  // created is found or created beside the database.
  const dbIn = (sub: string) => join(dir, sub, 'tokenwarden.sqlite');

  it('keeps the key file beside the database, not in the working directory', async () => {
    mkdirSync(join(dir, 'data'));
    const env = { TOKENWARDEN_DB: dbIn('data') };
    const keysInCwd = existsSync(join(process.cwd(), 'tokenwarden.keys'));
    const first = await openEmbedded({ directory: join(dir, 'elsewhere'), env, warn: () => {} });
    await importOne(first.store, first.keyRing);
    await first.store.close();
    expect(first.keySource).toBe(join(dir, 'data', 'tokenwarden.keys'));
    expect(statSync(first.keySource).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dir, 'elsewhere', 'tokenwarden.keys'))).toBe(false);
    expect(existsSync(join(process.cwd(), 'tokenwarden.keys'))).toBe(keysInCwd);

    const second = await openEmbedded({ env });
    await second.store.close();
    expect(second.keyRing.activeKeyId).toBe(first.keyRing.activeKeyId);
  });

  it('never generates a key for a database that holds secrets: a missing key file refuses', async () => {
    mkdirSync(join(dir, 'data'));
    const env = { TOKENWARDEN_DB: dbIn('data') };
    const first = await openEmbedded({ env, warn: () => {} });
    await importOne(first.store, first.keyRing);
    await first.store.close();
    unlinkSync(first.keySource);

    const error = await refusal(() => openEmbedded({ env, warn: () => {} }));
    expect(error.code).toBe('key_ring_invalid');
    expect(error.message).toContain(`its key file ${first.keySource} does not exist`);
    expect(existsSync(first.keySource)).toBe(false);
  });

  it('counts a provider client secret as a secret the database holds', async () => {
    mkdirSync(join(dir, 'data'));
    const env = { TOKENWARDEN_DB: dbIn('data') };
    const first = await openEmbedded({ env, warn: () => {} });
    await first.store.service.putProvider({
      name: 'acme',
      config: '{}',
      clientSecret: sealProviderSecret(first.keyRing, 'client-secret', 'acme'),
    });
    await first.store.close();
    unlinkSync(first.keySource);
    await refusal(() => openEmbedded({ env, warn: () => {} }));
    expect(existsSync(first.keySource)).toBe(false);
  });

  it('refuses a ring without a key the secrets were sealed with, naming the key id', async () => {
    const env = { TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize() };
    const first = await openEmbedded({ directory: dir, env });
    await importOne(first.store, first.keyRing);
    await first.store.close();

    const other = { TOKENWARDEN_KEYS: KeyRing.generate('k2').serialize() };
    const error = await refusal(() => openEmbedded({ directory: dir, env: other }));
    expect(error.message).toContain('sealed with key "k1"');
    expect(error.message).toContain('the key ring from TOKENWARDEN_KEYS does not hold');
  });

  it('refuses a different key under the same id, by its key check', async () => {
    const env = { TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize() };
    const first = await openEmbedded({ directory: dir, env });
    await importOne(first.store, first.keyRing);
    await first.store.close();

    const impostor = { TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize() };
    const error = await refusal(() => openEmbedded({ directory: dir, env: impostor }));
    expect(error.message).toContain('Key "k1" from TOKENWARDEN_KEYS is not the key');
    expect(error.message).not.toContain(impostor.TOKENWARDEN_KEYS.split(':')[1]);
  });

  it('refuses a different key on a database from before key checks, by opening a secret', async () => {
    const path = join(dir, 'tokenwarden.sqlite');
    const ring = KeyRing.generate('k1');
    const store = openSqliteStore({ path });
    await store.migrate();
    await importOne(store, ring);
    await store.close();
    // No key check was ever stored: only the secrets themselves can tell the keys apart.
    const impostor = { TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize() };
    await refusal(() => openEmbedded({ directory: dir, env: impostor }));

    const right = await openEmbedded({
      directory: dir,
      env: { TOKENWARDEN_KEYS: ring.serialize() },
    });
    expect(await right.store.service.getSetting(keyCheckSetting('k1'))).toMatch(/^tw1\.k1\./);
    await right.store.close();
  });

  it('lets a key leave the ring once nothing is sealed with it (after keys rotate)', async () => {
    const keyFile = join(dir, 'tokenwarden.keys');
    const first = await openEmbedded({ directory: dir, warn: () => {}, env: {} });
    const id = await importOne(first.store, first.keyRing);
    const next = first.keyRing.withNewActiveKey('k2');
    await rotateKeys({ store: first.store, service: first.store.service, keyRing: next });
    await first.store.close();
    writeKeyFile(keyFile, KeyRing.parse(next.serialize().split(',')[0]!), {
      replace: true,
      comment: 'only the new key',
    });

    const rotated = await openEmbedded({ directory: dir, env: {} });
    expect(rotated.keyRing.keyIds).toEqual(['k2']);
    expect((await rotated.store.getCredential(id))?.record.keyId).toBe('k2');
    await rotated.store.close();
    expect(readFileSync(keyFile, 'utf8')).not.toContain(first.keyRing.activeKeyId);
  });
});

describe('the key check on Postgres', () => {
  it('stores a check at first start and refuses a missing or different key after', async () => {
    const database = await createTestDatabase();
    const open = () => openPostgresStore({ connectionString: database.url });
    const ring = KeyRing.generate('k1');
    const store = open();
    try {
      await store.migrate();
      await checkKeyRing(store, ring, 'TOKENWARDEN_KEYS');
      await importOne(store, ring);
      await checkKeyRing(store, ring, 'TOKENWARDEN_KEYS');
      const missing = await refusal(() =>
        checkKeyRing(store, KeyRing.generate('k2'), 'TOKENWARDEN_KEYS'),
      );
      expect(missing.message).toContain('sealed with key "k1"');
      const impostor = await refusal(() =>
        checkKeyRing(store, KeyRing.generate('k1'), 'TOKENWARDEN_KEYS'),
      );
      expect(impostor.message).toContain('Key "k1" from TOKENWARDEN_KEYS is not the key');
    } finally {
      await store.close();
      await database.drop();
    }
  });
});
