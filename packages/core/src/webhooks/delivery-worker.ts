import { randomUUID } from 'node:crypto';
import { openWebhookSecret, type KeyRing } from '../crypto/index.ts';
import type { AttemptOutcome, ClaimedDelivery, WebhookStore } from '../store/webhook-store.ts';
import { WebhookSender } from './sender.ts';
import { webhookDelivery } from '../tracing/protocol-spans.ts';
import { signatureHeader } from './signature.ts';

export interface WebhookDeliveryOptions {
  /** Usually `store.webhooks` of the broker's store. */
  store: WebhookStore;
  keyRing: KeyRing;
  /** Deliver to private, loopback and link-local addresses, and over plain http. Default false. */
  allowPrivate?: boolean;
  /** A receiver must answer within this. Default 10 s. */
  timeoutMs?: number;
  /**
   * The pause after the 1st, 2nd, ... failed attempt; past the list each pause doubles, up to
   * 12 h. A random 0-25 % is added to each; a longer `Retry-After` wins. Default about 1 s, 5 s,
   * 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h.
   */
  retryDelaysMs?: readonly number[];
  /** A delivery still failing this long after its event is marked failed. Default 3 days. */
  maxRetryMs?: number;
  /** How often to look for due deliveries when nothing woke this process. Default 250 ms. */
  pollIntervalMs?: number;
  /** Requests in flight from this process at most. Default 32. */
  maxInFlight?: number;
  /** ... and to one endpoint at most, so a slow endpoint leaves the rest to the others. Default 4. */
  maxInFlightPerEndpoint?: number;
  /** Finished deliveries and their events are deleted this long after the event. Default 7 days. */
  retentionMs?: number;
  /** Told about every attempt (for metrics and logs). Must not throw. */
  onAttempt?: (attempt: DeliveryAttempt) => void;
  /** A claim or a write failed (the database unreachable); the worker carries on. */
  onError?: (error: unknown) => void;
}

/** One attempt, as `onAttempt` hears of it: no payload, no secret. */
export interface DeliveryAttempt {
  endpointId: string;
  eventId: string;
  attempt: number;
  outcome: AttemptOutcome['status'];
  status: number | null;
  error?: string;
}

const DEFAULT_DELAYS_MS = [
  1_000, 5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000,
];
const MAX_DELAY_MS = 12 * 3600_000;
const PRUNE_EVERY_MS = 3600_000;

/**
 * Delivers the outbox (`store/outbox.ts`) to the endpoints, from any number of processes at
 * once: each claims due deliveries under a lease (so a process that dies leaves them to the
 * others once it runs out), sends each as Standard Webhooks says, and writes the outcome
 * fenced by its lease. Per endpoint and connection one delivery at a time, in event order;
 * per endpoint at most `maxInFlightPerEndpoint` at a time, so a slow one delays only itself.
 */
export class WebhookDelivery {
  readonly #options: Required<Omit<WebhookDeliveryOptions, 'onAttempt' | 'onError'>> &
    Pick<WebhookDeliveryOptions, 'onAttempt' | 'onError'>;
  readonly #sender: WebhookSender;
  readonly #leaseMs: number;
  /** Per endpoint: deliveries leased by this process (sending or queued), and those sending. */
  readonly #held = new Map<string, number>();
  readonly #sending = new Map<string, number>();
  readonly #queued = new Map<string, ClaimedDelivery[]>();
  readonly #running = new Set<Promise<void>>();
  #total = 0;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #again = false;
  #stopped = true;
  #prunedAt = 0;

