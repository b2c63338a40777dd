import {
  keyIdOf,
  openField,
  openProviderSecret,
  openWebhookSecret,
  sealField,
  sealProviderSecret,
  sealWebhookSecret,
  type KeyRing,
} from '../crypto/index.ts';
import type { ServiceStore } from '../store/service-store.ts';
import type { Store } from '../store/store.ts';
import type { WebhookStore } from '../store/webhook-store.ts';

export interface RotateKeysOptions {
  store: Store;
  /** The ring whose first key is the new active key; older keys must still be in it. */
  keyRing: KeyRing;
  /** Also re-encrypt the stored providers' client secrets (usually `store.service`). */
  service?: ServiceStore;
  /** Also re-encrypt the webhook endpoints' signing secrets (usually `store.webhooks`). */
  webhooks?: WebhookStore;
  batchSize?: number;
  onProgress?: (progress: { resealed: number; skipped: number }) => void;
}

/**
 * Re-encrypts every credential not yet under the active key, in batches. A credential refreshed
 * meanwhile is skipped (its new secrets are already sealed under the active key); a second pass
 * picks up anything a concurrent writer sealed under an old key.
 */
export async function rotateKeys(options: RotateKeysOptions): Promise<RotateKeysResult> {
  const { store, keyRing } = options;
  const batchSize = options.batchSize ?? 500;
  const totals = { resealed: 0, skipped: 0 };
  for (let pass = 0; pass < 3; pass++) {
    let afterId: string | null = null;
    let skippedThisPass = 0;
    for (;;) {
      const batch = await store.listNotUnderKey(keyRing.activeKeyId, afterId, batchSize);
      if (batch.length === 0) break;
      for (const record of batch) {
        const reseal = (sealed: string, field: 'access_token' | 'refresh_token') =>
          keyIdOf(sealed) === keyRing.activeKeyId
            ? sealed
            : sealField(keyRing, openField(keyRing, sealed, { credentialId: record.id, field }), {
                credentialId: record.id,
                field,
              });
        const done = await store.resealSecrets(record.id, record.version, {
          keyId: keyRing.activeKeyId,
          accessToken: reseal(record.accessToken, 'access_token'),
          refreshToken:
            record.refreshToken === null ? null : reseal(record.refreshToken, 'refresh_token'),
        });
        if (done) totals.resealed++;
        else skippedThisPass++;
      }
      afterId = batch[batch.length - 1]!.id;
      options.onProgress?.({ resealed: totals.resealed, skipped: skippedThisPass });
    }
    // Whatever was skipped in the last pass was rewritten under an old key by a writer that
    // started before the rotation; report it rather than loop.
    totals.skipped = skippedThisPass;
    if (skippedThisPass === 0) break;
  }
  return {
    ...totals,
    ...(options.service && {
      providerSecrets: await resealProviderSecrets(options.service, keyRing),
    }),
    ...(options.webhooks && {
      webhookSecrets: await resealWebhookSecrets(options.webhooks, keyRing),
    }),
  };
}

export interface RotateKeysResult {
  /** Credentials re-encrypted, and those rewritten under an old key meanwhile (run again). */
  resealed: number;
  skipped: number;
  /** With `service`: provider client secrets re-encrypted, and those changed meanwhile. */
  providerSecrets?: { resealed: number; skipped: number };
  /** With `webhooks`: endpoints whose signing secrets were re-encrypted, and those changed meanwhile. */
  webhookSecrets?: { resealed: number; skipped: number };
}

/**
 * Providers are few: one pass. A secret replaced meanwhile (`putProvider`) is sealed under the
 * active key already, unless the writer started before the rotation: that one is reported.
 */
async function resealProviderSecrets(
  service: ServiceStore,
  keyRing: KeyRing,
): Promise<{ resealed: number; skipped: number }> {
  const totals = { resealed: 0, skipped: 0 };
  for (const provider of await service.listProviders()) {
    const sealed = provider.clientSecret;
    if (sealed === null || keyIdOf(sealed) === keyRing.activeKeyId) continue;
    const plaintext = openProviderSecret(keyRing, sealed, provider.name);
    const resealed = sealProviderSecret(keyRing, plaintext, provider.name);
    if (await service.resealProviderSecret(provider.name, sealed, resealed)) totals.resealed++;
    else totals.skipped++;
  }
  return totals;
}

/** Endpoints are few too: one pass; one rotated meanwhile is sealed under the active key already. */
async function resealWebhookSecrets(
  webhooks: WebhookStore,
  keyRing: KeyRing,
): Promise<{ resealed: number; skipped: number }> {
  const totals = { resealed: 0, skipped: 0 };
  const reseal = (sealed: string, id: string) =>
    keyIdOf(sealed) === keyRing.activeKeyId
      ? sealed
      : sealWebhookSecret(keyRing, openWebhookSecret(keyRing, sealed, id), id);
  for (const endpoint of await webhooks.listEndpoints()) {
    const { id, secret, previousSecret } = endpoint;
    const sealed = [secret, previousSecret].filter((s): s is string => s !== null);
    if (sealed.every((s) => keyIdOf(s) === keyRing.activeKeyId)) continue;
    const resealed = {
      secret: reseal(secret, id),
      previousSecret: previousSecret === null ? null : reseal(previousSecret, id),
    };
    if (await webhooks.resealSecrets(id, { secret, previousSecret }, resealed)) totals.resealed++;
    else totals.skipped++;
  }
  return totals;
}
