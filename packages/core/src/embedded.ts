import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { checkKeyRing, holdsCiphertext, loadKeyRing, type KeyRing } from './crypto/index.ts';
import { KeyRingError } from './errors.ts';
import type { KyselyStore } from './store/kysely-store.ts';
import { openSqliteStore } from './store/sqlite/sqlite-store.ts';

export interface EmbeddedOptions {
  /**
   * Where `tokenwarden.sqlite` lives (TOKENWARDEN_DB is resolved against it). Default: the
   * working directory. The key file is `tokenwarden.keys` beside the database.
   */
  directory?: string;
  /** Reads TOKENWARDEN_DB, TOKENWARDEN_KEYS and TOKENWARDEN_KEY_FILE. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Receives the one-time warning when a key file is generated. */
  warn?: (message: string) => void;
}

export interface Embedded {
  store: KyselyStore;
  keyRing: KeyRing;
  dbPath: string;
  /** Where the keys came from, safe to print: `TOKENWARDEN_KEYS` or the key file's path. */
  keySource: string;
}

/** The embedded default's key file: `tokenwarden.keys` in the database's own directory. */
export function embeddedKeyFile(dbPath: string): string {
  return join(dirname(resolve(dbPath)), 'tokenwarden.keys');
}

/**
 * The embedded default for one machine: a SQLite file and, unless TOKENWARDEN_KEYS or
 * TOKENWARDEN_KEY_FILE say otherwise, the key file beside it. The key file is generated (mode
 * 0600, with a warning) only for a database that holds no secret yet: for any other, a missing
 * key file means the keys are lost or elsewhere, and a fresh key would open nothing. The ring is
 * then checked against the database (`checkKeyRing`), so a wrong or missing key refuses to open
 * instead of answering `decrypt_failed` later. Only this default ever generates a key: a shared
 * database must be given one, since every machine using it needs the same keys.
 */
export async function openEmbedded(options: EmbeddedOptions = {}): Promise<Embedded> {
  const env = options.env ?? process.env;
  const directory = resolve(options.directory ?? process.cwd());
  const dbPath = resolve(directory, env.TOKENWARDEN_DB || 'tokenwarden.sqlite');
  const keyFile = resolve(env.TOKENWARDEN_KEY_FILE || embeddedKeyFile(dbPath));
  const keySource = env.TOKENWARDEN_KEYS !== undefined ? 'TOKENWARDEN_KEYS' : keyFile;
  const store = openSqliteStore({ path: dbPath });
  try {
    await store.migrate();
    const fresh = !(await holdsCiphertext(store));
    if (!fresh && env.TOKENWARDEN_KEYS === undefined && !existsSync(keyFile)) {
      throw new KeyRingError(
        `The database ${dbPath} holds encrypted secrets, but its key file ${keyFile} does not ` +
          'exist; a new key would open none of them, so none was generated. Restore the key ' +
          'file from its backup, or point TOKENWARDEN_KEY_FILE (or TOKENWARDEN_KEYS) at the keys.',
      );
    }
    const keyRing = loadKeyRing({ env, keyFile, generateIfMissing: fresh, warn: options.warn });
    await checkKeyRing(store, keyRing, keySource);
    return { store, keyRing, dbPath, keySource };
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}
