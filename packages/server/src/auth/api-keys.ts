import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys. A service client's key is `tw_<client id>_<secret>`:
 *
 * - `<client id>` is `cli_` + 20 hex digits, so the client's row is found with one indexed read;
 * - `<secret>` is 32 random bytes in base64url (43 characters). Only SHA-256(secret) is stored:
 *   with 256 random bits there is nothing for a slow hash (bcrypt, scrypt) to protect, and a
 *   single SHA-256 keeps the per-request check cheap.
 *
 * The admin key is any string the operator chose (`TOKENWARDEN_ADMIN_KEY`) or one from
 * `generateApiKey()`; the server holds only `hashApiKey(adminKey)`.
 */

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A new admin key: `tw_admin_` + 32 random bytes in base64url. Show it once, keep its hash. */
export function generateApiKey(): string {
  return `tw_admin_${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 of a key (or of a client key's secret part), lower-case hex. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function isApiKeyHash(value: string): boolean {
  return SHA256_HEX.test(value);
}

export interface NewClientKey {
  clientId: string;
  /** Shown to the caller once, never stored. */
  apiKey: string;
  /** What the store keeps: SHA-256 of the secret part. */
  keyHash: string;
}

export function newClientKey(): NewClientKey {
  const clientId = `cli_${randomBytes(10).toString('hex')}`;
  const secret = randomBytes(32).toString('base64url');
  return { clientId, apiKey: `tw_${clientId}_${secret}`, keyHash: hashApiKey(secret) };
}

/** Compares two SHA-256 hex digests in constant time. */
export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === 32 && right.length === 32 && timingSafeEqual(left, right);
}
