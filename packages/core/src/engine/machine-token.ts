import type { CredentialSnapshot } from '../credential.ts';
import { sealField } from '../crypto/index.ts';
import { clientCredentialsGrant } from '../oauth/client-credentials-grant.ts';
import type { ResolvedProvider } from '../oauth/provider.ts';
import { backoffDelay, nextRefreshIn } from './backoff.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import {
  announce,
  idleMs,
  providerDeadline,
  untilStored,
  type LeaderContext,
} from './refresh-leader.ts';

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
  const base = { connectionId: id, provider: record.provider };
  if (outcome.kind !== 'tokens') {
    breaker.onFailure(outcome.kind === 'failed' ? outcome.retryAfterMs : undefined);
    const error = outcome.error;
    const retryAfterMs = backoffDelay(
      ctx.backoff,
      record.failures + 1,
      outcome.kind === 'failed' ? outcome.retryAfterMs : undefined,
    );
    const committed = await ctx.store.commitFailure(id, leaseId, {
      lastError: error,
      retryAfterMs,
      keepIntent: false,
    });
    return announce(ctx, committed, () => ({
      type: 'refresh_failed',
      ...base,
      error,
      inDoubt: false,
      retryAfterMs,
    }));
  }
  breaker.onSuccess();
  const accessTtlMs = (outcome.expiresIn ?? provider.defaultAccessTtlSeconds) * 1000;
  const committed = await untilStored(leasedAt + 2 * ctx.leaseMs, () =>
    ctx.store.commitRefresh(id, leaseId, {
      keyId: ctx.keyRing.activeKeyId,
      accessToken: sealField(ctx.keyRing, outcome.accessToken, {
        credentialId: id,
        field: 'access_token',
      }),
      refreshToken: null,
      tokenType: outcome.tokenType,
      scope: outcome.scope ?? record.scope,
      accessTtlMs,
      refreshTtlMs: null,
      refreshInMs: nextRefreshIn(accessTtlMs, idleMs(provider), ctx.proactive),
    }),
  );
  return announce(ctx, committed, (version) => ({
    type: 'refreshed',
    ...base,
    version,
    recovered: false,
  }));
}
