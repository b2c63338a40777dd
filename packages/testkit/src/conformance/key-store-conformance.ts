import type { KeyStore, Store } from '@tokenwarden/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** A store that carries its `KeyStore`, as `openSqliteStore` and `openPostgresStore` do. */
export type StoreWithKeys = Store & { readonly keys: KeyStore };

export interface KeyStoreUnderTest {
  store: StoreWithKeys;
  cleanup(): Promise<void>;
}

/** The behaviour every `KeyStore` must have: wrapped data keys and the processes' heartbeats. */
export function describeKeyStoreConformance(
  name: string,
  setup: () => Promise<KeyStoreUnderTest>,
): void {
  describe(`KeyStore conformance: ${name}`, () => {
    let t: KeyStoreUnderTest;
    let keys: KeyStore;
    beforeEach(async () => {
      t = await setup();
      await t.store.migrate();
      keys = t.store.keys;
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('inserts data keys once per key id; the one activated last is the latest', async () => {
      const first = { keyId: 'd1', kmsKeyId: 'kms-a', wrappedKey: 'd3JhcHBlZC0x', active: true };
      expect(await keys.insertDataKey(first)).toBe(true);
      expect(await keys.insertDataKey({ ...first, wrappedKey: 'b3RoZXI=' })).toBe(false);
      expect(
        await keys.insertDataKey({
          keyId: 'd2',
          kmsKeyId: 'kms-a',
          wrappedKey: 'd3Ay',
          active: false,
        }),
      ).toBe(true);
      let rows = await keys.listDataKeys();
      expect(rows.map((row) => [row.keyId, row.wrappedKey, row.activatedAt === null])).toEqual([
        ['d1', 'd3JhcHBlZC0x', false],
        ['d2', 'd3Ay', true],
      ]);
      expect(await keys.activateDataKey('d2')).toBe(true);
      expect(await keys.activateDataKey('unknown')).toBe(false);
      rows = await keys.listDataKeys();
      // Later than d1's activation even within the same millisecond.
      expect(rows[1]!.activatedAt!).toBeGreaterThan(rows[0]!.activatedAt!);
    });

    it('rewraps a data key only while it is still the expected wrapping', async () => {
      await keys.insertDataKey({
        keyId: 'd1',
        kmsKeyId: 'kms-a',
        wrappedKey: 'YQ==',
        active: true,
      });
      const to = { kmsKeyId: 'kms-b', wrappedKey: 'Yg==' };
      expect(await keys.rewrapDataKey('d1', 'stale', to)).toBe(false);
      expect(await keys.rewrapDataKey('d1', 'YQ==', to)).toBe(true);
      expect(await keys.listDataKeys()).toMatchObject([{ keyId: 'd1', ...to }]);
    });

    it('lists the processes seen lately with the key ids they hold; a stopped one leaves', async () => {
      await keys.putKeyHolder('p1', ['k1']);
      await keys.putKeyHolder('p2', ['k1', 'k2']);
      await keys.putKeyHolder('p1', ['k2', 'k1']);
      const holders = await keys.listKeyHolders(60_000);
      expect(holders.map(({ processId, keyIds }) => ({ processId, keyIds }))).toEqual([
        { processId: 'p1', keyIds: ['k2', 'k1'] },
        { processId: 'p2', keyIds: ['k1', 'k2'] },
      ]);
      expect(Math.abs(holders[0]!.seenAt - (await t.store.now()))).toBeLessThan(5_000);
      await keys.removeKeyHolder('p1');
      expect((await keys.listKeyHolders(60_000)).map((h) => h.processId)).toEqual(['p2']);
      // Seen more than -1 s ago: nobody (the age is measured on the database's clock).
      expect(await keys.listKeyHolders(-1_000)).toEqual([]);
    });
  });
}
