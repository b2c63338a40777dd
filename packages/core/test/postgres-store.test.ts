import { CredentialBroker, KeyRing, openPostgresStore, type KyselyStore } from '@tokenwarden/core';
import { providerConfigFor, TestProvider } from '@tokenwarden/testkit';
import {
  describeKeyStoreConformance,
  describeServiceStoreConformance,
  describeStoreConformance,
  newCredential,
  refreshed,
} from '@tokenwarden/testkit/conformance';
import { createTestDatabase, type TestDatabase } from '@tokenwarden/testkit/postgres';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePayload } from '../src/store/postgres/change-listener.ts';
import { clientConfig } from '../src/store/postgres/connection.ts';
import { openObservedPostgresStore } from '../src/store/postgres/postgres-store.ts';

/** A fresh database per test; every handle opened on it is closed at cleanup. */
async function postgresUnderTest() {
  const database = await createTestDatabase();
  const opened = [openPostgresStore({ connectionString: database.url })];
  return {
    store: opened[0]!,
    async openAnother() {
      const store = openPostgresStore({ connectionString: database.url });
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.allSettled(opened.map((s) => s.close()));
      await database.drop();
    },
  };
}

describeStoreConformance('postgres', postgresUnderTest);
describeServiceStoreConformance('postgres', postgresUnderTest);
describeKeyStoreConformance('postgres', postgresUnderTest);

