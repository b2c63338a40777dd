import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { CodecKeyRing, CodecKeyRingError, GENERATE_CODEC_KEY_COMMAND } from './key-ring.ts';

const { Payload: PayloadMessage } = proto.temporal.api.common.v1;

/** `metadata.encoding` of an encrypted payload (the value Temporal's own samples use). */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata key naming the key that encrypted a payload. */
export const KEY_ID_METADATA_KEY = 'encryption-key-id';
/** Metadata key naming the format, so that a later format can be told apart. */
export const FORMAT_METADATA_KEY = 'encryption-format';
/** The only format this codec writes: AES-256-GCM, 96-bit IV, 128-bit tag, `iv ‖ ciphertext ‖ tag`. */
export const FORMAT_V1 = 'tokenwarden/aes-256-gcm/v1';

const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export type PayloadDecryptionFailure =
  /** The payload names a key that is not in the ring (removed too early, or another ring). */
  | 'unknown_key'
  /** The payload failed authentication: altered, or its key id was swapped. */
  | 'authentication_failed'
  /** The payload says it is encrypted but is not in a format this codec reads. */
  | 'malformed';

/**
 * Thrown by {@link EncryptionCodec.decode}. On a worker it fails the workflow or activity task,
 * which Temporal retries, so restoring a missing key lets stuck workflows continue. The message
 * names the key id, never key material or payload data.
 */
export class PayloadDecryptionError extends Error {
  readonly failure: PayloadDecryptionFailure;
  /** The key id the payload names, when it names one. */
  readonly keyId: string | undefined;
  constructor(failure: PayloadDecryptionFailure, message: string, keyId?: string) {
    super(message);
    this.name = 'PayloadDecryptionError';
    this.failure = failure;
    this.keyId = keyId;
  }
}

export interface EncryptionCodecOptions {
  /** A key ring, or its text form `<key id>:<base64 of 32 bytes>[,...]` (active key first). */
  keys: CodecKeyRing | string;
}

/**
 * A `PayloadCodec` that encrypts every payload with AES-256-GCM under the ring's active key, for
 * teams that must put secrets through workflow history. The whole payload (metadata and data) is
 * encrypted; what remains in the clear is `encoding: binary/encrypted`, the key id and the format.
 * The key id and format are bound to the ciphertext as associated data, so swapping them fails
 * authentication.
 *
 * Rotation: put a new key first in the ring and keep the old ones; new payloads use the new key,
 * old payloads still decode. Payloads that are not marked `binary/encrypted` (written before the
 * codec was added) pass through `decode` unchanged.
 *
 * Use the same codec in the Client, the Worker and the codec server (see the README). Tokenwarden
 * itself never needs this: with `@tokenwarden/temporal`, workflows carry connection ids, not tokens.
 *
 * @example
 * ```ts
 * import { EncryptionCodec } from '@tokenwarden/temporal';
 * const dataConverter = { payloadCodecs: [new EncryptionCodec({ keys: process.env.TOKENWARDEN_CODEC_KEYS! })] };
 * const client = new Client({ connection, dataConverter });
 * const worker = await Worker.create({ ..., dataConverter });
 * ```
 */
export class EncryptionCodec implements PayloadCodec {
  readonly keys: CodecKeyRing;

  constructor(options: EncryptionCodecOptions) {
    this.keys = typeof options.keys === 'string' ? CodecKeyRing.parse(options.keys) : options.keys;
    if (!(this.keys instanceof CodecKeyRing)) {
      throw new TypeError('keys must be a CodecKeyRing or its text form');
    }
  }

