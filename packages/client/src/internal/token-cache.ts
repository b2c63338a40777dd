// What this process knows about each connection's token: the cached token, the requests in flight
// for it, and the newest version a resource server has refused.
import type { AccessToken } from '../types.ts';

export class Slot {
  token: AccessToken | undefined = undefined;
  /** Promise.resolve(token), made once: a cache hit hands it out and allocates nothing. */
  resolved: Promise<AccessToken> | undefined = undefined;
  /** Epoch ms after which the token is no longer handed out (its expiry minus the skew). */
  usableUntil = 0;
  /** A `/token` request in flight and the min TTL it asked for. */
  flight: Promise<AccessToken> | undefined = undefined;
  flightMinTtlMs = 0;
  /** A `/token/rejected` request in flight, for this version. */
  rejecting: { version: number; promise: Promise<AccessToken> } | undefined = undefined;
  /** The newest version refused by a resource server here: never cached again. */
  rejectedVersion = -1;

  /** A token that is still usable with at least `minTtlMs` left, if cached. */
  usable(now: number, minTtlMs: number): AccessToken | undefined {
    const token = this.token;
    if (token === undefined || now >= this.usableUntil || now >= token.expiresAt - minTtlMs) {
      return undefined;
    }
    return token;
  }

  /** Caches a token the API handed out, unless a newer one is cached or it was refused here. */
  store(token: AccessToken, now: number, skewMs: number): void {
    if (token.version <= this.rejectedVersion) return;
    if (this.token !== undefined && this.token.version > token.version) return;
    this.token = token;
    this.resolved = Promise.resolve(token);
    // A token that arrives with less than twice the skew left is kept for half its remaining
    // life instead of not at all, so short-lived tokens do not send every call to the server.
    this.usableUntil = token.expiresAt - Math.min(skewMs, (token.expiresAt - now) / 2);
  }

  /** Forgets the token if it is `version` or older (a resource server refused it). */
  reject(version: number): void {
    if (version > this.rejectedVersion) this.rejectedVersion = version;
    if (this.token !== undefined && this.token.version <= version) {
      this.token = undefined;
      this.resolved = undefined;
      this.usableUntil = 0;
    }
  }

  get idle(): boolean {
    return this.flight === undefined && this.rejecting === undefined;
  }
}

/** Slots by connection id, at most `limit` of them; the oldest idle ones are dropped first. */
export class TokenCache {
  readonly slots = new Map<string, Slot>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  slot(connectionId: string): Slot {
    let slot = this.slots.get(connectionId);
    if (slot === undefined) {
      if (this.slots.size >= this.#limit) this.#evict();
      slot = new Slot();
      this.slots.set(connectionId, slot);
    }
    return slot;
  }

  #evict(): void {
    // Insertion order is a cheap stand-in for recency; a slot with a request in flight stays, so
    // that its callers' single-flight is not split in two.
    for (const [id, slot] of this.slots) {
      if (slot.idle) {
        this.slots.delete(id);
        return;
      }
    }
  }
}
