import { openPostgresStore, type KyselyStore } from '@tokenwarden/core';
import { startPostgres, type PostgresServer } from '@tokenwarden/testkit/postgres';
import pg from 'pg';
import { newCredential, refreshed } from '@tokenwarden/testkit/conformance';
import { afterEach, describe, expect, it } from 'vitest';

// A server of its own, since this test stops it.
describe('Postgres store across a server restart', () => {
  let server: PostgresServer | undefined;
  const stores: KyselyStore[] = [];
  afterEach(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    await server?.close();
  });

  it('throws while the server is down, and recovers, notifications included', async () => {
    server = await startPostgres();
    // Polling once a minute: after the restart, only a notification wakes the waiter in time.
    const store = openPostgresStore({ connectionString: server.url, pollIntervalMs: 60_000 });
    const other = openPostgresStore({ connectionString: server.url });
    stores.push(store, other);
    await store.migrate();
    await other.insertCredential(newCredential('c1'));
    const lease = { expectedVersion: 1, leaseId: 'L', leaseMs: 60_000 };
    expect(await other.acquireLease('c1', lease)).toBeDefined();
    const during = settled(store.waitForChange('c1', { version: 1, leaseId: 'L' }, 2_000), 5_000);

    await server.stop();
    const stopped = Date.now();
    await expect(store.now()).rejects.toThrow();
    await expect(other.getCredential('c1')).rejects.toThrow();
    // A waiter whose listener died is not stuck: it ends by its timeout at the latest.
    expect(await during).toBe(true);
    expect(Date.now() - stopped).toBeLessThan(5_000);

    await server.start();
    expect((await store.getCredential('c1'))?.record.leaseId).toBe('L');
    const waiting = store.waitForChange('c1', { version: 1, leaseId: 'L' }, 30_000);
    await listening(server.url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await other.commitRefresh('c1', 'L', refreshed({ refreshInMs: null }));
    await waiting;
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

async function settled(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return result;
}

/** Waits until the store's listener connection has run LISTEN. */
async function listening(url: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      const { rowCount } = await admin.query(
        `select 1 from pg_stat_activity where application_name = 'tokenwarden-listener'
          and state = 'idle' and query ilike 'listen %'`,
      );
      if (rowCount === 1) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('the listener did not come back');
  } finally {
    await admin.end();
  }
}
