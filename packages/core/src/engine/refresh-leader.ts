import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { CredentialSnapshot } from '../credential.ts';
import { openField, sealField, type KeyRing } from '../crypto/index.ts';
import { StoreUnavailableError, type ReauthReason } from '../errors.ts';
import { replayIsSafe } from '../provider/resolve.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { refreshTokenGrant } from '../oauth/refresh-token-grant.ts';
import type { TokenOutcome } from '../oauth/token-endpoint.ts';
import type { Store } from '../store/store.ts';
import { backoffDelay, nextRefreshIn, type BackoffPolicy } from './backoff.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { BrokerEvent, ProtocolStep } from './events.ts';
import { fetchAsLeader } from './machine-token.ts';

export interface LeaderContext {
  store: Store;
  keyRing: KeyRing;
  fetch: typeof fetch | undefined;
  leaseMs: number;
  backoff: BackoffPolicy;
  proactive: { skewMs: number; fraction: number; jitterMs: number };
  emit(event: BrokerEvent): void;
  breaker(provider: string): CircuitBreaker;
  step(step: ProtocolStep, connectionId: string): Promise<void>;
}

/**
 * What the holder of a refresh lease does (invariants 3, 4, 6, 7, 8): records its intent,
 * redeems the refresh token with a deadline inside the lease, and writes the outcome fenced by
 * its lease id. Returns the committed state, or undefined if the lease was lost (nothing written).
 */
export async function refreshAsLeader(
  ctx: LeaderContext,
  provider: ResolvedProvider,
  leased: CredentialSnapshot,
  /** `performance.now()` when the lease was taken: the deadline counts from there. */
  leasedAt: number = performance.now(),
): Promise<CredentialSnapshot | undefined> {
  const breaker = ctx.breaker(provider.name);
  try {
    // A machine token has no refresh token to spend: it is fetched again under the same lease.
    return provider.grantType === 'client_credentials'
      ? await fetchAsLeader(ctx, provider, leased, leasedAt, breaker)
      : await lead(ctx, provider, leased, leasedAt, breaker);
  } catch (error) {
    // Something other than the provider failed (a secret that will not decrypt, a database
    // error): hand the lease back so waiters are not stuck behind it, and leave any intent in
    // place, since a redemption may already have happened.
    const code = (error as { code?: unknown }).code;
    await ctx.store
      .commitFailure(leased.record.id, leased.record.leaseId!, {
        lastError: typeof code === 'string' ? code : 'internal_error',
        retryAfterMs: backoffDelay(ctx.backoff, leased.record.failures + 1, undefined),
        keepIntent: true,
      })
      .catch(() => undefined);
    throw error;
  } finally {
    // A leader that never reached the provider frees its half-open probe slot; one that did has
    // reported the outcome already, and then this does nothing.
    breaker.release();
  }
}

