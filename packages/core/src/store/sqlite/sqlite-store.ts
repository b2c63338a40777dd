import { closeSync, fchmodSync, openSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { CamelCasePlugin, Kysely, SqliteDialect } from 'kysely';
import type { Clock } from '../../clock.ts';
import { KyselyStore } from '../kysely-store.ts';
import type { Database } from '../schema.ts';
import { ChangeStamp } from './change-stamp.ts';
import { Checkpointer } from './checkpointer.ts';
import { sqliteAdapter } from './sqlite-adapter.ts';
import { withStatementCache } from './statement-cache.ts';

export interface SqliteStoreOptions {
  /** Path of the database file. Several processes may open the same file. */
  path: string;
  /** How long a writer waits for another process's write lock before failing. Default 5 s. */
  busyTimeoutMs?: number;
  /** How often a waiter polls for the leader's result. Default 5 ms: one indexed read. */
  pollIntervalMs?: number;
  /** Times waits and polls; default the system clock (tests inject one they can move). */
  clock?: Clock;
}

/**
 * The embedded default: one SQLite file shared by every process on one machine.
 *
 * WAL lets readers and the one writer proceed together; every protocol step is a single
 * statement, so SQLite's file lock makes each conditional UPDATE atomic across processes.
 */
export function openSqliteStore(options: SqliteStoreOptions): KyselyStore {
  createPrivately(options.path);
  const database = new BetterSqlite3(options.path);
  database.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  const journal = database.pragma('journal_mode = WAL', { simple: true });
  database.pragma('synchronous = NORMAL');
  // A database in memory has no log to copy back.
  const checkpointer = journal === 'wal' ? new Checkpointer(database, options.path) : undefined;
  const changes = new ChangeStamp(database);
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({
      database: withStatementCache(database, {
        onWrite: () => changes.wrote(),
        // An audit append (no trigger on the table) changes no credential or client row.
        uncachedWrite: (sql) => sql.startsWith('insert into "audit_events" '),
      }),
    }),
    plugins: [new CamelCasePlugin()],
  });
  return new KyselyStore(db, {
    ...sqliteAdapter(database, changes, options.pollIntervalMs ?? 5),
    ...(options.clock && { clock: options.clock }),
    beforeClose: async () => checkpointer?.stop(),
  });
}

/**
 * Creates a missing database file with mode 0600, like the key file: it holds every sealed
 * token, and SQLite gives its -wal and -shm files the database file's mode. An existing file
 * keeps the mode its operator gave it.
 */
function createPrivately(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch {
    // Already there, or not creatable: better-sqlite3 then says why, naming the file.
    return;
  }
  try {
    fchmodSync(fd, 0o600); // Whatever the umask.
  } finally {
    closeSync(fd);
  }
}
