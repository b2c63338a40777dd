import type { AccessToken, ConnectionInfo } from '../credential.ts';
import type { KeyRing } from '../crypto/index.ts';
import {
  InvalidInputError,
  RefreshUnavailableError,
  StoreUnavailableError,
  UnknownProviderError,
} from '../errors.ts';
import type { IntrospectionOutcome } from '../oauth/introspection.ts';
import { providerFetch } from '../oauth/provider-transport.ts';
import type { ProviderConfig, ResolvedProvider } from '../provider/settings.ts';
import type { RevocationOutcome } from '../oauth/revocation.ts';
import { DecisionLoop } from '../protocol/decision-loop.ts';
import type { LeaderKit } from '../protocol/leader-kit.ts';
import { guardStore } from '../store/guard-store.ts';
import type { ServiceStore } from '../store/service-store.ts';
import type { Store } from '../store/store.ts';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.ts';
import { HeldLeases } from './held-leases.ts';
import {
  ProviderBreakers,
  type BreakerReport,
  type CircuitBreakerOptions,
} from './circuit-breaker.ts';
import { systemClock, type Clock } from '../clock.ts';
import { checkId, ConnectionLifecycle, type ReauthorizeInput } from './connection-lifecycle.ts';
import type { BrokerEvent, ConnectionEvent, ProtocolMeasure, ProtocolStep } from './events.ts';
import type { ImportConnectionInput, MachineConnectionInput } from './import-input.ts';
import { ProviderRegistry } from '../provider/registry.ts';
import { RefreshScheduler, type RefreshSchedulerOptions } from './refresh-scheduler.ts';
import { SingleFlight } from './single-flight.ts';
import { handOut } from '../tracing/protocol-spans.ts';
import { recordProviderStatus } from '../tracing/spans.ts';

export interface CredentialBrokerOptions {
  store: Store;
  keyRing: KeyRing;
  /** Providers configured in code, in this process only (see `configureProvider`). */
  providers?: Iterable<ProviderConfig>;
  /**
   * Where providers configured at run time live (`broker.providers.put`), shared by every
   * replica: usually `store.service` of the same database.
   */
  providerStore?: ServiceStore;
  /** How soon a provider changed by another replica is seen. Default 5 s. */
  providerCacheMs?: number;
  /** Used for every token request. Default: `providerFetch` (undici's `request`). */
  fetch?: typeof fetch;
  /**
   * The local clock for waits, backoff pauses, the circuit breakers and the deadline inside a
   * lease. Protocol times still come from the database (invariant 2). Default: the real one.
   */
  clock?: Clock;
  /** How long a refresh lease lasts. The provider call ends well inside it. Default 30 s. */
  leaseMs?: number;
  /** How long one call may wait for a refresh (its own or another's). Default 20 s. */
  maxWaitMs?: number;
  /** An access token with less than this left is refreshed before it is handed out. Default 30 s. */
  expirySkewMs?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Per-provider circuit breaker (in this process). */
  breaker?: Partial<CircuitBreakerOptions>;
  /** When the background scheduler should refresh (invariant 10). */
  proactive?: { skewMs?: number; fraction?: number; jitterMs?: number };
  /**
   * How long a connection's refreshes may fail without a verdict (the provider down or rate
   * limiting) before `connection.refresh_failing` is written for its webhooks. Default 15 min.
   */
  refreshFailingAfterMs?: number;
  /** Refreshes, failures and credentials needing re-authorization. Must not throw. */
  onEvent?: (event: BrokerEvent) => void;
  /** Every `BrokerEvent`, and connections recovered by re-authorization. Must not throw. */
  onConnectionEvent?: (event: ConnectionEvent) => void;
  /**
   * How many opened access tokens this process keeps for hand-outs (`OpenedAccessTokens`):
   * default 1000; 0 keeps none, so every hand-out decrypts and no plaintext token stays in
   * memory between hand-outs, at the cost of one AES-GCM decryption per hand-out.
   */
  openedTokenCache?: number;
  /** Test seam: awaited after each protocol step (see `ProtocolStep`). */
  onStep?: (step: ProtocolStep, connectionId: string) => void | Promise<void>;
  /**
   * For metrics: a caller is about to wait for another's refresh (`waited`), or lost the race
   * for the lease (`lease_conflict`). Apart from `onEvent`, whose listeners count refreshes.
   * Must not throw.
   */
  onContention?: (kind: 'waited' | 'lease_conflict', connectionId: string) => void;
  /** For metrics: lease waits, expiry-to-refresh and scheduler lag (`ProtocolMeasure`). Must not throw. */
  onMeasure?: (measure: ProtocolMeasure) => void;
}

