import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Clock } from '../clock.ts';
import type { ChangeNotifications } from './change-notifications.ts';
import type { ColumnTypes, Migration } from './migrations.ts';
import type { ReadCacheSupport } from './row-cache.ts';
import type { Database } from './schema.ts';

/**
 * What differs between databases, as capabilities (Kysely's adapter idea): the clock expression,
 * column types, how migrations are serialised across processes, and how waiters are woken. Each
 * backend folder (`sqlite/`, `postgres/`) builds one in its `<backend>-adapter.ts`; the queries
 * (`KyselyStore`, `KyselyServiceStore`, `KyselyConnectSessionStore`) are written once over it.
 *
 * The Kysely instance beside it must return integers as JavaScript numbers (see `schema.ts`).
 */
export interface StoreAdapter {
  /** The database clock as epoch milliseconds (invariant 2), one value per statement. */
  readonly now: RawBuilder<number>;
  readonly columnTypes: ColumnTypes;
  /** Runs `fn` in a transaction that no other process can run at the same time. */
  withMigrationLock(
    db: Kysely<Database>,
    fn: (locked: Kysely<Database>) => Promise<void>,
  ): Promise<void>;
  /**
   * Runs `fn` in a transaction that writes (an outbox event with the change it reports). Default
   * Kysely's; SQLite takes the write lock up front (BEGIN IMMEDIATE), so that another process's
   * write between the transaction's first read and its first write cannot make it fail.
   */
  writeTransaction?<T>(db: Kysely<Database>, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Schema changes only this database needs, merged into the shared ones by name. */
  readonly migrations?: readonly Migration[];
  /** How often a waiter re-reads a credential when no notification arrives. */
  readonly pollIntervalMs: number;
  /** Times a waiter's timeout and polls (local timers only; default the system clock). */
  readonly clock?: Clock;
  /** Push notifications of credential changes, if the database has them. */
  readonly changes?: ChangeNotifications;
  /**
   * An `update ... from` returns the target's columns as `returning <table>.*` (Postgres, whose
   * `*` there includes the other tables' columns); without it, as `returning *` (SQLite, which
   * refuses `<table>.*` there and returns only the target's columns).
   */
  readonly qualifiedReturning?: boolean;
  /** Claim due rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never queue. */
  readonly skipLockedClaims?: boolean;
  /** Lets the hot reads be answered from memory while nothing changed (see `RowCache`). */
  readonly readCache?: ReadCacheSupport;
  /** Stops the adapter's own background work; called by `Store.close()` first. */
  readonly beforeClose?: () => Promise<void>;
}

/** `adapter.writeTransaction`, or Kysely's transaction where the adapter has none. */
export function inWriteTransaction<T>(
  adapter: StoreAdapter,
  db: Kysely<Database>,
  fn: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return adapter.writeTransaction ? adapter.writeTransaction(db, fn) : db.transaction().execute(fn);
}

/**
 * `ms` from the database's `now`. Whole milliseconds: epoch columns are integers (a Postgres
 * `bigint` refuses 1.5), and callers compute durations with floating point.
 */
export function later(now: RawBuilder<number>, ms: number): RawBuilder<number> {
  return sql<number>`${now} + ${Math.round(ms)}`;
}
