import type { CredentialSnapshot } from '../credential.ts';
import type { Store } from '../store/store.ts';

/**
 * The refresh leases this process holds, counted at the store: so that a broker closing down
 * can wait until every leader has written its outcome (or handed its lease back) before the
 * store is closed under it. A leader whose provider already answered must be allowed to commit:
 * closing the store first would lose the new refresh token.
 */
export class HeldLeases {
  readonly #held = new Set<string>();
  #released: (() => void) | undefined;

  get size(): number {
    return this.#held.size;
  }

  /** Resolves once no lease is held, or after `timeoutMs` (a lease runs out by then anyway). */
  async released(timeoutMs: number): Promise<void> {
    if (this.#held.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => (this.#released = resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * The store with its lease-taking and lease-ending calls counted. A call that throws leaves its
   * lease counted: its leader may retry the write. The other methods are the store's own, reached
   * through the prototype: pass a `guardStore`d store, whose methods do not depend on `this`.
   */
  track(store: Store): Store {
    const take = (snapshot: CredentialSnapshot | undefined) => {
      if (snapshot) this.#held.add(key(snapshot.record.id, snapshot.record.leaseId!));
      return snapshot;
    };
    const end = (id: string, leaseId: string) => {
      this.#held.delete(key(id, leaseId));
      if (this.#held.size === 0) this.#released?.();
    };
    const ending =
      <A extends unknown[], R>(method: (id: string, leaseId: string, ...rest: A) => Promise<R>) =>
      async (id: string, leaseId: string, ...rest: A): Promise<R> => {
        const result = await method.call(store, id, leaseId, ...rest);
        end(id, leaseId);
        return result;
      };
    return Object.assign(Object.create(store) as Store, {
      acquireLease: async (...args: Parameters<Store['acquireLease']>) =>
        take(await store.acquireLease(...args)),
      claimDue: async (...args: Parameters<Store['claimDue']>) => {
        const claimed = await store.claimDue(...args);
        for (const snapshot of claimed) take(snapshot);
        return claimed;
      },
      // A refused intent means the lease was lost: nothing more will be written under it.
      recordIntent: async (id: string, leaseId: string, intentHash: string) => {
        const recorded = await store.recordIntent(id, leaseId, intentHash);
        if (!recorded) end(id, leaseId);
        return recorded;
      },
      commitRefresh: ending(store.commitRefresh),
      commitNeedsReauth: ending(store.commitNeedsReauth),
      commitFailure: ending(store.commitFailure),
    });
  }
}

function key(id: string, leaseId: string): string {
  return `${id} ${leaseId}`;
}
