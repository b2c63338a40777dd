// Every key source through the same conformance suite, and envelope encryption with AWS KMS in
// process through the real @aws-sdk/client-kms against moto on loopback: the database holds only
// wrapped data keys, the KMS is called once per data key per process and never per hand-out, and
// its refusals and outages are told apart.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import pg from 'pg';
import {
  AwsKms,
  CredentialBroker,
  EnvelopeKeySource,
  fileKeySource,
  KeyRing,
  KeyRingError,
  KeySourceUnavailableError,
  openPostgresStore,
  openSqliteStore,
  writeKeyFile,
  type KyselyStore,
} from '@tokenwarden/core';
import {
  FAKE_AWS_ENV,
  providerConfigFor,
  startMoto,
  TestProvider,
  type Moto,
} from '@tokenwarden/testkit';
import {
  describeKeySourceConformance,
  type KeySourceUnderTest,
} from '@tokenwarden/testkit/conformance';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let moto: Moto;
let kms: KMSClient;
const dirs: string[] = [];

beforeAll(async () => {
  // The SDK's credential chain reads the environment: fake keys keep it off any real account.
  Object.assign(process.env, FAKE_AWS_ENV);
  moto = await startMoto();
  kms = new KMSClient({ endpoint: moto.url, region: FAKE_AWS_ENV.AWS_REGION });
}, 600_000);

