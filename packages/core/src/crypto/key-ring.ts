import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { inspect } from 'node:util';
import { KeyRingError } from '../errors.ts';

/** Length of every key in bytes (AES-256). */
export const KEY_LENGTH = 32;

/** What a key id may look like. Ids are not secret: they appear in ciphertexts and error messages. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** The command printed in error messages to generate a key ring value for TOKENWARDEN_KEYS. */
export const GENERATE_KEY_COMMAND = `node -e "console.log('k1:'+require('crypto').randomBytes(32).toString('base64'))"`;

const FORMAT = '<key id>:<base64 of 32 random bytes>';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface KeyRingKey {
  readonly id: string;
  readonly key: Buffer;
}

/**
 * The keys that encrypt stored secrets. The first key is active: it encrypts everything new. The
 * others only decrypt ciphertexts written before a rotation, until those are re-encrypted.
 *
 * Key material never leaves through `JSON.stringify`, `util.inspect` or an error message; only
 * `get()` and `serialize()` reveal it.
 */
export class KeyRing {
  #keys: ReadonlyMap<string, Buffer>;
  #ids: readonly string[];
  #onMissingKey: ((keyId: string) => void) | undefined;

  /** Throws KeyRingError on an empty list, a malformed id, a key that is not 32 bytes or a duplicate id. */
  constructor(keys: readonly KeyRingKey[]) {
    if (keys.length === 0) {
      throw new KeyRingError(`A key ring needs at least one key (${FORMAT}).`);
    }
    const map = new Map<string, Buffer>();
    keys.forEach(({ id, key }, index) => {
      const position = `key ${index + 1}`;
      if (typeof id !== 'string' || !KEY_ID_PATTERN.test(id)) {
        throw new KeyRingError(`${position}: key id must match ${KEY_ID_PATTERN.source}.`);
      }
      if (!Buffer.isBuffer(key) || key.length !== KEY_LENGTH) {
        throw new KeyRingError(`${position} (key id "${id}"): key must be exactly 32 bytes.`);
      }
      if (map.has(id)) {
        throw new KeyRingError(`${position}: key id "${id}" appears more than once.`);
      }
      map.set(id, Buffer.from(key));
    });
    this.#keys = map;
    this.#ids = Object.freeze([...map.keys()]);
  }

  /**
   * Parses `<key id>:<base64 of 32 random bytes>` entries separated by commas (and/or newlines, so
   * a key file reads the same way). Whitespace around entries is ignored, and so are lines that
   * start with `#`. The first entry is the active key.
   */
  static parse(spec: string): KeyRing {
    if (typeof spec !== 'string') {
      throw new KeyRingError(`Key ring must be a string of ${FORMAT} entries.`);
    }
    const entries = spec
      .split(/\r?\n|\r/)
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n')
      .split(/[,\n]/)
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    if (entries.length === 0) {
      throw new KeyRingError(
        `Key ring is empty: expected one or more comma-separated ${FORMAT} entries.`,
      );
    }
    const seen = new Map<string, number>();
    const keys = entries.map((entry, index): KeyRingKey => {
      const position = `entry ${index + 1}`;
      const colon = entry.indexOf(':');
      // Never echo the entry itself: it may be nothing but a key pasted without its id.
      if (colon === -1) {
        throw new KeyRingError(`Key ring ${position} is malformed: expected ${FORMAT}.`);
      }
      const id = entry.slice(0, colon).trim();
      const encoded = entry.slice(colon + 1).trim();
      if (!KEY_ID_PATTERN.test(id)) {
        throw new KeyRingError(
          `Key ring ${position} is malformed: the key id before ":" must be 1 to 32 characters ` +
            `of A-Z, a-z, 0-9, "_" or "-" (expected ${FORMAT}).`,
        );
      }
      const named = `Key ring ${position} (key id "${id}")`;
      const previous = seen.get(id);
      if (previous !== undefined) {
        throw new KeyRingError(
          `${named} repeats the key id of entry ${previous}; every key id must be unique.`,
        );
      }
      seen.set(id, index + 1);
      if (encoded === '') {
        throw new KeyRingError(`${named} has no key after ":" (expected ${FORMAT}).`);
      }
      if (!BASE64.test(encoded) || encoded.length % 4 !== 0) {
        throw new KeyRingError(
          `${named}: the key is not valid base64 (standard alphabet A-Z a-z 0-9 + /, "=" padding).`,
        );
      }
      const key = Buffer.from(encoded, 'base64');
      if (key.toString('base64') !== encoded) {
        // Spare bits set in the last character: not what any base64 encoder produces.
        throw new KeyRingError(`${named}: the key is not valid base64 (non-canonical encoding).`);
      }
      if (key.length !== KEY_LENGTH) {
        throw new KeyRingError(
          `${named}: the key is ${key.length} bytes; it must be exactly ${KEY_LENGTH} random bytes ` +
            `in base64 (44 characters).`,
        );
      }
      return { id, key };
    });
    return new KeyRing(keys);
  }

