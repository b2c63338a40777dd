import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { KeyRing, type ProviderConfig } from '@tokenwarden/core';
import {
  openBroker,
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
  importGrant(options?: { expiresIn?: number }): Promise<{ id: string; refreshToken: string }>;
  /** Moves the access token's expiry into the past, as if time had passed. */
  expire(id: string): void;
  /** Direct SQL on the store's file, for what no API should be able to do. */
  sql: Database.Database;
  cleanup(): Promise<void>;
}

export async function scenario(
  options: {
    provider?: TestProviderOptions;
    config?: Partial<ProviderConfig>;
    fixture?: Partial<BrokerFixture>;
    events?: unknown[];
  } = {},
): Promise<Scenario> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-core-'));
  const provider = await TestProvider.start(options.provider);
  const fixture: BrokerFixture = {
    dbPath: join(dir, 'tokenwarden.sqlite'),
    keys: KeyRing.generate('k1').serialize(),
    provider: {
      name: 'test',
      tokenUrl: provider.tokenUrl,
      clientId: provider.clientId,
      clientSecret: provider.clientSecret,
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
    onEvent: options.events ? (e) => options.events!.push(e) : undefined,
  });
  const sql = new Database(fixture.dbPath);
  return {
    ...opened,
    dir,
    fixture,
    provider,
    sql,
    async importGrant({ expiresIn = 0 } = {}) {
      const grant = provider.issueGrant();
      const info = await opened.broker.importCredential({
        provider: 'test',
        owner: 'user-1',
        accessToken: grant.access_token,
        refreshToken: grant.refresh_token,
        expiresIn,
      });
      return { id: info.id, refreshToken: grant.refresh_token };
    },
    expire(id) {
      sql.prepare('update credentials set access_expires_at = 0 where id = ?').run(id);
    },
    async cleanup() {
      sql.close();
      await opened.close();
      await provider.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
