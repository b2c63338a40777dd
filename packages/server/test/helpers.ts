import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  KeyRing,
  openPostgresStore,
  openSqliteStore,
  type KyselyStore,
  type NewAuditEvent,
} from '@tokenwarden/core';
import { TestProvider, type TestProviderOptions } from '@tokenwarden/testkit';
import { createTestDatabase, type TestDatabase } from '@tokenwarden/testkit/postgres';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterEach } from 'vitest';
import { buildServer, generateApiKey, hashApiKey, type BuildServerOptions } from '../src/index.ts';

export type Backend = 'sqlite' | 'postgres';
export const BACKENDS: Backend[] = ['sqlite', 'postgres'];

export interface ApiCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  /** An object is sent as JSON; a string is sent as is, with `contentType`. */
  body?: unknown;
  contentType?: string;
  /** An API key; undefined sends no Authorization header. */
  key?: string;
  headers?: Record<string, string>;
}

export interface TestServer {
  app: FastifyInstance;
  store: KyselyStore;
  provider: TestProvider;
  adminKey: string;
  /** The key ring, in TOKENWARDEN_KEYS format. */
  keys: string;
  /** The SQLite file (backend 'sqlite'). */
  dbPath: string;
  database: TestDatabase | undefined;
  /** Every log line the server wrote, as JSON text. */
  logLines: string[];
  call(call: ApiCall): Promise<LightMyRequestResponse>;
  admin(method: ApiCall['method'], url: string, body?: unknown): Promise<LightMyRequestResponse>;
  /** Configures the test provider as provider `name` (default 'test'). */
  putProvider(name?: string): Promise<void>;
  /** A service client with these grants; returns its API key and id. */
  createClient(
    grants: { owner: string; provider: string; actions: string[] }[],
  ): Promise<{ id: string; apiKey: string }>;
  /** Imports a fresh grant from the test provider, as the admin. */
  importGrant(options?: {
    owner?: string;
    provider?: string;
    expiresIn?: number;
  }): Promise<{ id: string; accessToken: string; refreshToken: string }>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  backend?: Backend;
  /** A second replica of this server: same database, key ring, admin key and provider. */
  replicaOf?: TestServer;
  provider?: TestProviderOptions;
  server?: Partial<Omit<BuildServerOptions, 'store' | 'keyRing' | 'adminKeyHash'>>;
}

/**
 * A server on a real store (a SQLite file in a temp dir, or a fresh Postgres database) with a
 * real test OAuth provider on loopback; the scheduler is off unless asked for. Its pino output is
 * captured in `logLines`.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const primary = options.replicaOf;
  const dir = mkdtempSync(join(tmpdir(), 'tw-server-'));
  const dbPath = primary?.dbPath ?? join(dir, 'tokenwarden.sqlite');
  const database =
    primary?.database ?? (options.backend === 'postgres' ? await createTestDatabase() : undefined);
  const store = database
    ? openPostgresStore({ connectionString: database.url, poolMax: 4 })
    : openSqliteStore({ path: dbPath });
  await store.migrate();
  const provider = primary?.provider ?? (await TestProvider.start(options.provider));
  const adminKey = primary?.adminKey ?? generateApiKey();
  const keys = primary?.keys ?? KeyRing.generate('k1').serialize();
  const logLines: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const app = await buildServer({
    store,
    keyRing: KeyRing.parse(keys),
    adminKeyHash: hashApiKey(adminKey),
    logger: pino({ level: 'trace' }, logStream),
    scheduler: false,
    ...options.server,
    broker: {
      leaseMs: 2_000,
      maxWaitMs: 5_000,
      backoff: { baseMs: 20, maxMs: 200 },
      ...options.server?.broker,
    },
  });

  const call = (c: ApiCall) => {
    const headers: Record<string, string> = { ...c.headers };
    if (c.key !== undefined) headers.authorization = `Bearer ${c.key}`;
    let payload: string | undefined;
    if (c.body !== undefined) {
      payload = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
      headers['content-type'] = c.contentType ?? 'application/json';
    } else if (c.contentType !== undefined) headers['content-type'] = c.contentType;
    return app.inject({ method: c.method, url: c.url, headers, payload });
  };
  const admin = (method: ApiCall['method'], url: string, body?: unknown) =>
    call({ method, url, body, key: adminKey });

  const server: TestServer = {
    app,
    store,
    provider,
    adminKey,
    keys,
    dbPath,
    database,
    logLines,
    call,
    admin,
    async putProvider(name = 'test') {
      const response = await admin('PUT', `/v1/providers/${name}`, {
        token_url: provider.tokenUrl,
        client_id: provider.clientId,
        client_secret: provider.clientSecret,
      });
      if (response.statusCode !== 200) throw new Error(`putProvider: ${response.body}`);
    },
    async createClient(grants) {
      const response = await admin('POST', '/v1/clients', { name: 'worker', grants });
      if (response.statusCode !== 201) throw new Error(`createClient: ${response.body}`);
      const body = response.json<{ id: string; api_key: string }>();
      return { id: body.id, apiKey: body.api_key };
    },
    async importGrant({ owner = 'user-a', provider: name = 'test', expiresIn = 3600 } = {}) {
      const { grant, response } = await postGrant(server, {
        provider: name,
        owner,
        expires_in: expiresIn,
      });
      if (response.statusCode !== 201) throw new Error(`importGrant: ${response.body}`);
      return {
        id: response.json<{ id: string }>().id,
        accessToken: grant.access_token,
        refreshToken: grant.refresh_token,
      };
    },
    async close() {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      if (primary) return; // the primary owns the database and the provider
      await provider.close();
      await database?.drop();
    },
  };
  return server;
}

/** The audit rows, oldest first (the buffer is flushed by the audit route). */
/**
 * Imports a fresh grant from the test provider as the admin: provider 'test', owner 'user-a',
 * its access and refresh tokens, then `fields` (which may replace any of these). The reply is
 * not checked.
 */
