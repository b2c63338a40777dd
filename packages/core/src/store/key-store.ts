import type { Selectable } from 'kysely';
import type { DataKeysTable } from './schema.ts';

/** A data key as stored: wrapped, never in plaintext. */
export type DataKeyRecord = Selectable<DataKeysTable>;

/** A live process and the key ids it holds. */
export interface KeyHolder {
  processId: string;
  keyIds: string[];
  /** Epoch milliseconds, database clock. */
  seenAt: number;
}

/**
 * What the key sources keep in the database: the envelope source's wrapped data keys, and every
 * process's heartbeat with the key ids it holds (file rings and KMS alike), so that `keys rotate`
 * starts only once every live process opens the new key.
 */
export interface KeyStore {
  /** Oldest first. */
  listDataKeys(): Promise<DataKeyRecord[]>;
  /** Inserts a data key, active now or pending (`active: false`); false if the key id exists. */
  insertDataKey(key: {
    keyId: string;
    kmsKeyId: string;
    wrappedKey: string;
    active: boolean;
  }): Promise<boolean>;
  /** Makes a data key the active one (its `activatedAt` becomes the latest); false if unknown. */
  activateDataKey(keyId: string): Promise<boolean>;
  /**
   * `keys rewrap`: replaces a data key's wrapping only if it is still `expectedWrappedKey`, so two
   * rewraps never overwrite each other. The data key, and so every ciphertext, stays the same.
   */
  rewrapDataKey(
    keyId: string,
    expectedWrappedKey: string,
    wrapped: { kmsKeyId: string; wrappedKey: string },
  ): Promise<boolean>;

  /** This process's heartbeat: the key ids it holds now, seen at the database's clock. */
  putKeyHolder(processId: string, keyIds: readonly string[]): Promise<void>;
  /** Processes seen within the last `maxAgeMs` (database clock). */
  listKeyHolders(maxAgeMs: number): Promise<KeyHolder[]>;
  /** A process that stops says so, so that it does not hold up a rotation until it ages out. */
  removeKeyHolder(processId: string): Promise<void>;
}
