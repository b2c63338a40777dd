import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { KeyRing, type CredentialBrokerOptions, type ProviderConfig } from '@tokenwarden/core';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import {
  openBroker,
  providerConfigFor,
  TestProvider,
  type BrokerFixture,
  type OpenedBroker,
  type TestProviderOptions,
} from '@tokenwarden/testkit';

export interface Scenario extends OpenedBroker {
  dir: string;
  fixture: BrokerFixture;
  provider: TestProvider;
  /** Imports a fresh grant from the test provider as a connection. */
  importGrant(options?: {
    expiresIn?: number;
  }): Promise<{ id: string; accessToken: string; refreshToken: string }>;
  /** Moves the access token's expiry into the past, as if time had passed. */
  expire(id: string): Promise<void>;
  /** Direct SQL on the store's SQLite file, for what no API should be able to do. */
  sql: Database.Database;
  /** Direct SQL on the store's Postgres database (backend 'postgres' only). */
  pg: pg.Pool | undefined;
  cleanup(): Promise<void>;
}

export async function scenario(
  options: {
    provider?: TestProviderOptions;
    config?: Partial<ProviderConfig>;
    fixture?: Partial<BrokerFixture>;
    events?: unknown[];
    backend?: 'sqlite' | 'postgres';
    /** A test clock, and the crash-point seam. */
    broker?: Pick<CredentialBrokerOptions, 'clock' | 'onStep' | 'onMeasure'>;
  } = {},
): Promise<Scenario> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-core-'));
  const provider = await TestProvider.start(options.provider);
  const database = options.backend === 'postgres' ? await createTestDatabase() : undefined;
  const fixture: BrokerFixture = {
    dbPath: join(dir, 'tokenwarden.sqlite'),
    databaseUrl: database?.url,
    keys: KeyRing.generate('k1').serialize(),
    provider: {
      ...providerConfigFor(provider),
      rotatesRefreshTokens: options.provider?.rotation ?? true,
      reuseDetection: options.provider?.reuseDetection ?? true,
      reuseGraceSeconds: (options.provider?.reuseGraceMs ?? 0) / 1000,
      ...options.config,
    },
    leaseMs: 2_000,
    maxWaitMs: 10_000,
    backoff: { baseMs: 20, maxMs: 200 },
    ...options.fixture,
  };
  const opened = await openBroker(fixture, {
    onEvent: options.events ? (event) => options.events!.push(event) : undefined,
    ...options.broker,
  });
  const sql = new Database(fixture.dbPath);
  const pgPool = database && new pg.Pool({ connectionString: database.url, max: 2 });
  let cleaned = false;
  return {
    ...opened,
    dir,
    fixture,
    provider,
    sql,
    pg: pgPool,
    async importGrant({ expiresIn = 0 } = {}) {
      const grant = provider.issueGrant();
      const info = await opened.broker.importCredential({
        provider: 'test',
        owner: 'user-1',
        accessToken: grant.access_token,
        refreshToken: grant.refresh_token,
        expiresIn,
      });
      return { id: info.id, accessToken: grant.access_token, refreshToken: grant.refresh_token };
    },
    async expire(id) {
      if (pgPool)
        await pgPool.query('update credentials set access_expires_at = 0 where id = $1', [id]);
      else sql.prepare('update credentials set access_expires_at = 0 where id = ?').run(id);
    },
    // Idempotent: a file's afterEach cleans the last scenario after every test, also after one
    // that did not open a new scenario.
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      sql.close();
      await opened.close();
      await pgPool?.end();
      await database?.drop();
      await provider.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
