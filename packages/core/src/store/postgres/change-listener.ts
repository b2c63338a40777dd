import pg from 'pg';
import type { ChangeNotifications, ChangeWatch } from '../kysely-store.ts';

const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;
const END_TIMEOUT_MS = 1_000;

/**
 * One LISTEN connection per store, shared by all its waiters through an in-process map keyed by
 * credential id. Started by the first waiter; if it drops, it reconnects with backoff while
 * anyone waits. Notifications are hints (see `ChangeNotifications`): a waiter re-reads the row
 * and keeps polling, so while this is down waiters only see changes later.
 */
export class ChangeListener implements ChangeNotifications {
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  readonly #watches = new Map<string, Set<Watch>>();
  #client: pg.Client | undefined;
  #listening = false;
  /** Settles when the current connection attempt has succeeded or failed. */
  #attempt: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;

  constructor(config: pg.ClientConfig, channel: string) {
    this.#config = config;
    this.#channel = channel;
  }

  /** Connects ahead of the first waiter, so that no caller waits for a new connection. */
  start(): void {
    if (!this.#closed && !this.#client && !this.#retryTimer) this.#connect();
  }

  watch(id: string): ChangeWatch {
    const watch = new Watch(() => this.#unwatch(id, watch));
    if (this.#closed) return watch;
    let set = this.#watches.get(id);
    if (!set) this.#watches.set(id, (set = new Set()));
    set.add(watch);
    if (!this.#client && !this.#retryTimer) this.#connect();
    // While reconnecting after a failure, waiters do not wait for it: they poll meanwhile.
    watch.ready = this.#listening || !this.#client ? Promise.resolve() : this.#attempt!;
    return watch;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const client = this.#client;
    this.#drop();
    this.#wakeAll();
    if (client) await endWithin(client, END_TIMEOUT_MS);
  }

  #connect(): void {
    const client = new pg.Client(this.#config);
    this.#client = client;
    this.#listening = false;
    client.on('notification', (message) => {
      if (message.channel === this.#channel && message.payload !== undefined) {
        for (const watch of this.#watches.get(message.payload) ?? []) watch.wake();
      }
    });
    // A dropped connection ('error', then 'end') is expected: the server restarts, an admin
    // terminates the backend. Without a listener the 'error' event would crash the process.
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    this.#attempt = (async () => {
      try {
        await client.connect();
        await client.query(`listen ${this.#channel}`);
      } catch {
        this.#lost(client);
        return;
      }
      if (this.#client !== client) return;
      this.#listening = true;
      // Changes made while no connection listened were not notified: everyone looks again.
      if (this.#failures > 0) this.#wakeAll();
      this.#failures = 0;
    })();
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#drop();
    void endWithin(client, END_TIMEOUT_MS);
    if (this.#closed) return;
    this.#failures++;
    const backoff = Math.min(MAX_RETRY_MS, MIN_RETRY_MS * 2 ** (this.#failures - 1));
    this.#retryTimer = setTimeout(
      () => {
        this.#retryTimer = undefined;
        // Nobody waiting: stay down until the next waiter comes.
        if (!this.#closed && this.#watches.size > 0) this.#connect();
      },
      backoff * (0.5 + Math.random()),
    );
    this.#retryTimer.unref();
  }

  #drop(): void {
    this.#client = undefined;
    this.#listening = false;
  }

  #wakeAll(): void {
    for (const set of this.#watches.values()) for (const watch of set) watch.wake();
  }

  #unwatch(id: string, watch: Watch): void {
    const set = this.#watches.get(id);
    set?.delete(watch);
    if (set?.size === 0) this.#watches.delete(id);
  }
}

/** One waiter's view: a latch, so a notification that comes between two waits is not lost. */
class Watch implements ChangeWatch {
  ready: Promise<void> = Promise.resolve();
  #woken = false;
  #resolve: (() => void) | undefined;
  readonly #stop: () => void;

  constructor(stop: () => void) {
    this.#stop = stop;
  }

  wake(): void {
    if (this.#resolve) this.#resolve();
    else this.#woken = true;
  }

  next(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#resolve?.(), ms);
      this.#resolve = () => {
        clearTimeout(timer);
        this.#resolve = undefined;
        resolve();
      };
    });
  }

  stop(): void {
    this.#resolve?.();
    this.#stop();
  }
}

/** Ends a client, giving up after `ms` (a dead server may never answer the goodbye). */
async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}
