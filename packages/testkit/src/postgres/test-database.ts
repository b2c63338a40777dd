import { randomBytes } from 'node:crypto';
import pg from 'pg';
import './provided.ts';

export interface TestDatabase {
  /** Connection URL of the new, empty database. */
  readonly url: string;
  readonly name: string;
  /** Drops it, closing whatever connections are still open. Idempotent. */
  drop(): Promise<void>;
}

/** A fresh, empty database on the test run's Postgres server (see `testPostgresUrl`). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = await testPostgresUrl();
  const name = `tw_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin(serverUrl, `create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => admin(serverUrl, `drop database if exists ${name} with (force)`),
  };
}

/**
 * The server for tests: TOKENWARDEN_TEST_DATABASE_URL if set (its user needs CREATEDB), else the
 * one the vitest global setup started.
 */
export async function testPostgresUrl(): Promise<string> {
  const fromEnv = process.env.TOKENWARDEN_TEST_DATABASE_URL;
  if (fromEnv) return fromEnv;
  // Loaded here so that this module also works outside vitest, given the variable.
  const { inject } = await import('vitest');
  const url = inject('tokenwardenPostgresUrl');
  if (!url) {
    throw new Error(
      'No Postgres for tests: register packages/testkit/src/postgres/global-setup.ts as a vitest ' +
        'globalSetup, or set TOKENWARDEN_TEST_DATABASE_URL',
    );
  }
  return url;
}

async function admin(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
