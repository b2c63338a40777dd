import { sql } from 'kysely';
import type { StoreAdapter } from '../store-adapter.ts';
import type { ChangeListener } from './change-listener.ts';
import {
  NOTIFY_MIGRATION,
  NOTIFY_PAYLOAD_MIGRATION,
  NOTIFY_STATE_MIGRATION,
  NOTIFY_COMMIT_TRACE_MIGRATION,
} from './notify-trigger.ts';

/** Any fixed number: every Tokenwarden process in the database must use the same one. */
const MIGRATION_LOCK_KEY = 0x746f6b656e77; // "tokenw"
/** Migrations may build indexes on a big table; the usual 5 s would cancel them. */
const MIGRATION_STATEMENT_TIMEOUT_MS = 10 * 60_000;

/**
 * Postgres' capabilities: its clock, its column types, migrations serialised by an advisory lock,
 * the notify triggers (`notify-trigger.ts`) that wake waiters through `changes`, and claims that
 * skip locked rows.
 */
export function postgresAdapter(
  schema: string | undefined,
  pollIntervalMs: number,
  changes: ChangeListener,
): StoreAdapter {
  return {
    // statement_timestamp(): the database clock read once per statement, so every `now` in one
    // statement agrees, as in SQLite (clock_timestamp() differs between two calls in a row).
    now: sql<number>`floor(extract(epoch from statement_timestamp()) * 1000)::bigint`,
    columnTypes: { epochMs: 'bigint', sequence: 'identity' },
    migrations: [
      NOTIFY_MIGRATION,
      NOTIFY_PAYLOAD_MIGRATION,
      NOTIFY_STATE_MIGRATION,
      NOTIFY_COMMIT_TRACE_MIGRATION,
    ],
    pollIntervalMs,
    changes,
    skipLockedClaims: true,
    qualifiedReturning: true,
    async withMigrationLock(db, fn) {
      // Postgres has transactional DDL: under a transaction-scoped advisory lock, a process that
      // starts while another migrates waits, then finds everything applied.
      await db.transaction().execute(async (trx) => {
        await sql`select set_config('statement_timeout', ${String(MIGRATION_STATEMENT_TIMEOUT_MS)}, true)`.execute(
          trx,
        );
        await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`.execute(trx);
        if (schema !== undefined)
          await sql`create schema if not exists ${sql.id(schema)}`.execute(trx);
        await fn(trx);
      });
    },
  };
}
