import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

/** Length of every codec key in bytes (AES-256). */
export const CODEC_KEY_LENGTH = 32;

/** What a key id may look like. Ids are not secret: every encrypted payload names its key id. */
export const CODEC_KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** Prints a fresh key ring entry with id k1. */
export const GENERATE_CODEC_KEY_COMMAND = `node -e "console.log('k1:'+require('crypto').randomBytes(32).toString('base64'))"`;

const FORMAT = '<key id>:<base64 of 32 random bytes>';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Thrown for a key ring that is missing or malformed. Its message never contains key material. */
export class CodecKeyRingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecKeyRingError';
  }
}

export interface CodecKey {
  readonly id: string;
  /** Exactly 32 bytes. */
  readonly key: Uint8Array;
}

/**
 * The keys of an {@link EncryptionCodec}. The first key is active: it encrypts every new payload.
 * The others only decrypt payloads written before a rotation, which stay in workflow histories
 * until those are deleted, so an old key leaves the ring only after the retention period of every
 * namespace that used it.
 *
 * The text format is the one `TOKENWARDEN_KEYS` uses: `<key id>:<base64 of 32 bytes>[,...]`,
 * active key first. Use a different key for the codec than for Tokenwarden's store.
 *
 * Key material never leaves through `JSON.stringify`, `util.inspect` or an error message.
 */
export class CodecKeyRing {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #ids: readonly string[];

  /** Throws CodecKeyRingError on an empty list, a malformed id, a key that is not 32 bytes or a duplicate id. */
  constructor(keys: readonly CodecKey[]) {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new CodecKeyRingError(`A codec key ring needs at least one key (${FORMAT}).`);
    }
    const map = new Map<string, Buffer>();
    keys.forEach(({ id, key }, index) => {
      const position = `key ${index + 1}`;
      if (typeof id !== 'string' || !CODEC_KEY_ID_PATTERN.test(id)) {
        throw new CodecKeyRingError(
          `${position}: key id must be 1 to 32 characters of A-Z, a-z, 0-9, "_" or "-".`,
        );
      }
      if (!(key instanceof Uint8Array) || key.length !== CODEC_KEY_LENGTH) {
        throw new CodecKeyRingError(
          `${position} (key id "${id}"): key must be exactly ${CODEC_KEY_LENGTH} bytes.`,
        );
      }
      if (map.has(id)) {
        throw new CodecKeyRingError(`${position}: key id "${id}" appears more than once.`);
      }
      map.set(id, Buffer.from(key));
    });
    this.#keys = map;
    this.#ids = Object.freeze([...map.keys()]);
  }

  /**
   * Parses `<key id>:<base64 of 32 random bytes>` entries separated by commas or newlines;
   * whitespace around entries and lines starting with `#` are ignored. The first entry is active.
   */
  static parse(spec: string): CodecKeyRing {
    if (typeof spec !== 'string') {
      throw new CodecKeyRingError(`A codec key ring must be a string of ${FORMAT} entries.`);
    }
    const entries = spec
      .split(/\r?\n|\r/)
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n')
      .split(/[,\n]/)
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    if (entries.length === 0) {
      throw new CodecKeyRingError(`The codec key ring is empty: expected ${FORMAT}[,...].`);
    }
    const keys = entries.map((entry, index): CodecKey => {
      const position = `entry ${index + 1}`;
      const colon = entry.indexOf(':');
      // Never echo the entry: it may be nothing but a key pasted without its id.
      if (colon === -1) {
        throw new CodecKeyRingError(`Codec key ring ${position} is malformed: expected ${FORMAT}.`);
      }
      const id = entry.slice(0, colon).trim();
      const encoded = entry.slice(colon + 1).trim();
      if (!CODEC_KEY_ID_PATTERN.test(id)) {
        throw new CodecKeyRingError(
          `Codec key ring ${position} is malformed: the key id before ":" must be 1 to 32 ` +
            `characters of A-Z, a-z, 0-9, "_" or "-" (expected ${FORMAT}).`,
        );
      }
      const named = `Codec key ring ${position} (key id "${id}")`;
      if (!BASE64.test(encoded) || encoded.length % 4 !== 0 || encoded === '') {
        throw new CodecKeyRingError(`${named}: the key is not valid base64 (expected ${FORMAT}).`);
      }
      const key = Buffer.from(encoded, 'base64');
      if (key.toString('base64') !== encoded || key.length !== CODEC_KEY_LENGTH) {
        throw new CodecKeyRingError(
          `${named}: the key must be exactly ${CODEC_KEY_LENGTH} random bytes in canonical base64 ` +
            '(44 characters).',
        );
      }
      return { id, key };
    });
    return new CodecKeyRing(keys);
  }

  /** A ring with one freshly generated key, for tests and for generating a first key. */
  static generate(id = 'k1'): CodecKeyRing {
    return new CodecKeyRing([{ id, key: randomBytes(CODEC_KEY_LENGTH) }]);
  }

  /** The id of the key that encrypts new payloads. */
  get activeKeyId(): string {
    return this.#ids[0] as string;
  }

  /** Every key id, active first. */
  get keyIds(): readonly string[] {
    return this.#ids;
  }

  has(id: string): boolean {
    return this.#keys.has(id);
  }

  /** The key with this id, or undefined. Internal to the codec: do not log what it returns. */
  key(id: string): Buffer | undefined {
    return this.#keys.get(id);
  }

  /**
   * A new ring with `key` as its active key and every current key kept for decryption: the first
   * step of a rotation. Throws CodecKeyRingError if the id is already in the ring.
   */
  withActiveKey(key: CodecKey): CodecKeyRing {
    if (this.#keys.has(key.id)) {
      throw new CodecKeyRingError(`Key id "${key.id}" is already in the codec key ring.`);
    }
    return new CodecKeyRing([key, ...this.#ids.map((id) => ({ id, key: this.#keys.get(id)! }))]);
  }

  /** The ring in the format `parse` reads, active key first. Contains the keys. */
  serialize(): string {
    return this.#ids.map((id) => `${id}:${this.#keys.get(id)!.toString('base64')}`).join(',');
  }

  /** Key ids only: a ring logged or serialized by accident must not leak its keys. */
  toJSON(): { activeKeyId: string; keyIds: readonly string[] } {
    return { activeKeyId: this.activeKeyId, keyIds: this.#ids };
  }

  [inspect.custom](): string {
    return `CodecKeyRing { activeKeyId: '${this.activeKeyId}', keyIds: [${this.#ids.map((id) => `'${id}'`).join(', ')}] }`;
  }
}
