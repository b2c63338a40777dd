import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * The process's own sense of time, injected beside `fetch` so that tests can drive it. It serves
 * local timers only — how long a call has waited, a backoff pause, a circuit breaker's cooldown,
 * the deadline inside a lease counted from when it was taken. Every time the refresh protocol
 * reasons about (lease expiry, token expiry, `next_attempt_at`) comes from the database's clock
 * (invariant 2) and is never compared with this one.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock: only differences between two readings mean anything. */
  monotonic(): number;
  /** Resolves after `ms` on this clock; rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: `performance.now()` and Node's timers. */
export const systemClock: Clock = {
  monotonic: () => performance.now(),
  sleep: (ms, signal) => delay(Math.max(0, ms), undefined, { signal }),
};
