// Opens the database `serve` and `keys rotate` work on: a SQLite file (the embedded default, with
// core's key file beside it) or a Postgres URL (keys must be given: a shared database never gets
// a generated key ring). Either way the key ring is checked against the database before use.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  AwsKms,
  checkKeyRing,
  embeddedKeyFile,
  EnvelopeKeySource,
  fileKeySource,
  loadKeyRing,
  openEmbedded,
  openPostgresStore,
  openSqliteStore,
  TokenwardenError,
  type KeyRing,
  type KeySource,
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
  /** Reads the keys again (SIGHUP, heartbeat, an unknown key id): see `LiveKeys`. */
  source: KeySource;
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
    const location = redactUrl(db);
    if (kmsKeyId(env) !== undefined) {
      return openWithKms(openPostgresStore({ connectionString: db }), 'postgres', location, env);
    }
    const keySource =
      env.TOKENWARDEN_KEYS === undefined && env.TOKENWARDEN_KEY_FILE
        ? resolve(env.TOKENWARDEN_KEY_FILE)
        : 'TOKENWARDEN_KEYS';
    // Keys first: refusing to start must not depend on the database being reachable.
    const keyRing = loadKeyRing({ env, warn: options.warn });
    const source = fileKeySource(keySource, { env, warn: () => {} });
    const store = openPostgresStore({ connectionString: db });
    await migrateAndCheck(store, location, keyRing, keySource);
    return { store, keyRing, kind: 'postgres', location, keySource, source };
  }

  const path = resolve(db);
  if (!existsSync(dirname(path))) {
    throw new CliError(
      `cannot create the database ${path}: directory ${dirname(path)} does not exist`,
    );
  }
  if (kmsKeyId(env) !== undefined) {
    if (!options.create && !existsSync(path)) {
      throw new CliError(`no database at ${path}; pass --db or set TOKENWARDEN_DB`);
    }
    const store = await explained(path, async () => openSqliteStore({ path }));
    return openWithKms(store, 'sqlite', path, env);
  }
  if (options.create) {
    // Core's embedded default: the key file beside the database, generated (0600, with a
    // warning) only while the database holds no secret, and checked against the database.
    const embedded = await explained(path, () =>
      openEmbedded({ env: { ...env, TOKENWARDEN_DB: path }, warn: options.warn }),
    );
    const keyFile = env.TOKENWARDEN_KEYS === undefined ? embedded.keySource : undefined;
    const source = fileKeySource(embedded.keySource, { env, keyFile, warn: () => {} });
    return { ...embedded, kind: 'sqlite', location: embedded.dbPath, source };
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
  const source = fileKeySource(keySource, {
    env,
    keyFile: env.TOKENWARDEN_KEYS ? undefined : keySource,
    warn: () => {},
  });
  const store = await explained(path, async () => openSqliteStore({ path }));
  await migrateAndCheck(store, path, keyRing, keySource);
  return { store, keyRing, kind: 'sqlite', location: path, keySource, source };
}

/** TOKENWARDEN_KMS_KEY_ID: the KMS key that wraps the data keys (envelope encryption). */
function kmsKeyId(env: NodeJS.ProcessEnv): string | undefined {
  return env.TOKENWARDEN_KMS_KEY_ID || undefined;
}

/**
 * TOKENWARDEN_KMS_CONTEXT: `name=value[,name=value...]`, the encryption context every data key
 * is bound to (e.g. `deployment=eu-prod`), so a database copied to another deployment does not
 * unwrap there.
 */
export function encryptionContext(env: NodeJS.ProcessEnv): Record<string, string> {
  const spec = env.TOKENWARDEN_KMS_CONTEXT?.trim();
  const context: Record<string, string> = {};
  if (!spec) return context;
  for (const pair of spec.split(',')) {
    const match = /^\s*([A-Za-z0-9_.:/-]{1,128})=([^,]{1,256})$/.exec(pair);
    if (!match || match[1] === 'tokenwarden_key_id') {
      throw new CliError(
        'TOKENWARDEN_KMS_CONTEXT must be name=value pairs separated by commas ' +
          '(names of A-Z a-z 0-9 _ . : / -, not tokenwarden_key_id)',
      );
    }
    context[match[1]!] = match[2]!.trim();
  }
  return context;
}

/** The envelope key source over an open store; the store is migrated first (it holds the keys). */
export function kmsKeySource(store: KyselyStore, env: NodeJS.ProcessEnv): EnvelopeKeySource {
  return new EnvelopeKeySource({
    wrapper: new AwsKms(),
    kmsKeyId: kmsKeyId(env)!,
    store: store.keys,
    context: encryptionContext(env),
  });
}

async function openWithKms(
  store: KyselyStore,
  kind: 'sqlite' | 'postgres',
  location: string,
  env: NodeJS.ProcessEnv,
): Promise<OpenDatabase> {
  try {
    await explained(location, () => store.migrate());
    const source = kmsKeySource(store, env);
    const keyRing = await source.load();
    await checkKeyRing(store, keyRing, source.description);
    return { store, keyRing, kind, location, keySource: source.description, source };
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
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
