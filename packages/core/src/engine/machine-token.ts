import type { CredentialSnapshot } from '../credential.ts';
import { clientCredentialsGrant } from '../oauth/client-credentials-grant.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { backoffDelay } from './backoff.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { announce, commitTokens, providerDeadline, type LeaderContext } from './refresh-leader.ts';

/**
 * What the holder of a machine token's lease does: fetch a new access token with the client
 * credentials grant (RFC 6749 §4.4) and write it fenced by the lease, like a refresh. There is
 * no refresh token, so nothing can be spent twice and no intent is recorded: a request whose
 * answer was lost is simply made again. The lease still makes it one fetch cluster-wide, and a
 * refusal never marks the connection dead (no user could fix it): it backs off like an outage.
 */
export async function fetchAsLeader(
  ctx: LeaderContext,
  provider: ResolvedProvider,
  leased: CredentialSnapshot,
  leasedAt: number,
  breaker: CircuitBreaker,
): Promise<CredentialSnapshot | undefined> {
  const { record } = leased;
  const { id } = record;
  const leaseId = record.leaseId!;
  await ctx.step('lease_acquired', id);
  const timeoutMs = providerDeadline(ctx, provider, leased, leasedAt);
  if (timeoutMs < 50) {
    return ctx.store.commitFailure(id, leaseId, {
      lastError: 'lease_expiring',
      retryAfterMs: 0,
      keepIntent: false,
    });
  }
  const outcome = await clientCredentialsGrant(provider, {
    fetch: ctx.fetch,
    signal: AbortSignal.timeout(timeoutMs),
    scope: record.scope ?? undefined,
  });
  await ctx.step('response_received', id);
  if (outcome.kind === 'failed') {
    breaker.onFailure(outcome.retryAfterMs);
    const { error } = outcome;
    const retryAfterMs = backoffDelay(ctx.backoff, record.failures + 1, outcome.retryAfterMs);
    const committed = await ctx.store.commitFailure(id, leaseId, {
      lastError: error,
      retryAfterMs,
      keepIntent: false,
    });
    return announce(ctx, committed, () => ({
      type: 'refresh_failed',
      connectionId: id,
      provider: record.provider,
      error,
      inDoubt: false,
      retryAfterMs,
    }));
  }
  breaker.onSuccess();
  return commitTokens(ctx, provider, leased, leasedAt, outcome, {
    refreshToken: null,
    refreshTtlMs: null,
    recovered: false,
  });
}
