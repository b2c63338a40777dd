/**
 * What a database offers so that a process may answer a repeated read from memory and still
 * never answer anything a read would not: a stamp that moves whenever anything may have been
 * written, and its clock without a query. SQLite on this machine has both (see sqlite-store.ts);
 * a database other machines write to (Postgres) has neither, and its reads always go to it.
 */
export interface ReadCacheSupport {
  /**
   * Changes whenever a write may have been committed since it was last returned, by this
   * connection or any other, in this process or another. Never returns an earlier value.
   */
  stamp(): number;
  /** The database clock (epoch ms), as a query would read it at this moment. */
  now(): number;
  /**
   * For a server: it will call the function returned at the arrival of each request, before any
   * read made for it, so that one check of the database may vouch for the reads of several
   * requests (see sqlite/change-stamp.ts).
   */
  announceArrivals(): () => void;
}

/**
 * Rows kept with the stamp taken just before they were read, and answered only while the stamp
 * has not moved: whatever changed meanwhile (a refresh, a revocation, a write by another process)
 * moved it, and the next read goes to the database. Taking the stamp before the read keeps a
 * write that lands between the two from being hidden: the entry is then older than the stamp.
 *
 * Bounded: at `max` entries it starts over, which costs one read per hot row.
 */
export class RowCache<V> {
  readonly #entries = new Map<string, { stamp: number; value: V }>();

  constructor(
    readonly support: ReadCacheSupport,
    private readonly max = 10_000,
  ) {}

  /** The row under `key`: from memory if nothing was written since it was read, else `read`'s. */
  async get(key: string, read: () => Promise<V | undefined>): Promise<V | undefined> {
    const stamp = this.support.stamp();
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.stamp === stamp) return entry.value;
    const value = await read();
    if (value === undefined) return undefined;
    if (this.#entries.size >= this.max && !this.#entries.has(key)) this.#entries.clear();
    // Frozen: every caller from now on shares it.
    this.#entries.set(key, { stamp, value: Object.freeze(value) });
    return value;
  }
}
