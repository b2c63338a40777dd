import BetterSqlite3 from 'better-sqlite3';
import { CamelCasePlugin, Kysely, sql, SqliteDialect } from 'kysely';
import { KyselyStore, type StoreAdapter } from '../kysely-store.ts';
import type { Database } from '../schema.ts';
import { Checkpointer } from './checkpointer.ts';
import { withStatementCache } from './statement-cache.ts';

export interface SqliteStoreOptions {
  /** Path of the database file. Several processes may open the same file. */
  path: string;
  /** How long a writer waits for another process's write lock before failing. Default 5 s. */
  busyTimeoutMs?: number;
  /** How often a waiter polls for the leader's result. Default 5 ms: one indexed read. */
  pollIntervalMs?: number;
}

/**
 * The embedded default: one SQLite file shared by every process on one machine.
 *
 * WAL lets readers and the one writer proceed together; every protocol step is a single
 * statement, so SQLite's file lock makes each conditional UPDATE atomic across processes.
 */
export function openSqliteStore(options: SqliteStoreOptions): KyselyStore {
  const database = new BetterSqlite3(options.path);
  database.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  const journal = database.pragma('journal_mode = WAL', { simple: true });
  database.pragma('synchronous = NORMAL');
  // A database in memory has no log to copy back.
  const checkpointer = journal === 'wal' ? new Checkpointer(database, options.path) : undefined;
  const changes = new ChangeStamp(database);
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({
      database: withStatementCache(database, { onWrite: () => changes.wrote() }),
    }),
    plugins: [new CamelCasePlugin()],
  });
  return new KyselyStore(db, {
    ...sqliteAdapter(database, changes, options.pollIntervalMs ?? 5),
    beforeClose: async () => checkpointer?.stop(),
  });
}

function sqliteAdapter(
  database: BetterSqlite3.Database,
  changes: ChangeStamp,
  pollIntervalMs: number,
): StoreAdapter {
  return {
    now: sql<number>`cast(unixepoch('subsec') * 1000 as integer)`,
    // SQLite's clock is this machine's: `unixepoch('subsec')` and Date.now() read the same one.
    readCache: { stamp: () => changes.stamp(), now: Date.now },
    columnTypes: { epochMs: 'integer', sequence: 'autoincrement' },
    pollIntervalMs,
    async withMigrationLock(db, fn) {
      // BEGIN IMMEDIATE takes the write lock up front, so two processes starting on a new file
      // cannot both decide to create the tables.
      await db.connection().execute(async (conn) => {
        await beginImmediate(database);
        try {
          await fn(conn);
          await sql`commit`.execute(conn);
        } catch (error) {
          await sql`rollback`.execute(conn);
          throw error;
        }
      });
    },
  };
}

/**
 * Moves whenever the database may have changed, for `RowCache`. Writes on this connection are
 * counted as they run (every statement that is not read-only); commits by every other connection,
 * in this process or another, show in `PRAGMA data_version`, which SQLite changes for exactly
 * those. A read of it costs about a microsecond timed alone (a read transaction: two `fcntl`
 * locks), less than the row it stands for.
 */
class ChangeStamp {
  readonly #dataVersion: BetterSqlite3.Statement;
  readonly #database: BetterSqlite3.Database;
  #seenVersion: unknown;
  #stamp = 0;

  constructor(database: BetterSqlite3.Database) {
    this.#database = database;
    this.#dataVersion = database.prepare('PRAGMA data_version').pluck();
  }

  wrote(): void {
    this.#stamp += 1;
  }

  stamp(): number {
    // Inside a transaction SQLite keeps showing this connection the database as it was when the
    // transaction began, data_version included: no stamp holds there.
    if (this.#database.inTransaction) return ++this.#stamp;
    const version = this.#dataVersion.get();
    if (version !== this.#seenVersion) {
      this.#seenVersion = version;
      this.#stamp += 1;
    }
    return this.#stamp;
  }
}

/**
 * better-sqlite3 waits for a busy lock synchronously, freezing the event loop; a migration holds
 * the lock across several awaits, so its lock is taken with a non-blocking, asynchronous retry.
 */
async function beginImmediate(database: BetterSqlite3.Database, timeoutMs = 30_000): Promise<void> {
  const busyTimeout = database.pragma('busy_timeout', { simple: true }) as number;
  database.pragma('busy_timeout = 0');
  try {
    for (const deadline = Date.now() + timeoutMs; ;) {
      try {
        database.exec('begin immediate');
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline)
          throw error;
        await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20));
      }
    }
  } finally {
    database.pragma(`busy_timeout = ${busyTimeout}`);
  }
}
