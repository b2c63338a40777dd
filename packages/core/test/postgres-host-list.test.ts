// The Postgres store on a host list (libpq's `postgres://h1:p1,h2:p2/db` form): it uses the
// server that accepts writes and finds the new one after a failover. Real servers throughout:
// the suite's, a port where nothing listens, and a primary with a streaming standby.
import { InvalidInputError, openPostgresStore, type KyselyStore } from '@tokenwarden/core';
import { newCredential, refreshed } from '@tokenwarden/testkit/conformance';
import {
  createTestDatabase,
  startReplicatedPostgres,
  type ReplicatedPostgres,
} from '@tokenwarden/testkit/postgres';
import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseHostList } from '../src/store/postgres/host-selection.ts';

describe('parseHostList', () => {
  it("splits libpq's host list into one connection string per host, keeping everything else", () => {
    const list = parseHostList(
      'postgres://app:s3cret@db-a:5432,[::1]:6432,db-c/tokens?sslmode=require&target_session_attrs=read-write&application_name=x',
    );
    expect(list.target).toBe('read-write');
    expect(list.hosts.map((h) => h.label)).toEqual(['db-a:5432', '[::1]:6432', 'db-c']);
    expect(list.hosts.map((h) => h.connectionString)).toEqual([
      'postgres://app:s3cret@db-a:5432/tokens?sslmode=require&application_name=x',
      'postgres://app:s3cret@[::1]:6432/tokens?sslmode=require&application_name=x',
      'postgres://app:s3cret@db-c/tokens?sslmode=require&application_name=x',
    ]);
  });

  it('defaults to read-write for several hosts and to any (as before) for one', () => {
    expect(parseHostList('postgresql://h1,h2/db').target).toBe('read-write');
    expect(parseHostList('postgres://u@h1:5432/db')).toEqual({
      hosts: [{ label: 'h1:5432', connectionString: 'postgres://u@h1:5432/db' }],
      target: 'any',
    });
    expect(parseHostList('postgres://h1/db?target_session_attrs=primary').target).toBe('primary');
    expect(parseHostList('postgres://h1,h2/db?target_session_attrs=any').target).toBe('any');
  });

  it.each([
    ['postgres://u:pw@h1,,h2/db', 'host list entry ""'],
    ['postgres://u:pw@h1:99999,h2/db', 'host list entry "h1:99999"'],
    ['postgres://u:pw@h1:x/db', 'host list entry "h1:x"'],
    ['postgres://u:pw@h1,h2/db?target_session_attrs=read-only', 'target_session_attrs=read-only'],
    ['postgres://u:pw@h1/db?target_session_attrs=standby', 'target_session_attrs=standby'],
  ])('refuses %s with a typed error that does not show the password', (url, said) => {
    let thrown: unknown;
    try {
      openPostgresStore({ connectionString: url });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidInputError);
    expect(thrown).toMatchObject({ code: 'invalid_input' });
    expect((thrown as Error).message).toContain(said);
    expect((thrown as Error).message).not.toContain('pw');
  });
});

