// Opens the database `serve` and `keys rotate` work on: a SQLite file (the embedded default, with
// core's key file beside it) or a Postgres URL (keys must be given: a shared database never gets
// a generated key ring). Either way the key ring is checked against the database before use.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  checkKeyRing,
  embeddedKeyFile,
  loadKeyRing,
  openEmbedded,
  openPostgresStore,
  openSqliteStore,
  TokenwardenError,
  type KeyRing,
  type KyselyStore,
} from '@tokenwarden/core';
import { CliError, oneLine } from './errors.ts';
import { redactUrl } from './redact-url.ts';

export const DB_HELP = `  --db <path|url>  SQLite file or postgres:// URL (env TOKENWARDEN_DB,
                   default ./tokenwarden.sqlite); a host list, postgres://…@h1:5432,h2:5432/db,
                   connects to the host that accepts writes (docs/operations.md)`;

export interface OpenDatabase {
  store: KyselyStore;
  keyRing: KeyRing;
  kind: 'sqlite' | 'postgres';
  /** Where the data is, safe to print: a file path, or the URL without its password. */
  location: string;
  /** Where the keys came from, safe to print. */
  keySource: string;
}

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

interface OpenOptions {
  db: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** serve: create the SQLite file and its key file when missing. keys rotate: never. */
  create: boolean;
  warn: (message: string) => void;
}

export async function openDatabase(options: OpenOptions): Promise<OpenDatabase> {
  const env = options.env ?? process.env;
  const db = options.db || env.TOKENWARDEN_DB || 'tokenwarden.sqlite';

  if (isPostgresUrl(db)) {
    const keySource =
      env.TOKENWARDEN_KEYS === undefined && env.TOKENWARDEN_KEY_FILE
        ? resolve(env.TOKENWARDEN_KEY_FILE)
        : 'TOKENWARDEN_KEYS';
    // Keys first: refusing to start must not depend on the database being reachable.
    const keyRing = loadKeyRing({ env, warn: options.warn });
    const store = openPostgresStore({ connectionString: db });
    await migrateAndCheck(store, redactUrl(db), keyRing, keySource);
    return { store, keyRing, kind: 'postgres', location: redactUrl(db), keySource };
  }

  const path = resolve(db);
  if (!existsSync(dirname(path))) {
    throw new CliError(
      `cannot create the database ${path}: directory ${dirname(path)} does not exist`,
    );
  }
  if (options.create) {
    // Core's embedded default: the key file beside the database, generated (0600, with a
    // warning) only while the database holds no secret, and checked against the database.
    const embedded = await explained(path, () =>
      openEmbedded({ env: { ...env, TOKENWARDEN_DB: path }, warn: options.warn }),
    );
    return { ...embedded, kind: 'sqlite', location: embedded.dbPath };
  }
  if (!existsSync(path)) {
    throw new CliError(`no database at ${path}; pass --db or set TOKENWARDEN_DB`);
  }
  const keySource = env.TOKENWARDEN_KEYS
    ? 'TOKENWARDEN_KEYS'
    : resolve(env.TOKENWARDEN_KEY_FILE || embeddedKeyFile(path));
  const keyRing = loadKeyRing({
    env,
    keyFile: env.TOKENWARDEN_KEYS ? undefined : keySource,
    warn: options.warn,
  });
  const store = await explained(path, async () => openSqliteStore({ path }));
  await migrateAndCheck(store, path, keyRing, keySource);
  return { store, keyRing, kind: 'sqlite', location: path, keySource };
}

/** Migrates, then checks the key ring against the database (core's `checkKeyRing`). */
async function migrateAndCheck(
  store: KyselyStore,
  location: string,
  keyRing: KeyRing,
  keySource: string,
): Promise<void> {
  try {
    await explained(location, () => store.migrate());
    await checkKeyRing(store, keyRing, keySource);
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}

/**
 * Driver errors with a code (ECONNREFUSED, SQLSTATE 28P01, SQLITE_CANTOPEN) are the operator's
 * to fix: one line naming the database. Their messages name hosts and users, never passwords.
 */
async function explained<T>(location: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (
      error instanceof Error &&
      typeof code === 'string' &&
      !(error instanceof TokenwardenError)
    ) {
      throw new CliError(
        `cannot open the database ${location}: ${oneLine(error.message)} (${code})`,
      );
    }
    throw error;
  }
}
