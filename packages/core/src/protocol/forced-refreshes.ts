import type { Clock } from '../clock.ts';

/**
 * The most of a token's lifetime a caller may ask to have left (`min_ttl`, the broker's skew):
 * a token just issued always has more, so no wish can refresh one version twice.
 */
export const MAX_WANTED_FRACTION = 0.5;

/** A refresh only a caller's wish asks for: at most one per connection this often (per process). */
export const FORCED_REFRESH_INTERVAL_MS = 10_000;

/** Connections remembered: a bound on memory. The oldest remembered is forgotten first. */
export const MAX_REMEMBERED = 10_000;

/**
 * What a caller may ask of a connection's token (issue 14, defect 4). `min_ttl` is a wish, not a
 * right: one no token from this provider can satisfy would otherwise refresh on every request.
 * So a wish is bounded by the lifetime the connection's tokens were last issued with — learned
 * from the refreshes this process made, since the store keeps no issue time — and a refresh of
 * a token that still has more than the broker's skew left (forced) happens at most once per
 * `FORCED_REFRESH_INTERVAL_MS` per connection.
 */
export class ForcedRefreshes {
  readonly #clock: Clock;
  readonly #seen = new Map<string, { lifetimeMs?: number; forcedAt?: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** `wantedMs`, at most `MAX_WANTED_FRACTION` of the lifetime of the connection's tokens. */
  wanted(id: string, wantedMs: number): number {
    const lifetimeMs = this.#seen.get(id)?.lifetimeMs;
    return lifetimeMs === undefined
      ? wantedMs
      : Math.min(wantedMs, lifetimeMs * MAX_WANTED_FRACTION);
  }

  /** Whether a forced refresh of `id` may happen now; if so, it is counted as happening. */
  tryForce(id: string): boolean {
    const now = this.#clock.monotonic();
    const forcedAt = this.#seen.get(id)?.forcedAt;
    if (forcedAt !== undefined && now - forcedAt < FORCED_REFRESH_INTERVAL_MS) return false;
    this.#remember(id, { forcedAt: now });
    return true;
  }

  /** A refresh of `id` committed a token that lives `lifetimeMs`. */
  issued(id: string, lifetimeMs: number): void {
    this.#remember(id, { lifetimeMs });
  }

  #remember(id: string, change: { lifetimeMs?: number; forcedAt?: number }): void {
    const entry = { ...this.#seen.get(id), ...change };
    // Deleted first, so that the entry moves to the end: the Map's order is the age order.
    this.#seen.delete(id);
    this.#seen.set(id, entry);
    if (this.#seen.size > MAX_REMEMBERED) this.#seen.delete(this.#seen.keys().next().value!);
  }
}
