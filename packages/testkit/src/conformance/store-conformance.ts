import type { Store } from '@tokenwarden/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { columnsOf, newCredential, refreshed } from './records.ts';

type Failure = Parameters<Store['commitFailure']>[2];

export { newCredential, refreshed } from './records.ts';
export {
  describeKeyStoreConformance,
  type KeyStoreUnderTest,
  type StoreWithKeys,
} from './key-store-conformance.ts';
export { describeKeySourceConformance, type KeySourceUnderTest } from './key-source-conformance.ts';
export {
  describeServiceStoreConformance,
  type ServiceStoreUnderTest,
  type StoreWithService,
} from './service-store-conformance.ts';

export interface StoreUnderTest {
  store: Store;
  /** A second, independent handle on the same database (another process's view). */
  openAnother(): Promise<Store>;
  cleanup(): Promise<void>;
}

/**
 * The behaviour every `Store` adapter must have. Each adapter's test file calls this once:
 * `describeStoreConformance('sqlite', async () => ({ store, openAnother, cleanup }))`.
 */
export function describeStoreConformance(name: string, setup: () => Promise<StoreUnderTest>): void {
  describe(`Store conformance: ${name}`, () => {
    let t: StoreUnderTest;
    let store: Store;
    beforeEach(async () => {
      t = await setup();
      store = t.store;
      await store.migrate();
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('migrates idempotently, also from a second handle', async () => {
      const other = await t.openAnother();
      await Promise.all([store.migrate(), other.migrate()]);
      await other.close();
    });

    it('stores a credential and reads it back with the database clock', async () => {
      const before = Date.now();
      const { record, now } = await store.insertCredential(
        newCredential('c1', { accessTtlMs: 60_000 }),
      );
      expect(record).toMatchObject({ id: 'c1', status: 'active', version: 1, failures: 0 });
      expect(record.accessExpiresAt - now).toBe(60_000);
      expect(Math.abs(now - before)).toBeLessThan(5_000);
      expect(columnsOf((await store.getCredential('c1'))!.record)).toEqual(record);
      expect(await store.getCredential('nope')).toBeUndefined();
    });

    it('refuses a second credential with the same id', async () => {
      await store.insertCredential(newCredential('c1'));
      await expect(store.insertCredential(newCredential('c1'))).rejects.toThrow();
    });

    it('gives the lease to exactly one of many concurrent acquirers, across handles', async () => {
      await store.insertCredential(newCredential('c1'));
      const other = await t.openAnother();
      const attempts = Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? other : store).acquireLease('c1', {
          expectedVersion: 1,
          leaseId: `lease-${i}`,
          leaseMs: 10_000,
        }),
      );
      const won = (await Promise.all(attempts)).filter((r) => r !== undefined);
      expect(won).toHaveLength(1);
      const { record, now } = (await store.getCredential('c1'))!;
      expect(record.leaseId).toBe(won[0]!.record.leaseId);
      expect(record.leaseUntil! - now).toBeGreaterThan(9_000);
      await other.close();
    });

    it('refuses a lease for a stale version, a held lease or an inactive credential', async () => {
      await store.insertCredential(newCredential('c1'));
      expect(await store.acquireLease('c1', lease('a', 2))).toBeUndefined();
      expect(await store.acquireLease('c1', lease('a', 1))).toBeDefined();
      expect(await store.acquireLease('c1', lease('b', 1))).toBeUndefined();
      await store.commitNeedsReauth('c1', 'a', {
        reason: 'invalid_grant',
        lastError: 'invalid_grant',
      });
      expect(await store.acquireLease('c1', lease('c', 2))).toBeUndefined();
      expect(await store.acquireLease('missing', lease('d', 1))).toBeUndefined();
    });

    it('lets a new leader take over an expired lease, and fences the old one out', async () => {
      await store.insertCredential(newCredential('c1'));
      await store.acquireLease('c1', { expectedVersion: 1, leaseId: 'old', leaseMs: 1 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await store.recordIntent('c1', 'old', 'h')).toBe(false);
      expect(await store.acquireLease('c1', lease('new', 1))).toBeDefined();
      expect(await store.commitRefresh('c1', 'old', refreshed())).toBeUndefined();
      expect(
        await store.commitFailure('c1', 'old', {
          lastError: 'x',
          retryAfterMs: 0,
          keepIntent: false,
        }),
      ).toBeUndefined();
      expect(
        await store.commitNeedsReauth('c1', 'old', { reason: 'invalid_grant', lastError: 'x' }),
      ).toBeUndefined();
      const { record } = (await store.getCredential('c1'))!;
      expect(record).toMatchObject({ leaseId: 'new', version: 1, status: 'active' });
    });

    it('commits a refresh only for the lease holder, bumping the version and clearing state', async () => {
      await store.insertCredential(newCredential('c1', { refreshTtlMs: 1_000_000 }));
      await store.acquireLease('c1', lease('L', 1));
      expect(await store.recordIntent('c1', 'L', 'hash-1')).toBe(true);
      let { record } = (await store.getCredential('c1'))!;
      expect(record).toMatchObject({ intentHash: 'hash-1', intentAttempts: 1 });
      expect(record.intentAt).not.toBeNull();
      const committed = await store.commitRefresh('c1', 'L', refreshed({ accessTtlMs: 5_000 }));
      record = committed!.record;
      expect(record).toMatchObject({
        version: 2,
        accessToken: 'sealed-at-2',
        refreshToken: 'sealed-rt-2',
        leaseId: null,
        leaseUntil: null,
        intentHash: null,
        intentAt: null,
        intentAttempts: 0,
        failures: 0,
        lastError: null,
      });
      expect(record.accessExpiresAt - committed!.now).toBe(5_000);
      // refreshTtlMs undefined keeps the refresh token's expiry.
      expect(record.refreshExpiresAt).not.toBeNull();
      expect(await store.commitRefresh('c1', 'L', refreshed())).toBeUndefined();
    });

    it('writes concurrent intents and commits row by row, each fenced by its own lease', async () => {
      // Made at once, as a scheduler's batch makes them: the store may group them into one
      // statement, and each must still be decided by its own row's lease.
      const ids = ['g1', 'g2', 'g3', 'g4'];
      for (const id of ids) {
        await store.insertCredential(newCredential(id, { refreshTtlMs: 1_000_000 }));
        await store.acquireLease(id, lease(`L-${id}`, 1));
      }
      expect(
        await Promise.all([
          ...ids.map((id) => store.recordIntent(id, id === 'g3' ? 'stolen' : `L-${id}`, `h-${id}`)),
          store.recordIntent('g1', 'stolen', 'h-other'), // the same row twice: fenced out
        ]),
      ).toEqual([true, true, false, true, false]);
      const committed = await Promise.all([
        store.commitRefresh('g1', 'L-g1', refreshed({ accessTtlMs: 5_000, refreshTtlMs: null })),
        store.commitRefresh('g2', 'stolen', refreshed()),
        store.commitRefresh('g3', 'L-g3', refreshed({ refreshTtlMs: 7_000, refreshInMs: null })),
        store.commitRefresh('g4', 'L-g4', refreshed({ refreshToken: null, scope: 'read' })),
        store.commitRefresh('g1', 'stolen', refreshed()),
      ]);
      expect(committed.map((c) => c?.record.id)).toEqual(['g1', undefined, 'g3', 'g4', undefined]);
      const [g1, , g3, g4] = committed;
      expect(g1!.record).toMatchObject({ version: 2, leaseId: null, intentHash: null });
      expect(g1!.record.accessExpiresAt - g1!.now).toBe(5_000);
      expect(g1!.record.refreshExpiresAt).toBeNull();
      expect(g1!.record.refreshAt! - g1!.now).toBe(30_000);
      expect(g3!.record.refreshExpiresAt! - g3!.now).toBe(7_000);
      expect(g3!.record.refreshAt).toBeNull();
      expect(g4!.record).toMatchObject({ refreshToken: null, scope: 'read', keyId: 'k1' });
      expect(g4!.record.refreshExpiresAt! - g4!.now).toBeGreaterThan(900_000); // kept
      for (const c of [g1, g3, g4]) {
        expect(columnsOf((await store.getCredential(c!.record.id))!.record)).toEqual(c!.record);
      }
      // The one fenced out is untouched: still leased, its intent recorded, version 1.
      expect((await store.getCredential('g2'))!.record).toMatchObject({
        version: 1,
        leaseId: 'L-g2',
        intentHash: 'h-g2',
        accessToken: 'sealed-at-1',
      });
    });

    it('claims at most the limit of due rows, each leased once, across handles', async () => {
      for (let i = 0; i < 6; i++) {
        await store.insertCredential(newCredential(`c${i}`, { refreshInMs: 0 }));
      }
      await store.insertCredential(newCredential('later', { refreshInMs: 3_600_000 }));
      const other = await t.openAnother();
      const claim = (on: Store, limit: number, leaseId: string) =>
        on.claimDue({ limit, leaseId, leaseMs: 10_000, excludeProviders: [] });
      const first = await claim(store, 2, 'lease-a');
      expect(first).toHaveLength(2);
      expect(first.every((s) => s.record.leaseId === 'lease-a')).toBe(true);
      const leased = async (leaseId: string) =>
        (await Promise.all([0, 1, 2, 3, 4, 5].map((i) => store.getCredential(`c${i}`)))).filter(
          (s) => s!.record.leaseId === leaseId,
        ).length;
      expect(await leased('lease-a')).toBe(2);
      const [second, third] = await Promise.all([
        claim(other, 3, 'lease-b'),
        claim(store, 3, 'lease-c'),
      ]);
      expect(second.length + third.length).toBe(4); // the four left; none twice, none not due
      expect(await leased('lease-b')).toBe(second.length);
      expect(await leased('lease-c')).toBe(third.length);
      expect(await claim(store, 10, 'lease-d')).toEqual([]);
      expect((await store.getCredential('later'))!.record.leaseId).toBeNull(); // not due
      await other.close();
    });

    it('records failures with a database-clock backoff, keeping or releasing the intent', async () => {
      /** Leases `id`, records the intent `hash` under the lease, and commits a failure. */
      const failAfterIntent = async (
        id: string,
        leaseId: string,
        hash: string,
        failure: Failure,
      ) => {
        await store.acquireLease(id, lease(leaseId, 1));
        await store.recordIntent(id, leaseId, hash);
        return store.commitFailure(id, leaseId, failure);
      };
      const notRedeemed: Failure = {
        lastError: 'server_error',
        retryAfterMs: 0,
        keepIntent: false,
      };
      await store.insertCredential(newCredential('c1'));
      let snap = await failAfterIntent('c1', 'L1', 'h', {
        lastError: 'timeout',
        retryAfterMs: 2_000,
        keepIntent: true,
      });
      expect(snap!.record).toMatchObject({
        failures: 1,
        lastError: 'timeout',
        leaseId: null,
        intentHash: 'h',
        intentAttempts: 1,
        version: 1,
      });
      expect(snap!.record.nextAttemptAt! - snap!.now).toBe(2_000);
      // A recovery send answered "not redeemed" restores the earlier doubt, not a clean slate.
      snap = await failAfterIntent('c1', 'L2', 'h', notRedeemed);
      expect(snap!.record).toMatchObject({ failures: 2, intentHash: 'h', intentAttempts: 1 });
      // A first send answered "not redeemed" clears the intent.
      await store.insertCredential(newCredential('c2'));
      snap = await failAfterIntent('c2', 'L3', 'h2', notRedeemed);
      expect(snap!.record).toMatchObject({ intentHash: null, intentAt: null, intentAttempts: 0 });
    });

    it('marks a credential as needing re-authorization', async () => {
      await store.insertCredential(newCredential('c1'));
      await store.acquireLease('c1', lease('L', 1));
      const snap = await store.commitNeedsReauth('c1', 'L', {
        reason: 'refresh_in_doubt',
        lastError: 'invalid_grant',
      });
      expect(snap!.record).toMatchObject({
        status: 'needs_reauth',
        statusReason: 'refresh_in_doubt',
        version: 2,
        leaseId: null,
        refreshAt: null,
      });
    });

    it('re-authorizes at the expected version: active again, same id, lease holder fenced out', async () => {
      await store.insertCredential(newCredential('c1'));
      await store.acquireLease('c1', lease('L', 1));
      await store.commitNeedsReauth('c1', 'L', { reason: 'invalid_grant', lastError: 'x' });
      await store.acquireLease('c1', lease('L2', 2)); // refused: not active
      const tokens = {
        keyId: 'k1',
        accessToken: 'sealed-at-new',
        refreshToken: 'sealed-rt-new',
        tokenType: 'Bearer',
        scope: 'read',
        accessTtlMs: 60_000,
        refreshTtlMs: null,
        refreshInMs: 30_000,
      };
      expect(await store.reauthorize('c1', 1, tokens)).toBeUndefined(); // stale version
      const snap = await store.reauthorize('c1', 2, tokens);
      expect(snap!.record).toMatchObject({
        id: 'c1',
        status: 'active',
        statusReason: null,
        version: 3,
        accessToken: 'sealed-at-new',
        refreshToken: 'sealed-rt-new',
        scope: 'read',
        leaseId: null,
        failures: 0,
        lastError: null,
      });
      expect(snap!.record.accessExpiresAt - snap!.now).toBe(60_000);
      expect(snap!.record.refreshAt! - snap!.now).toBe(30_000);
      // An active credential whose leader is mid-refresh: the leader's commit lands nowhere.
      await store.acquireLease('c1', lease('L3', 3));
      const again = await store.reauthorize('c1', 3, { ...tokens, accessToken: 'sealed-at-3' });
      expect(again!.record).toMatchObject({ version: 4, leaseId: null });
      expect(await store.commitRefresh('c1', 'L3', refreshed())).toBeUndefined();
      expect((await store.getCredential('c1'))!.record.accessToken).toBe('sealed-at-3');
      expect(await store.reauthorize('nope', 1, tokens)).toBeUndefined();
    });

    it('wakes a waiter when the version changes or the lease is released, else times out', async () => {
      await store.insertCredential(newCredential('c1'));
      const other = await t.openAnother();
      const leased = await store.acquireLease('c1', lease('L', 1));
      let started = Date.now();
      const waiting = other.waitForChange('c1', { version: 1, leaseId: 'L' }, 10_000);
      setTimeout(() => void store.commitRefresh('c1', 'L', refreshed()), 50);
      // A store may hand over the new state it learned of (Postgres): then it is the commit's.
      const woken = await waiting;
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(leased).toBeDefined();
      if (woken) {
        expect(woken.record).toMatchObject({
          id: 'c1',
          version: 2,
          leaseId: null,
          status: 'active',
          accessToken: 'sealed-at-2',
        });
      }

      await store.acquireLease('c1', lease('M', 2));
      started = Date.now();
      const released = other.waitForChange('c1', { version: 2, leaseId: 'M' }, 10_000);
      setTimeout(
        () =>
          void store.commitFailure('c1', 'M', {
            lastError: 'x',
            retryAfterMs: 0,
            keepIntent: false,
          }),
        50,
      );
      // The same version: no state, whatever the store heard (the caller reads).
      expect(await released).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(5_000);

      started = Date.now();
      expect(await other.waitForChange('c1', { version: 2, leaseId: null }, 100)).toBeUndefined();
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      await other.close();
    });

    it('pages through credentials not under a key and reseals them fenced by version', async () => {
      for (const id of ['a', 'b', 'c'])
        await store.insertCredential(newCredential(id, { keyId: 'old' }));
      await store.insertCredential(newCredential('d', { keyId: 'new' }));
      const page1 = await store.listNotUnderKey('new', null, 2);
      expect(page1.map((r) => r.id)).toEqual(['a', 'b']);
      const page2 = await store.listNotUnderKey('new', 'b', 2);
      expect(page2.map((r) => r.id)).toEqual(['c']);
      const secrets = { keyId: 'new', accessToken: 'resealed', refreshToken: null };
      expect(await store.resealSecrets('a', 2, secrets)).toBe(false);
      expect(await store.resealSecrets('a', 1, secrets)).toBe(true);
      expect((await store.getCredential('a'))!.record).toMatchObject({
        keyId: 'new',
        accessToken: 'resealed',
        version: 1,
      });
    });

    it('reads what any handle committed, however often the row was read just before', async () => {
      await store.insertCredential(newCredential('c1'));
      const other = await t.openAnother();
      try {
        for (let i = 0; i < 3; i++) await store.getCredential('c1');
        await other.acquireLease('c1', lease('L', 1));
        await other.commitRefresh('c1', 'L', refreshed());
        expect((await store.getCredential('c1'))?.record).toMatchObject({ version: 2 });
        await other.getCredential('c1');
        await store.acquireLease('c1', lease('M', 2));
        await store.commitNeedsReauth('c1', 'M', {
          reason: 'invalid_grant',
          lastError: 'invalid_grant',
        });
        expect((await other.getCredential('c1'))?.record.status).toBe('needs_reauth');
        expect((await store.getCredential('c1'))?.record.status).toBe('needs_reauth');
        await other.deleteCredential('c1');
        expect(await store.getCredential('c1')).toBeUndefined();
      } finally {
        await other.close();
      }
    });

    it('deletes', async () => {
      await store.insertCredential(newCredential('c1'));
      expect(await store.deleteCredential('c1')).toBe(true);
      expect(await store.deleteCredential('c1')).toBe(false);
      expect(await store.getCredential('c1')).toBeUndefined();
    });
  });
}

function lease(leaseId: string, expectedVersion: number) {
  return { leaseId, expectedVersion, leaseMs: 10_000 };
}
