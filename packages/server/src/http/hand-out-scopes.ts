/** Which request a refresh happened for, so the broker's events can be audited under it. */
export interface RequestScope {
  requestId: string;
  actor: string;
}

/**
 * The hand-outs in progress in this process, by connection id. A refresh the broker reports for
 * a connection while one of them is waiting is audited under the first request that asked (the
 * one whose call leads the broker's single flight); one with no request waiting came from the
 * scheduler.
 *
 * A map rather than AsyncLocalStorage: on Node 20 the latter turns on promise hooks, a cost paid
 * by every promise in the process, on the hottest path there is.
 */
export class HandOutScopes {
  readonly #active = new Map<string, { scope: RequestScope; waiting: number }>();

  /** A hand-out of this connection starts; pair with `leave` in a `finally`. */
  enter(connectionId: string, scope: RequestScope): void {
    const entry = this.#active.get(connectionId);
    if (entry) entry.waiting += 1;
    else this.#active.set(connectionId, { scope, waiting: 1 });
  }

  leave(connectionId: string): void {
    const current = this.#active.get(connectionId)!;
    if (--current.waiting === 0) this.#active.delete(connectionId);
  }

  /** The request a refresh of this connection is for, if one is waiting. */
  scopeOf(connectionId: string): RequestScope | undefined {
    return this.#active.get(connectionId)?.scope;
  }

  get size(): number {
    return this.#active.size;
  }
}
