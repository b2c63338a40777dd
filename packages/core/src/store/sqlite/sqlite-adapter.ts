import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { StoreAdapter } from '../store-adapter.ts';
import type { ChangeStamp } from './change-stamp.ts';

/**
 * SQLite's capabilities: its clock, its column types, migrations serialised by the file's write
 * lock, and reads answered from memory while `changes` vouches that nothing was written. No push
 * notifications: waiters poll, every `pollIntervalMs`.
 */
export function sqliteAdapter(
  database: BetterSqlite3.Database,
  changes: ChangeStamp,
  pollIntervalMs: number,
): StoreAdapter {
  return {
    now: sql<number>`cast(unixepoch('subsec') * 1000 as integer)`,
    // SQLite's clock is this machine's: `unixepoch('subsec')` and Date.now() read the same one.
    readCache: {
      stamp: () => changes.stamp(),
      now: Date.now,
      announceArrivals: () => changes.announceArrivals(),
    },
    columnTypes: { epochMs: 'integer', sequence: 'autoincrement' },
    pollIntervalMs,
    writeTransaction: (db, fn) =>
      db.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const result = await fn(conn);
          await sql`commit`.execute(conn);
          return result;
        } catch (error) {
          await sql`rollback`.execute(conn).catch(() => undefined);
          throw error;
        }
      }),
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
