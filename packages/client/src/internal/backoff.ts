/** What a retry waits when the server named no time: exponential, with jitter, capped. */
export function backoffMs(attempt: number, baseMs = 200, maxMs = 5_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  // Half fixed, half random: callers in many processes that failed together spread out, and
  // none retries at once.
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) in milliseconds: delay-seconds or an HTTP-date. Undefined
 * when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