describe('Postgres store', () => {
  let database: TestDatabase;
  /** A connection as the owner of the test database, for what no store API does. */
  let admin: pg.Client;
  let stores: KyselyStore[];
  const open = (options: Partial<Parameters<typeof openPostgresStore>[0]> = {}) => {
    const store = openPostgresStore({ connectionString: database.url, ...options });
    stores.push(store);
    return store;
  };

  beforeEach(async () => {
    database = await createTestDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    stores = [];
  });
  afterEach(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    await admin.end();
    await database.drop();
  });

  const listenerPid = async () =>
    (
      await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity
          where datname = current_database() and application_name = 'tokenwarden-listener'`,
      )
    ).rows.map((r) => r.pid);

  const listening = async () =>
    (
      await admin.query(
        `select 1 from pg_stat_activity where datname = current_database()
          and application_name = 'tokenwarden-listener' and state = 'idle' and query ilike 'listen %'`,
      )
    ).rowCount === 1;

  it('wakes a waiter on another handle by notification', async () => {
    // Polling once a minute: only a notification can wake the waiter within the test.
    const [leader, waiter] = [open(), open({ pollIntervalMs: 60_000 })];
    await waiter.migrate(); // the handle that migrates listens: only the waiter, here
    await leader.insertCredential(newCredential('c1'));
    await leader.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
    const started = Date.now();
    const waiting = waiter.waitForChange('c1', { version: 1, leaseId: 'L' }, 30_000);
    // Change it only once the waiter listens and has looked (else it might see it by looking).
    await eventually(listening, (yes) => yes);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await leader.commitRefresh('c1', 'L', refreshed());
    await waiting;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await listenerPid()).toHaveLength(1);

    // A deleted credential wakes its waiters too.
    const gone = waiter.waitForChange('c1', { version: 2, leaseId: null }, 30_000);
    setTimeout(() => void leader.deleteCredential('c1'), 100);
    await gone;
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  describe('a notification that names the new state', () => {
    /** A waiter polling once a minute, counting its reads of credentials. */
    const observedWaiter = async () => {
      let reads = 0;
      const waiter = openObservedPostgresStore(
        { connectionString: database.url, pollIntervalMs: 60_000 },
        (statement) => {
          if (/^select\b/i.test(statement) && statement.includes('"credentials"')) reads++;
        },
      );
      stores.push(waiter);
      await waiter.migrate(); // the handle that migrates listens: only the waiter, here
      await eventually(listening, (yes) => yes);
      const readsReach = (n: number) =>
        eventually(
          async () => reads,
          (r) => r >= n,
        );
      return { waiter, reads: () => reads, readsReach };
    };
    /** c1 leased by another handle, and read by the waiter (one read) while it listens. */
    const leasedAndSeen = async () => {
      const leader = open();
      const { waiter, reads } = await observedWaiter();
      await leader.insertCredential(newCredential('c1'));
      await leader.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
      const seen = (await waiter.getCredential('c1'))!.record;
      return { leader, waiter, reads, seen };
    };
    /** Settles `promise` into a flag that says whether it has. */
    const track = (promise: Promise<unknown>) => {
      const state = { done: false };
      void promise.then(() => (state.done = true));
      return state;
    };

    it('wakes the waiter without a read of its own', async () => {
      const leader = open();
      const { waiter, reads, readsReach } = await observedWaiter();
      await leader.insertCredential(newCredential('c1'));
      await leader.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
      const waiting = waiter.waitForChange('c1', { version: 1, leaseId: 'L' }, 30_000);
      // The one look between the caller's read and the watch.
      await readsReach(1);
      await leader.commitRefresh('c1', 'L', refreshed());
      await waiting;
      expect(reads()).toBe(1);

      // A lease released without a new version is news too.
      await leader.acquireLease('c1', { expectedVersion: 2, leaseId: 'M', leaseMs: 10_000 });
      const released = waiter.waitForChange('c1', { version: 2, leaseId: 'M' }, 30_000);
      await readsReach(2);
      await leader.commitFailure('c1', 'M', { lastError: 'x', retryAfterMs: 0, keepIntent: false });
      await released;
      expect(reads()).toBe(2);
    });

    it('needs no look of its own for a record read while listening', async () => {
      const { leader, waiter, reads, seen } = await leasedAndSeen();
      expect(reads()).toBe(1);
      const waiting = track(waiter.waitForChange('c1', seen, 30_000));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(waiting.done).toBe(false);
      await leader.commitRefresh('c1', 'L', refreshed());
      await eventually(
        async () => waiting.done,
        (done) => done,
      );
      expect(reads()).toBe(1);
    });

    it('needs no look of its own for a copy of a record read while listening', async () => {
      // The read mark is a field of the record: a copy, as a caller or a cache makes, keeps it.
      const { leader, waiter, reads, seen } = await leasedAndSeen();
      const waiting = track(waiter.waitForChange('c1', { ...seen }, 30_000));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(waiting.done).toBe(false);
      expect(reads()).toBe(1);
      await leader.commitRefresh('c1', 'L', refreshed());
      await eventually(
        async () => waiting.done,
        (done) => done,
      );
      expect(reads()).toBe(1);
    });

    it('learns of a change between its read and its wait from what the listener heard', async () => {
      const { leader, waiter, reads, seen } = await leasedAndSeen();
      await leader.commitRefresh('c1', 'L', refreshed());
      // Heard before the wait begins: no watch was there to take it, the listener kept it.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await waiter.waitForChange('c1', seen, 30_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(reads()).toBe(1);
    });

    it('looks again when the listener reconnected since the read', async () => {
      const { leader, waiter, reads, seen } = await leasedAndSeen();
      await leader.insertCredential(newCredential('c2'));
      const [pid] = await listenerPid();
      await admin.query('select pg_terminate_backend($1)', [pid]);
      // Committed while nobody listened: only a look can find it.
      await leader.commitRefresh('c1', 'L', refreshed());
      await eventually(listenerPid, (pids) => pids.length === 0);
      // Another waiter brings the listener back before this one waits: no wake-up is left for it.
      await waiter.waitForChange('c2', { version: 1, leaseId: null }, 300);
      expect(await eventually(listening, (yes) => yes)).toBe(true);
      const before = reads();
      const started = Date.now();
      await waiter.waitForChange('c1', seen, 30_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(reads()).toBe(before + 1);
    });

    it('looks again when more has been heard since the read than the listener keeps', async () => {
      const { leader, waiter, reads, seen } = await leasedAndSeen();
      await leader.commitRefresh('c1', 'L', refreshed());
      // 300 notifications about another credential push the one about c1 out.
      await admin.query(
        `select pg_notify('tokenwarden_credentials', 'c2 ' || g || ' ') from generate_series(1, 300) g`,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await waiter.waitForChange('c1', seen, 30_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(reads()).toBe(2);
    });

    it('still wakes waiters on a bare-id payload (a database not migrated yet), by a read', async () => {
      const leader = open();
      const { waiter, reads, readsReach } = await observedWaiter();
      await leader.insertCredential(newCredential('c1'));
      await leader.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
      // The trigger function as before 0004_notify_payload. (The lease above was notified in the
      // new format: however late that notification comes, it costs no read.)
      await admin.query(`
        create or replace function tokenwarden_notify_credential_change() returns trigger
        language plpgsql as $$
        begin
          if tg_op = 'DELETE' then perform pg_notify('tokenwarden_credentials', old.id);
          else perform pg_notify('tokenwarden_credentials', new.id);
          end if;
          return null;
        end
        $$`);
      const waiting = waiter.waitForChange('c1', { version: 1, leaseId: 'L' }, 30_000);
      await readsReach(1);
      await leader.commitRefresh('c1', 'L', refreshed());
      await waiting;
      expect(reads()).toBe(2); // the look, then the read the bare id asks for
    });

    it('keeps waiting on a notification of the state the waiter saw, and not after a newer one', async () => {
      const leader = open();
      const { waiter, reads, readsReach } = await observedWaiter();
      await leader.insertCredential(newCredential('c1'));
      await leader.insertCredential(newCredential('c2'));
      await leader.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
      const waiting = track(waiter.waitForChange('c1', { version: 1, leaseId: 'L' }, 30_000));
      const other = waiter.waitForChange('c2', { version: 1, leaseId: null }, 30_000);
      await readsReach(2);
      // Notifications arrive in order: once c2's waiter is woken, c1's has heard its own.
      await admin.query(`select pg_notify('tokenwarden_credentials', 'c1 1 L')`);
      await admin.query(`select pg_notify('tokenwarden_credentials', 'c2 2 ')`);
      await other;
      expect(waiting.done).toBe(false);
      expect(reads()).toBe(2);

      // The same state then a newer one, heard together: the newer one ends the wait.
      await admin.query(`begin`);
      await admin.query(`select pg_notify('tokenwarden_credentials', 'c1 1 L')`);
      await admin.query(`select pg_notify('tokenwarden_credentials', 'c1 2 ')`);
      await admin.query(`commit`);
      await eventually(
        async () => waiting.done,
        (done) => done,
      );
      expect(waiting.done).toBe(true);
      expect(reads()).toBe(2);
    });

    it('reads the id, version and lease id off a payload, and nothing off anything else', () => {
      expect(parsePayload('c1 7 3f2b-L')).toEqual({
        id: 'c1',
        heard: { version: 7, leaseId: '3f2b-L' },
      });
      expect(parsePayload('c1 7 ')).toEqual({ id: 'c1', heard: { version: 7, leaseId: null } });
      expect(parsePayload('c1')).toEqual({ id: 'c1', heard: undefined });
      for (const odd of ['c1 ', 'c1 x L', 'c1 7', 'c1 7 a b', 'c1 -1 L'])
        expect(parsePayload(odd)).toEqual({ id: 'c1', heard: undefined });
    });

    it('reads the state off a payload that carries one, and leaves out one that does not read', () => {
      const state = notifiedState({ scope: 'a b', next_attempt_at: 7, last_error: 'x' });
      expect(parsePayload(`c1 7  ${JSON.stringify(state)}`)).toEqual({
        id: 'c1',
        heard: {
          version: 7,
          leaseId: null,
          state: {
            now: 5,
            record: {
              id: 'c1',
              version: 7,
              leaseId: null,
              provider: 'p',
              status: 'active',
              statusReason: null,
              accessToken: 'sealed',
              accessExpiresAt: 9,
              tokenType: 'Bearer',
              scope: 'a b',
              leaseUntil: null,
              nextAttemptAt: 7,
              lastError: 'x',
              commitTrace: null,
            },
          },
        },
      });
      // Anyone who can connect can notify: a state is taken only if every field is what it must be.
      for (const odd of [
        { ...state, now: '5' },
        { ...state, status: 'gone' },
        { ...state, access_token: null },
        { ...state, access_expires_at: 1.5 },
        { ...state, scope: 3 },
        { ...state, lease_until: 'soon' },
        { ...state, provider: undefined },
        { ...state, commit_trace: 5 },
      ]) {
        expect(parsePayload(`c1 7 L ${JSON.stringify(odd)}`)).toEqual({
          id: 'c1',
          heard: { version: 7, leaseId: 'L' },
        });
      }
      expect(parsePayload('c1 7 L {not json}')).toEqual({
        id: 'c1',
        heard: { version: 7, leaseId: 'L' },
      });
    });

    it('carries the state a new version committed to the waiter, which then needs no read', async () => {
      const { leader, waiter, reads, seen } = await leasedAndSeen();
      const waiting = waiter.waitForChange('c1', seen, 30_000);
      const committed = (await leader.commitRefresh('c1', 'L', refreshed({ scope: 'a b' })))!;
      const heard = await waiting;
      const r = committed.record;
      // Exactly these fields: never the refresh token, the owner or the metadata; and where the
      // listener stood once it had heard them, as a read's mark.
      expect(heard).toEqual({
        now: committed.now,
        record: {
          id: r.id,
          provider: r.provider,
          status: 'active',
          statusReason: null,
          version: 2,
          accessToken: 'sealed-at-2',
          accessExpiresAt: r.accessExpiresAt,
          tokenType: r.tokenType,
          scope: 'a b',
          leaseId: null,
          leaseUntil: null,
          nextAttemptAt: null,
          lastError: null,
          commitTrace: null,
          readMark: { session: expect.any(Number), heard: expect.any(Number) },
        },
      });
      expect(reads()).toBe(1);

      // A state heard is as good as a read: waiting on it needs no look either.
      const next = waiter.waitForChange('c1', heard!.record, 30_000);
      await leader.acquireLease('c1', { expectedVersion: 2, leaseId: 'M', leaseMs: 10_000 });
      await leader.commitNeedsReauth('c1', 'M', { reason: 'invalid_grant', lastError: 'e' });
      expect((await next)?.record).toMatchObject({
        version: 3,
        status: 'needs_reauth',
        statusReason: 'invalid_grant',
      });
      expect(reads()).toBe(1);
    });

    it('hands the caller no state for a lease released, nor for a version it has seen', async () => {
      const { leader, waiter, reads, seen } = await leasedAndSeen();
      const released = waiter.waitForChange('c1', seen, 30_000);
      await leader.commitFailure('c1', 'L', { lastError: 'x', retryAfterMs: 0, keepIntent: false });
      expect(await released).toBeUndefined();
      expect(reads()).toBe(1);

      // A state of the version the waiter read (or an older one), heard after its read: a
      // notification that came late, or a forged one. Only a read can tell what is current.
      const read = (await waiter.getCredential('c1'))!.record;
      for (const version of [1, 0]) {
        await admin.query(`select pg_notify('tokenwarden_credentials', $1)`, [
          `c1 ${version} X ${JSON.stringify(notifiedState({ lease_until: 3 }))}`,
        ]);
        expect(await waiter.waitForChange('c1', read, 30_000)).toBeUndefined();
      }
      expect(reads()).toBe(2);
    });

    it('leaves out a state too big for a notification: the commit lands, the waiter reads', async () => {
      const { leader, waiter, seen } = await leasedAndSeen();
      const waiting = waiter.waitForChange('c1', seen, 30_000);
      const big = 'x'.repeat(8_000);
      await leader.commitRefresh('c1', 'L', refreshed({ accessToken: big }));
      expect(await waiting).toBeUndefined();
      expect((await waiter.getCredential('c1'))!.record).toMatchObject({
        version: 2,
        accessToken: big,
      });
    });

    it('hands a broker waiting behind another the token from the notification', async () => {
      const provider = await TestProvider.start({ latencyMs: 300 });
      try {
        const keyRing = KeyRing.generate('k1');
        const config = providerConfigFor(provider);
        const leading = new CredentialBroker({ store: open(), keyRing, providers: [config] });
        const { waiter, reads } = await observedWaiter();
        const waiting = new CredentialBroker({ store: waiter, keyRing, providers: [config] });
        const grant = provider.issueGrant();
        const { id } = await leading.importCredential({
          provider: config.name,
          owner: 'user-1',
          accessToken: grant.access_token,
          refreshToken: grant.refresh_token,
          expiresIn: 0,
        });
        const led = leading.getAccessToken(id);
        // The leader has sent the refresh token: from now on the lease is there to see.
        await eventually(
          async () => provider.stats().tokenRequests,
          (n) => n === 1,
        );
        const before = reads();
        const waited = await waiting.getAccessToken(id);
        expect(waited).toEqual(await led);
        expect(reads()).toBe(before + 1); // its first look, none after the wake-up
        expect(provider.stats().redemptions).toBe(1);
      } finally {
        await provider.close();
      }
    });
  });

  it('notifies a lease released or taken over, and not one taken where there was none', async () => {
    const store = open();
    await store.migrate();
    await store.insertCredential(newCredential('c1', { metadata: '{"who":"o-meta"}' }));
    const heard: string[] = [];
    admin.on('notification', (message) => heard.push(message.payload ?? ''));
    await admin.query('listen tokenwarden_credentials');
    const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

    await store.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
    await settle();
    expect(heard).toEqual([]);
    await store.commitFailure('c1', 'L', { lastError: 'x', retryAfterMs: 0, keepIntent: false });
    await store.acquireLease('c1', { expectedVersion: 1, leaseId: 'M', leaseMs: 1 });
    await settle();
    await store.acquireLease('c1', { expectedVersion: 1, leaseId: 'N', leaseMs: 10_000 });
    await store.commitRefresh('c1', 'N', refreshed());
    await eventually(
      async () => heard.length,
      (n) => n >= 3,
    );
    expect(heard.slice(0, 2)).toEqual(['c1 1 ', 'c1 1 N']);
    expect(heard[2]).toMatch(/^c1 2 {2}\{/);
    // The new version's state, and nothing of the refresh token, the owner or the metadata.
    expect(heard[2]).toContain('sealed-at-2');
    for (const secret of ['sealed-rt', '"o"', 'o-meta']) expect(heard[2]).not.toContain(secret);
  });

  it('polls when a notification is lost', async () => {
    const store = open({ pollIntervalMs: 200 });
    await store.migrate();
    await store.insertCredential(newCredential('c1'));
    const waiting = store.waitForChange('c1', { version: 1, leaseId: null }, 30_000);
    await eventually(listenerPid, (pids) => pids.length === 1);
    // Without its trigger, this change notifies nobody.
    await admin.query(`alter table credentials disable trigger user`);
    await admin.query(`update credentials set version = 2 where id = 'c1'`);
    const started = Date.now();
    await waiting;
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('keeps waking waiters when the listener connection is killed, and reconnects it', async () => {
    const [leader, waiter] = [open(), open({ pollIntervalMs: 100 })];
    await waiter.migrate(); // the handle that migrates listens: only the waiter, here
    await leader.insertCredential(newCredential('c1'));
    await leader.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
    const waiting = waiter.waitForChange('c1', { version: 1, leaseId: 'L' }, 30_000);
    const [first] = await eventually(listenerPid, (pids) => pids.length === 1);
    await admin.query('select pg_terminate_backend($1)', [first]);
    await leader.commitRefresh('c1', 'L', refreshed());
    const started = Date.now();
    await waiting;
    expect(Date.now() - started).toBeLessThan(5_000);

    // While someone waits, the listener comes back.
    const next = waiter.waitForChange('c1', { version: 2, leaseId: null }, 30_000);
    const [second] = await eventually(listenerPid, (pids) => pids.length === 1);
    expect(second).not.toBe(first);
    await leader.deleteCredential('c1');
    await next;
  });

  it('sets the statement timeout and schema on every connection', async () => {
    const settings = {
      connectionString: database.url,
      schema: 'tenant_a',
      statementTimeoutMs: 1234,
      connectTimeoutMs: 5_000,
    };
    const client = new pg.Client(clientConfig(settings, 'probe'));
    await client.connect();
    const shown = await client.query(`select current_setting('statement_timeout') as timeout,
      current_setting('search_path') as path, current_setting('application_name') as app`);
    await client.end();
    expect(shown.rows[0]).toEqual({ timeout: '1234ms', path: 'tenant_a', app: 'probe' });

    // And the store's own connections obey it: a statement stuck behind a lock is cancelled.
    const store = open({ statementTimeoutMs: 300 });
    await store.migrate();
    await store.insertCredential(newCredential('c1'));
    await admin.query('begin');
    await admin.query(`select * from credentials where id = 'c1' for update`);
    const started = Date.now();
    await expect(
      store.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 }),
    ).rejects.toMatchObject({ code: '57014' }); // query_canceled
    expect(Date.now() - started).toBeLessThan(3_000);
    await admin.query('rollback');
  });

  it('opens no more connections than poolMax', async () => {
    const store = open({ poolMax: 3 });
    await store.migrate();
    await store.insertCredential(newCredential('c1'));
    // Hold the row, so that every lease attempt keeps its connection while it waits. (Another
    // connection: statistics views do not change within the holder's transaction.)
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query(`select * from credentials where id = 'c1' for update`);
    const attempts = Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        store.acquireLease('c1', { expectedVersion: 1, leaseId: `L${i}`, leaseMs: 10_000 }),
      ),
    );
    const connections = async () =>
      Number(
        (
          await admin.query(
            `select count(*) from pg_stat_activity
              where datname = current_database() and application_name = 'tokenwarden'`,
          )
        ).rows[0].count,
      );
    try {
      expect(await eventually(connections, (n) => n >= 3)).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await connections()).toBe(3);
    } finally {
      await holder.query('commit');
      await holder.end();
    }
    const won = (await attempts).filter((r) => r.status === 'fulfilled' && r.value !== undefined);
    expect(won).toHaveLength(1);
  });

  it("uses the database's clock", async () => {
    const store = open();
    const clock = async () =>
      Number(
        (await admin.query(`select extract(epoch from clock_timestamp()) * 1000 as ms`)).rows[0].ms,
      );
    const before = await clock();
    const now = await store.now();
    const after = await clock();
    expect(typeof now).toBe('number');
    expect(now).toBeGreaterThanOrEqual(Math.floor(before));
    expect(now).toBeLessThanOrEqual(Math.ceil(after));
  });

  it('migrates from four handles at once', async () => {
    const handles = [open(), open(), open(), open()];
    await Promise.all(handles.map((s) => s.migrate()));
    const applied = await admin.query(`select name from tokenwarden_migrations order by name`);
    expect(applied.rows.map((r) => r.name)).toEqual([
      '0001_credentials',
      '0002_postgres_notify_changes',
      '0002_service',
      '0003_connect_sessions',
      '0004_notify_payload',
      '0005_notify_state',
      '0006_client_certificates',
      '0007_data_keys',
      '0008_webhooks',
      '0009_console_indexes',
      '0010_commit_trace',
      '0010_notify_commit_trace',
    ]);
    await handles[0]!.insertCredential(newCredential('c1'));
    expect((await handles[3]!.getCredential('c1'))?.record.version).toBe(1);
  });

  it('keeps stores in different schemas apart', async () => {
    const [a, b] = [open({ schema: 'tenant_a' }), open({ schema: 'tenant_b' })];
    await Promise.all([a.migrate(), b.migrate()]);
    await a.insertCredential(newCredential('c1'));
    expect(await b.getCredential('c1')).toBeUndefined();
    expect((await a.getCredential('c1'))?.record.id).toBe('c1');
    const tables = await admin.query(
      `select table_schema from information_schema.tables where table_name = 'credentials'
        order by table_schema`,
    );
    expect(tables.rows.map((r) => r.table_schema)).toEqual(['tenant_a', 'tenant_b']);
    expect(() => open({ schema: 'Robert"; drop table students' })).toThrow(TypeError);
  });

  it('throws, promptly, when the server cannot be reached', async () => {
    const url = new URL(database.url);
    url.port = '1'; // nothing listens there
    const store = open({ connectionString: url.toString(), connectTimeoutMs: 2_000 });
    const started = Date.now();
    await expect(store.migrate()).rejects.toThrow();
    await expect(store.now()).rejects.toThrow();
    await expect(
      store.waitForChange('c1', { version: 1, leaseId: null }, 10_000),
    ).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    await store.close();
  });
});

/** Re-evaluates `read` until `done` says so (at most 10 s), returning the last value. */
/** The JSON `0005_notify_state`'s trigger appends to a notification, with `overrides`. */
function notifiedState(overrides: Record<string, unknown> = {}) {
  return {
    now: 5,
    provider: 'p',
    status: 'active',
    status_reason: null,
    access_token: 'sealed',
    access_expires_at: 9,
    token_type: 'Bearer',
    scope: null,
    lease_until: null,
    next_attempt_at: null,
    last_error: null,
    ...overrides,
  };
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (const deadline = Date.now() + 10_000; ;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
