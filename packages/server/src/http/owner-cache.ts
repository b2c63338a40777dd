/**
 * Who owns a connection and at which provider, by connection id: what a grant check needs.
 * Both are fixed when a connection is imported and ids are never reused, so a remembered answer
 * never goes stale, on this replica or any other (a deleted connection is still refused by the
 * broker as not_found). Bounded: when full, an entry not used since the last eviction pass is
 * dropped (the "clock" approximation of least recently used), so a hit costs one lookup and a
 * flag, not a re-insertion.
 */
export class OwnerCache {
  readonly #max: number;
  readonly #entries = new Map<string, Entry>();

  constructor(max = 10_000) {
    this.#max = max;
  }

  get(id: string): { owner: string; provider: string } | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    entry.used = true;
    return entry.target;
  }

  set(id: string, entry: { owner: string; provider: string }): void {
    if (!this.#entries.delete(id) && this.#entries.size >= this.#max) this.#evictOne();
    this.#entries.set(id, {
      target: { owner: entry.owner, provider: entry.provider },
      used: false,
    });
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Drops the oldest entry not used since it was last passed over; used ones get a second chance. */
  #evictOne(): void {
    for (const [id, entry] of this.#entries) {
      this.#entries.delete(id);
      if (!entry.used) return;
      entry.used = false;
      this.#entries.set(id, entry);
    }
  }
}

interface Entry {
  readonly target: { owner: string; provider: string };
  /** Read since it was inserted or last passed over by an eviction. */
  used: boolean;
}
