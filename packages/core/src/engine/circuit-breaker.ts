import { systemClock, type Clock } from '../clock.ts';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  threshold: number;
  /** First open period; doubles each time it reopens, up to `maxCooldownMs`. Default 1 s. */
  cooldownMs: number;
  /**
   * Default 15 s: the first probe after an outage ends comes within it, and one answer closes
   * the circuit for every request.
   */
  maxCooldownMs: number;
}

export const DEFAULT_BREAKER: CircuitBreakerOptions = {
  threshold: 5,
  cooldownMs: 1_000,
  maxCooldownMs: 15_000,
};

export type BreakerState = 'closed' | 'open' | 'half_open';

/** One provider's breaker as `ProviderBreakers.states()` reports it. */
export interface BreakerReport {
  provider: string;
  state: BreakerState;
  consecutiveFailures: number;
  /** How much longer it refuses every request (0 unless open). */
  refusingForMs: number;
}

export type Admission = { admitted: true } | { admitted: false; retryAfterMs: number };

/**
 * One per provider and process: after `threshold` consecutive transient failures (or one 429)
 * the provider gets no requests until the cooldown ends; then a single probe decides whether it
 * closes again. An outage of one provider thus neither floods it nor slows the others.
 */
export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions;
  readonly #clock: Clock;
  #failures = 0;
  #openUntil = 0;
  /** Until the provider's Retry-After passes: an answer to an earlier request does not end it. */
  #quietUntil = 0;
  #reopenings = 0;
  #probing = false;

  constructor(options: CircuitBreakerOptions = DEFAULT_BREAKER, clock: Clock = systemClock) {
    this.#options = options;
    this.#clock = clock;
  }

  /** May a request go to the provider now? An admitted caller must report back (or `release`). */
  admit(): Admission {
    const now = this.#clock.monotonic();
    const until = Math.max(this.#openUntil, this.#quietUntil);
    if (now < until) return { admitted: false, retryAfterMs: until - now };
    if (this.#failures < this.#options.threshold) return { admitted: true };
    // Half-open: one probe at a time.
    if (this.#probing)
      return { admitted: false, retryAfterMs: Math.min(250, this.#options.cooldownMs) };
    this.#probing = true;
    return { admitted: true };
  }

  /** An admitted caller that sent nothing after all. */
  release(): void {
    this.#probing = false;
  }

  /** The provider answered properly (tokens, or a verdict on the refresh token). */
  onSuccess(): void {
    this.#failures = 0;
    this.#openUntil = 0;
    this.#reopenings = 0;
    this.#probing = false;
  }

  /** The provider failed (5xx, timeout, network, 429). `retryAfterMs` opens the circuit at once. */
  onFailure(retryAfterMs: number | undefined): void {
    const now = this.#clock.monotonic();
    this.#probing = false;
    this.#failures++;
    let until = 0;
    // Answers to requests sent before the circuit opened do not extend it.
    if (this.#failures >= this.#options.threshold && now >= this.#openUntil) {
      const cooldown = this.#options.cooldownMs * 2 ** Math.min(this.#reopenings, 16);
      until = now + Math.min(this.#options.maxCooldownMs, cooldown);
      this.#reopenings++;
    }
    this.#openUntil = Math.max(this.#openUntil, until);
    if (retryAfterMs !== undefined) {
      this.#quietUntil = Math.max(this.#quietUntil, now + retryAfterMs);
    }
  }

  /** Refusing every request until its cooldown ends (what `admit` would say, without a probe). */
  get isOpen(): boolean {
    return this.refusingForMs > 0;
  }

  /** `admit` would refuse now: the circuit is open, or half open with its one probe out. */
  get refusing(): boolean {
    return this.isOpen || this.#probing;
  }

  /** What an operator sees: refusing (open), letting one probe through (half_open), or closed. */
  get state(): BreakerState {
    if (this.isOpen) return 'open';
    return this.#failures >= this.#options.threshold ? 'half_open' : 'closed';
  }

  /** Transient failures since the provider last answered properly. */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** How much longer it refuses every request: 0 when closed or half-open. */
  get refusingForMs(): number {
    const until = Math.max(this.#openUntil, this.#quietUntil);
    return Math.max(0, until - this.#clock.monotonic());
  }
}

/** A process's breakers, one per provider, made on first use. */
export class ProviderBreakers {
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #options: CircuitBreakerOptions;
  readonly #clock: Clock;

  constructor(options: Partial<CircuitBreakerOptions> | undefined, clock: Clock) {
    this.#options = { ...DEFAULT_BREAKER, ...options };
    this.#clock = clock;
  }

  for(provider: string): CircuitBreaker {
    let breaker = this.#breakers.get(provider);
    if (!breaker) {
      breaker = new CircuitBreaker(this.#options, this.#clock);
      this.#breakers.set(provider, breaker);
    }
    return breaker;
  }

  /** Every breaker made so far (a provider this process has sent requests to), by name. */
  states(): BreakerReport[] {
    return [...this.#breakers]
      .map(([provider, breaker]) => ({
        provider,
        state: breaker.state,
        consecutiveFailures: breaker.consecutiveFailures,
        refusingForMs: breaker.refusingForMs,
      }))
      .sort((a, b) => (a.provider < b.provider ? -1 : 1));
  }

  /** Providers whose circuit is open: the scheduler does not claim their credentials now. */
  unavailable(): string[] {
    return [...this.#breakers].filter(([, breaker]) => breaker.refusing).map(([name]) => name);
  }
}
