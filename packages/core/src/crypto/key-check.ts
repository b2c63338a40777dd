import { DecryptError, KeyRingError } from '../errors.ts';
import type { ServiceStore } from '../store/service-store.ts';
import type { Store } from '../store/store.ts';
import {
  decrypt,
  encrypt,
  keyIdOf,
  openField,
  openProviderSecret,
  openWebhookSecret,
} from './cipher.ts';
import type { WebhookStore } from '../store/webhook-store.ts';
import { KeyRing } from './key-ring.ts';

/**
 * What the key check reads and writes: the credentials' key ids, the providers' sealed secrets
 * and one setting per key id.
 */
export interface KeyCheckStore {
  keysInUse: Store['keysInUse'];
  getCredential: Store['getCredential'];
  service: Pick<ServiceStore, 'listProviders' | 'getSetting' | 'setSettingIfAbsent'>;
  /** Webhook signing secrets are sealed too (a store without webhooks: none). */
  webhooks?: Pick<WebhookStore, 'listEndpoints'>;
}

/** The sealed value every key check holds; not secret, it only proves the key opens it. */
const CHECK_VALUE = 'tokenwarden key check';

/** The setting that holds the key check of one key id. */
export function keyCheckSetting(keyId: string): string {
  return `key_check.${keyId}`;
}

function keyCheckAssociatedData(keyId: string): string {
  return `tokenwarden/key-check/v1/${keyId}`;
}

type Opener = (ring: KeyRing) => Promise<void>;

/**
 * One ciphertext per key id the database holds (a credential's access token, a provider's client
 * secret), as a function that opens it with a ring: the proof that a key is the right one for a
 * database written before key checks existed.
 */
async function sealedSamples(store: KeyCheckStore): Promise<Map<string, Opener>> {
  const samples = new Map<string, Opener>();
  for (const { keyId, credentialId } of await store.keysInUse()) {
    samples.set(keyId, async (ring) => {
      const snapshot = await store.getCredential(credentialId);
      // Deleted meanwhile: nothing of it left to open.
      if (snapshot === undefined) return;
      openField(ring, snapshot.record.accessToken, { credentialId, field: 'access_token' });
    });
  }
  for (const provider of await store.service.listProviders()) {
    const sealed = provider.clientSecret;
    if (sealed === null) continue;
    const keyId = keyIdOf(sealed);
    if (!samples.has(keyId)) {
      samples.set(keyId, async (ring) => void openProviderSecret(ring, sealed, provider.name));
    }
  }
  for (const endpoint of (await store.webhooks?.listEndpoints()) ?? []) {
    const keyId = keyIdOf(endpoint.secret);
    if (!samples.has(keyId)) {
      samples.set(
        keyId,
        async (ring) => void openWebhookSecret(ring, endpoint.secret, endpoint.id),
      );
    }
  }
  return samples;
}

/** Whether the database holds any sealed credential or provider secret. */
export async function holdsCiphertext(store: KeyCheckStore): Promise<boolean> {
  return (await sealedSamples(store)).size > 0;
}

/**
 * Refuses a key ring that cannot open the database's secrets, before anything is served: a
 * server that starts anyway answers `decrypt_failed` to every hand-out while looking healthy.
 *
 * - Every key id that seals a stored credential or provider secret must be in the ring.
 * - Every key in the ring must open its key check: a small known value sealed under that key id,
 *   stored in the settings table the first time the key is seen. A different key under the same
 *   id fails it. A key seen for the first time on a database that already holds secrets under its
 *   id must first open one of them.
 *
 * Throws KeyRingError naming the key id. `source` says where the ring came from, for the message.
 */
export async function checkKeyRing(
  store: KeyCheckStore,
  ring: KeyRing,
  source: string,
): Promise<void> {
  const samples = await sealedSamples(store);
  const missing = [...samples.keys()].filter((id) => ring.get(id) === undefined);
  if (missing.length > 0) {
    throw new KeyRingError(
      `The database holds secrets sealed with key ${quoted(missing)}, which the key ring from ` +
        `${source} does not hold (it holds ${quoted(ring.keyIds)}). Restore the key file from ` +
        'its backup, or add that key to TOKENWARDEN_KEYS; nothing was started.',
    );
  }
  for (const keyId of ring.keyIds) {
    const only = new KeyRing([{ id: keyId, key: ring.get(keyId)! }]);
    const wrongKey = (): KeyRingError =>
      new KeyRingError(
        `Key "${keyId}" from ${source} is not the key this database's secrets under id ` +
          `"${keyId}" were sealed with (its key check does not open). Restore the right key ` +
          'for that id; nothing was started.',
      );
    const name = keyCheckSetting(keyId);
    let check = await store.service.getSetting(name);
    if (check === undefined) {
      await opens(samples.get(keyId), only, wrongKey);
      const sealed = encrypt(only, CHECK_VALUE, keyCheckAssociatedData(keyId));
      if (await store.service.setSettingIfAbsent(name, sealed)) continue;
      // Another process stored the check first: it must open with this key too.
      check = (await store.service.getSetting(name)) as string;
    }
    await opens(
      async (key) => {
        if (decrypt(key, check, keyCheckAssociatedData(keyId)) !== CHECK_VALUE) throw wrongKey();
      },
      only,
      wrongKey,
    );
  }
}

async function opens(
  open: Opener | undefined,
  ring: KeyRing,
  wrongKey: () => KeyRingError,
): Promise<void> {
  try {
    await open?.(ring);
  } catch (error) {
    throw error instanceof DecryptError ? wrongKey() : error;
  }
}

function quoted(ids: readonly string[]): string {
  return ids.map((id) => `"${id}"`).join(', ');
}
