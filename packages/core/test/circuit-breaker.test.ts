import { describe, expect, it } from 'vitest';
import { CircuitBreaker, ProviderBreakers } from '../src/engine/circuit-breaker.ts';
import { TestClock } from './test-clock.ts';

const options = { threshold: 3, cooldownMs: 1_000, maxCooldownMs: 4_000 };

/** A breaker on a frozen clock that starts at 0; `at(ms)` sets that clock. */
function frozenBreaker() {
  const clock = new TestClock({ frozen: true });
  const breaker = new CircuitBreaker(options, clock);
  const at = (ms: number) => clock.advance(ms - clock.monotonic());
  return { breaker, at };
}

describe('CircuitBreaker', () => {
  it('opens after `threshold` consecutive failures, not before', () => {
    const { breaker, at } = frozenBreaker();
    breaker.onFailure(undefined);
    breaker.onFailure(undefined);
    expect(breaker.admit()).toEqual({ admitted: true });
    breaker.onFailure(undefined);
    at(10);
    expect(breaker.admit()).toEqual({ admitted: false, retryAfterMs: 990 });
    expect(breaker.isOpen).toBe(true);
  });

  it("a Retry-After holds even when an earlier request's answer succeeds after it", () => {
    const { breaker, at } = frozenBreaker();
    breaker.onFailure(5_000);
    breaker.onSuccess(); // sent before the 429 came back
    at(1_000);
    expect(breaker.admit()).toEqual({ admitted: false, retryAfterMs: 4_000 });
    expect(breaker.refusingForMs).toBe(4_000);
    at(5_000);
    expect(breaker.admit()).toEqual({ admitted: true });
    expect(breaker.refusingForMs).toBe(0);
  });

  it('a success resets the count', () => {
    const { breaker } = frozenBreaker();
    breaker.onFailure(undefined);
    breaker.onFailure(undefined);
    breaker.onSuccess();
    breaker.onFailure(undefined);
    expect(breaker.admit()).toEqual({ admitted: true });
  });

  it('half-open: one probe at a time; a failed probe doubles the cooldown up to the max', () => {
    const { breaker, at } = frozenBreaker();
    for (let i = 0; i < 3; i++) breaker.onFailure(undefined);
    at(1_000);
    expect(breaker.isOpen).toBe(false);
    expect(breaker.admit()).toEqual({ admitted: true });
    expect(breaker.admit().admitted).toBe(false);
    breaker.onFailure(undefined);
    expect(breaker.admit()).toEqual({ admitted: false, retryAfterMs: 2_000 });
    at(3_000);
    breaker.admit();
    breaker.onFailure(undefined);
    expect(breaker.admit()).toEqual({ admitted: false, retryAfterMs: 4_000 });
    at(7_000);
    breaker.admit();
    breaker.onFailure(undefined);
    expect(breaker.admit()).toEqual({ admitted: false, retryAfterMs: 4_000 });
  });

  it('a released probe slot lets the next caller probe; a successful probe closes it', () => {
    const { breaker, at } = frozenBreaker();
    for (let i = 0; i < 3; i++) breaker.onFailure(undefined);
    at(1_000);
    expect(breaker.admit().admitted).toBe(true);
    breaker.release();
    expect(breaker.admit().admitted).toBe(true);
    breaker.onSuccess();
    expect(breaker.admit()).toEqual({ admitted: true });
    expect(breaker.admit()).toEqual({ admitted: true });
  });

  it('answers to requests sent before it opened do not extend it', () => {
    const { breaker } = frozenBreaker();
    for (let i = 0; i < 10; i++) breaker.onFailure(undefined);
    expect(breaker.admit()).toEqual({ admitted: false, retryAfterMs: 1_000 });
  });

  it('Retry-After opens it at once, for that long', () => {
    const { breaker } = frozenBreaker();
    breaker.onFailure(30_000);
    expect(breaker.admit()).toEqual({ admitted: false, retryAfterMs: 30_000 });
  });
});

describe('ProviderBreakers', () => {
  it('keeps one breaker per provider and names those that refuse requests', () => {
    const clock = new TestClock({ frozen: true });
    const breakers = new ProviderBreakers({ threshold: 1, cooldownMs: 500 }, clock);
    expect(breakers.for('a')).toBe(breakers.for('a'));
    breakers.for('a').onFailure(undefined);
    breakers.for('b').onSuccess();
    expect(breakers.unavailable()).toEqual(['a']);
    clock.advance(500);
    expect(breakers.unavailable()).toEqual([]);
  });
});