  /**
   * A codec whose keys come from an environment variable, `TOKENWARDEN_CODEC_KEYS` by default.
   * Throws CodecKeyRingError when it is unset or malformed.
   */
  static fromEnv(
    name = 'TOKENWARDEN_CODEC_KEYS',
    env: NodeJS.ProcessEnv = process.env,
  ): EncryptionCodec {
    const spec = env[name];
    if (spec === undefined || spec.trim() === '') {
      throw new CodecKeyRingError(
        `${name} is not set: give it the codec key ring, <key id>:<base64 of 32 random bytes>` +
          `[,...], active key first (generate a key with ${GENERATE_CODEC_KEY_COMMAND}).`,
      );
    }
    try {
      return new EncryptionCodec({ keys: spec });
    } catch (error) {
      if (error instanceof CodecKeyRingError)
        throw new CodecKeyRingError(`${name}: ${error.message}`);
      throw error;
    }
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.#encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.#decrypt(payload));
  }

  #encrypt(payload: Payload): Payload {
    const keyId = this.keys.activeKeyId;
    const iv = randomBytes(IV_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.keys.key(keyId)!, iv, {
      authTagLength: TAG_LENGTH,
    });
    cipher.setAAD(associatedData(keyId, FORMAT_V1));
    const plaintext = PayloadMessage.encode(payload).finish();
    const data = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: {
        encoding: textEncoder.encode(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA_KEY]: textEncoder.encode(keyId),
        [FORMAT_METADATA_KEY]: textEncoder.encode(FORMAT_V1),
      },
      data,
    };
  }

  #decrypt(payload: Payload): Payload {
    const metadata = payload.metadata ?? {};
    if (metadataText(metadata.encoding) !== ENCRYPTED_ENCODING) return payload;

    const keyId = metadataText(metadata[KEY_ID_METADATA_KEY]);
    const format = metadataText(metadata[FORMAT_METADATA_KEY]);
    if (keyId === undefined || keyId === '') {
      throw new PayloadDecryptionError('malformed', 'Encrypted payload names no key id.');
    }
    // The id is echoed in messages below only once it is known to be a harmless short token.
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(keyId)) {
      throw new PayloadDecryptionError('malformed', 'Encrypted payload has an invalid key id.');
    }
    if (format !== FORMAT_V1) {
      throw new PayloadDecryptionError(
        'malformed',
        `Encrypted payload (key id "${keyId}") is not in format ${FORMAT_V1}; it was written by ` +
          'another codec or a newer version of this one.',
        keyId,
      );
    }
    const key = this.keys.key(keyId);
    if (key === undefined) {
      throw new PayloadDecryptionError(
        'unknown_key',
        `Payload was encrypted with key "${keyId}", which is not in the codec key ring (it holds ` +
          `${this.keys.keyIds.map((id) => `"${id}"`).join(', ')}). Add that key back: keys stay ` +
          "in the ring until every history they encrypted is past its namespace's retention.",
        keyId,
      );
    }
    const data = payload.data ?? new Uint8Array(0);
    if (data.length < IV_LENGTH + TAG_LENGTH) {
      throw new PayloadDecryptionError(
        'malformed',
        `Encrypted payload (key id "${keyId}") is too short to hold an IV and a tag.`,
        keyId,
      );
    }
    const iv = data.subarray(0, IV_LENGTH);
    const tag = data.subarray(data.length - TAG_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(associatedData(keyId, format));
    decipher.setAuthTag(tag);
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([
        decipher.update(data.subarray(IV_LENGTH, data.length - TAG_LENGTH)),
        decipher.final(),
      ]);
    } catch {
      throw new PayloadDecryptionError(
        'authentication_failed',
        `Encrypted payload failed authentication under key "${keyId}": it was altered, or its ` +
          'key id was changed, or the ring holds a different key under that id.',
        keyId,
      );
    }
    try {
      return PayloadMessage.decode(plaintext);
    } catch {
      // Authenticated but not a Payload: only a codec bug or a key reused by another format.
      throw new PayloadDecryptionError(
        'malformed',
        `Encrypted payload (key id "${keyId}") decrypted to something that is not a Payload.`,
        keyId,
      );
    }
  }
}

function associatedData(keyId: string, format: string): Uint8Array {
  return textEncoder.encode(`${format}/${keyId}`);
}

function metadataText(value: Uint8Array | null | undefined): string | undefined {
  return value == null ? undefined : textDecoder.decode(value);
}
