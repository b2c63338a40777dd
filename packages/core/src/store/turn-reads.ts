/**
 * Reads of one row asked for during one turn of the event loop, made once. The read starts in
 * the turn's check phase (`setImmediate`), after every caller of the turn has asked, so each
 * caller gets a row read after it asked, as fresh as a read of its own: a revocation committed
 * before a request arrived is seen by that request. A burst of requests from one service client
 * then pays one round trip for its row on Postgres, and one check of the database on SQLite
 * (see sqlite/change-stamp.ts), instead of one each. The row is frozen: its callers share it.
 */
export class TurnReads<V> {
  #waiting = new Map<string, { promise: Promise<V | undefined>; start: () => void }>();
  #turnEnd: NodeJS.Immediate | undefined;
  readonly #startAll = () => {
    const waiting = this.#waiting;
    this.#waiting = new Map();
    this.#turnEnd = undefined;
    for (const { start } of waiting.values()) start();
  };

  get(key: string, read: () => Promise<V | undefined>): Promise<V | undefined> {
    const waiting = this.#waiting.get(key);
    if (waiting) return waiting.promise;
    let start!: () => void;
    const promise = new Promise<void>((resolve) => {
      start = resolve;
    })
      .then(read)
      .then((value) => value && Object.freeze(value));
    this.#waiting.set(key, { promise, start });
    if (this.#turnEnd === undefined) this.#turnEnd = setImmediate(this.#startAll);
    return promise;
  }
}
