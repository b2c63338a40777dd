import type BetterSqlite3 from 'better-sqlite3';

/**
 * Moves whenever the database may have changed, for `RowCache`. Writes on this connection are
 * counted as they run (every statement that is not read-only); commits by every other connection,
 * in this process or another, show in `PRAGMA data_version`, which SQLite changes for exactly
 * those. A read of it costs about a microsecond timed alone (a read transaction: two `fcntl`
 * locks), several in a server's mix, less than the row it stands for.
 *
 * By default every stamp reads `data_version`. A server that announces each request as it
 * arrives (`announceArrivals`) lets one read vouch for several: a `data_version` read after a
 * request arrived sees every commit made before the request was sent, so it serves every read
 * made for that request, and for any request that arrived before it, until the next request
 * arrives. Reads not made for a request (a timer's, a waiter's poll) may then see a stamp taken
 * earlier in the same turn of the event loop, never one from an earlier turn.
 */
export class ChangeStamp {
  readonly #dataVersion: BetterSqlite3.Statement;
  readonly #database: BetterSqlite3.Database;
  #seenVersion: unknown;
  #stamp = 0;
  /** Requests are announced: a `data_version` read may serve until the next arrival. */
  #announced = false;
  /** The last `data_version` read still vouches (no arrival since, same turn). */
  #vouching = false;
  #turnEnd: NodeJS.Immediate | undefined;
  readonly #endTurn = () => {
    this.#turnEnd = undefined;
    this.#vouching = false;
  };

  constructor(database: BetterSqlite3.Database) {
    this.#database = database;
    this.#dataVersion = database.prepare('PRAGMA data_version').pluck();
  }

  wrote(): void {
    this.#stamp += 1;
  }

  /** From now on the caller announces every request; returns the function to call at each. */
  announceArrivals(): () => void {
    this.#announced = true;
    return () => {
      this.#vouching = false;
    };
  }

  stamp(): number {
    // Inside a transaction SQLite keeps showing this connection the database as it was when the
    // transaction began, data_version included: no stamp holds there.
    if (this.#database.inTransaction) {
      this.#vouching = false;
      return ++this.#stamp;
    }
    if (this.#vouching) return this.#stamp;
    const version = this.#dataVersion.get();
    if (version !== this.#seenVersion) {
      this.#seenVersion = version;
      this.#stamp += 1;
    }
    if (this.#announced) {
      this.#vouching = true;
      if (this.#turnEnd === undefined) this.#turnEnd = setImmediate(this.#endTurn);
    }
    return this.#stamp;
  }
}
