import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../src/engine/circuit-breaker.ts';

const options = { threshold: 3, cooldownMs: 1_000, maxCooldownMs: 4_000 };

describe('CircuitBreaker', () => {
  it('opens after `threshold` consecutive failures, not before', () => {
    const breaker = new CircuitBreaker(options);
    breaker.onFailure(undefined, 0);
    breaker.onFailure(undefined, 0);
    expect(breaker.admit(0)).toEqual({ admitted: true });
    breaker.onFailure(undefined, 0);
    expect(breaker.admit(10)).toEqual({ admitted: false, retryAfterMs: 990 });
  });

  it('a success resets the count', () => {
    const breaker = new CircuitBreaker(options);
    breaker.onFailure(undefined, 0);
    breaker.onFailure(undefined, 0);
    breaker.onSuccess();
    breaker.onFailure(undefined, 0);
    expect(breaker.admit(0)).toEqual({ admitted: true });
  });

  it('half-open: one probe at a time; a failed probe doubles the cooldown up to the max', () => {
    const breaker = new CircuitBreaker(options);
    for (let i = 0; i < 3; i++) breaker.onFailure(undefined, 0);
    expect(breaker.admit(1_000)).toEqual({ admitted: true });
    expect(breaker.admit(1_000).admitted).toBe(false);
    breaker.onFailure(undefined, 1_000);
    expect(breaker.admit(1_000)).toEqual({ admitted: false, retryAfterMs: 2_000 });
    breaker.admit(3_000);
    breaker.onFailure(undefined, 3_000);
    expect(breaker.admit(3_000)).toEqual({ admitted: false, retryAfterMs: 4_000 });
    breaker.admit(7_000);
    breaker.onFailure(undefined, 7_000);
    expect(breaker.admit(7_000)).toEqual({ admitted: false, retryAfterMs: 4_000 });
  });

  it('a released probe slot lets the next caller probe; a successful probe closes it', () => {
    const breaker = new CircuitBreaker(options);
    for (let i = 0; i < 3; i++) breaker.onFailure(undefined, 0);
    expect(breaker.admit(1_000).admitted).toBe(true);
    breaker.release();
    expect(breaker.admit(1_000).admitted).toBe(true);
    breaker.onSuccess();
    expect(breaker.admit(1_000)).toEqual({ admitted: true });
    expect(breaker.admit(1_000)).toEqual({ admitted: true });
  });

  it('answers to requests sent before it opened do not extend it', () => {
    const breaker = new CircuitBreaker(options);
    for (let i = 0; i < 10; i++) breaker.onFailure(undefined, 0);
    expect(breaker.admit(0)).toEqual({ admitted: false, retryAfterMs: 1_000 });
  });

  it('Retry-After opens it at once, for that long', () => {
    const breaker = new CircuitBreaker(options);
    breaker.onFailure(30_000, 0);
    expect(breaker.admit(0)).toEqual({ admitted: false, retryAfterMs: 30_000 });
  });
});
