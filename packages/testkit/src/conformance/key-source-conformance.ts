import {
  decrypt,
  DecryptError,
  encrypt,
  KeyRing,
  keyIdOf,
  openField,
  openProviderSecret,
  openWebhookSecret,
  sealField,
  sealProviderSecret,
  sealWebhookSecret,
  type KeySource,
} from '@tokenwarden/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

export interface KeySourceUnderTest {
  source: KeySource;
  /** The same keys as another process finds them: a second source on the same file or database. */
  openAnother(): Promise<KeySource>;
  /** A rotation's first step: a key every later load returns, not yet the one that seals. */
  addKey(): Promise<string>;
  cleanup(): Promise<void>;
}

const CREDENTIAL = { credentialId: 'cred-1', field: 'refresh_token' } as const;
const REFRESH_TOKEN = '1//0refresh-token-under-test';

/**
 * The behaviour every `KeySource` must have, whatever holds its keys (a key file, a KMS): the ring
 * it loads seals and opens every kind of secret, another process loads the same keys, and a key
 * added by a rotation reaches the next load of every process without changing the active key.
 */
export function describeKeySourceConformance(
  name: string,
  setup: () => Promise<KeySourceUnderTest>,
): void {
  describe(`KeySource conformance: ${name}`, () => {
    let t: KeySourceUnderTest;
    beforeEach(async () => {
      t = await setup();
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('loads a ring whose active key seals and opens every kind of secret', async () => {
      const ring = await t.source.load();
      const sealed = sealField(ring, REFRESH_TOKEN, CREDENTIAL);
      expect(keyIdOf(sealed)).toBe(ring.activeKeyId);
      expect(sealed).not.toContain(REFRESH_TOKEN);
      expect(openField(ring, sealed, CREDENTIAL)).toBe(REFRESH_TOKEN);
      // Bound to where it is stored: the same ciphertext under another credential does not open.
      expect(() => openField(ring, sealed, { ...CREDENTIAL, credentialId: 'cred-2' })).toThrow(
        DecryptError,
      );
      expect(openProviderSecret(ring, sealProviderSecret(ring, 's3cret', 'slack'), 'slack')).toBe(
        's3cret',
      );
      expect(openWebhookSecret(ring, sealWebhookSecret(ring, 'whsec', 'ep-1'), 'ep-1')).toBe(
        'whsec',
      );
      expect(decrypt(ring, encrypt(ring, 'x', 'ad'), 'ad')).toBe('x');
    });

    it('loads the same keys every time, and in another process', async () => {
      const ring = await t.source.load();
      const again = await t.source.load();
      expect(again.keyIds).toEqual(ring.keyIds);
      expect(again.activeKeyId).toBe(ring.activeKeyId);
      const other = await (await t.openAnother()).load();
      expect(other.activeKeyId).toBe(ring.activeKeyId);
      expect(openField(other, sealField(ring, REFRESH_TOKEN, CREDENTIAL), CREDENTIAL)).toBe(
        REFRESH_TOKEN,
      );
    });

    it('a key added later is in every next load and seals nothing until activated', async () => {
      const before = await t.source.load();
      const other = await t.openAnother();
      await other.load();
      const added = await t.addKey();
      expect(added).not.toBe(before.activeKeyId);

      const ring = await t.source.load();
      expect(ring.keyIds).toContain(added);
      expect(ring.activeKeyId).toBe(before.activeKeyId);
      // What a process that already activated the new key seals, this one opens.
      const underNew = new KeyRing([{ id: added, key: ring.get(added)! }]);
      const sealed = sealField(underNew, REFRESH_TOKEN, CREDENTIAL);
      expect(openField(await other.load(), sealed, CREDENTIAL)).toBe(REFRESH_TOKEN);
      expect(() => openField(before, sealed, CREDENTIAL)).toThrow(DecryptError);
    });
  });
}