export interface GetAccessTokenOptions {
  /** Refresh first if the token has less than this left. */
  minTtlSeconds?: number;
}

/**
 * Hands out valid access tokens for connections, refreshing each credential exactly once however
 * many callers in however many processes ask at the same moment. A facade: the hand-out and
 * refresh protocol lives in `../protocol/` (docs/protocol.md), everything else done to a
 * connection in `ConnectionLifecycle`.
 *
 * ```ts
 * const broker = new CredentialBroker({ store, keyRing, providers: [google] });
 * const { id } = await broker.importConnection({ provider: 'google', owner: 'user-42', ... });
 * const token = await broker.getAccessToken(id);
 * // the API said 401? report the version you used, get a fresh token:
 * const fresh = await broker.reportRejected(id, token.version);
 * ```
 */
export class CredentialBroker {
  /** The providers this broker refreshes with: configured in code, or stored (`put`). */
  readonly providers: ProviderRegistry;
  readonly #breakers: ProviderBreakers;
  readonly #flights = new SingleFlight<AccessToken>();
  readonly #kit: LeaderKit;
  readonly #loop: DecisionLoop;
  readonly #lifecycle: ConnectionLifecycle;
  readonly #expirySkewMs: number;
  readonly #onEvent: ((event: BrokerEvent) => void) | undefined;
  readonly #onConnectionEvent: ((event: ConnectionEvent) => void) | undefined;
  /** Aborted by `close()`: every provider request, and every call still waiting. */
  readonly #closing = new AbortController();
  readonly #held = new HeldLeases();
  /** How each call in flight is answered `shutting_down` when the broker closes. */
  readonly #inFlight = new Set<() => void>();

