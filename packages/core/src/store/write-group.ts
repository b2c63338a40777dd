/**
 * Group commit for one kind of write: the calls made in the same turn of the event loop, or while
 * the previous statement of their kind is still running, go to the database together, as one
 * statement (`write`). Each caller still gets the result of its own row: the statement decides
 * row by row (each one fenced by its own lease), so grouping changes the cost, not the outcome.
 *
 * The scheduler's leaders of one claimed batch record their intents in the same turn, and their
 * commits arrive while the previous group is being written: at 2,000 refreshes per second a
 * statement and its round trip are paid per group instead of per refresh. A lone caller waits
 * one `setImmediate` more, no more: nothing is held back to fill a group.
 */
export class WriteGroup<Item, Result> {
  readonly #write: (items: Item[]) => Promise<Result[]>;
  readonly #keyOf: (item: Item) => string;
  readonly #maxItems: number;
  #pending: Pending<Item, Result>[] = [];
  #writing = false;
  #scheduled = false;

  /**
   * `write` gets items with distinct keys (a credential's id: one row is written once per
   * statement) and returns one result per item, in their order. A second item with a key already
   * in the group waits for the next statement.
   */
  constructor(options: {
    write: (items: Item[]) => Promise<Result[]>;
    keyOf: (item: Item) => string;
    maxItems: number;
  }) {
    this.#write = options.write;
    this.#keyOf = options.keyOf;
    this.#maxItems = options.maxItems;
  }

  /** Writes `item` with the next group; rejects with the statement's error if it fails. */
  add(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#writing || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    const group = this.#take();
    if (group.length === 0) return;
    this.#writing = true;
    try {
      const results = await this.#write(group.map(({ item }) => item));
      group.forEach(({ resolve }, i) => resolve(results[i]!));
    } catch (error) {
      for (const { reject } of group) reject(error);
    } finally {
      this.#writing = false;
      if (this.#pending.length > 0) this.#schedule();
    }
  }

  /** Up to `maxItems` pending items with distinct keys, oldest first; the rest stay pending. */
  #take(): Pending<Item, Result>[] {
    const keys = new Set<string>();
    const group: Pending<Item, Result>[] = [];
    const left: Pending<Item, Result>[] = [];
    for (const pending of this.#pending) {
      const key = this.#keyOf(pending.item);
      if (group.length < this.#maxItems && !keys.has(key)) {
        keys.add(key);
        group.push(pending);
      } else left.push(pending);
    }
    this.#pending = left;
    return group;
  }
}

interface Pending<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}