  /** A ring with one freshly generated key. `id` defaults to `k<yyyymmdd>-<6 random hex>`. */
  static generate(id?: string): KeyRing {
    return new KeyRing([{ id: id ?? generateKeyId(), key: randomBytes(KEY_LENGTH) }]);
  }

  /** The id of the key that encrypts new ciphertexts. */
  get activeKeyId(): string {
    return this.#ids[0] as string;
  }

  /** Every key id, active first. */
  get keyIds(): readonly string[] {
    return this.#ids;
  }

  /** A copy of the key with this id, or undefined (and the missing-key listener is told). */
  get(id: string): Buffer | undefined {
    let key = this.#keys.get(id);
    if (key === undefined && this.#onMissingKey !== undefined) {
      // The listener may adopt a re-read ring at once (a key file): look again.
      this.#onMissingKey(id);
      key = this.#keys.get(id);
    }
    return key === undefined ? undefined : Buffer.from(key);
  }

  /**
   * Takes the keys of `next`, in place: the broker, the stores and the caches hold this object,
   * so a key source's reload reaches them all without a restart (see `LiveKeys`).
   */
  adopt(next: KeyRing): void {
    this.#keys = next.#keys;
    this.#ids = next.#ids;
  }

  /** Called, synchronously, with every key id asked for that the ring does not hold. */
  onMissingKey(listener: ((keyId: string) => void) | undefined): void {
    this.#onMissingKey = listener;
  }

  /** The ring in the format `parse` reads: comma-separated, active key first. Contains the keys. */
  serialize(): string {
    return this.#ids.map((id) => `${id}:${this.#keys.get(id)?.toString('base64')}`).join(',');
  }