  constructor(options: CredentialBrokerOptions) {
    const clock = options.clock ?? systemClock;
    this.#expirySkewMs = options.expirySkewMs ?? 30_000;
    this.#onEvent = options.onEvent;
    this.#onConnectionEvent = options.onConnectionEvent;
    this.#breakers = new ProviderBreakers(options.breaker, clock);
    this.providers = new ProviderRegistry({
      keyRing: options.keyRing,
      store: options.providerStore,
      cacheMs: options.providerCacheMs,
    });
    for (const provider of options.providers ?? []) this.configureProvider(provider);
    const onStep = options.onStep;
    const send = options.fetch ?? providerFetch;
    const closing = this.#closing.signal;
    this.#kit = {
      store: this.#held.track(guardStore(options.store)),
      keyRing: options.keyRing,
      // Every request to a provider ends when the broker closes.
      fetch: async (input, init) => {
        const response = await send(input, {
          ...init,
          signal: init?.signal ? AbortSignal.any([init.signal, closing]) : closing,
        });
        recordProviderStatus(response.status);
        return response;
      },
      clock,
      leaseMs: options.leaseMs ?? 30_000,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      proactive: {
        skewMs: options.proactive?.skewMs ?? 60_000,
        fraction: options.proactive?.fraction ?? 0.1,
        jitterMs: options.proactive?.jitterMs ?? 30_000,
      },
      refreshFailingAfterMs: options.refreshFailingAfterMs ?? 15 * 60_000,
      emit: (event) => this.#emit(event),
      measure: (measure) => {
        try {
          options.onMeasure?.(measure);
        } catch {
          // Metrics must not change what a caller gets.
        }
      },
      breaker: (provider) => this.#breakers.for(provider),
      step: async (step, id) => {
        await onStep?.(step, id);
      },
    };
    const provider = (name: string) => this.#provider(name);
    // Looked up by a caller right before it would take a lease: a closed broker takes none (its
    // callers have been answered `shutting_down` already, see #whileOpen).
    const providerToLead = (name: string) =>
      closing.aborted ? Promise.reject(new UnknownProviderError(name)) : this.#provider(name);
    this.#loop = new DecisionLoop({
      kit: this.#kit,
      maxWaitMs: options.maxWaitMs ?? 20_000,
      expirySkewMs: this.#expirySkewMs,
      provider: providerToLead,
      onContention: options.onContention,
      openedTokenCache: options.openedTokenCache,
    });
    this.#lifecycle = new ConnectionLifecycle({
      kit: this.#kit,
      provider,
      emitConnection: (event) => this.#emitConnection(event),
    });
  }

  /**
   * Configures a provider in this process only, synchronously; it is not stored, and wins over a
   * stored one of the same name until `providers.put` replaces it. Throws InvalidInputError.
   */
  configureProvider(config: ProviderConfig): void {
    this.providers.define(config);
  }

  /** The circuit breakers of this process, one per provider it has sent requests to. */
  breakerStates(): BreakerReport[] {
    return this.#breakers.states();
  }

  /**
   * A background scheduler that refreshes credentials before they expire (invariant 10), sharing
   * this broker's providers, lease protocol and circuit breakers. Call `start()` on it; run one
   * per process, as many processes as you like.
   */
  scheduler(options: RefreshSchedulerOptions = {}): RefreshScheduler {
    return new RefreshScheduler(
      {
        kit: this.#kit,
        provider: (name) => this.providers.get(name),
        unavailableProviders: () => this.#breakers.unavailable(),
      },
      options,
    );
  }

  /** Stores the tokens a backend got from the OAuth handshake. An expired access token is fine. */
  importConnection(input: ImportConnectionInput): Promise<ConnectionInfo> {
    return this.#lifecycle.importConnection(input);
  }

  /** @deprecated Use `importConnection`: the same, named as what it returns. */
  importCredential(input: ImportConnectionInput): Promise<ConnectionInfo> {
    return this.importConnection(input);
  }

  /**
   * A machine token (RFC 6749 §4.4) for a provider configured with `grantType:
   * 'client_credentials'`: fetches the first access token, then stores the connection. From then
   * on `getAccessToken` fetches a new one when it expires, once cluster-wide, like a refresh.
   * Nothing is stored if the first fetch fails (`RefreshUnavailableError` with the provider's
   * error code, e.g. `invalid_client`).
   */
  createMachineConnection(input: MachineConnectionInput): Promise<ConnectionInfo> {
    return this.#lifecycle.createMachineConnection(input);
  }

  /**
   * Re-authorization: new tokens from a new OAuth handshake for an existing connection (usually
   * one that `needs_reauth`). It becomes `active` with the same id and a bumped version; waiters
   * get the new token; a leader still redeeming the old refresh token is fenced out. Emits
   * `recovered` (to `onConnectionEvent`) when it was not active. `owner`, when given, must be
   * the connection's. Throws NotFoundError, InvalidInputError.
   */
  reauthorize(
    id: string,
    input: ReauthorizeInput,
  ): Promise<ConnectionInfo & { recovered: boolean }> {
    return this.#lifecycle.reauthorize(id, input);
  }

  getConnection(id: string): Promise<ConnectionInfo> {
    return this.#lifecycle.getConnection(id);
  }

  deleteConnection(id: string): Promise<void> {
    return this.#lifecycle.deleteConnection(id);
  }

  /** @deprecated Use `deleteConnection`: the same, named as the rest of the API. */
  deleteCredential(id: string): Promise<void> {
    return this.deleteConnection(id);
  }

  /**
   * RFC 7662: asks the provider whether the connection's access token (or refresh token) is
   * still active. The token never leaves the broker; only the standard, type-checked members
   * come back. `unsupported` when the provider has no `introspectionUrl`.
   */
  introspect(
    id: string,
    options: { token?: 'access_token' | 'refresh_token' } = {},
  ): Promise<IntrospectionOutcome> {
    return this.#lifecycle.introspect(id, options.token ?? 'access_token');
  }

  /**
   * RFC 7009: asks the provider to revoke the connection's grant — its refresh token (which
   * takes the access tokens with it, §2.1), or its access token when it has none — typically
   * right before `deleteConnection`. `unsupported` when the provider has no `revocationUrl`;
   * `failed` (with a code) when the provider could not be reached or refused: the caller
   * decides whether to delete anyway. Nothing in the store changes.
   */
  revokeAtProvider(id: string): Promise<RevocationOutcome> {
    return this.#lifecycle.revokeAtProvider(id);
  }

  /** A valid access token, refreshed first if it expires within `minTtlSeconds` (or the skew). */
  async getAccessToken(id: string, options: GetAccessTokenOptions = {}): Promise<AccessToken> {
    const minTtlSeconds = options.minTtlSeconds ?? 0;
    if (typeof minTtlSeconds !== 'number' || !(minTtlSeconds >= 0) || minTtlSeconds > 86_400) {
      throw new InvalidInputError('min_ttl', 'must be between 0 and 86400 seconds');
    }
    const minTtlMs = Math.max(this.#expirySkewMs, minTtlSeconds * 1000);
    return handOut(id, undefined, () =>
      this.#flights.run(`${checkId(id)}|${minTtlMs}`, () =>
        this.#whileOpen(id, () => this.#loop.obtain(id, minTtlMs)),
      ),
    );
  }

  /**
   * Invariant 9: a resource server refused the token of `version`. If that version is still
   * current the token is treated as expired and refreshed (once, however many callers report
   * it); if a newer token already exists, it is returned at once.
   */
  async reportRejected(id: string, version: number): Promise<AccessToken> {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new InvalidInputError('version', 'must be a positive integer');
    }
    return handOut(id, version, () =>
      this.#flights.run(`${checkId(id)}|rejected:${version}`, () =>
        this.#whileOpen(id, () => this.#loop.obtain(id, this.#expirySkewMs, version)),
      ),
    );
  }

  /**
   * Shuts the broker down at once: aborts every provider request in flight (a leader whose
   * request is out records the failure and hands its lease back, keeping its intent for the next
   * leader, invariant 6), takes no new lease, and answers every call still waiting, and every
   * later one, with a retryable `refresh_unavailable` (`shutting_down`). Resolves once this
   * process holds no lease (at most a lease's length): then the store may be closed. Stop the
   * scheduler first, or together (`scheduler.stop()`). Idempotent.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    for (const answerShuttingDown of this.#inFlight) answerShuttingDown();
    await this.#held.released(this.#kit.leaseMs);
  }

  /** `close()` was called. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * The call's answer, or the retryable `shutting_down` as soon as the broker closes. The calls
   * in flight are a plain set, not listeners on the closing signal: a hand-out is a few
   * microseconds, and an EventTarget listener added and removed per call cost about half of it.
   */
  #whileOpen(id: string, obtain: () => Promise<AccessToken>): Promise<AccessToken> {
    if (this.#closing.signal.aborted) return Promise.reject(shuttingDown(id));
    const work = retryableOnStoreFailure(id, obtain());
    return new Promise<AccessToken>((resolve, reject) => {
      const onClose = () => reject(shuttingDown(id));
      this.#inFlight.add(onClose);
      work.then(resolve, reject).finally(() => this.#inFlight.delete(onClose));
    });
  }

  async #provider(name: string): Promise<ResolvedProvider> {
    const provider = await this.providers.get(name);
    if (!provider) throw new UnknownProviderError(name);
    return provider;
  }

  #emit(event: BrokerEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // A listener's bug must not break a refresh that has already been committed.
    }
    this.#emitConnection(event);
  }

  #emitConnection(event: ConnectionEvent): void {
    try {
      this.#onConnectionEvent?.(event);
    } catch {
      // Same: the change is committed whatever a listener does.
    }
  }
}

/** What a call to a closed broker hears: retry (elsewhere, or here once restarted). */
function shuttingDown(id: string): RefreshUnavailableError {
  return new RefreshUnavailableError(id, 1_000, 'shutting_down');
}

/** A caller waiting for a token hears of a store outage as a retryable `refresh_unavailable`. */
async function retryableOnStoreFailure(
  id: string,
  work: Promise<AccessToken>,
): Promise<AccessToken> {
  try {
    return await work;
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    throw new RefreshUnavailableError(id, 1_000, 'store_unavailable', { cause: error });
  }
}
