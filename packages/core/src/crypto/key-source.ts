import { KeyRingError } from '../errors.ts';
import { loadKeyRing, type KeyRing, type LoadKeyRingOptions } from './key-ring.ts';

/**
 * Where a process's key ring comes from: a key file or TOKENWARDEN_KEYS (`fileKeySource`), or
 * data keys wrapped by a KMS (`EnvelopeKeySource`). `load` runs at start, on SIGHUP, on every
 * heartbeat and when a ciphertext names a key id the ring lacks (see `LiveKeys`); the ring it
 * returns is what the synchronous hand-out path uses, so no hand-out ever waits on a source.
 */
export interface KeySource {
  /** Where the keys come from, safe to print (a path, a variable's name, a KMS key id). */
  readonly description: string;
  /** The keys as they are now, active first. Throws KeyRingError (or its subclass below). */
  load(): Promise<KeyRing>;
  /**
   * The same, synchronously, for a source that can (a file): a ciphertext under a key id the
   * ring lacks is then opened by the very request that met it, not only by the next one.
   */
  loadNow?(): KeyRing;
}

/** The key source could not be reached (a KMS down or unreachable): retry, nothing is wrong. */
export class KeySourceUnavailableError extends KeyRingError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = 'KeySourceUnavailableError';
    // The SDK's error may carry request details: kept as the cause, out of the message.
    if (options?.cause !== undefined)
      Object.defineProperty(this, 'cause', { value: options.cause });
  }
}

/**
 * TOKENWARDEN_KEYS or a key file (`loadKeyRing`), read again on every `load`: a key added to the
 * file reaches a running process at its next reload. Warnings (a key file readable by others)
 * are given on the first load only.
 */
export function fileKeySource(description: string, options: LoadKeyRingOptions): KeySource {
  let loaded = false;
  const loadNow = () => {
    const ring = loadKeyRing(loaded ? { ...options, warn: () => {} } : options);
    loaded = true;
    return ring;
  };
  return { description, loadNow, load: async () => loadNow() };
}
