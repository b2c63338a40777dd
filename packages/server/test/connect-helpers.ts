import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { TestServer } from './helpers.ts';

/** Where the backend wants the browser back (an app of its own; nothing listens there). */
export const BACKEND = 'https://app.example/integrations/done?tab=crm';

/** Runs one statement on the server's database (SQLite file or Postgres); returns the rows. */
export async function sqlRows(
  server: TestServer,
  statement: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  if (server.database) {
    const client = new pg.Client({ connectionString: server.database.url });
    await client.connect();
    try {
      let n = 0;
      const text = statement.replace(/\?/g, () => `$${++n}`);
      return (await client.query(text, params)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }
  const db = new Database(server.dbPath);
  try {
    const prepared = db.prepare(statement);
    if (prepared.reader) return prepared.all(...params) as Record<string, unknown>[];
    prepared.run(...params);
    return [];
  } finally {
    db.close();
  }
}

export async function count(server: TestServer, table: string): Promise<number> {
  const [row] = await sqlRows(server, `select count(*) as n from ${table}`);
  return Number(row!.n);
}

/** A loopback port that was free a moment ago, for a server whose URL must be known up front. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** The path and query of a URL, for inject(). */
export function pathOf(url: URL | string): string {
  const u = typeof url === 'string' ? new URL(url) : url;
  return u.pathname + u.search;
}
