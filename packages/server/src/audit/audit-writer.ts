import { StoreUnavailableError, type NewAuditEvent, type ServiceStore } from '@tokenwarden/core';

export interface AuditWriterOptions {
  /** Write a batch at least this often while events are waiting. Default 10 ms. */
  flushIntervalMs?: number;
  /** Write at once when this many events are waiting. Default 500. */
  batchSize?: number;
  /** Events kept while the store is unreachable; beyond this new events are dropped and counted. */
  maxBuffered?: number;
  /** How long `recordDurably` waits for its event to be written before refusing. Default 2 s. */
  durableWithinMs?: number;
  /** Told about a failed write or dropped events; never given an event's content. */
  onProblem?: (problem: {
    kind: 'write_failed' | 'dropped';
    count: number;
    error?: unknown;
  }) => void;
}

/**
 * Rows per INSERT. The SQL of a many-row insert depends on its row count; core's SQLite store
 * keeps prepared statements of up to 2 kB of SQL (about 66 audit rows), so with at most 64 rows
 * a statement is prepared once per row count instead of once per batch: about 1 µs less per
 * event, which is most of what the server side of the audit can save.
 */
const ROWS_PER_STATEMENT = 64;

/** A caller of `recordDurably` waiting for its event, the `seq`-th recorded, to be written. */
interface Waiter {
  seq: number;
  event: NewAuditEvent;
  deadline: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Buffers audit events and appends them in batches, so the token endpoint does not pay for one
 * INSERT per hand-out. Events are written in the order they were recorded; a failed batch is
 * kept and retried with the next one. `close()` writes what is left and says how many it could
 * not. A hand-out waits for its event (`recordDurably`: group commit, the waiting events share
 * one INSERT) and is refused if it cannot be written in time: no token leaves unaudited.
 */
export class AuditWriter {
  readonly #service: ServiceStore;
  readonly #flushIntervalMs: number;
  readonly #batchSize: number;
  readonly #maxBuffered: number;
  readonly #onProblem: AuditWriterOptions['onProblem'];
  #buffer: NewAuditEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #tail: Promise<void> = Promise.resolve();
  #failures = 0;
  #closed = false;
  #dropped = 0;
  /** Events buffered so far, and written so far: in order, so event n is written once n <= written. */
  #recorded = 0;
  #written = 0;
  readonly #waiters: Waiter[] = [];
  readonly #durableWithinMs: number;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** A write started by #startWrite is under way; another was asked for meanwhile. */
  #writing = false;
  #writeNext = false;
  #soon: NodeJS.Immediate | undefined;

  constructor(service: ServiceStore, options: AuditWriterOptions = {}) {
    this.#service = service;
    this.#flushIntervalMs = options.flushIntervalMs ?? 10;
    this.#batchSize = options.batchSize ?? 500;
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    this.#onProblem = options.onProblem;
    this.#durableWithinMs = options.durableWithinMs ?? 2_000;
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.#buffer.length;
  }

  /** Events dropped because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  record(event: NewAuditEvent): void {
    if (this.#buffer.length >= this.#maxBuffered) {
      this.#dropped += 1;
      this.#onProblem?.({ kind: 'dropped', count: 1 });
      return;
    }
    // Callers on the hot path set `at` themselves and hand over a fresh object: kept as it is.
    this.#buffer.push(event.at === undefined ? { at: Date.now(), ...event } : event);
    this.#recorded += 1;
    // After close() (a request that outlived the shutdown) each event is written straight away;
    // while the store is failing, the backoff timer decides when to try again.
    if (this.#closed || (this.#buffer.length >= this.#batchSize && this.#failures === 0)) {
      this.#startWrite();
    } else this.#timer ??= setTimeout(() => this.#startWrite(), this.#flushIntervalMs);
  }

  /**
   * Records an event and resolves once it is written. Rejects with `StoreUnavailableError` when
   * it cannot be written within `durableWithinMs` (the store fails, or is too slow): the action
   * it reports must then be refused. The event stays queued, with its outcome changed to
   * `store_unavailable`, so the log shows the refusal; a write already under way when the time
   * ran out may still store it as it was (the log then shows an action that was refused, never
   * misses one that happened).
   */
  recordDurably(event: NewAuditEvent & { at: number }): Promise<void> {
    if (this.#buffer.length >= this.#maxBuffered) {
      this.#dropped += 1;
      this.#onProblem?.({ kind: 'dropped', count: 1 });
      return Promise.reject(new StoreUnavailableError(new Error('audit buffer full')));
    }
    this.#buffer.push(event);
    const seq = ++this.#recorded;
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({
        seq,
        event,
        deadline: Date.now() + this.#durableWithinMs,
        resolve,
        reject,
      });
      this.#deadlineTimer ??= setTimeout(() => this.#refuseOverdue(), this.#durableWithinMs);
      // Someone waits: write soon, not at the next interval, with whatever else arrives in the
      // meantime (requests read in the same turn of the event loop share the INSERT); while a
      // write is under way the events gather and go in the next one.
      if (this.#failures === 0 || this.#closed) this.#writeSoon();
    });
  }

