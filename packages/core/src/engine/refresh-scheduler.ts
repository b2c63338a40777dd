import { randomUUID } from 'node:crypto';
import type { CredentialSnapshot } from '../credential.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { lead } from '../protocol/leader.ts';
import type { LeaderKit } from '../protocol/leader-kit.ts';
import { scheduledRefresh, schedulerClaim } from '../tracing/protocol-spans.ts';

export interface RefreshSchedulerOptions {
  /** Credentials claimed per round trip. Default 100. */
  batchSize?: number;
  /** Refreshes in flight per provider in this process. Default 16. */
  concurrencyPerProvider?: number;
  /** Pause between looks when nothing was due. Default 1 s. */
  idleIntervalMs?: number;
}

/** Why a lease handed back when the scheduler stops was not used. */
const STOPPING = { lastError: 'shutting_down', retryAfterMs: 0 };

/** What the scheduler borrows from its broker. */
export interface SchedulerHost {
  /** The store, the clock and the lease length come with the leader kit. */
  kit: LeaderKit;
  /** May read the provider from the store: it may be slow, and it may throw. */
  provider(name: string): Promise<ResolvedProvider | undefined>;
  /** Providers whose breaker refuses (open, or probing): their credentials are not claimed now. */
  unavailableProviders(): string[];
}

/**
 * Proactive refresh (invariant 10): claims credentials whose `refresh_at` has passed, in batches,
 * under the same lease as callers take, and refreshes them before anyone has to wait. Several
 * instances share the work through the claim (`FOR UPDATE SKIP LOCKED` on Postgres); nothing is
 * kept per credential, so memory does not grow with their number.
 */
export class RefreshScheduler {
  readonly #host: SchedulerHost;
  readonly #batchSize: number;
  readonly #concurrency: number;
  readonly #idleIntervalMs: number;
  /** Per provider: refreshes running, and those queued for a slot. */
  readonly #inFlight = new Map<string, number>();
  readonly #queued = new Map<string, ((granted: boolean) => void)[]>();
  readonly #running = new Set<Promise<void>>();
  #loop: Promise<void> | undefined;
  #stopping = new AbortController();

  constructor(host: SchedulerHost, options: RefreshSchedulerOptions = {}) {
    this.#host = host;
    this.#batchSize = options.batchSize ?? 100;
    this.#concurrency = options.concurrencyPerProvider ?? 16;
    this.#idleIntervalMs = options.idleIntervalMs ?? 1_000;
  }

