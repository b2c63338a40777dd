import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptError } from '../errors.ts';
import { KEY_ID_PATTERN, type KeyRing } from './key-ring.ts';

const ALGORITHM = 'aes-256-gcm';
/** Version prefix of every sealed value. */
export const SEALED_PREFIX = 'tw1';
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

interface Sealed {
  keyId: string;
  iv: Buffer;
  body: Buffer;
}

/**
 * Encrypts `plaintext` with the ring's active key (AES-256-GCM, random 96-bit IV, 128-bit tag),
 * bound to `associatedData`: `tw1.<key id>.<base64url iv>.<base64url ciphertext+tag>`.
 */
export function encrypt(ring: KeyRing, plaintext: string, associatedData: string): string {
  const keyId = ring.activeKeyId;
  const key = ring.get(keyId) as Buffer;
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = Buffer.concat([
    cipher.update(plaintext, 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return `${SEALED_PREFIX}.${keyId}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/**
 * Decrypts a value from `encrypt` with the same `associatedData`. Throws DecryptError if it is not
 * in the sealed format, its key is not in the ring, or it fails authentication (altered, moved to
 * another row or field, or encrypted under a different key with the same id).
 */
export function decrypt(ring: KeyRing, sealed: string, associatedData: string): string {
  const { keyId, iv, body } = parse(sealed);
  const key = ring.get(keyId);
  if (key === undefined) {
    throw new DecryptError(
      `ciphertext was encrypted with key "${keyId}", which is not in the key ring ` +
        `(it holds ${ring.keyIds.map((id) => `"${id}"`).join(', ')}); add that key back to ` +
        'TOKENWARDEN_KEYS or the key file.',
    );
  }
  const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_LENGTH });
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(body.subarray(body.length - TAG_LENGTH));
  try {
    const plaintext = Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_LENGTH)),
      decipher.final(),
    ]);
    return plaintext.toString('utf8');
  } catch {
    throw new DecryptError(
      `ciphertext failed authentication under key "${keyId}": it was altered or belongs to ` +
        `another row or field (or key "${keyId}" is not the key it was encrypted with).`,
    );
  }
}

/** The id of the key a sealed value was encrypted with. Throws DecryptError if it is malformed. */
export function keyIdOf(sealed: string): string {
  return parse(sealed).keyId;
}

function parse(sealed: string): Sealed {
  const malformed = (why: string): DecryptError =>
    // Never quote the value: a plaintext token stored by mistake would end up in the message.
    new DecryptError(
      `stored value is not a Tokenwarden ciphertext (${why}); expected ` +
        `${SEALED_PREFIX}.<key id>.<base64url iv>.<base64url ciphertext+tag>.`,
    );
  if (typeof sealed !== 'string') throw malformed('not a string');
  const parts = sealed.split('.');
  if (parts.length !== 4) throw malformed(`${parts.length} dot-separated parts instead of 4`);
  const [prefix, keyId, ivText, bodyText] = parts as [string, string, string, string];
  if (prefix !== SEALED_PREFIX) throw malformed(`unknown version prefix`);
  if (!KEY_ID_PATTERN.test(keyId)) throw malformed('invalid key id');
  const iv = decodeBase64url(ivText);
  if (iv === undefined || iv.length !== IV_LENGTH) throw malformed('invalid iv');
  const body = decodeBase64url(bodyText);
  if (body === undefined || body.length < TAG_LENGTH) throw malformed('invalid ciphertext');
  return { keyId, iv, body };
}

/** Strict base64url: only the canonical encoding decodes, so no two strings open to one value. */
function decodeBase64url(text: string): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

/** The credential fields stored encrypted. */
export const SECRET_FIELDS = ['access_token', 'refresh_token', 'client_secret'] as const;
export type SecretField = (typeof SECRET_FIELDS)[number];

/** Which row and field a sealed secret belongs to. */
export interface FieldContext {
  credentialId: string;
  field: SecretField;
}

/**
 * The associated data binding a ciphertext to its row and field: `tokenwarden/v1/<id>/<field>`.
 * The field is the last segment and never contains "/", so distinct contexts never collide.
 */
export function fieldAssociatedData({ credentialId, field }: FieldContext): string {
  if (typeof credentialId !== 'string' || credentialId === '') {
    throw new TypeError('credentialId must be a non-empty string');
  }
  if (!(SECRET_FIELDS as readonly string[]).includes(field)) {
    throw new TypeError(`field must be one of ${SECRET_FIELDS.join(', ')}`);
  }
  return `tokenwarden/v1/${credentialId}/${field}`;
}

/** Encrypts a credential secret bound to its credential id and field. */
export function sealField(ring: KeyRing, plaintext: string, context: FieldContext): string {
  return encrypt(ring, plaintext, fieldAssociatedData(context));
}

/**
 * Decrypts a credential secret sealed by `sealField` for the same credential id and field. A
 * ciphertext copied to another row or field throws DecryptError.
 */
export function openField(ring: KeyRing, sealed: string, context: FieldContext): string {
  return decrypt(ring, sealed, fieldAssociatedData(context));
}

/**
 * The associated data binding a provider's client secret to that provider:
 * `tokenwarden/provider/v1/<name>/client_secret`. A namespace of its own, apart from the
 * credentials' `tokenwarden/v1/...`, so no credential field ever opens as a provider secret or
 * the reverse, whatever the ids; between providers, the fixed prefix and suffix leave exactly one
 * name per string.
 */
export function providerSecretAssociatedData(provider: string): string {
  if (typeof provider !== 'string' || provider === '') {
    throw new TypeError('provider must be a non-empty string');
  }
  return `tokenwarden/provider/v1/${provider}/client_secret`;
}

/** Encrypts a provider's client secret, bound to the provider's name. */
export function sealProviderSecret(ring: KeyRing, plaintext: string, provider: string): string {
  return encrypt(ring, plaintext, providerSecretAssociatedData(provider));
}

/**
 * Decrypts a client secret sealed by `sealProviderSecret` for the same provider. A secret copied
 * to another provider's row throws DecryptError.
 */
export function openProviderSecret(ring: KeyRing, sealed: string, provider: string): string {
  return decrypt(ring, sealed, providerSecretAssociatedData(provider));
}

/**
 * The associated data binding a webhook endpoint's signing secret to that endpoint:
 * `tokenwarden/webhook/v1/<id>/signing_secret`, a namespace of its own as for provider secrets.
 */
function webhookSecretAssociatedData(endpointId: string): string {
  if (typeof endpointId !== 'string' || endpointId === '') {
    throw new TypeError('endpointId must be a non-empty string');
  }
  return `tokenwarden/webhook/v1/${endpointId}/signing_secret`;
}

/** Encrypts a webhook endpoint's signing secret, bound to the endpoint's id. */
export function sealWebhookSecret(ring: KeyRing, plaintext: string, endpointId: string): string {
  return encrypt(ring, plaintext, webhookSecretAssociatedData(endpointId));
}

/** Decrypts a signing secret sealed by `sealWebhookSecret` for the same endpoint. */
export function openWebhookSecret(ring: KeyRing, sealed: string, endpointId: string): string {
  return decrypt(ring, sealed, webhookSecretAssociatedData(endpointId));
}
