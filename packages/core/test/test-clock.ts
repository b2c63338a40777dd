import { performance } from 'node:perf_hooks';
import type { Clock } from '../src/clock.ts';

/**
 * A clock a test moves by hand. `frozen` stands still until `advance`; otherwise it runs with
 * real time and `advance` jumps it ahead — for a broker that also waits on the database's clock
 * (backoff), which no test can move, while the local waits (a breaker's cooldown) are skipped.
 * A sleeper wakes when its time is reached, by real time or by `advance`.
 */
export class TestClock implements Clock {
  readonly #frozen: boolean;
  #offset = 0;
  readonly #sleepers = new Set<{ until: number; wake: () => void }>();

  constructor(options: { frozen?: boolean } = {}) {
    this.#frozen = options.frozen ?? false;
  }

  monotonic(): number {
    return (this.#frozen ? 0 : performance.now()) + this.#offset;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      signal?.throwIfAborted();
      const sleeper = { until: this.monotonic() + ms, wake: () => finish(resolve) };
      // Real time moves an unfrozen clock too: a timer wakes the sleeper then.
      const timer = this.#frozen ? undefined : setTimeout(sleeper.wake, Math.max(0, ms));
      const onAbort = () => finish(() => reject(signal!.reason));
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#sleepers.delete(sleeper);
        settle();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#sleepers.add(sleeper);
    });
  }

  /** Moves the clock `ms` ahead and wakes everyone whose time has come. */
  advance(ms: number): void {
    this.#offset += ms;
    const now = this.monotonic();
    for (const sleeper of [...this.#sleepers]) if (sleeper.until <= now) sleeper.wake();
  }
}