  start(): void {
    if (this.#loop) return;
    this.#stopping = new AbortController();
    this.#loop = this.#run(this.#stopping.signal);
  }

  /**
   * Stops claiming, hands back at once the leases of claimed credentials whose refresh has not
   * started (no intent recorded: nothing to recover), and waits for the refreshes in flight. To
   * bound that wait, close the broker: it aborts their provider requests.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    for (const queue of this.#queued.values()) for (const next of queue.splice(0)) next(false);
    await this.#loop;
    this.#loop = undefined;
    await Promise.allSettled(this.#running);
  }

  /**
   * Claims one batch of due credentials and starts refreshing them; resolves with how many were
   * claimed once they are all done.
   */
  async tick(): Promise<number> {
    const room = this.#batchSize - this.#running.size;
    const claimed = room > 0 ? await this.#claim(room, this.#saturated()) : [];
    await Promise.allSettled(claimed.map((snapshot) => this.#refresh(snapshot)));
    return claimed.length;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const half = Math.ceil(this.#batchSize / 2);
    const stopped = new Promise<void>((resolve) =>
      signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    while (!signal.aborted) {
      const room = this.#batchSize - this.#running.size;
      const saturated = this.#saturated();
      let claimed: CredentialSnapshot[] = [];
      try {
        claimed = room > 0 ? await this.#claim(room, saturated) : [];
      } catch {
        // The store is unreachable: try again later; callers still refresh on demand.
      }
      for (const snapshot of claimed) {
        const job = this.#refresh(snapshot).finally(() => this.#running.delete(job));
        this.#running.add(job);
      }
      if (claimed.length === room) {
        // A full claim: more may be due. Claim again once half a batch has finished, so that
        // each claim takes many rows (one statement for them all, not one per refresh done).
        await this.#until(() => this.#running.size <= this.#batchSize - half, stopped);
      } else if (saturated.length > 0) {
        // Short because a provider already has a full round waiting for its slots: more of
        // its rows may be due. Claim again once one of them has room in its queue.
        await this.#until(() => saturated.some((p) => !this.#isSaturated(p)), stopped);
      } else {
        // Nothing more is due now.
        await this.#host.kit.clock.sleep(this.#idleIntervalMs, signal).catch(() => undefined);
      }
    }
  }

  /** Resolves once `ready()` holds (checked as refreshes finish), nothing runs, or `stopped`. */
  async #until(ready: () => boolean, stopped: Promise<void>): Promise<void> {
    while (!ready() && !this.#stopping.signal.aborted && this.#running.size > 0) {
      await Promise.race([...this.#running, stopped]);
    }
  }

  /**
   * Providers with a full round of refreshes waiting for their slots: claiming more of their
   * credentials now would only hold leases in a queue (and could crowd out other providers).
   */
  #saturated(): string[] {
    return [...this.#queued.keys()].filter((provider) => this.#isSaturated(provider));
  }

  #isSaturated(provider: string): boolean {
    return (this.#queued.get(provider)?.length ?? 0) >= this.#concurrency;
  }

  async #claim(limit: number, saturated: string[]): Promise<CredentialSnapshot[]> {
    return schedulerClaim(() =>
      this.#host.kit.store.claimDue({
        limit,
        leaseId: randomUUID(),
        leaseMs: this.#host.kit.leaseMs,
        excludeProviders: [...new Set([...saturated, ...this.#host.unavailableProviders()])],
      }),
    );
  }

  async #refresh(snapshot: CredentialSnapshot): Promise<void> {
    const claimedAt = this.#host.kit.clock.monotonic();
    const { provider: name } = snapshot.record;
    // A provider that is not configured, or cannot be read now: the lease simply runs out.
    const provider = await this.#host.provider(name).catch(() => undefined);
    if (!provider) return;
    if (!(await this.#acquireSlot(name))) return this.#handBack(snapshot);
    try {
      if (this.#stopping.signal.aborted) return await this.#handBack(snapshot);
      // The breaker decides, as for a caller: claimed before the provider's circuit opened (or
      // in a half-open round whose one probe is taken), the refresh is handed back unsent. Due
      // again at once: this instance's claims leave the provider out while its breaker refuses,
      // and another instance's breaker decides for itself (on its own clock, which the
      // database's need not be). An admitted refresh reports to the breaker (`lead`).
      if (!this.#host.kit.breaker(name).admit().admitted) {
        return await this.#handBack(snapshot, {
          lastError: snapshot.record.lastError ?? 'provider_unavailable', // the provider's, if any
          retryAfterMs: 0,
        });
      }
      await scheduledRefresh(snapshot, () => {
        const { refreshAt } = snapshot.record;
        const ms = refreshAt === null ? 0 : snapshot.now - refreshAt;
        this.#host.kit.measure({ kind: 'scheduler_lag', provider: name, ms });
        return lead(this.#host.kit, provider, { snapshot, takenAt: claimedAt });
      });
    } catch {
      // The leader has recorded the failure and released the lease.
    } finally {
      this.#releaseSlot(name);
    }
  }

  /**
   * A lease claimed but never used, handed back: when stopping, so that another instance may
   * take the credential at once instead of waiting for the lease to run out; or because the
   * provider's breaker refused it. Nothing was sent: any intent on the row is an earlier
   * leader's and stays.
   */
  async #handBack(
    { record }: CredentialSnapshot,
    why: { lastError: string; retryAfterMs: number } = STOPPING,
  ): Promise<void> {
    await this.#host.kit.store
      .commitFailure(record.id, record.leaseId!, { ...why, keepIntent: true })
      .catch(() => undefined); // the store is failing: then the lease runs out
  }

  /** Waits for a slot of this provider; false if the scheduler stopped meanwhile. */
  async #acquireSlot(provider: string): Promise<boolean> {
    const running = this.#inFlight.get(provider) ?? 0;
    if (running < this.#concurrency) {
      this.#inFlight.set(provider, running + 1);
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const queue = this.#queued.get(provider) ?? [];
      queue.push(resolve);
      this.#queued.set(provider, queue);
    });
  }

  #releaseSlot(provider: string): void {
    const next = this.#queued.get(provider)?.shift();
    if (next)
      next(true); // the slot passes straight to the next in line
    else this.#inFlight.set(provider, this.#inFlight.get(provider)! - 1);
  }
}