  /**
   * A new ring whose active key is freshly generated, keeping every current key for decryption
   * (`keys rotate`). Throws KeyRingError if `id` is already in the ring.
   */
  withNewActiveKey(id?: string): KeyRing {
    let newId = id ?? generateKeyId();
    while (id === undefined && this.#keys.has(newId)) newId = generateKeyId();
    if (this.#keys.has(newId)) {
      throw new KeyRingError(`Key id "${newId}" is already in the key ring; choose another id.`);
    }
    return new KeyRing([
      { id: newId, key: randomBytes(KEY_LENGTH) },
      ...this.#ids.map((existing) => ({ id: existing, key: this.#keys.get(existing) as Buffer })),
    ]);
  }

  /** Key ids only: a ring logged or serialized by accident must not leak its keys. */
  toJSON(): { activeKeyId: string; keyIds: readonly string[] } {
    return { activeKeyId: this.activeKeyId, keyIds: this.#ids };
  }

  [inspect.custom](): string {
    return `KeyRing { activeKeyId: '${this.activeKeyId}', keyIds: [${this.#ids.map((id) => `'${id}'`).join(', ')}] }`;
  }
}

function generateKeyId(): string {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  return `k${day}-${randomBytes(3).toString('hex')}`;
}

export interface LoadKeyRingOptions {
  /** Environment to read TOKENWARDEN_KEYS and TOKENWARDEN_KEY_FILE from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Key file path; takes precedence over TOKENWARDEN_KEY_FILE. */
  keyFile?: string;
  /**
   * Create the key file with a new key if it does not exist. Only the embedded SQLite default
   * passes true: a database shared by several machines must never get a key that only one of
   * them knows.
   */
  generateIfMissing?: boolean;
  /** Receives operator-facing warnings (new key generated, key file readable by others). */
  warn?: (message: string) => void;
}

/**
 * Loads the key ring from, in order: TOKENWARDEN_KEYS; the key file (`keyFile`, else
 * TOKENWARDEN_KEY_FILE); a newly generated key file when `generateIfMissing` is set. Throws
 * KeyRingError when nothing is configured, or what is configured is unreadable or malformed.
 */
export function loadKeyRing(options: LoadKeyRingOptions = {}): KeyRing {
  const env = options.env ?? process.env;
  const warn = options.warn ?? ((message: string) => process.emitWarning(message, 'Tokenwarden'));

  const inline = env.TOKENWARDEN_KEYS;
  if (inline !== undefined) {
    return withSource('TOKENWARDEN_KEYS', () => KeyRing.parse(inline));
  }

  const configured = options.keyFile ?? nonEmpty(env.TOKENWARDEN_KEY_FILE);
  if (configured === undefined) {
    throw new KeyRingError(
      options.generateIfMissing
        ? 'generateIfMissing needs a key file path (keyFile or TOKENWARDEN_KEY_FILE) to create.'
        : 'No encryption keys are configured. Tokenwarden encrypts every stored token and client ' +
            'secret, and every process that shares a database must hold the same keys, so a ' +
            'shared database never gets a generated key. Generate a key ring once with\n' +
            `  ${GENERATE_KEY_COMMAND}\n` +
            'and give the output to every Tokenwarden process as TOKENWARDEN_KEYS ' +
            `(format ${FORMAT}[,...], active key first), or put it in a file named by ` +
            'TOKENWARDEN_KEY_FILE. Keep a backup: losing the keys makes every stored credential ' +
            'unreadable.',
    );
  }
  const path = resolve(configured);

  const existing = readKeyFile(path, warn);
  if (existing !== undefined) return existing;
  if (!options.generateIfMissing) {
    throw new KeyRingError(
      `Key file ${path} does not exist. Create it (one ${FORMAT} entry, e.g. from\n` +
        `  ${GENERATE_KEY_COMMAND}\n` +
        `) with mode 0600, or set TOKENWARDEN_KEYS.`,
    );
  }

  const ring = KeyRing.generate();
  if (
    writeKeyFile(path, ring, { replace: false, comment: `Generated ${new Date().toISOString()}.` })
  ) {
    warn(
      `Tokenwarden generated a new encryption key (id "${ring.activeKeyId}") and saved it to ` +
        `${path}. Every stored token and client secret is encrypted with it: if this file is ` +
        'lost, every stored credential becomes unreadable and every connection must be ' +
        'authorized again. Back the file up now, or manage the key yourself with ' +
        'TOKENWARDEN_KEYS (or TOKENWARDEN_KEY_FILE).',
    );
    return ring;
  }
  // Another process created the file first: use its key, never ours.
  const theirs = readKeyFile(path, warn);
  if (theirs === undefined) {
    throw new KeyRingError(`Key file ${path} appeared and vanished while it was being created.`);
  }
  return theirs;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function withSource<T>(source: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof KeyRingError) {
      throw new KeyRingError(`${source}: ${error.message}`);
    }
    throw error;
  }
}

/** The parsed key file, or undefined if it does not exist. */
function readKeyFile(path: string, warn: (message: string) => void): KeyRing | undefined {
  let text: string;
  let mode: number;
  try {
    const fd = openSync(path, 'r');
    try {
      mode = fstatSync(fd).mode & 0o777;
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new KeyRingError(`Key file ${path} could not be read (${errnoCode(error) ?? 'error'}).`);
  }
  const ring = withSource(`Key file ${path}`, () => KeyRing.parse(text));
  if (process.platform !== 'win32') {
    if ((mode & 0o077) !== 0) {
      warn(
        `Key file ${path} is readable or writable by other users (mode ` +
          `${mode.toString(8).padStart(4, '0')}); it holds the keys to every stored credential. ` +
          `Run: chmod 600 ${path}`,
      );
    }
  }
  return ring;
}

/**
 * Writes a key file the way a file holding every credential's key must be written (see
 * `writePrivateFile`). `replace: false` never overwrites: it returns false if the file exists
 * (another process generated it first). `replace: true` swaps the file atomically.
 */
export function writeKeyFile(
  path: string,
  ring: KeyRing,
  options: { replace: boolean; comment: string },
): boolean {
  const content =
    '# Tokenwarden encryption key ring. Every stored token and client secret is encrypted with\n' +
    '# these keys: if this file is lost, every stored credential becomes unreadable. Back it up.\n' +
    `# Format: ${FORMAT}, comma- or newline-separated; the first key encrypts new secrets.\n` +
    `# ${options.comment}\n` +
    `${ring.serialize()}\n`;
  try {
    return writePrivateFile(path, content, options);
  } catch (error) {
    throw new KeyRingError(
      `Key file ${path} could not be written (${errnoCode(error) ?? 'error'}).`,
    );
  }
}

/**
 * Writes a secret to a file: mode 0600 whatever the umask, through a private temporary file
 * (`wx`) that is written and synced, then put in place (and the directory synced), so a reader
 * never sees a half-written file. `replace: false` hard-links it into place, which fails if the
 * file exists: concurrent writers never overwrite each other, and false says another came first.
 * `replace: true` renames it over whatever is there. Throws the file system's error.
 */
export function writePrivateFile(
  path: string,
  content: string,
  options: { replace: boolean },
): boolean {
  const dir = dirname(path);
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      fchmodSync(fd, 0o600); // Whatever the umask.
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.replace) renameSync(temporary, path);
    else {
      try {
        linkSync(temporary, path);
      } catch (error) {
        if (errnoCode(error) === 'EEXIST') return false;
        throw error;
      }
    }
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Already gone (renamed), or never created.
    }
  }
  syncDirectory(dir);
  return true;
}

/** Makes the new directory entry durable: a key lost to a power cut loses every credential. */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not supported on every platform; the file itself is already synced.
  }
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String((error as { code: unknown }).code)
    : undefined;
}
