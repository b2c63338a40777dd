import type { CredentialState } from '../credential.ts';
import { openField, type KeyRing } from '../crypto/index.ts';

/** Opened access tokens kept by default: a bound on plaintext tokens held in memory. */
export const MAX_OPENED_TOKENS = 1_000;

/**
 * Decrypting costs more than reading the row, and most hand-outs return a token handed out
 * before: an opened token is kept for its credential, and used again only for the same version
 * and the very same ciphertext, so it never outlives a refresh, a re-authorization or a re-seal
 * (a new key re-seals under a new ciphertext). At most `max` (default `MAX_OPENED_TOKENS`), the
 * oldest opened dropped first; with `max` 0 nothing is kept. Refresh tokens are never kept: only
 * the leader opens one, for the one request that redeems it.
 */
export class OpenedAccessTokens {
  readonly #keyRing: KeyRing;
  readonly #kept = new Map<string, { version: number; sealed: string; plaintext: string }>();

  readonly #max: number;

  constructor(keyRing: KeyRing, max = MAX_OPENED_TOKENS) {
    this.#keyRing = keyRing;
    this.#max = max;
  }

  open(record: CredentialState): string {
    const kept = this.#kept.get(record.id);
    if (kept?.version === record.version && kept.sealed === record.accessToken) {
      return kept.plaintext;
    }
    const plaintext = openField(this.#keyRing, record.accessToken, {
      credentialId: record.id,
      field: 'access_token',
    });
    // Deleted first, so that the entry moves to the end: the Map's order is the age order. A
    // token that changed is dropped here even when nothing is kept.
    this.#kept.delete(record.id);
    if (this.#max === 0) return plaintext;
    this.#kept.set(record.id, { version: record.version, sealed: record.accessToken, plaintext });
    if (this.#kept.size > this.#max) this.#kept.delete(this.#kept.keys().next().value!);
    return plaintext;
  }
}
