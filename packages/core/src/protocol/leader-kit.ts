import type { CredentialSnapshot } from '../credential.ts';
import { sealField, type KeyRing } from '../crypto/index.ts';
import { StoreUnavailableError, type ReauthReason } from '../errors.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import type { TokenOutcome } from '../oauth/token-endpoint.ts';
import type { Store } from '../store/store.ts';
import { backoffDelay, nextRefreshIn, type BackoffPolicy } from '../engine/backoff.ts';
import type { CircuitBreaker } from '../engine/circuit-breaker.ts';
import type { Clock } from '../clock.ts';
import type { BrokerEvent, ProtocolMeasure, ProtocolStep } from '../engine/events.ts';
import { fencedCommit } from '../tracing/protocol-spans.ts';

/**
 * The steps every leader shares, whichever grant it runs (`refresh-leader.ts`,
 * `machine-token-leader.ts`): the deadline inside the lease (invariant 3), the fenced writes of
 * each outcome (invariant 4) and what is announced after them (invariant 8).
 */

/** What a leader needs from its broker. */
export interface LeaderKit {
  store: Store;
  keyRing: KeyRing;
  fetch: typeof fetch | undefined;
  clock: Clock;
  leaseMs: number;
  backoff: BackoffPolicy;
  proactive: { skewMs: number; fraction: number; jitterMs: number };
  /** Refreshes failing without a verdict this long make `connection.refresh_failing`. */
  refreshFailingAfterMs: number;
  emit(event: BrokerEvent): void;
  /** `CredentialBrokerOptions.onMeasure`. */
  measure(measure: ProtocolMeasure): void;
  breaker(provider: string): CircuitBreaker;
  /** The crash-point seam (`CredentialBrokerOptions.onStep`). */
  step(step: ProtocolStep, connectionId: string): Promise<void>;
}

/** A lease this process holds: the row as leased, and when the lease was taken. */
export interface HeldLease {
  snapshot: CredentialSnapshot;
  /** `clock.monotonic()` when the lease was taken: the deadline inside it counts from there. */
  takenAt: number;
  /** The caller leads because a resource server refused the current token (invariant 9). */
  rejected?: boolean;
}

/**
 * `lastError` of a connection whose replay after a lost answer waits (invariant 6): it is not
 * due before its access token expires, unless that token is reported rejected first.
 */
export const REPLAY_DEFERRED = 'replay_deferred';

/** Less than this left for the provider, and a leader sends nothing. */
const MIN_REQUEST_MS = 50;

/**
 * Invariant 3: how long the provider may take — well inside what is left of the lease, so a
 * leader whose lease has passed to someone else is never still waiting for an answer it would
 * try to write. Undefined when too little is left to send anything safely.
 */
export function deadlineInsideLease(
  kit: LeaderKit,
  provider: ResolvedProvider,
  { snapshot, takenAt }: HeldLease,
): number | undefined {
  const elapsed = kit.clock.monotonic() - takenAt;
  const leaseLeft = snapshot.record.leaseUntil! - snapshot.now - elapsed;
  const timeoutMs = Math.floor(
    Math.min(provider.requestTimeoutMs, leaseLeft - Math.max(250, kit.leaseMs * 0.25)),
  );
  return timeoutMs < MIN_REQUEST_MS ? undefined : timeoutMs;
}

/** The early exit when the lease is nearly over: give it back untouched, nothing announced. */
export function handBack(
  kit: LeaderKit,
  { snapshot }: HeldLease,
  keepIntent: boolean,
): Promise<CredentialSnapshot | undefined> {
  const { id, leaseId } = snapshot.record;
  return kit.store.commitFailure(id, leaseId!, {
    lastError: 'lease_expiring',
    retryAfterMs: 0,
    keepIntent,
  });
}

/** The provider has answered: the crash-point seam, then the breaker hears how it went. */
export async function received(
  kit: LeaderKit,
  { snapshot }: HeldLease,
  outcome: TokenOutcome,
): Promise<void> {
  await kit.step('response_received', snapshot.record.id);
  const breaker = kit.breaker(snapshot.record.provider);
  if (outcome.kind === 'failed') breaker.onFailure(outcome.retryAfterMs);
  else breaker.onSuccess();
}

/**
 * No verdict from the provider (5xx, 429, a timeout): back off with jitter, and keep the intent
 * when the refresh token may have been spent (invariants 6 and 8). A Retry-After is the
 * provider's, not this credential's: the breaker holds it for the whole provider (`received`),
 * so once a probe is answered the backlog is due at once instead of waiting out a stale one.
 * For the same reason a failure that leaves the provider's circuit open does not grow this
 * credential's backoff: the breaker already paces every request to that provider, and a backoff
 * grown through a long outage would only hold the credential back after the provider is back.
 */
export async function commitFailed(
  kit: LeaderKit,
  { snapshot }: HeldLease,
  failure: Extract<TokenOutcome, { kind: 'failed' }>,
): Promise<CredentialSnapshot | undefined> {
  const { record, now } = snapshot;
  const providerDown = kit.breaker(record.provider).isOpen;
  const retryAfterMs = backoffDelay(kit.backoff, providerDown ? 1 : record.failures + 1, undefined);
  const failingForMs = now - (record.failingSince ?? now);
  const committed = await fencedCommit(record.id, 'failure', () =>
    kit.store.commitFailure(record.id, record.leaseId!, {
      lastError: failure.error,
      retryAfterMs,
      keepIntent: failure.inDoubt,
      providerFailed: true,
      // Once per run of failures: cleared by the next tokens written.
      reportFailing: record.failingReportedAt === null && failingForMs >= kit.refreshFailingAfterMs,
    }),
  );
  return announce(kit, committed, () => ({
    type: 'refresh_failed',
    connectionId: record.id,
    provider: record.provider,
    error: failure.error,
    inDoubt: failure.inDoubt,
    retryAfterMs,
  }));
}