  /** Writes every event recorded so far; rejects if the store refuses them. */
  flush(): Promise<void> {
    // One write at a time, in recording order: each flush waits for the one before.
    const write = this.#tail.catch(() => undefined).then(() => this.#writeBuffered());
    this.#tail = write;
    return write;
  }

  /**
   * Writes what is left, retrying a few times if the store is briefly unreachable. Resolves with
   * the number of events it could not write (0 when all are stored), for the operator to hear of.
   */
  async close(attempts = 5): Promise<number> {
    this.#closed = true;
    this.#clearTimer();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.flush();
        return 0;
      } catch (error) {
        if (attempt >= attempts) {
          const unwritten = this.#buffer.length;
          this.#dropped += unwritten;
          this.#onProblem?.({ kind: 'dropped', count: unwritten, error });
          this.#buffer = [];
          this.#refuseWaiting(error, Infinity);
          return unwritten;
        }
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  async #writeBuffered(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const batch = this.#buffer;
    this.#buffer = [];
    // In statements of at most ROWS_PER_STATEMENT rows, each committed on its own: a failure
    // keeps the rows not yet written, ahead of those recorded meanwhile.
    for (let start = 0; start < batch.length; start += ROWS_PER_STATEMENT) {
      const rows =
        batch.length <= ROWS_PER_STATEMENT ? batch : batch.slice(start, start + ROWS_PER_STATEMENT);
      try {
        await this.#service.appendAudit(rows);
        this.#failures = 0;
        this.#written += rows.length;
        this.#settleWritten();
      } catch (error) {
        this.#buffer = (start === 0 ? batch : batch.slice(start)).concat(this.#buffer);
        this.#failures += 1;
        // Every hand-out still waiting is refused now rather than at its deadline.
        this.#refuseWaiting(error, Infinity);
        throw error;
      }
    }
  }

  /** Resolves the waiters whose events are written (they are in recording order). */
  #settleWritten(): void {
    let done = 0;
    while (done < this.#waiters.length && this.#waiters[done]!.seq <= this.#written) {
      this.#waiters[done]!.resolve();
      done += 1;
    }
    if (done > 0) this.#waiters.splice(0, done);
    if (this.#waiters.length === 0) this.#clearDeadlineTimer();
  }

  /** Refuses the waiters whose deadline is before `until`; their events record the refusal. */
  #refuseWaiting(cause: unknown, until: number): void {
    let refused = 0;
    while (refused < this.#waiters.length && this.#waiters[refused]!.deadline <= until) {
      const waiter = this.#waiters[refused]!;
      waiter.event.outcome = 'store_unavailable';
      waiter.reject(new StoreUnavailableError(cause));
      refused += 1;
    }
    if (refused > 0) this.#waiters.splice(0, refused);
    this.#clearDeadlineTimer();
    if (this.#waiters.length > 0) {
      const wait = Math.max(0, this.#waiters[0]!.deadline - Date.now());
      this.#deadlineTimer = setTimeout(() => this.#refuseOverdue(), wait);
    }
  }

  #refuseOverdue(): void {
    this.#deadlineTimer = undefined;
    this.#refuseWaiting(new Error('audit write too slow'), Date.now());
  }

  #clearDeadlineTimer(): void {
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  #writeSoon(): void {
    if (this.#writing) this.#writeNext = true;
    else if (this.#soon === undefined) {
      this.#soon = setImmediate(() => {
        this.#soon = undefined;
        this.#startWrite();
      });
    }
  }

  /** Starts a write, or, while one is under way, has the next start as soon as it ends. */
  #startWrite(): void {
    this.#clearTimer();
    if (this.#writing) {
      this.#writeNext = true;
      return;
    }
    this.#writing = true;
    this.flush().then(
      () => {
        this.#writing = false;
        this.#scheduleLeftovers(this.#flushIntervalMs);
      },
      (error: unknown) => {
        this.#writing = false;
        this.#writeNext = false;
        this.#onProblem?.({ kind: 'write_failed', count: this.#buffer.length, error });
        // The store is struggling: back off instead of retrying every few milliseconds.
        this.#scheduleLeftovers(Math.min(1_000, 50 * 2 ** Math.min(this.#failures, 5)));
      },
    );
  }

  /** Events that arrived during a write, or a batch that failed, go in a later round. */
  #scheduleLeftovers(delayMs: number): void {
    if (this.#writeNext && this.#buffer.length > 0) {
      this.#writeNext = false;
      this.#startWrite();
    } else if (this.#buffer.length > 0 && !this.#closed) {
      this.#timer ??= setTimeout(() => this.#startWrite(), delayMs);
    }
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
