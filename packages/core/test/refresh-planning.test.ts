import { afterEach, describe, expect, it } from 'vitest';
import { MIN_REFRESH_INTERVAL_MS, nextRefreshIn } from '../src/engine/backoff.ts';
import { scenario, type Scenario } from './helpers.ts';

// The broker's defaults (CredentialBrokerOptions.proactive).
const DEFAULTS = { skewMs: 60_000, fraction: 0.1, jitterMs: 30_000 };
const SECOND = 1_000;
const RANDOMS = [0, 0.5, 0.999];

/** How many refreshes the scheduler plans in `spanMs` of an injected clock, capped at 10,000. */
function refreshesIn(spanMs: number, ttlMs: number, random: () => number): number {
  let count = 0;
  for (let at = 0; at < spanMs && count < 10_000; count++) {
    at += nextRefreshIn(ttlMs, undefined, DEFAULTS, random);
  }
  return count;
}

describe('when the scheduler refreshes next (invariant 10)', () => {
  it.each([5, 60, 3600, 12 * 3600])(
    'a %i s token: after at least a quarter of its life, before it expires',
    (ttlSeconds) => {
      const ttlMs = ttlSeconds * SECOND;
      for (const r of RANDOMS) {
        const refreshIn = nextRefreshIn(ttlMs, undefined, DEFAULTS, () => r);
        expect(refreshIn).toBeGreaterThanOrEqual(ttlMs / 4);
        expect(refreshIn).toBeGreaterThanOrEqual(MIN_REFRESH_INTERVAL_MS);
        expect(refreshIn).toBeLessThan(ttlMs);
      }
    },
  );

  it('60 s tokens for 10 minutes: at most 40 refreshes, not one a second', () => {
    for (const r of RANDOMS)
      expect(refreshesIn(600 * SECOND, 60 * SECOND, () => r)).toBeLessThanOrEqual(40);
    // A 5-second token: at most one refresh per 1.25 s.
    expect(refreshesIn(600 * SECOND, 5 * SECOND, () => 0.999)).toBeLessThanOrEqual(480);
  });

  it('long tokens keep the skew, the fraction and the jitter', () => {
    // 1 h: the skew (60 s) is smaller than a tenth (6 min); up to 30 s of jitter on top.
    expect(nextRefreshIn(3600 * SECOND, undefined, DEFAULTS, () => 0)).toBe(54 * 60 * SECOND);
    expect(nextRefreshIn(3600 * SECOND, undefined, DEFAULTS, () => 1)).toBe(53.5 * 60 * SECOND);
    // 12 h: a tenth, 72 minutes, before expiry.
    expect(nextRefreshIn(12 * 3600 * SECOND, undefined, DEFAULTS, () => 0)).toBe(
      (12 * 60 - 72) * 60 * SECOND,
    );
    // An idle refresh-token lifetime still wins when it is shorter.
    expect(nextRefreshIn(12 * 3600 * SECOND, 3600 * SECOND, DEFAULTS, () => 0)).toBe(
      45 * 60 * SECOND,
    );
  });

  it('a token shorter than the floor is refreshed when it expires; an expired one now', () => {
    expect(nextRefreshIn(400, undefined, DEFAULTS, () => 0.5)).toBe(400);
    expect(nextRefreshIn(0, undefined, DEFAULTS, () => 0.5)).toBe(0);
    expect(nextRefreshIn(-5_000, undefined, DEFAULTS, () => 0.5)).toBe(0);
  });
});

describe('refresh_at as the store keeps it', () => {
  let s: Scenario;
  afterEach(async () => {
    await s?.cleanup();
  });

  it('a 60-second token imported and refreshed is planned 15-30 s ahead, not at once', async () => {
    s = await scenario({ provider: { accessTokenTtlSeconds: 60 } });
    const { id } = await s.importGrant({ expiresIn: 60 });
    const plan = () =>
      s.sql
        .prepare('select refresh_at - updated_at as ahead from credentials where id = ?')
        .get(id) as { ahead: number };
    expect(plan().ahead).toBeGreaterThanOrEqual(15 * SECOND);
    expect(plan().ahead).toBeLessThanOrEqual(30 * SECOND);
    await s.broker.reportRejected(id, 1);
    expect(plan().ahead).toBeGreaterThanOrEqual(15 * SECOND);
    expect(plan().ahead).toBeLessThanOrEqual(30 * SECOND);
  });
});