/**
 * Invariant 6, a stale intent whose replay could cost something still held: the access token,
 * which still works. Hand the lease back with the intent kept, not due again until that token
 * expires (`nextAttemptAt`), so callers keep getting it and nobody replays before then.
 */
export async function deferReplay(
  kit: LeaderKit,
  { snapshot }: HeldLease,
): Promise<CredentialSnapshot | undefined> {
  const { record, now } = snapshot;
  const retryAfterMs = record.accessExpiresAt - now;
  const committed = await kit.store.commitFailure(record.id, record.leaseId!, {
    lastError: REPLAY_DEFERRED,
    retryAfterMs,
    keepIntent: true,
  });
  return announce(kit, committed, () => ({
    type: 'refresh_failed',
    connectionId: record.id,
    provider: record.provider,
    error: REPLAY_DEFERRED,
    inDoubt: true,
    retryAfterMs,
  }));
}

/** The grant is dead (or was never there): `needs_reauth`, announced. */
export async function commitNeedsReauth(
  kit: LeaderKit,
  { snapshot }: HeldLease,
  reason: ReauthReason,
  error: string,
): Promise<CredentialSnapshot | undefined> {
  const { id, leaseId, provider } = snapshot.record;
  const committed = await fencedCommit(id, 'needs_reauth', () =>
    kit.store.commitNeedsReauth(id, leaseId!, { reason, lastError: error }),
  );
  return announce(kit, committed, (version) => ({
    type: 'needs_reauth',
    connectionId: id,
    provider,
    version,
    reason,
    error,
  }));
}

/**
 * The fenced write of a grant's new tokens, sealed, announced as `refreshed`. The provider has
 * answered (a refresh: it has spent the refresh token it was sent), so the new tokens exist only
 * in this process now: while the database is briefly unreachable the write is retried, which the
 * fence keeps safe.
 */
export async function commitTokens(
  kit: LeaderKit,
  provider: ResolvedProvider,
  lease: HeldLease,
  tokens: Extract<TokenOutcome, { kind: 'tokens' }>,
  next: {
    /** Null for a machine token: there is none. */
    refreshToken: string | null;
    /** Undefined keeps the stored expiry (see `RefreshedTokens`). */
    refreshTtlMs: number | null | undefined;
    recovered: boolean;
  },
): Promise<CredentialSnapshot | undefined> {
  const { record } = lease.snapshot;
  const seal = (plaintext: string, field: 'access_token' | 'refresh_token') =>
    sealField(kit.keyRing, plaintext, { credentialId: record.id, field });
  const accessTtlMs = (tokens.expiresIn ?? provider.defaultAccessTtlSeconds) * 1000;
  const committed = await fencedCommit(record.id, 'tokens', (commitTrace) =>
    untilStored(kit.clock, lease.takenAt + 2 * kit.leaseMs, () =>
      kit.store.commitRefresh(record.id, record.leaseId!, {
        keyId: kit.keyRing.activeKeyId,
        accessToken: seal(tokens.accessToken, 'access_token'),
        refreshToken: next.refreshToken === null ? null : seal(next.refreshToken, 'refresh_token'),
        tokenType: tokens.tokenType,
        scope: tokens.scope ?? record.scope,
        accessTtlMs,
        refreshTtlMs: next.refreshTtlMs,
        refreshInMs: nextRefreshIn(accessTtlMs, idleMs(provider), kit.proactive),
        reportRecovered: record.failingReportedAt !== null,
        commitTrace,
      }),
    ),
  );
  if (committed) {
    const ms = committed.now - record.accessExpiresAt;
    kit.measure({ kind: 'expiry_to_refresh', provider: record.provider, ms });
  }
  return announce(kit, committed, (version) => ({
    type: 'refreshed',
    connectionId: record.id,
    provider: record.provider,
    version,
    recovered: next.recovered,
    ...(tokens.expiresInIgnored ? { expiresInIgnored: true as const } : {}),
  }));
}

/** After a fenced write: the crash-point seam, then the event, only if the write landed. */
async function announce(
  kit: LeaderKit,
  committed: CredentialSnapshot | undefined,
  event: (version: number) => BrokerEvent,
): Promise<CredentialSnapshot | undefined> {
  if (committed) {
    await kit.step('committed', committed.record.id);
    kit.emit(event(committed.record.version));
  }
  return committed;
}

/** Retries a write while the store is unavailable, with backoff, until `deadline` on `clock`. */
async function untilStored<T>(clock: Clock, deadline: number, write: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || clock.monotonic() > deadline) throw error;
      await clock.sleep(Math.min(1_000, 50 * 2 ** attempt));
    }
  }
}

/** A provider's idle refresh-token lifetime in ms, for `nextRefreshIn`. */
export function idleMs(provider: ResolvedProvider): number | undefined {
  return provider.refreshTokenIdleSeconds === undefined
    ? undefined
    : provider.refreshTokenIdleSeconds * 1000;
}