async function lead(
  ctx: LeaderContext,
  provider: ResolvedProvider,
  leased: CredentialSnapshot,
  leasedAt: number,
  breaker: CircuitBreaker,
): Promise<CredentialSnapshot | undefined> {
  const { record, now } = leased;
  const { id } = record;
  const leaseId = record.leaseId!;
  await ctx.step('lease_acquired', id);

  const base = { connectionId: id, provider: record.provider };
  const needsReauth = async (reason: ReauthReason, error: string) =>
    announce(
      ctx,
      await ctx.store.commitNeedsReauth(id, leaseId, { reason, lastError: error }),
      (version) => ({ type: 'needs_reauth', ...base, version, reason, error }),
    );

  if (record.refreshToken === null) return needsReauth('no_refresh_token', 'no_refresh_token');
  if (record.refreshExpiresAt !== null && record.refreshExpiresAt <= now) {
    return needsReauth('refresh_token_expired', 'refresh_token_expired');
  }
  const refreshToken = openField(ctx.keyRing, record.refreshToken, {
    credentialId: id,
    field: 'refresh_token',
  });

  // Invariant 6: a stale intent means an earlier leader may have redeemed this refresh token.
  const recovering = record.intentHash !== null;
  if (recovering && !replayIsSafe(provider, record.intentAt!, now)) {
    return needsReauth('refresh_in_doubt', 'replay_unsafe');
  }
  const timeoutMs = providerDeadline(ctx, provider, leased, leasedAt);
  if (timeoutMs < 50) {
    // Too little of the lease is left to send anything safely: hand it back untouched.
    return ctx.store.commitFailure(id, leaseId, {
      lastError: 'lease_expiring',
      retryAfterMs: 0,
      keepIntent: true,
    });
  }
  if (!(await ctx.store.recordIntent(id, leaseId, intentHash(refreshToken)))) return undefined;
  await ctx.step('intent_recorded', id);

  const outcome = await refreshTokenGrant(provider, refreshToken, {
    fetch: ctx.fetch,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await ctx.step('response_received', id);
  if (outcome.kind === 'failed') breaker.onFailure(outcome.retryAfterMs);
  else breaker.onSuccess();

  switch (outcome.kind) {
    case 'tokens':
      return commitTokens(ctx, provider, leased, leasedAt, outcome, {
        // Invariant 7: no new refresh token in the response means the old one stays.
        refreshToken: outcome.refreshToken ?? refreshToken,
        refreshTtlMs:
          outcome.refreshExpiresIn !== undefined ? outcome.refreshExpiresIn * 1000 : undefined,
        recovered: recovering,
      });
    case 'refused':
      return needsReauth(recovering ? 'refresh_in_doubt' : 'invalid_grant', outcome.error);
    case 'failed': {
      const retryAfterMs = backoffDelay(ctx.backoff, record.failures + 1, outcome.retryAfterMs);
      const committed = await ctx.store.commitFailure(id, leaseId, {
        lastError: outcome.error,
        retryAfterMs,
        keepIntent: outcome.inDoubt,
      });
      return announce(ctx, committed, () => ({
        type: 'refresh_failed',
        ...base,
        error: outcome.error,
        inDoubt: outcome.inDoubt,
        retryAfterMs,
      }));
    }
  }
}

/**
 * The fenced write of a grant's new tokens, sealed, announced as `refreshed`. The provider has
 * answered (a refresh: it has spent the refresh token it was sent), so the new tokens exist only
 * in this process now: while the database is briefly unreachable the write is retried, which the
 * fence keeps safe.
 */
export async function commitTokens(
  ctx: LeaderContext,
  provider: ResolvedProvider,
  leased: CredentialSnapshot,
  leasedAt: number,
  tokens: Extract<TokenOutcome, { kind: 'tokens' }>,
  next: {
    /** Null for a machine token: there is none. */
    refreshToken: string | null;
    /** Undefined keeps the stored expiry (see `RefreshedTokens`). */
    refreshTtlMs: number | null | undefined;
    recovered: boolean;
  },
): Promise<CredentialSnapshot | undefined> {
  const { record } = leased;
  const seal = (plaintext: string, field: 'access_token' | 'refresh_token') =>
    sealField(ctx.keyRing, plaintext, { credentialId: record.id, field });
  const accessTtlMs = (tokens.expiresIn ?? provider.defaultAccessTtlSeconds) * 1000;
  const committed = await untilStored(leasedAt + 2 * ctx.leaseMs, () =>
    ctx.store.commitRefresh(record.id, record.leaseId!, {
      keyId: ctx.keyRing.activeKeyId,
      accessToken: seal(tokens.accessToken, 'access_token'),
      refreshToken: next.refreshToken === null ? null : seal(next.refreshToken, 'refresh_token'),
      tokenType: tokens.tokenType,
      scope: tokens.scope ?? record.scope,
      accessTtlMs,
      refreshTtlMs: next.refreshTtlMs,
      refreshInMs: nextRefreshIn(accessTtlMs, idleMs(provider), ctx.proactive),
    }),
  );
  return announce(ctx, committed, (version) => ({
    type: 'refreshed',
    connectionId: record.id,
    provider: record.provider,
    version,
    recovered: next.recovered,
  }));
}

/** After a fenced write: the crash-point seam, then the event, only if the write landed. */
export async function announce(
  ctx: LeaderContext,
  committed: CredentialSnapshot | undefined,
  event: (version: number) => BrokerEvent,
): Promise<CredentialSnapshot | undefined> {
  if (committed) {
    await ctx.step('committed', committed.record.id);
    ctx.emit(event(committed.record.version));
  }
  return committed;
}

/**
 * Invariant 3: how long the provider may take — well inside what is left of the lease, so a
 * leader whose lease has passed to someone else is never still waiting for an answer it would
 * try to write.
 */
export function providerDeadline(
  ctx: LeaderContext,
  provider: ResolvedProvider,
  leased: CredentialSnapshot,
  leasedAt: number,
): number {
  const leaseLeft = leased.record.leaseUntil! - leased.now - (performance.now() - leasedAt);
  return Math.floor(
    Math.min(provider.requestTimeoutMs, leaseLeft - Math.max(250, ctx.leaseMs * 0.25)),
  );
}

/** Retries a write while the store is unavailable, with backoff, until `deadline` (performance.now()). */
export async function untilStored<T>(deadline: number, write: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 50 * 2 ** attempt)));
    }
  }
}

/** Names a refresh token in the intent without storing it. */
export function intentHash(refreshToken: string): string {
  return createHash('sha256').update(refreshToken).digest('base64url');
}

export function idleMs(provider: ResolvedProvider): number | undefined {
  return provider.refreshTokenIdleSeconds === undefined
    ? undefined
    : provider.refreshTokenIdleSeconds * 1000;
}