describe('Postgres store on a host list', () => {
  const stores: KyselyStore[] = [];
  const open = (connectionString: string, options: { pollIntervalMs?: number } = {}) => {
    const store = openPostgresStore({ connectionString, connectTimeoutMs: 5_000, ...options });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((s) => s.close()));
  });

  it('skips a host that refuses connections', async () => {
    const database = await createTestDatabase();
    try {
      const url = new URL(database.url);
      const refused = await closedPort();
      const listed = database.url.replace(url.host, `127.0.0.1:${refused},${url.host}`);
      const store = open(listed);
      await store.migrate();
      await store.insertCredential(newCredential('c1'));
      expect((await store.getCredential('c1'))?.record.version).toBe(1);
    } finally {
      await Promise.allSettled(stores.splice(0).map((s) => s.close()));
      await database.drop();
    }
  });

  it('says which hosts it tried when none can be reached, without the password', async () => {
    const a = await closedPort();
    const b = await closedPort();
    const store = open(`postgres://app:pw-not-shown@127.0.0.1:${a},127.0.0.1:${b}/db`);
    const error = (await store.now().then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toContain(`127.0.0.1:${a}: `);
    expect(error.message).toContain(`127.0.0.1:${b}: `);
    expect(error.message).not.toContain('pw-not-shown');
  });

  describe('with a primary and a streaming standby', () => {
    let pair: ReplicatedPostgres;
    beforeAll(async () => {
      pair = await startReplicatedPostgres({ synchronous: true });
    });
    afterAll(async () => {
      await pair?.close();
    });
    const standbyFirst = () =>
      pair.url.replace(
        /@([^/]+),([^/]+)\//,
        (_, primary: string, standby: string) => `@${standby},${primary}/`,
      );

    it('writes to the primary though the standby is listed first', async () => {
      const store = open(standbyFirst());
      await store.migrate();
      await store.insertCredential(newCredential('c1'));
      expect((await store.getCredential('c1'))?.record.version).toBe(1);
    });

    it('with target_session_attrs=any, uses the first host as libpq would, and cannot write', async () => {
      // The migration's commit waited for the standby to flush it, not to replay it.
      await until(() => tableOn(pair.standby.url, 'credentials'));
      const store = open(`${standbyFirst()}?target_session_attrs=any`);
      await expect(store.insertCredential(newCredential('c2'))).rejects.toMatchObject({
        code: '25006', // read_only_sql_transaction: the standby refused the write
      });
    });

    // Last in this block: it kills the primary.
    it('after the primary dies and the standby is promoted, reads, writes and notifies there', async () => {
      const store = open(pair.url);
      const waiter = open(pair.url, { pollIntervalMs: 600_000 }); // wakes only by notification
      await store.getCredential('c1'); // a pooled connection to the primary, soon dead
      await waiter.migrate(); // starts its listener, on the primary

      await pair.failover();
      // What was there survives (synchronous replication), reached through the new primary. The
      // first statement may fail on a connection to the dead primary; the next one reconnects.
      const tries: unknown[] = [];
      for (let i = 0; i < 3 && tries.length === i; i++) {
        await store.getCredential('c1').catch((error: unknown) => tries.push(error));
      }
      expect(tries.length).toBeLessThanOrEqual(1);
      expect((await store.getCredential('c1'))?.record.version).toBe(1);

      // The listener follows too: a waiter that only notifications can wake is woken.
      const lease = await store.acquireLease('c1', {
        expectedVersion: 1,
        leaseId: 'L',
        leaseMs: 10_000,
      });
      expect(lease).toBeDefined();
      // A waiter brings the waiter store's listener back: connected to the new primary, listening.
      const seen = { version: 1, leaseId: 'L' };
      const first = waiter.waitForChange('c1', seen, 1_000);
      await until(() => listenerOn(pair.standby.url));
      await first;
      // A commit there reaches the waiter: by the notification's state, or by a hint to read again
      // (a listener coming back wakes every waiter once).
      const woken = waiter.waitForChange('c1', seen, 30_000);
      await store.commitRefresh('c1', 'L', refreshed());
      const state = (await woken) ?? (await waiter.getCredential('c1'));
      expect(state?.record.version).toBe(2);
    });
  });
});

/** Whether a store's listener is connected to this server and listening. */
async function listenerOn(url: string): Promise<boolean> {
  const listening = await rowsOn(
    url,
    `select 1 from pg_stat_activity where application_name = 'tokenwarden-listener'
      and state = 'idle' and query ilike 'listen %'`,
  );
  return listening === 1;
}

/** Whether the server at `url` has `table` (a standby: has replayed its creation). */
async function tableOn(url: string, table: string): Promise<boolean> {
  return (await rowsOn(url, 'select 1 where to_regclass($1) is not null', [table])) === 1;
}

/** How many rows `sql` returns on the server at `url`, on a connection of its own. */
async function rowsOn(url: string, sql: string, params: unknown[] = []): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rowCount ?? 0;
  } finally {
    await client.end();
  }
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 20_000; !(await check());) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A port nothing listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