afterAll(async () => {
  kms?.destroy();
  await moto?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-key-sources-'));
  dirs.push(dir);
  return dir;
}

async function newKmsKey(): Promise<string> {
  return (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
}

type Backend = 'sqlite' | 'postgres';

/** A database for one test, and how to open another handle on it (another process's). */
async function database(backend: Backend) {
  if (backend === 'sqlite') {
    const path = join(tempDir(), 'tokenwarden.sqlite');
    return {
      open: () => openSqliteStore({ path }),
      raw: () => rawSqlite(path),
      drop: async () => {},
    };
  }
  const db = await createTestDatabase();
  return {
    open: () => openPostgresStore({ connectionString: db.url, poolMax: 2 }),
    raw: () => rawPostgres(db.url),
    drop: () => db.drop(),
  };
}

/** Every byte SQLite wrote: the database file, its WAL and anything else beside it. */
function rawSqlite(path: string): Promise<string> {
  const dir = join(path, '..');
  return Promise.resolve(
    readdirSync(dir)
      .map((name) => readFileSync(join(dir, name)).toString('latin1'))
      .join('\n'),
  );
}

/** Every row of every table, as text. */
async function rawPostgres(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>(
      'select tablename from pg_tables where schemaname = current_schema()',
    );
    const dumps = [];
    for (const { tablename } of tables.rows) {
      const rows = await client.query(`select * from "${tablename}"`);
      dumps.push(JSON.stringify(rows.rows));
    }
    return dumps.join('\n');
  } finally {
    await client.end();
  }
}

/** An envelope key source as one process builds it: its own store handle and KMS client. */
function envelope(store: KyselyStore, kmsKeyId: string, endpoint = moto.countedUrl) {
  return new EnvelopeKeySource({
    wrapper: new AwsKms({ endpoint }),
    kmsKeyId,
    store: store.keys,
    context: { deployment: 'test' },
  });
}

describeKeySourceConformance('key file', async (): Promise<KeySourceUnderTest> => {
  const path = join(tempDir(), 'tokenwarden.keys');
  writeKeyFile(path, KeyRing.generate('k1'), { replace: false, comment: 'test' });
  const open = () => fileKeySource(path, { keyFile: path, env: {} });
  return {
    source: open(),
    openAnother: async () => open(),
    async addKey() {
      const ring = open().loadNow!();
      const keys = ring.keyIds.map((id) => ({ id, key: ring.get(id)! }));
      writeKeyFile(path, new KeyRing([...keys, { id: 'k2', key: randomBytes(32) }]), {
        replace: true,
        comment: 'test',
      });
      return 'k2';
    },
    cleanup: async () => {},
  };
});

for (const backend of ['sqlite', 'postgres'] as const) {
  describeKeySourceConformance(`AWS KMS (moto), ${backend}`, async () => {
    const db = await database(backend);
    const kmsKeyId = await newKmsKey();
    const stores = [db.open()];
    await stores[0]!.migrate();
    const source = envelope(stores[0]!, kmsKeyId);
    return {
      source,
      async openAnother() {
        const store = db.open();
        stores.push(store);
        return envelope(store, kmsKeyId);
      },
      addKey: () => source.pendingKey(),
      async cleanup() {
        await Promise.allSettled(stores.map((store) => store.close()));
        await db.drop();
      },
    };
  });
}

describe.each(['sqlite', 'postgres'] as const)(
  'envelope encryption with AWS KMS on %s',
  (backend) => {
    it('stores only wrapped data keys and calls the KMS once per data key per process, never per hand-out', async () => {
      const db = await database(backend);
      const provider = await TestProvider.start();
      const kmsKeyId = await newKmsKey();
      const first = db.open();
      const second = db.open();
      try {
        await first.migrate();
        const before = moto.counts();
        const calls = (operation: string) =>
          (moto.counts()[operation] ?? 0) - (before[operation] ?? 0);

        const ring = await envelope(first, kmsKeyId).load();
        const broker = new CredentialBroker({
          store: first,
          keyRing: ring,
          providers: [providerConfigFor(provider)],
        });
        const grant = provider.issueGrant();
        const { id } = await broker.importCredential({
          provider: 'test',
          owner: 'user-1',
          accessToken: grant.access_token,
          refreshToken: grant.refresh_token,
          expiresIn: 3600,
        });
        for (let i = 0; i < 50; i += 1) await broker.getAccessToken(id);
        // A refresh seals a new token pair: still no KMS call.
        const refreshed = await broker.getAccessToken(id, { minTtlSeconds: 7200 });
        expect(provider.stats().redemptions).toBe(1);
        expect({ generate: calls('GenerateDataKey'), decrypt: calls('Decrypt') }).toEqual({
          generate: 1,
          decrypt: 0,
        });

        // Another process unwraps the data key once, however often it reloads or hands out.
        const otherSource = envelope(second, kmsKeyId);
        const otherBroker = new CredentialBroker({
          store: second,
          keyRing: await otherSource.load(),
          providers: [providerConfigFor(provider)],
        });
        await otherSource.load();
        for (let i = 0; i < 50; i += 1) {
          expect((await otherBroker.getAccessToken(id)).accessToken).toBe(refreshed.accessToken);
        }
        expect({ generate: calls('GenerateDataKey'), decrypt: calls('Decrypt') }).toEqual({
          generate: 1,
          decrypt: 1,
        });
        await broker.close();
        await otherBroker.close();

        const raw = await db.raw();
        const key = ring.get(ring.activeKeyId)!;
        for (const secret of [
          key.toString('base64'),
          key.toString('hex'),
          key.toString('latin1'),
          grant.refresh_token,
          refreshed.accessToken,
          provider.clientSecret,
        ]) {
          expect(raw.includes(secret)).toBe(false);
        }
        expect(raw).toContain(kmsKeyId);
      } finally {
        await first.close();
        await second.close();
        await provider.close();
        await db.drop();
      }
    });
  },
);

describe('AWS KMS refusals and outages', () => {
  it('tells a refusal (disabled key, other deployment) from an unreachable KMS', async () => {
    const db = await database('sqlite');
    const store = db.open();
    try {
      await store.migrate();
      const kmsKeyId = await newKmsKey();
      await envelope(store, kmsKeyId).load();

      // The same wrapped keys under another deployment's encryption context do not unwrap.
      const elsewhere = new EnvelopeKeySource({
        wrapper: new AwsKms({ endpoint: moto.countedUrl }),
        kmsKeyId,
        store: store.keys,
        context: { deployment: 'other' },
      });
      await expect(elsewhere.load()).rejects.toThrow(/AWS KMS refused Decrypt/);

      const unreachable = envelope(store, kmsKeyId, 'http://127.0.0.1:1');
      const outage = await unreachable.load().catch((error: unknown) => error);
      expect(outage).toBeInstanceOf(KeySourceUnavailableError);
      expect(String((outage as Error).message)).toMatch(/could not be reached for Decrypt/);

      moto.disable(kmsKeyId);
      const refused = await envelope(store, kmsKeyId)
        .load()
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(KeyRingError);
      expect(refused).not.toBeInstanceOf(KeySourceUnavailableError);
    } finally {
      await store.close();
    }
  });

  it('rewraps every data key under a second KMS key; the first is then not needed', async () => {
    const db = await database('sqlite');
    const store = db.open();
    try {
      await store.migrate();
      const [from, to] = [await newKmsKey(), await newKmsKey()];
      const source = envelope(store, from);
      const ring = await source.load();
      await source.pendingKey();
      expect(await source.rewrap(to)).toEqual({ rewrapped: 2, already: 0 });
      expect(await source.rewrap(to)).toEqual({ rewrapped: 0, already: 2 });
      moto.disable(from);
      const after = await envelope(store, to).load();
      expect(after.activeKeyId).toBe(ring.activeKeyId);
      expect(after.get(ring.activeKeyId)!.equals(ring.get(ring.activeKeyId)!)).toBe(true);
      expect(after.keyIds).toHaveLength(2);
    } finally {
      await store.close();
    }
  });
});
