import { join, resolve } from 'node:path';
import { loadKeyRing, type KeyRing } from './crypto/index.ts';
import type { KyselyStore } from './store/kysely-store.ts';
import { openSqliteStore } from './store/sqlite/sqlite-store.ts';

export interface EmbeddedOptions {
  /** Where `tokenwarden.sqlite` and `tokenwarden.keys` live. Default: the working directory. */
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
}

/**
 * The embedded default for one machine: a SQLite file and, unless TOKENWARDEN_KEYS or
 * TOKENWARDEN_KEY_FILE say otherwise, a key file next to it that is generated (mode 0600, with
 * a warning) on first use. Only this default ever generates a key: a shared database must be
 * given one, since every machine using it needs the same keys.
 */
export async function openEmbedded(options: EmbeddedOptions = {}): Promise<Embedded> {
  const env = options.env ?? process.env;
  const directory = resolve(options.directory ?? process.cwd());
  const dbPath = resolve(directory, env.TOKENWARDEN_DB || 'tokenwarden.sqlite');
  const keyRing = loadKeyRing({
    env,
    keyFile: env.TOKENWARDEN_KEY_FILE || join(directory, 'tokenwarden.keys'),
    generateIfMissing: true,
    warn: options.warn,
  });
  const store = openSqliteStore({ path: dbPath });
  await store.migrate();
  return { store, keyRing, dbPath };
}
