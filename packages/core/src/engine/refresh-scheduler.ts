import { randomUUID } from 'node:crypto';
import type { CredentialSnapshot } from '../credential.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { lead } from '../protocol/leader.ts';
import type { LeaderKit } from '../protocol/leader-kit.ts';

export interface RefreshSchedulerOptions {
  /** Credentials claimed per round trip. Default 100. */
  batchSize?: number;
  /** Refreshes in flight per provider in this process. Default 16. */
  concurrencyPerProvider?: number;
  /** Pause between looks when nothing was due. Default 1 s. */
  idleIntervalMs?: number;
}

/** What the scheduler borrows from its broker. */
export interface SchedulerHost {
  /** The store, the clock and the lease length come with the leader kit. */
  kit: LeaderKit;
  /** May read the provider from the store: it may be slow, and it may throw. */
  provider(name: string): Promise<ResolvedProvider | undefined>;
  /** Providers whose circuit is open: their credentials are not claimed now. */
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
  readonly #queued = new Map<string, (() => void)[]>();
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

  /** Stops claiming and waits for the refreshes in flight. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
    this.#loop = undefined;
    await Promise.allSettled(this.#running);
  }

  /**
   * Claims one batch of due credentials and starts refreshing them; resolves with how many were
   * claimed once they are all done.
   */
  async tick(): Promise<number> {
    const claimed = await this.#claim();
    await Promise.allSettled(claimed.map((snapshot) => this.#refresh(snapshot)));
    return claimed.length;
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let claimed: CredentialSnapshot[] = [];
      try {
        claimed = await this.#claim();
      } catch {
        // The store is unreachable: try again later; callers still refresh on demand.
      }
      for (const snapshot of claimed) {
        const job = this.#refresh(snapshot).finally(() => this.#running.delete(job));
        this.#running.add(job);
      }
      // A full batch means more may be due: look again as soon as there is room.
      const pause = claimed.length < this.#batchSize ? this.#idleIntervalMs : 0;
      await Promise.race([
        this.#host.kit.clock.sleep(pause, signal).catch(() => undefined),
        ...(pause === 0 && this.#running.size >= this.#batchSize
          ? [Promise.race(this.#running)]
          : []),
      ]);
    }
  }

  async #claim(): Promise<CredentialSnapshot[]> {
    const room = this.#batchSize - this.#running.size;
    if (room <= 0) return [];
    const saturated = [...this.#inFlight]
      .filter(([, running]) => running >= this.#concurrency)
      .map(([provider]) => provider);
    return this.#host.kit.store.claimDue({
      limit: room,
      leaseId: randomUUID(),
      leaseMs: this.#host.kit.leaseMs,
      excludeProviders: [...new Set([...saturated, ...this.#host.unavailableProviders()])],
    });
  }

  async #refresh(snapshot: CredentialSnapshot): Promise<void> {
    const claimedAt = this.#host.kit.clock.monotonic();
    const { provider: name } = snapshot.record;
    // A provider that is not configured, or cannot be read now: the lease simply runs out.
    const provider = await this.#host.provider(name).catch(() => undefined);
    if (!provider) return;
    await this.#acquireSlot(name);
    try {
      await lead(this.#host.kit, provider, { snapshot, takenAt: claimedAt });
    } catch {
      // The leader has recorded the failure and released the lease.
    } finally {
      this.#releaseSlot(name);
    }
  }

  async #acquireSlot(provider: string): Promise<void> {
    const running = this.#inFlight.get(provider) ?? 0;
    if (running < this.#concurrency) {
      this.#inFlight.set(provider, running + 1);
      return;
    }
    await new Promise<void>((resolve) => {
      const queue = this.#queued.get(provider) ?? [];
      queue.push(resolve);
      this.#queued.set(provider, queue);
    });
  }

  #releaseSlot(provider: string): void {
    const next = this.#queued.get(provider)?.shift();
    if (next)
      next(); // the slot passes straight to the next in line
    else this.#inFlight.set(provider, this.#inFlight.get(provider)! - 1);
  }
}
