export interface BackoffPolicy {
  /** Delay ceiling after the first failure. Default 500 ms. */
  baseMs: number;
  /**
   * Delay ceiling however many failures. Default 30 s: the circuit breaker already bounds what a
   * failing provider receives, and a longer wait only delays the recovery after an outage.
   */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

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
 * The lead never takes more than this share of a token's lifetime, and its jitter no more than
 * half of that again: a token is refreshed after at least a quarter of its life, however short.
 */
export const MAX_LEAD_FRACTION = 0.5;

/**
 * The least time between two planned refreshes of one connection: a token that lives less is
 * refreshed when it expires, not in a loop.
 */
export const MIN_REFRESH_INTERVAL_MS = 1_000;

/**
 * When the scheduler should refresh a token that lives `ttlMs` (invariant 10): before expiry by
 * the larger of `skewMs` and a fraction of the lifetime, minus jitter so tokens issued together
 * are not refreshed together. Both are bounded by the lifetime (`MAX_LEAD_FRACTION`): a skew of
 * 60 s on a 60-second token would otherwise plan the next refresh for right now, every time.
 */
export function refreshLeadTime(
  ttlMs: number,
  options: { skewMs: number; fraction: number; jitterMs: number },
  random: () => number = Math.random,
): number {
  const longest = Math.max(0, ttlMs) * MAX_LEAD_FRACTION;
  const lead = Math.min(longest, Math.max(options.skewMs, ttlMs * options.fraction));
  const jitter = random() * Math.min(options.jitterMs, longest / 2);
  return Math.max(0, Math.round(ttlMs - lead - jitter));
}

/**
 * When to refresh next: ahead of the access token's expiry (`refreshLeadTime`), and, when the
 * provider kills refresh tokens left unused (`idleMs`), at least every ¾ of that idle lifetime;
 * never sooner than `MIN_REFRESH_INTERVAL_MS` unless the token expires sooner.
 */
export function nextRefreshIn(
  accessTtlMs: number,
  idleMs: number | undefined,
  options: { skewMs: number; fraction: number; jitterMs: number },
  random: () => number = Math.random,
): number {
  const lead = refreshLeadTime(accessTtlMs, options, random);
  const planned = idleMs === undefined ? lead : Math.min(lead, Math.round(idleMs * 0.75));
  return Math.max(Math.min(MIN_REFRESH_INTERVAL_MS, Math.max(0, accessTtlMs)), planned);
}
