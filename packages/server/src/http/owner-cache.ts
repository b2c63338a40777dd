/**
 * Who owns a connection and at which provider, by connection id: what a grant check needs.
 * Both are fixed when a connection is imported and ids are never reused, so a remembered answer
 * never goes stale, on this replica or any other (a deleted connection is still refused by the
 * broker as not_found). Bounded: the least recently used entries are dropped.
 */
export class OwnerCache {
  readonly #max: number;
  readonly #entries = new Map<string, { owner: string; provider: string }>();

  constructor(max = 10_000) {
    this.#max = max;
  }

  get(id: string): { owner: string; provider: string } | undefined {
    const entry = this.#entries.get(id);
    if (entry) {
      // Map keeps insertion order: re-inserting marks the entry as recently used.
      this.#entries.delete(id);
      this.#entries.set(id, entry);
    }
    return entry;
  }

  set(id: string, entry: { owner: string; provider: string }): void {
    this.#entries.delete(id);
    this.#entries.set(id, { owner: entry.owner, provider: entry.provider });
    if (this.#entries.size > this.#max) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  get size(): number {
    return this.#entries.size;
  }
}
