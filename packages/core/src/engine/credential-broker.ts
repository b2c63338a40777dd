import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  connectionInfo,
  type AccessToken,
  type ConnectionInfo,
  type CredentialRecord,
  type CredentialSnapshot,
  type CredentialState,
} from '../credential.ts';
import { openField, sealField, type KeyRing } from '../crypto/index.ts';
import {
  InvalidInputError,
  NeedsReauthError,
  NotFoundError,
  RefreshUnavailableError,
  StoreUnavailableError,
  UnknownProviderError,
  type ReauthReason,
} from '../errors.ts';
import { clientCredentialsGrant } from '../oauth/client-credentials-grant.ts';
import { introspectToken, type IntrospectionOutcome } from '../oauth/introspection.ts';
import { revokeToken, type RevocationOutcome } from '../oauth/revocation.ts';
import type { ProviderConfig, ResolvedProvider } from '../provider/settings.ts';
import { guardStore } from '../store/guard-store.ts';
import type { ServiceStore } from '../store/service-store.ts';
import type { Store } from '../store/store.ts';
import { DEFAULT_BACKOFF, nextRefreshIn, type BackoffPolicy } from './backoff.ts';
import { CircuitBreaker, DEFAULT_BREAKER, type CircuitBreakerOptions } from './circuit-breaker.ts';
import type { BrokerEvent, ConnectionEvent, ProtocolStep } from './events.ts';
import { validateImport, type ImportCredentialInput, type ValidImport } from './import-input.ts';
import { ProviderRegistry } from '../provider/registry.ts';
import { idleMs, refreshAsLeader, type LeaderContext } from './refresh-leader.ts';
import { RefreshScheduler, type RefreshSchedulerOptions } from './refresh-scheduler.ts';
import { SingleFlight } from './single-flight.ts';

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
  /** Used for every token request. Default: the global `fetch`. */
  fetch?: typeof fetch;
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
  /** Refreshes, failures and credentials needing re-authorization. Must not throw. */
  onEvent?: (event: BrokerEvent) => void;
  /** Every `BrokerEvent`, and connections recovered by re-authorization. Must not throw. */
  onConnectionEvent?: (event: ConnectionEvent) => void;
  /** Test seam: awaited after each protocol step (see `ProtocolStep`). */
  onStep?: (step: ProtocolStep, connectionId: string) => void | Promise<void>;
  /**
   * For metrics: a caller is about to wait for another's refresh (`waited`), or lost the race
   * for the lease (`lease_conflict`). Apart from `onEvent`, whose listeners count refreshes.
   * Must not throw.
   */
  onContention?: (kind: 'waited' | 'lease_conflict', connectionId: string) => void;
}

export interface GetAccessTokenOptions {
  /** Refresh first if the token has less than this left. */
  minTtlSeconds?: number;
}

/**
 * Hands out valid access tokens for connections, refreshing each credential exactly once however
 * many callers in however many processes ask at the same moment.
 *
 * ```ts
 * const broker = new CredentialBroker({ store, keyRing, providers: [google] });
 * const { id } = await broker.importCredential({ provider: 'google', owner: 'user-42', ... });
 * const token = await broker.getAccessToken(id);
 * // the API said 401? report the version you used, get a fresh token:
 * const fresh = await broker.reportRejected(id, token.version);
 * ```
 */
export class CredentialBroker {
  /** The providers this broker refreshes with: configured in code, or stored (`put`). */
  readonly providers: ProviderRegistry;
  readonly #store: Store;
  readonly #keyRing: KeyRing;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #breakerOptions: CircuitBreakerOptions;
  readonly #flights = new SingleFlight<AccessToken>();
  readonly #leader: LeaderContext;
  readonly #maxWaitMs: number;
  readonly #expirySkewMs: number;
  readonly #onEvent: ((event: BrokerEvent) => void) | undefined;
  readonly #onConnectionEvent: ((event: ConnectionEvent) => void) | undefined;
  readonly #onContention: CredentialBrokerOptions['onContention'];
  /** See `#openAccessToken`. */
  readonly #openedTokens = new Map<
    string,
    { version: number; sealed: string; plaintext: string }
  >();

