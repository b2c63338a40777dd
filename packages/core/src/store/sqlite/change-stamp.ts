import type BetterSqlite3 from 'better-sqlite3';

/**
 * Moves whenever the database may have changed, for `RowCache`. Writes on this connection are
 * counted as they run (every statement that is not read-only); commits by every other connection,
 * in this process or another, show in `PRAGMA data_version`, which SQLite changes for exactly
 * those. A read of it costs about a microsecond timed alone (a read transaction: two `fcntl`
 * locks), less than the row it stands for.
 */
export class ChangeStamp {
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
