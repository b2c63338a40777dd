export interface BackoffPolicy {
  /** Delay ceiling after the first failure. Default 500 ms. */
  baseMs: number;
  /** Delay ceiling however many failures. Default 5 min. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 5 * 60_000 };

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(max, base·2^(n-1))], so that
 * many credentials failing together do not retry together. A provider's Retry-After is a floor.
 */
export function backoffDelay(
  policy: BackoffPolicy,
  failures: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.max(retryAfterMs ?? 0, Math.round(random() * ceiling));
}

/**
 * When the scheduler should refresh a token that lives `ttlMs` (invariant 10): before expiry by
 * the larger of `skewMs` and a fraction of the lifetime, minus jitter so tokens issued together
 * are not refreshed together.
 */
export function refreshLeadTime(
  ttlMs: number,
  options: { skewMs: number; fraction: number; jitterMs: number },
  random: () => number = Math.random,
): number {
  const early = Math.max(options.skewMs, ttlMs * options.fraction) + random() * options.jitterMs;
  return Math.max(0, Math.round(ttlMs - early));
}

/**
 * When to refresh next: ahead of the access token's expiry (`refreshLeadTime`), and, when the
 * provider kills refresh tokens left unused (`idleMs`), at least every ¾ of that idle lifetime.
 */
export function nextRefreshIn(
  accessTtlMs: number,
  idleMs: number | undefined,
  options: { skewMs: number; fraction: number; jitterMs: number },
  random: () => number = Math.random,
): number {
  const lead = refreshLeadTime(accessTtlMs, options, random);
  return idleMs === undefined ? lead : Math.min(lead, Math.round(idleMs * 0.75));
}