  constructor(options: WebhookDeliveryOptions) {
    this.#options = {
      allowPrivate: false,
      timeoutMs: 10_000,
      retryDelaysMs: DEFAULT_DELAYS_MS,
      maxRetryMs: 3 * 24 * 3600_000,
      pollIntervalMs: 250,
      maxInFlight: 32,
      maxInFlightPerEndpoint: 4,
      retentionMs: 7 * 24 * 3600_000,
      ...options,
    };
    this.#sender = new WebhookSender(this.#options);
    // Outlives the request by far: a lease that ran out while its request still ran would let
    // another process send the same delivery a second time.
    this.#leaseMs = this.#options.timeoutMs * 2 + 5_000;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.wake();
  }

  /** Looks for due deliveries now (a change was just committed in this process). */
  wake(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#tick();
  }

  /** Claims nothing more and waits for the requests in flight (each ends within its timeout). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Queued ones were never sent: handed back for any process to take at once.
    const queued = [...this.#queued.values()].flat();
    this.#queued.clear();
    await Promise.allSettled([
      ...this.#running,
      ...queued.map((d) => this.#options.store.releaseDelivery(d.seq, d.leaseId)),
    ]);
    await this.#sender.close();
  }

  async #tick(): Promise<void> {
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = true;
    try {
      do {
        this.#again = false;
        await this.#claim();
      } while (this.#again && !this.#stopped);
      await this.#pruneWhenDue();
    } catch (error) {
      this.#options.onError?.(error);
    } finally {
      this.#ticking = false;
      this.#schedule(this.#options.pollIntervalMs);
    }
  }

  async #claim(): Promise<void> {
    const { maxInFlight, maxInFlightPerEndpoint: perEndpoint } = this.#options;
    // At most one endpoint's share per claim: what comes back beyond it waits here (`#queued`),
    // never longer than one request's timeout, well inside the lease.
    const limit = Math.min(maxInFlight - this.#total, perEndpoint);
    if (limit <= 0 || this.#stopped) return;
    const full = [...this.#held].filter(([, n]) => n >= perEndpoint).map(([id]) => id);
    const claimed = await this.#options.store.claimDeliveries({
      limit,
      leaseId: randomUUID(),
      leaseMs: this.#leaseMs,
      excludeEndpoints: full,
    });
    for (const delivery of claimed) {
      const { endpointId } = delivery;
      this.#total++;
      this.#held.set(endpointId, (this.#held.get(endpointId) ?? 0) + 1);
      if ((this.#sending.get(endpointId) ?? 0) < perEndpoint) this.#run(delivery);
      else this.#queued.set(endpointId, [...(this.#queued.get(endpointId) ?? []), delivery]);
    }
    if (claimed.length === limit) this.#again = true;
  }

  #run(delivery: ClaimedDelivery): void {
    const { endpointId } = delivery;
    this.#sending.set(endpointId, (this.#sending.get(endpointId) ?? 0) + 1);
    const running = this.#attempt(delivery)
      .catch((error: unknown) => this.#options.onError?.(error))
      .finally(() => {
        this.#running.delete(running);
        this.#total--;
        decrement(this.#held, endpointId);
        decrement(this.#sending, endpointId);
        const next = this.#queued.get(endpointId)?.shift();
        // The slot goes to what is queued for it; a free one is filled by a claim at once.
        if (next && !this.#stopped) this.#run(next);
        else this.wake();
      });
    this.#running.add(running);
  }

  async #attempt(delivery: ClaimedDelivery): Promise<void> {
    const outcome = await webhookDelivery(delivery, () => this.#send(delivery));
    await this.#options.store.finishAttempt(delivery.seq, delivery.leaseId, outcome);
    this.#options.onAttempt?.({
      endpointId: delivery.endpointId,
      eventId: delivery.eventId,
      attempt: delivery.attempts + 1,
      outcome: outcome.status,
      status: outcome.lastStatus,
      ...(outcome.status !== 'delivered' && { error: outcome.lastError }),
    });
  }

  async #send(delivery: ClaimedDelivery): Promise<AttemptOutcome> {
    let secrets: string[];
    try {
      secrets = signingSecrets(this.#options.keyRing, delivery);
    } catch (error) {
      return this.#failed(delivery, { status: null, error: errorCode(error) });
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const result = await this.#sender.send(
      delivery.url,
      {
        'webhook-id': delivery.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(
          secrets,
          delivery.eventId,
          timestamp,
          delivery.payload,
        ),
        'user-agent': 'Tokenwarden-Webhooks/1',
      },
      delivery.payload,
    );
    return result.ok
      ? { status: 'delivered', lastStatus: result.status }
      : this.#failed(delivery, result);
  }

  /** A failed attempt: retried after the next pause, or given up past `maxRetryMs`. */
  #failed(
    delivery: ClaimedDelivery,
    result: { status: number | null; error: string; retryAfterMs?: number },
  ): AttemptOutcome {
    const pause = Math.max(this.#pause(delivery.attempts + 1), result.retryAfterMs ?? 0);
    const givenUp = delivery.now + pause - delivery.retryingSince > this.#options.maxRetryMs;
    return {
      status: givenUp ? 'failed' : 'pending',
      lastStatus: result.status,
      lastError: result.error,
      retryInMs: pause,
    };
  }

  /** The pause after the `failed`th failed attempt, with 0-25 % jitter added. */
  #pause(failed: number): number {
    const delays = this.#options.retryDelaysMs;
    const base =
      failed <= delays.length
        ? delays[failed - 1]!
        : Math.min(MAX_DELAY_MS, delays[delays.length - 1]! * 2 ** (failed - delays.length));
    return Math.round(base * (1 + Math.random() * 0.25));
  }

  async #pruneWhenDue(): Promise<void> {
    if (Date.now() - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = Date.now();
    await this.#options.store.prune(this.#options.retentionMs);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, delayMs);
    this.#timer.unref();
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = counts.get(key)! - 1;
  if (left === 0) counts.delete(key);
  else counts.set(key, left);
}

/** The current secret, and the one before it while its overlap lasts. */
function signingSecrets(ring: KeyRing, delivery: ClaimedDelivery): string[] {
  const secrets = [openWebhookSecret(ring, delivery.secret, delivery.endpointId)];
  const { previousSecret, previousSecretUntil } = delivery;
  if (
    previousSecret !== null &&
    previousSecretUntil !== null &&
    previousSecretUntil > delivery.now
  ) {
    secrets.push(openWebhookSecret(ring, previousSecret, delivery.endpointId));
  }
  return secrets;
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'internal_error';
}