export async function postGrant(
  server: TestServer,
  fields: Record<string, unknown> = {},
): Promise<{ grant: ReturnType<TestProvider['issueGrant']>; response: LightMyRequestResponse }> {
  const grant = server.provider.issueGrant();
  const response = await server.admin('POST', '/v1/connections', {
    provider: 'test',
    owner: 'user-a',
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    ...fields,
  });
  return { grant, response };
}

/**
 * A migrated SQLite store in a fresh temp dir, for the tests of the enclosing describe block:
 * call the returned function in a test; the store is closed and the dir removed after it.
 */
export function tempSqliteStore(): () => Promise<KyselyStore> {
  let dir: string | undefined;
  let store: KyselyStore | undefined;
  afterEach(async () => {
    await store?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    store = undefined;
    dir = undefined;
  });
  return async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-audit-'));
    store = openSqliteStore({ path: join(dir, 'db.sqlite') });
    await store.migrate();
    return store;
  };
}

/** Audit event number `i` (request id `r<i>`), as the admin, with no connection. */
export function auditEvent(i: number): NewAuditEvent {
  return {
    requestId: `r${i}`,
    actor: 'admin',
    action: 'test',
    connectionId: null,
    owner: null,
    provider: null,
    outcome: 'ok',
    detail: null,
  };
}

export async function auditRows(server: TestServer, query = ''): Promise<AuditRow[]> {
  const response = await server.admin('GET', `/v1/audit?limit=200${query}`);
  if (response.statusCode !== 200) throw new Error(`audit: ${response.body}`);
  return response.json<{ events: AuditRow[] }>().events.reverse();
}

export interface AuditRow {
  seq: number;
  at: string;
  request_id: string;
  actor: string;
  action: string;
  connection_id: string | null;
  owner: string | null;
  provider: string | null;
  outcome: string;
  detail: Record<string, unknown> | null;
}

const TABLES = ['credentials', 'providers', 'service_clients', 'audit_events', 'settings'];

/** Every row of every table, in a stable order; "nothing stored" means this is unchanged. */
export async function dumpTables(
  server: TestServer,
  tables = TABLES,
): Promise<Record<string, unknown[]>> {
  const dump: Record<string, unknown[]> = {};
  if (server.database) {
    const client = new pg.Client({ connectionString: server.database.url });
    await client.connect();
    try {
      for (const table of tables) {
        dump[table] = (await client.query(`select * from ${table} order by 1`)).rows;
      }
    } finally {
      await client.end();
    }
  } else {
    const db = new Database(server.dbPath, { readonly: true });
    try {
      for (const table of tables)
        dump[table] = db.prepare(`select * from ${table} order by 1`).all();
    } finally {
      db.close();
    }
  }
  return dump;
}

/**
 * Everything the database holds, as text: the SQLite file and its WAL byte for byte, or every
 * Postgres table's rows as text.
 */
export async function databaseText(server: TestServer): Promise<string> {
  if (server.database) {
    const client = new pg.Client({ connectionString: server.database.url });
    await client.connect();
    try {
      const tables = await client.query<{ tablename: string }>(
        "select tablename from pg_tables where schemaname = 'public'",
      );
      const parts: string[] = [];
      for (const { tablename } of tables.rows) {
        const rows = await client.query(`select t::text as row from ${tablename} t`);
        parts.push(...rows.rows.map((r: { row: string }) => r.row));
      }
      return parts.join('\n');
    } finally {
      await client.end();
    }
  }
  return ['', '-wal', '-shm']
    .filter((suffix) => existsSync(server.dbPath + suffix))
    .map((suffix) => readFileSync(server.dbPath + suffix).toString('latin1'))
    .join('\n');
}

/** A loopback port nothing listens on: bound once, then released. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