  constructor(options: CredentialBrokerOptions) {
    this.#store = guardStore(options.store);
    this.#keyRing = options.keyRing;
    this.#maxWaitMs = options.maxWaitMs ?? 20_000;
    this.#expirySkewMs = options.expirySkewMs ?? 30_000;
    this.#onEvent = options.onEvent;
    this.#onConnectionEvent = options.onConnectionEvent;
    this.#onContention = options.onContention;
    this.#breakerOptions = { ...DEFAULT_BREAKER, ...options.breaker };
    this.providers = new ProviderRegistry({
      keyRing: options.keyRing,
      store: options.providerStore,
      cacheMs: options.providerCacheMs,
    });
    for (const provider of options.providers ?? []) this.configureProvider(provider);
    const onStep = options.onStep;
    this.#leader = {
      store: this.#store,
      keyRing: options.keyRing,
      fetch: options.fetch,
      leaseMs: options.leaseMs ?? 30_000,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      proactive: {
        skewMs: options.proactive?.skewMs ?? 60_000,
        fraction: options.proactive?.fraction ?? 0.1,
        jitterMs: options.proactive?.jitterMs ?? 30_000,
      },
      emit: (event) => this.#emit(event),
      breaker: (provider) => this.#breaker(provider),
      step: async (step, id) => {
        await onStep?.(step, id);
      },
    };
  }

  /**
   * Configures a provider in this process only, synchronously; it is not stored, and wins over a
   * stored one of the same name until `providers.put` replaces it. Throws InvalidInputError.
   */
  configureProvider(config: ProviderConfig): void {
    this.providers.define(config);
  }

  /**
   * A background scheduler that refreshes credentials before they expire (invariant 10), sharing
   * this broker's providers, lease protocol and circuit breakers. Call `start()` on it; run one
   * per process, as many processes as you like.
   */
  scheduler(options: RefreshSchedulerOptions = {}): RefreshScheduler {
    return new RefreshScheduler(
      {
        store: this.#store,
        leader: this.#leader,
        provider: (name) => this.providers.get(name),
        unavailableProviders: () =>
          [...this.#breakers].filter(([, breaker]) => breaker.isOpen).map(([name]) => name),
      },
      options,
    );
  }

  /** Stores the tokens a backend got from the OAuth handshake. An expired access token is fine. */
  async importCredential(input: ImportCredentialInput): Promise<ConnectionInfo> {
    const valid = validateImport(input);
    const provider = await this.#provider(valid.provider);
    return this.#insert(newConnectionId(), provider, valid);
  }

  /**
   * A machine token (RFC 6749 §4.4) for a provider configured with `grantType:
   * 'client_credentials'`: fetches the first access token, then stores the connection. From then
   * on `getAccessToken` fetches a new one when it expires, once cluster-wide, like a refresh.
   * Nothing is stored if the first fetch fails (`RefreshUnavailableError` with the provider's
   * error code, e.g. `invalid_client`).
   */
  async createMachineConnection(input: {
    provider: string;
    owner: string;
    /** Default: the provider's scopes. */
    scope?: string;
    metadata?: Record<string, unknown>;
  }): Promise<ConnectionInfo> {
    const valid = validateImport({
      provider: input?.provider,
      owner: input?.owner,
      accessToken: 'placeholder',
      scope: input?.scope,
      metadata: input?.metadata,
    });
    const provider = await this.#provider(valid.provider);
    if (provider.grantType !== 'client_credentials') {
      throw new InvalidInputError('provider', 'does not use the client_credentials grant');
    }
    const id = newConnectionId();
    const breaker = this.#breaker(provider.name);
    const outcome = await clientCredentialsGrant(provider, {
      fetch: this.#leader.fetch,
      scope: valid.scope ?? undefined,
    });
    if (outcome.kind === 'failed') {
      breaker.onFailure(outcome.retryAfterMs);
      throw new RefreshUnavailableError(id, outcome.retryAfterMs ?? 1_000, outcome.error);
    }
    breaker.onSuccess();
    return this.#insert(id, provider, {
      ...valid,
      accessToken: outcome.accessToken,
      tokenType: outcome.tokenType,
      scope: outcome.scope ?? valid.scope,
      expiresInMs: outcome.expiresIn === undefined ? undefined : outcome.expiresIn * 1000,
    });
  }

  /**
   * Re-authorization: new tokens from a new OAuth handshake for an existing connection (usually
   * one that `needs_reauth`). It becomes `active` with the same id and a bumped version; waiters
   * get the new token; a leader still redeeming the old refresh token is fenced out. Emits
   * `recovered` (to `onConnectionEvent`) when it was not active. `owner`, when given, must be
   * the connection's. Throws NotFoundError, InvalidInputError.
   */
  async reauthorize(
    id: string,
    input: Omit<ImportCredentialInput, 'provider' | 'owner' | 'metadata'> & { owner?: string },
  ): Promise<ConnectionInfo & { recovered: boolean }> {
    checkId(id);
    for (let attempt = 0; ; attempt++) {
      const snapshot = await this.#store.getCredential(id);
      if (!snapshot) throw new NotFoundError(id);
      const before = snapshot.record;
      if (input?.owner !== undefined && input.owner !== before.owner) {
        throw new InvalidInputError('owner', 'is not the owner of this connection');
      }
      const valid = validateImport({ ...input, provider: before.provider, owner: before.owner });
      const provider = await this.#provider(before.provider);
      const sealed = await this.#sealImport(id, provider, valid);
      const after = await this.#store.reauthorize(id, before.version, sealed);
      if (!after) {
        // A refresh committed in between: read again (a handful of tries, never a loop).
        if (attempt >= 5) throw new RefreshUnavailableError(id, 100, 'concurrent_change');
        continue;
      }
      const recovered = before.status !== 'active';
      if (recovered) {
        this.#emitConnection({
          type: 'recovered',
          connectionId: id,
          provider: before.provider,
          version: after.record.version,
          previousStatus: before.status as 'needs_reauth' | 'revoked',
          previousReason: before.statusReason,
        });
      }
      return { ...connectionInfo(after.record), recovered };
    }
  }

  /** Stores validated tokens, sealed, as the new connection `id`. */
  async #insert(
    id: string,
    provider: ResolvedProvider,
    valid: ValidImport,
  ): Promise<ConnectionInfo> {
    const { record } = await this.#store.insertCredential({
      id,
      provider: valid.provider,
      owner: valid.owner,
      metadata: valid.metadata,
      ...(await this.#sealImport(id, provider, valid)),
    });
    return connectionInfo(record);
  }

  /** Seals validated tokens for connection `id` and works out their lifetimes. */
  async #sealImport(id: string, provider: ResolvedProvider, valid: ValidImport) {
    const machine = provider.grantType === 'client_credentials';
    if (machine && valid.refreshToken !== null) {
      throw new InvalidInputError('refresh_token', 'a client_credentials provider issues none');
    }
    const accessTtlMs =
      valid.expiresInMs ??
      (valid.expiresAtMs !== undefined
        ? valid.expiresAtMs - (await this.#store.now())
        : provider.defaultAccessTtlSeconds * 1000);
    const seal = (plaintext: string, field: 'access_token' | 'refresh_token') =>
      sealField(this.#keyRing, plaintext, { credentialId: id, field });
    const refreshable = machine || valid.refreshToken !== null;
    return {
      keyId: this.#keyRing.activeKeyId,
      accessToken: seal(valid.accessToken, 'access_token'),
      refreshToken: valid.refreshToken === null ? null : seal(valid.refreshToken, 'refresh_token'),
      tokenType: valid.tokenType,
      scope: valid.scope,
      accessTtlMs,
      // A provider with an absolute refresh token lifetime (Atlassian) dates it from here;
      // rotations keep that expiry.
      refreshTtlMs:
        valid.refreshExpiresInMs ??
        (valid.refreshToken !== null && provider.refreshTokenMaxSeconds !== undefined
          ? provider.refreshTokenMaxSeconds * 1000
          : null),
      refreshInMs: refreshable
        ? nextRefreshIn(accessTtlMs, idleMs(provider), this.#leader.proactive)
        : null,
    };
  }

  async getConnection(id: string): Promise<ConnectionInfo> {
    const snapshot = await this.#store.getCredential(checkId(id));
    if (!snapshot) throw new NotFoundError(id);
    return connectionInfo(snapshot.record);
  }

  async deleteCredential(id: string): Promise<void> {
    if (!(await this.#store.deleteCredential(checkId(id)))) throw new NotFoundError(id);
  }

  /**
   * RFC 7662: asks the provider whether the connection's access token (or refresh token) is
   * still active. The token never leaves the broker; only the standard, type-checked members
   * come back. `unsupported` when the provider has no `introspectionUrl`.
   */
  async introspect(
    id: string,
    options: { token?: 'access_token' | 'refresh_token' } = {},
  ): Promise<IntrospectionOutcome> {
    const which = options.token ?? 'access_token';
    if (which !== 'access_token' && which !== 'refresh_token') {
      throw new InvalidInputError('token', 'must be access_token or refresh_token');
    }
    const { provider, token } = await this.#openToken(id, () => which);
    return introspectToken(provider, token, which, { fetch: this.#leader.fetch });
  }

  /**
   * RFC 7009: asks the provider to revoke the connection's grant — its refresh token (which
   * takes the access tokens with it, §2.1), or its access token when it has none — typically
   * right before `deleteCredential`. `unsupported` when the provider has no `revocationUrl`;
   * `failed` (with a code) when the provider could not be reached or refused: the caller
   * decides whether to delete anyway. Nothing in the store changes.
   */
  async revokeAtProvider(id: string): Promise<RevocationOutcome> {
    const { provider, token, which } = await this.#openToken(id, (record) =>
      record.refreshToken === null ? 'access_token' : 'refresh_token',
    );
    return revokeToken(provider, token, which, { fetch: this.#leader.fetch });
  }

  /** One of the connection's tokens, opened, and its provider; `pick` chooses which, from the row. */
  async #openToken(
    id: string,
    pick: (record: CredentialRecord) => 'access_token' | 'refresh_token',
  ) {
    const snapshot = await this.#store.getCredential(checkId(id));
    if (!snapshot) throw new NotFoundError(id);
    const { record } = snapshot;
    const which = pick(record);
    const sealed = which === 'access_token' ? record.accessToken : record.refreshToken;
    if (sealed === null)
      throw new InvalidInputError('token', 'this connection has no refresh token');
    const provider = await this.#provider(record.provider);
    return {
      provider,
      token: openField(this.#keyRing, sealed, { credentialId: id, field: which }),
      which,
    };
  }

  /** A valid access token, refreshed first if it expires within `minTtlSeconds` (or the skew). */
  async getAccessToken(id: string, options: GetAccessTokenOptions = {}): Promise<AccessToken> {
    const minTtlSeconds = options.minTtlSeconds ?? 0;
    if (typeof minTtlSeconds !== 'number' || !(minTtlSeconds >= 0) || minTtlSeconds > 86_400) {
      throw new InvalidInputError('min_ttl', 'must be between 0 and 86400 seconds');
    }
    const minTtlMs = Math.max(this.#expirySkewMs, minTtlSeconds * 1000);
    return this.#flights.run(`${checkId(id)}|${minTtlMs}`, () =>
      retryableOnStoreFailure(id, this.#obtain(id, minTtlMs)),
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
    return this.#flights.run(`${checkId(id)}|rejected:${version}`, () =>
      retryableOnStoreFailure(id, this.#obtain(id, this.#expirySkewMs, version)),
    );
  }

  /**
   * The decision loop every caller runs: use the current token, wait for someone else's refresh,
   * back off after a failure, or take the lease and refresh. Bounded by `maxWaitMs`.
   */
  async #obtain(id: string, minTtlMs: number, rejectedVersion?: number): Promise<AccessToken> {
    const startedAt = Date.now();
    const deadline = startedAt + this.#maxWaitMs;
    let startVersion: number | undefined;
    /** A newer state the store learned while we waited, without reading (see waitForChange). */
    let heard: CredentialSnapshot<CredentialState> | undefined;
    for (;;) {
      const snapshot = heard ?? (await this.#store.getCredential(id));
      heard = undefined;
      if (!snapshot) throw new NotFoundError(id);
      const { record, now } = snapshot;
      startVersion ??= record.version;
      if (record.status !== 'active') {
        throw new NeedsReauthError(id, (record.statusReason ?? 'invalid_grant') as ReauthReason);
      }
      const rejected = record.version === rejectedVersion;
      // Invariant 5: once a refresh has happened since we started, its token is the answer.
      const wanted = record.version === startVersion ? minTtlMs : 0;
      if (!rejected && record.accessExpiresAt - now > wanted) return this.#open(record);

      const left = deadline - Date.now();
      if (record.nextAttemptAt !== null && record.nextAttemptAt > now) {
        // Backing off after a failure: the current token stays in service while it is valid.
        if (!rejected && record.accessExpiresAt > now) return this.#open(record);
        const wait = record.nextAttemptAt - now;
        if (wait > left) {
          throw new RefreshUnavailableError(id, wait, record.lastError ?? 'backing_off');
        }
        await sleep(wait);
        continue;
      }
      if (record.leaseUntil !== null && record.leaseUntil > now) {
        // Someone else is refreshing: wait for their result, never redeem ourselves.
        if (left <= 0) {
          throw new RefreshUnavailableError(id, record.leaseUntil - now, 'refresh_in_progress');
        }
        this.#onContention?.('waited', id);
        // The record itself as what was seen: a store may know how it was read (KyselyStore).
        heard = await this.#store.waitForChange(
          id,
          record,
          Math.min(left, record.leaseUntil - now + 5),
        );
        continue;
      }
      if (left <= 0) throw new RefreshUnavailableError(id, 1000, record.lastError ?? 'timeout');
      const provider = await this.#provider(record.provider); // before the lease: it may throw
      const breaker = this.#breaker(record.provider);
      const admission = breaker.admit();
      if (!admission.admitted) {
        // The provider is failing for everyone: do not add to it.
        if (!rejected && record.accessExpiresAt > now) return this.#open(record);
        if (admission.retryAfterMs > left) {
          throw new RefreshUnavailableError(
            id,
            admission.retryAfterMs,
            record.lastError ?? 'provider_unavailable',
          );
        }
        await sleep(admission.retryAfterMs);
        continue;
      }

      const leased = await this.#store.acquireLease(id, {
        expectedVersion: record.version,
        leaseId: randomUUID(),
        leaseMs: this.#leader.leaseMs,
      });
      if (!leased) {
        this.#onContention?.('lease_conflict', id);
        breaker.release();
        continue; // lost the race: the next read shows the winner's lease
      }
      const committed = await refreshAsLeader(this.#leader, provider, leased);
      const after = committed?.record;
      if (after?.status === 'active' && after.version !== record.version) return this.#open(after);
    }
  }

  #open(record: CredentialState): AccessToken {
    return {
      connectionId: record.id,
      accessToken: this.#openAccessToken(record),
      tokenType: record.tokenType,
      expiresAt: record.accessExpiresAt,
      version: record.version,
      scope: record.scope,
    };
  }

  /**
   * Decrypting costs more than reading the row, and most hand-outs return a token handed out
   * before: an opened token is kept for its credential, and used again only for the same version
   * and the very same ciphertext, so it never outlives a refresh, a re-authorization or a re-seal
   * (the key ring never changes). At most `MAX_OPENED_TOKENS`, the oldest opened dropped first.
   */
  #openAccessToken(record: CredentialState): string {
    const kept = this.#openedTokens.get(record.id);
    if (kept?.version === record.version && kept.sealed === record.accessToken) {
      return kept.plaintext;
    }
    const plaintext = openField(this.#keyRing, record.accessToken, {
      credentialId: record.id,
      field: 'access_token',
    });
    this.#openedTokens.delete(record.id);
    this.#openedTokens.set(record.id, {
      version: record.version,
      sealed: record.accessToken,
      plaintext,
    });
    if (this.#openedTokens.size > MAX_OPENED_TOKENS) {
      this.#openedTokens.delete(this.#openedTokens.keys().next().value!);
    }
    return plaintext;
  }

  async #provider(name: string): Promise<ResolvedProvider> {
    const provider = await this.providers.get(name);
    if (!provider) throw new UnknownProviderError(name);
    return provider;
  }

  #breaker(provider: string): CircuitBreaker {
    let breaker = this.#breakers.get(provider);
    if (!breaker) {
      breaker = new CircuitBreaker(this.#breakerOptions);
      this.#breakers.set(provider, breaker);
    }
    return breaker;
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

/** `conn_` and 120 random bits. */
function newConnectionId(): string {
  return `conn_${randomBytes(15).toString('base64url')}`;
}

/** Opened access tokens kept by a broker: a bound on plaintext tokens held in memory. */
const MAX_OPENED_TOKENS = 1_000;

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

/** Connection ids are opaque but bounded: no path characters, no control characters. */
function checkId(id: unknown): string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    throw new InvalidInputError(
      'connection_id',
      'must be 1-64 characters of A-Z, a-z, 0-9, _ or -',
    );
  }
  return id;
}
