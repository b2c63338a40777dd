import { randomBytes } from 'node:crypto';
import type { KeyStore } from '../store/key-store.ts';
import { checkKeyRing, type KeyCheckStore } from './key-check.ts';
import type { KeyRing } from './key-ring.ts';
import type { KeySource } from './key-source.ts';

/** How often a process reloads its keys and says which it holds. */
export const KEY_HEARTBEAT_MS = 10_000;
/** A process not seen for this long is taken for gone: it no longer holds up a rotation. */
export const KEY_HOLDER_MAX_AGE_MS = 3 * KEY_HEARTBEAT_MS;
/** A ciphertext under an unknown key id reloads the keys at most this often. */
const MISSING_KEY_RELOAD_MS = 1_000;

export interface LiveKeysOptions {
  source: KeySource;
  /** The ring every part of the process holds; reloads change it in place (`KeyRing.adopt`). */
  ring: KeyRing;
  store: KeyCheckStore & { keys: KeyStore };
  heartbeatMs?: number;
  /** A reload that failed (the ring in use is kept) or brought new keys. Never key material. */
  log: (message: string) => void;
}

/**
 * Keeps a running process's key ring current: reloads its source on every heartbeat, on demand
 * (SIGHUP) and when a ciphertext names a key id the ring lacks, checks new keys against the
 * database before using them, and publishes the key ids it holds (`KeyStore.putKeyHolder`) so
 * that `keys rotate` starts only once every live process opens the new key. A reload that fails
 * (the KMS unreachable) keeps the keys already held: the process goes on serving.
 */
export class LiveKeys {
  readonly processId = `${process.pid}-${randomBytes(4).toString('hex')}`;
  readonly #options: LiveKeysOptions;
  #reloading: Promise<void> | undefined;
  #lastMissingReload = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Key ids checked against the database (`checkKeyRing`): the ring's at start was. */
  readonly #checked: Set<string>;

  constructor(options: LiveKeysOptions) {
    this.#options = options;
    this.#checked = new Set(options.ring.keyIds);
  }

  /** Publishes the keys held and starts the heartbeat. */
  async start(): Promise<void> {
    const { ring } = this.#options;
    ring.onMissingKey((keyId) => {
      const now = Date.now();
      if (now - this.#lastMissingReload < MISSING_KEY_RELOAD_MS) return;
      this.#lastMissingReload = now;
      this.#options.log(`a ciphertext names key "${keyId}", which is not loaded: reloading keys`);
      this.#adoptNow(keyId);
      void this.reload();
    });
    await this.#heartbeat();
    const every = this.#options.heartbeatMs ?? KEY_HEARTBEAT_MS;
    this.#timer = setInterval(() => void this.reload(), every);
    this.#timer.unref();
  }

  /** Reloads the keys and publishes them; one reload at a time (a second call joins it). */
  reload(): Promise<void> {
    this.#reloading ??= this.#reload().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#options.ring.onMissingKey(undefined);
    await this.#reloading;
    await this.#options.store.keys.removeKeyHolder(this.processId).catch(() => {});
  }

  /**
   * A source that reads synchronously: the ring takes the new key before `get` returns. Not
   * key-checked first: AES-GCM's tag refuses a wrong key anyway, and the reload that follows
   * checks it against the database (a failed check is logged).
   */
  #adoptNow(keyId: string): void {
    const { source, ring } = this.#options;
    if (source.loadNow === undefined) return;
    try {
      const next = source.loadNow();
      if (next.keyIds.includes(keyId)) ring.adopt(next);
    } catch {
      // The reload that follows logs why.
    }
  }

  async #reload(): Promise<void> {
    const { source, ring, store, log } = this.#options;
    try {
      const next = await source.load();
      const unchecked = next.keyIds.filter((id) => !this.#checked.has(id));
      if (unchecked.length > 0) {
        await checkKeyRing(store, next, source.description);
        for (const id of unchecked) this.#checked.add(id);
      }
      const same =
        next.activeKeyId === ring.activeKeyId && next.keyIds.join() === ring.keyIds.join();
      if (!same) {
        ring.adopt(next);
        log(
          `keys reloaded from ${source.description}: active ${next.activeKeyId}, ` +
            `held ${next.keyIds.join(', ')}`,
        );
      }
    } catch (error) {
      log(
        `keys not reloaded from ${source.description}, the ones held stay in use: ${(error as Error).message}`,
      );
    }
    await this.#heartbeat();
  }

  async #heartbeat(): Promise<void> {
    try {
      await this.#options.store.keys.putKeyHolder(this.processId, this.#options.ring.keyIds);
    } catch (error) {
      this.#options.log(`key heartbeat not written: ${(error as Error).message}`);
    }
  }
}
