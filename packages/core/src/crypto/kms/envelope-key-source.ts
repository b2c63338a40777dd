import { randomBytes } from 'node:crypto';
import type { DataKeyRecord, KeyStore } from '../../store/key-store.ts';
import { KeyRingError } from '../../errors.ts';
import { KeyRing } from '../key-ring.ts';
import type { KeySource } from '../key-source.ts';

/** Key-value pairs the KMS binds a wrapped key to: unwrapping needs the very same pairs. */
export type EncryptionContext = Readonly<Record<string, string>>;

/**
 * What envelope encryption needs of a KMS: one implementation per KMS, in one file (AWS KMS:
 * `aws-kms.ts`). The KMS key never leaves the KMS; data keys leave it only wrapped, and are
 * unwrapped into this process's memory. Failures to reach the KMS throw
 * `KeySourceUnavailableError`; a refusal (key disabled, wrong context) throws `KeyRingError`.
 */
export interface KeyWrapper {
  /** A new 32-byte data key, and the same key wrapped under `kmsKeyId`. */
  generateDataKey(
    kmsKeyId: string,
    context: EncryptionContext,
  ): Promise<{ key: Buffer; wrapped: Buffer }>;
  /** The data key inside `wrapped`, which `kmsKeyId` wrapped with `context`. */
  unwrap(wrapped: Buffer, kmsKeyId: string, context: EncryptionContext): Promise<Buffer>;
  /** A data key wrapped under `kmsKeyId` (`keys rewrap`). */
  wrap(key: Buffer, kmsKeyId: string, context: EncryptionContext): Promise<Buffer>;
}

export interface EnvelopeKeySourceOptions {
  wrapper: KeyWrapper;
  /** The KMS key new data keys are wrapped under. */
  kmsKeyId: string;
  store: KeyStore;
  /** Binds every data key to this deployment (e.g. `{ deployment: 'eu-prod' }`); optional. */
  context?: EncryptionContext;
}

/**
 * Envelope encryption: the ring's keys are data keys from the KMS, stored in the database only
 * wrapped (`data_keys`), each unwrapped once per process and kept in memory. The first load on an
 * empty database creates the first data key. Each wrapped key is bound to its key id (and the
 * configured context), so a wrapped key moved to another id does not unwrap.
 */
export class EnvelopeKeySource implements KeySource {
  readonly description: string;
  readonly #options: EnvelopeKeySourceOptions;
  /** Unwrapped data keys by key id: a data key never changes, only its wrapping. */
  readonly #unwrapped = new Map<string, Buffer>();

  constructor(options: EnvelopeKeySourceOptions) {
    this.#options = options;
    this.description = `KMS key ${options.kmsKeyId}`;
  }

  async load(): Promise<KeyRing> {
    let rows = await this.#options.store.listDataKeys();
    if (rows.length === 0) {
      await this.#insertDataKey(true);
      rows = await this.#options.store.listDataKeys();
    }
    const active = activeOf(rows);
    if (active === undefined) {
      throw new KeyRingError(
        'The database holds data keys but none is active: run tokenwarden keys rotate to finish the rotation it began.',
      );
    }
    const ordered = [active, ...rows.filter((row) => row !== active)];
    const keys = [];
    for (const row of ordered) keys.push({ id: row.keyId, key: await this.#unwrap(row) });
    return new KeyRing(keys);
  }

  /**
   * `keys rotate`, first step: a new data key every process loads but none seals with yet, or the
   * one a rotation that stopped before activating it left. Returns its key id.
   */
  async pendingKey(): Promise<string> {
    const rows = await this.#options.store.listDataKeys();
    const pending = rows.find((row) => row.activatedAt === null);
    return pending?.keyId ?? (await this.#insertDataKey(false));
  }

  /**
   * `keys rewrap`: moves every data key under `toKmsKeyId`, one row at a time, each replaced only
   * if unchanged meanwhile. No ciphertext changes, so a rewrap stopped halfway is simply run again.
   */
  async rewrap(
    toKmsKeyId: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<{ rewrapped: number; already: number }> {
    const { store, wrapper } = this.#options;
    const rows = await store.listDataKeys();
    let rewrapped = 0;
    let already = 0;
    for (const row of rows) {
      if (row.kmsKeyId === toKmsKeyId) already += 1;
      else {
        const key = await this.#unwrap(row);
        const wrapped = await wrapper.wrap(key, toKmsKeyId, this.#context(row.keyId));
        await store.rewrapDataKey(row.keyId, row.wrappedKey, {
          kmsKeyId: toKmsKeyId,
          wrappedKey: wrapped.toString('base64'),
        });
        rewrapped += 1;
      }
      onProgress?.(rewrapped + already, rows.length);
    }
    return { rewrapped, already };
  }

  async #insertDataKey(active: boolean): Promise<string> {
    const { store, wrapper, kmsKeyId } = this.#options;
    const keyId = `d${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`;
    const { key, wrapped } = await wrapper.generateDataKey(kmsKeyId, this.#context(keyId));
    const inserted = await store.insertDataKey({
      keyId,
      kmsKeyId,
      wrappedKey: wrapped.toString('base64'),
      // Two processes starting on an empty database: both insert, the first active one wins.
      active: active && (await store.listDataKeys()).length === 0,
    });
    if (inserted) this.#unwrapped.set(keyId, key);
    return keyId;
  }

  async #unwrap(row: DataKeyRecord): Promise<Buffer> {
    let key = this.#unwrapped.get(row.keyId);
    if (key === undefined) {
      key = await this.#options.wrapper.unwrap(
        Buffer.from(row.wrappedKey, 'base64'),
        row.kmsKeyId,
        this.#context(row.keyId),
      );
      this.#unwrapped.set(row.keyId, key);
    }
    return key;
  }

  #context(keyId: string): EncryptionContext {
    return { ...this.#options.context, tokenwarden_key_id: keyId };
  }
}

/** The data key activated last. */
function activeOf(rows: readonly DataKeyRecord[]): DataKeyRecord | undefined {
  let active: DataKeyRecord | undefined;
  for (const row of rows) {
    if (
      row.activatedAt !== null &&
      (active === undefined || row.activatedAt > active.activatedAt!)
    ) {
      active = row;
    }
  }
  return active;
}
