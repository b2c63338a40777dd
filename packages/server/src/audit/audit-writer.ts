import type { NewAuditEvent, ServiceStore } from '@tokenwarden/core';

export interface AuditWriterOptions {
  /** Write a batch at least this often while events are waiting. Default 10 ms. */
  flushIntervalMs?: number;
  /** Write at once when this many events are waiting. Default 500. */
  batchSize?: number;
  /** Events kept while the store is unreachable; beyond this new events are dropped and counted. */
  maxBuffered?: number;
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

/**
 * Buffers audit events and appends them in batches, so the token endpoint does not pay for one
 * INSERT per hand-out. Events are written in the order they were recorded; a failed batch is
 * kept and retried with the next one. `close()` writes what is left.
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

  constructor(service: ServiceStore, options: AuditWriterOptions = {}) {
    this.#service = service;
    this.#flushIntervalMs = options.flushIntervalMs ?? 10;
    this.#batchSize = options.batchSize ?? 500;
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    this.#onProblem = options.onProblem;
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
    // After close() (a request that outlived the shutdown) each event is written straight away;
    // while the store is failing, the backoff timer decides when to try again.
    if (this.#closed || (this.#buffer.length >= this.#batchSize && this.#failures === 0)) {
      this.#startWrite();
    } else this.#timer ??= setTimeout(() => this.#startWrite(), this.#flushIntervalMs);
  }

  /** Writes every event recorded so far; rejects if the store refuses them. */
  flush(): Promise<void> {
    // One write at a time, in recording order: each flush waits for the one before.
    const write = this.#tail.catch(() => undefined).then(() => this.#writeBuffered());
    this.#tail = write;
    return write;
  }

  /** Writes what is left, retrying a few times if the store is briefly unreachable. */
  async close(attempts = 5): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.flush();
        return;
      } catch (error) {
        if (attempt >= attempts) {
          this.#dropped += this.#buffer.length;
          this.#onProblem?.({ kind: 'dropped', count: this.#buffer.length, error });
          this.#buffer = [];
          return;
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
      } catch (error) {
        this.#buffer = (start === 0 ? batch : batch.slice(start)).concat(this.#buffer);
        this.#failures += 1;
        throw error;
      }
    }
  }

  #startWrite(): void {
    this.#clearTimer();
    this.flush().then(
      () => this.#scheduleLeftovers(this.#flushIntervalMs),
      (error: unknown) => {
        this.#onProblem?.({ kind: 'write_failed', count: this.#buffer.length, error });
        // The store is struggling: back off instead of retrying every few milliseconds.
        this.#scheduleLeftovers(Math.min(1_000, 50 * 2 ** Math.min(this.#failures, 5)));
      },
    );
  }

  /** Events that arrived during a write, or a batch that failed, go in a later round. */
  #scheduleLeftovers(delayMs: number): void {
    if (this.#buffer.length > 0 && !this.#closed) {
      this.#timer ??= setTimeout(() => this.#startWrite(), delayMs);
    }
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
