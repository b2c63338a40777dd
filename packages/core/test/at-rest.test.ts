import { existsSync, readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import {
  DecryptError,
  KeyRing,
  keyIdOf,
  openField,
  rotateKeys,
  type AccessToken,
  type ProtocolStep,
  type Store,
} from '@tokenwarden/core';
import { openBroker, type OpenedBroker } from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

interface Row {
  id: string;
  key_id: string;
  version: number;
  access_token: string;
  refresh_token: string | null;
}

function rows(): Row[] {
  return s.sql
    .prepare('select id, key_id, version, access_token, refresh_token from credentials order by id')
    .all() as Row[];
}

function row(id: string): Row {
  const found = rows().find((r) => r.id === id);
  if (!found) throw new Error(`no row ${id}`);
  return found;
}

function setColumn(id: string, column: 'access_token' | 'refresh_token', value: string): void {
  const changed = s.sql.prepare(`update credentials set ${column} = ? where id = ?`).run(value, id);
  expect(changed.changes).toBe(1);
}

function open(ring: KeyRing, r: Row, field: 'access_token' | 'refresh_token'): string {
  const sealed = field === 'access_token' ? r.access_token : r.refresh_token;
  if (sealed === null) throw new Error(`row ${r.id} has no ${field}`);
  return openField(ring, sealed, { credentialId: r.id, field });
}

/** Every byte SQLite has on disk for the store: the main file and, if present, its WAL. */
function databaseBytes(): Buffer {
  s.sql.pragma('wal_checkpoint(TRUNCATE)');
  const files = [s.fixture.dbPath, `${s.fixture.dbPath}-wal`, `${s.fixture.dbPath}-journal`];
  return Buffer.concat(files.filter((f) => existsSync(f)).map((f) => readFileSync(f)));
}

function expectNotOnDisk(secrets: readonly string[]): void {
  const bytes = databaseBytes();
  for (const secret of secrets) {
    expect(secret.length).toBeGreaterThan(8);
    expect(bytes.includes(Buffer.from(secret, 'utf8')), `plaintext on disk: ${secret}`).toBe(false);
    expect(bytes.includes(Buffer.from(secret, 'utf16le')), `UTF-16 on disk: ${secret}`).toBe(false);
  }
}

/** The error is a DecryptError whose every rendering is free of the given tokens. */
function expectDecryptFailed(error: unknown, secrets: readonly string[]): void {
  expect(error).toBeInstanceOf(DecryptError);
  expect((error as DecryptError).code).toBe('decrypt_failed');
  expect((error as DecryptError).status).toBe(500);
  const e = error as Error;
  for (const text of [String(e), e.message, e.stack ?? '', inspect(e)]) {
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
}

/** One char of a base64url string replaced by a different one (still canonical base64url). */
function flip(text: string, index: number): string {
  const c = text[index]!;
  return text.slice(0, index) + (c === 'A' ? 'B' : 'A') + text.slice(index + 1);
}

/** A ring holding exactly the named keys of `ring`, the first active. */
function ringOf(ring: KeyRing, ...ids: string[]): KeyRing {
  const entries = new Map(
    ring
      .serialize()
      .split(',')
      .map((entry) => [entry.slice(0, entry.indexOf(':')), entry] as const),
  );
  return KeyRing.parse(ids.map((id) => entries.get(id)!).join(','));
}

/** A second broker on the same file with another key ring, closed when `fn` is done. */
async function withBroker<T>(
  keys: KeyRing,
  fn: (opened: OpenedBroker) => Promise<T>,
  onStep?: (step: ProtocolStep, connectionId: string) => Promise<void>,
): Promise<T> {
  const opened = await openBroker({ ...s.fixture, keys: keys.serialize() }, { onStep });
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The scenario's store, with hooks after each listing and before each reseal. */
function gatedStore(gates: { afterList: () => void; beforeReseal: Promise<void> }): Store {
  const store = s.store;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'listNotUnderKey') {
        return async (...args: Parameters<Store['listNotUnderKey']>) => {
          const result = await target.listNotUnderKey(...args);
          gates.afterList();
          return result;
        };
      }
      if (prop === 'resealSecrets') {
        return async (...args: Parameters<Store['resealSecrets']>) => {
          await gates.beforeReseal;
          return target.resealSecrets(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('no plaintext token on disk', () => {
  it('after import and after a refresh, neither the file nor its WAL holds a token', async () => {
    s = await scenario();
    const grants = [s.provider.issueGrant(), s.provider.issueGrant(), s.provider.issueGrant()];
    const ids: string[] = [];
    for (const grant of grants) {
      const info = await s.broker.importCredential({
        provider: 'test',
        owner: 'owner-plaintext-marker',
        accessToken: grant.access_token,
        refreshToken: grant.refresh_token,
        expiresIn: 0,
      });
      ids.push(info.id);
    }
    const imported = grants.flatMap((g) => [g.access_token, g.refresh_token]);
    // The search itself works: a non-secret column is found in plaintext.
    expect(databaseBytes().includes(Buffer.from('owner-plaintext-marker'))).toBe(true);
    expectNotOnDisk(imported);

    const refreshed: AccessToken[] = [];
    for (const id of ids) refreshed.push(await s.broker.getAccessToken(id));
    expect(refreshed.map((t) => t.version)).toEqual([2, 2, 2]);
    expect(s.provider.stats().redemptions).toBe(3);
    const newAccess = refreshed.map((t) => t.accessToken);
    const newRefresh = ids.map((id) => open(s.keyRing, row(id), 'refresh_token'));
    for (const [i, token] of newAccess.entries()) {
      expect(s.provider.isAccessTokenValid(token)).toBe(true);
      expect(token).not.toBe(grants[i]!.access_token);
      expect(newRefresh[i]).not.toBe(grants[i]!.refresh_token);
    }
    expectNotOnDisk([...imported, ...newAccess, ...newRefresh]);
  });
});

describe('tampered and moved ciphertexts', () => {
  it.each([
    ['the iv', (sealed: string) => sealed.split('.').slice(0, 2).join('.').length + 3],
    ['the ciphertext', (sealed: string) => sealed.lastIndexOf('.') + 2],
    ['the tag', (sealed: string) => sealed.length - 4],
  ])('a flipped char in %s is decrypt_failed, with no token in the message', async (_, at) => {
    s = await scenario();
    const grant = await s.importGrant({ expiresIn: 3600 });
    const { id } = grant;
    expect((await s.broker.getAccessToken(id)).accessToken).toBe(grant.accessToken);
    const sealed = row(id).access_token;
    const tampered = flip(sealed, at(sealed));
    expect(tampered).not.toBe(sealed);
    expect(tampered.length).toBe(sealed.length);
    setColumn(id, 'access_token', tampered);

    const error = await s.broker.getAccessToken(id).catch((e: unknown) => e);

    expectDecryptFailed(error, [grant.accessToken, grant.refreshToken]);
    expect((error as Error).message).toContain('failed authentication');
    expect(s.provider.stats().tokenRequests).toBe(0);
  });

  it('a tampered refresh token is decrypt_failed and is never sent to the provider', async () => {
    s = await scenario();
    const { id, refreshToken } = await s.importGrant({ expiresIn: 0 });
    const sealed = row(id).refresh_token!;
    setColumn(id, 'refresh_token', flip(sealed, sealed.lastIndexOf('.') + 2));

    const error = await s.broker.getAccessToken(id).catch((e: unknown) => e);

    expectDecryptFailed(error, [refreshToken]);
    expect(s.provider.stats().tokenRequests).toBe(0);
  });

  it('a refresh token that cannot be decrypted does not leave its refresh lease held', async () => {
    // maxWaitMs (300) < leaseMs (2000), as with the defaults (20 s < 30 s).
    s = await scenario({ fixture: { leaseMs: 2_000, maxWaitMs: 300 } });
    const { id, refreshToken } = await s.importGrant({ expiresIn: 0 });
    const sealed = row(id).refresh_token!;
    setColumn(id, 'refresh_token', flip(sealed, sealed.lastIndexOf('.') + 2));

    expectDecryptFailed(await s.broker.getAccessToken(id).catch((e: unknown) => e), [refreshToken]);

    // Regression: the leader opens the refresh token after taking the lease; a DecryptError
    // there must hand the lease back, or the next caller waits for a refresh that never comes.
    const second = await s.broker.getAccessToken(id).catch((e: unknown) => e);
    expectDecryptFailed(second, [refreshToken]);
    expect(s.sql.prepare('select lease_id from credentials where id = ?').get(id)).toEqual({
      lease_id: null,
    });
    expect(s.provider.stats().tokenRequests).toBe(0);
  });

  it("row A's access token copied into row B is decrypt_failed", async () => {
    s = await scenario();
    const a = await s.importGrant({ expiresIn: 3600 });
    const b = await s.importGrant({ expiresIn: 3600 });
    setColumn(b.id, 'access_token', row(a.id).access_token);

    const error = await s.broker.getAccessToken(b.id).catch((e: unknown) => e);

    expectDecryptFailed(error, [a.accessToken, b.accessToken, a.refreshToken, b.refreshToken]);
    // Row A itself is untouched and still readable.
    expect((await s.broker.getAccessToken(a.id)).accessToken).toBe(a.accessToken);
    expect(s.provider.stats().tokenRequests).toBe(0);
  });

  it("row A's refresh token copied into row B's is decrypt_failed and not redeemed", async () => {
    s = await scenario();
    const a = await s.importGrant({ expiresIn: 3600 });
    const b = await s.importGrant({ expiresIn: 0 });
    setColumn(b.id, 'refresh_token', row(a.id).refresh_token!);

    const error = await s.broker.getAccessToken(b.id).catch((e: unknown) => e);

    expectDecryptFailed(error, [a.refreshToken, b.refreshToken]);
    expect(s.provider.stats().tokenRequests).toBe(0);
  });

  it('a refresh token moved into the access token field of the same row is decrypt_failed', async () => {
    s = await scenario();
    const grant = await s.importGrant({ expiresIn: 3600 });
    const { id } = grant;
    setColumn(id, 'access_token', row(id).refresh_token!);

    const error = await s.broker.getAccessToken(id).catch((e: unknown) => e);

    expectDecryptFailed(error, [grant.accessToken, grant.refreshToken]);
    // The broker must not have handed out the refresh token as if it were an access token.
    expect(error).not.toHaveProperty('accessToken');
  });
});

describe('key rotation', () => {
  it('re-encrypts every credential under the new key; a ring of only that key reads them all', async () => {
    s = await scenario();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await s.importGrant({ expiresIn: 3600 })).id);
    const accessOnly = await s.broker.importCredential({
      provider: 'test',
      owner: 'u',
      accessToken: 'at-no-refresh-token',
      expiresIn: 3600,
    });
    ids.push(accessOnly.id);
    ids.sort();
    const k1 = s.keyRing;
    expect(k1.keyIds).toEqual(['k1']);
    const before = new Map<string, AccessToken>();
    for (const id of ids) before.set(id, await s.broker.getAccessToken(id));
    const refreshBefore = new Map(
      rows().map((r) => [r.id, r.refresh_token === null ? null : open(k1, r, 'refresh_token')]),
    );
    const versionsBefore = rows().map((r) => [r.id, r.version]);
    expect(rows().every((r) => r.key_id === 'k1')).toBe(true);

    const newRing = k1.withNewActiveKey('k2');
    expect(newRing.keyIds).toEqual(['k2', 'k1']);
    const progress: { resealed: number; skipped: number }[] = [];
    const result = await rotateKeys({
      store: s.store,
      keyRing: newRing,
      batchSize: 2,
      onProgress: (p) => progress.push({ ...p }),
    });

    expect(result).toEqual({ resealed: 5, skipped: 0 });
    // Batches of 2, 2 and 1, each reported with the running total.
    expect(progress).toEqual([
      { resealed: 2, skipped: 0 },
      { resealed: 4, skipped: 0 },
      { resealed: 5, skipped: 0 },
    ]);
    for (const r of rows()) {
      expect(r.key_id).toBe('k2');
      expect(keyIdOf(r.access_token)).toBe('k2');
      if (r.refresh_token !== null) expect(keyIdOf(r.refresh_token)).toBe('k2');
    }
    // Resealing is not a token change: versions stay.
    expect(rows().map((r) => [r.id, r.version])).toEqual(versionsBefore);
    expect(s.provider.stats().tokenRequests).toBe(0);

    // The old ring (k1 only) can no longer read anything.
    const stale = await s.broker.getAccessToken(ids[0]!).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(DecryptError);
    expect((stale as DecryptError).message).toContain('"k2"');

    const k2Only = KeyRing.parse(newRing.serialize().split(',')[0]!);
    expect(k2Only.keyIds).toEqual(['k2']);
    await withBroker(k2Only, async ({ broker }) => {
      for (const id of ids) {
        const token = await broker.getAccessToken(id);
        const was = before.get(id)!;
        expect(token).toEqual(was);
      }
      for (const r of rows()) {
        expect(r.refresh_token === null ? null : open(k2Only, r, 'refresh_token')).toBe(
          refreshBefore.get(r.id),
        );
      }
      // The resealed refresh token still works at the provider.
      await s.expire(ids.find((id) => id !== accessOnly.id)!);
      const refreshed = await broker.getAccessToken(ids.find((id) => id !== accessOnly.id)!);
      expect(refreshed.version).toBe(2);
      expect(s.provider.isAccessTokenValid(refreshed.accessToken)).toBe(true);
    });

    // A second run has nothing to do.
    const again: unknown[] = [];
    expect(
      await rotateKeys({ store: s.store, keyRing: newRing, onProgress: (p) => again.push(p) }),
    ).toEqual({ resealed: 0, skipped: 0 });
    expect(again).toEqual([]);
    expect(s.provider.stats().reuseViolations).toBe(0);
  });

  /**
   * Two interleavings, each forced with gates so that the test is deterministic:
   * - `reseal-first`: the refresh leaders hold their leases (refresh token already opened) while
   *   the rotation reseals their rows; then they commit under the old key.
   * - `commit-first`: the rotation has listed the rows, the leaders commit, and only then does
   *   the rotation try to reseal the versions it listed (stale: skipped, picked up next pass).
   */
  it.each(['reseal-first', 'commit-first'] as const)(
    'a rotation running alongside refreshes loses nothing (%s)',
    async (order) => {
      s = await scenario({ provider: { latencyMs: 20 } });
      const expiredIds: string[] = [];
      const validIds: string[] = [];
      for (let i = 0; i < 4; i++) expiredIds.push((await s.importGrant({ expiresIn: 0 })).id);
      for (let i = 0; i < 4; i++) validIds.push((await s.importGrant({ expiresIn: 3600 })).id);
      const validBefore = new Map<string, string>();
      for (const id of validIds) {
        validBefore.set(id, (await s.broker.getAccessToken(id)).accessToken);
      }

      const newRing = s.keyRing.withNewActiveKey('k2');
      // An instance that already knows k2 but still writes under k1 (the fleet is mid-rollout):
      // what it commits during the rotation is under the old key, for the second pass to pick up.
      const rollingRing = ringOf(newRing, 'k1', 'k2');
      const k2Only = ringOf(newRing, 'k2');

      const listed = deferred();
      const refreshesDone = deferred();
      const rotationDone = deferred();
      const store = gatedStore({
        afterList: () => listed.resolve(),
        beforeReseal: order === 'commit-first' ? refreshesDone.promise : Promise.resolve(),
      });
      const progress: { resealed: number; skipped: number }[] = [];

      const { refreshed, first } = await withBroker(
        rollingRing,
        async ({ broker }) => {
          const rotation = rotateKeys({
            store,
            keyRing: newRing,
            batchSize: order === 'commit-first' ? 100 : 2,
            onProgress: (p) => progress.push({ ...p }),
          }).finally(() => rotationDone.resolve());
          const refreshes = Promise.all(expiredIds.map((id) => broker.getAccessToken(id))).finally(
            () => refreshesDone.resolve(),
          );
          const [first, refreshed] = await Promise.all([rotation, refreshes]);
          return { first, refreshed };
        },
        async (step) => {
          if (step !== 'intent_recorded') return;
          await listed.promise;
          if (order === 'reseal-first') await rotationDone.promise;
        },
      );

      expect(refreshed.map((t) => t.version)).toEqual([2, 2, 2, 2]);
      expect(s.provider.stats()).toMatchObject({ redemptions: 4, reuseViolations: 0 });
      if (order === 'reseal-first') {
        // All 8 resealed (the leased rows too, at version 1); the leaders then wrote under k1.
        expect(first).toEqual({ resealed: 8, skipped: 0 });
        expect(
          rows()
            .filter((r) => r.key_id === 'k1')
            .map((r) => r.id),
        ).toEqual([...expiredIds].sort());
      } else {
        // Pass 1 resealed the 4 untouched rows and skipped the 4 refreshed meanwhile; pass 2
        // resealed those 4 at their new version.
        expect(progress).toEqual([
          { resealed: 4, skipped: 4 },
          { resealed: 8, skipped: 0 },
        ]);
        expect(first).toEqual({ resealed: 8, skipped: 0 });
      }

      const second = await rotateKeys({ store: s.store, keyRing: newRing, batchSize: 2 });
      expect(second).toEqual({ resealed: order === 'reseal-first' ? 4 : 0, skipped: 0 });
      for (const r of rows()) {
        expect(r.key_id).toBe('k2');
        expect(keyIdOf(r.access_token)).toBe('k2');
        expect(keyIdOf(r.refresh_token!)).toBe('k2');
        expect(r.version).toBe(expiredIds.includes(r.id) ? 2 : 1);
      }

      await withBroker(k2Only, async ({ broker }) => {
        for (const [i, id] of expiredIds.entries()) {
          const token = await broker.getAccessToken(id);
          expect(token.version).toBe(2);
          expect(token.accessToken).toBe(refreshed[i]!.accessToken);
          expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
        }
        for (const id of validIds) {
          expect((await broker.getAccessToken(id)).accessToken).toBe(validBefore.get(id));
        }
        // Every stored refresh token is the live one: each refreshes once more, without reuse.
        const all = [...expiredIds, ...validIds];
        for (const id of all) await s.expire(id);
        const again = await Promise.all(all.map((id) => broker.getAccessToken(id)));
        expect(again.map((t) => t.version)).toEqual([3, 3, 3, 3, 2, 2, 2, 2]);
      });
      expect(s.provider.stats()).toMatchObject({
        redemptions: 12,
        reuseViolations: 0,
        invalidGrants: 0,
      });
    },
  );
});
