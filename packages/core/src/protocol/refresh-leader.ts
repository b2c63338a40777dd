import { createHash } from 'node:crypto';
import type { CredentialSnapshot } from '../credential.ts';
import { openField } from '../crypto/index.ts';
import { replayIsSafe } from '../provider/resolve.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { refreshTokenGrant } from '../oauth/refresh-token-grant.ts';
import { intent } from '../tracing/protocol-spans.ts';
import { providerRequest } from '../tracing/spans.ts';
import {
  commitFailed,
  commitNeedsReauth,
  commitTokens,
  deadlineInsideLease,
  deferReplay,
  handBack,
  received,
  type HeldLease,
  type LeaderKit,
} from './leader-kit.ts';

/**
 * What the holder of a refresh lease does (invariants 3, 4, 6, 7, 8), in order: rule out a
 * refresh token that is missing, expired or in doubt; record its intent; redeem the refresh
 * token with a deadline inside the lease; write the outcome fenced by its lease id. Returns the
 * committed state, or undefined if the lease was lost (nothing written).
 */
export async function refreshAsLeader(
  kit: LeaderKit,
  provider: ResolvedProvider,
  lease: HeldLease,
): Promise<CredentialSnapshot | undefined> {
  const { record, now } = lease.snapshot;
  const { id } = record;
  await kit.step('lease_acquired', id);

  if (record.refreshToken === null) {
    return commitNeedsReauth(kit, lease, 'no_refresh_token', 'no_refresh_token');
  }
  if (record.refreshExpiresAt !== null && record.refreshExpiresAt <= now) {
    return commitNeedsReauth(kit, lease, 'refresh_token_expired', 'refresh_token_expired');
  }
  const refreshToken = openField(kit.keyRing, record.refreshToken, {
    credentialId: id,
    field: 'refresh_token',
  });

  // Invariant 6: a stale intent means an earlier leader may have redeemed this refresh token.
  const recovering = record.intentHash !== null;
  const recovery = recovering ? afterStaleIntent(provider, lease) : 'replay';
  if (recovery === 'give_up') {
    return commitNeedsReauth(kit, lease, 'refresh_in_doubt', 'replay_unsafe');
  }
  if (recovery === 'defer') return deferReplay(kit, lease);
  const timeoutMs = deadlineInsideLease(kit, provider, lease);
  if (timeoutMs === undefined) return handBack(kit, lease, true);
  if (
    !(await intent(id, () => kit.store.recordIntent(id, record.leaseId!, intentHash(refreshToken))))
  ) {
    return undefined;
  }
  await kit.step('intent_recorded', id);

  const outcome = await providerRequest(provider.name, id, () =>
    refreshTokenGrant(provider, refreshToken, {
      fetch: kit.fetch,
      signal: AbortSignal.timeout(timeoutMs),
    }),
  );
  await received(kit, lease, outcome);
  switch (outcome.kind) {
    case 'tokens':
      return commitTokens(kit, provider, lease, outcome, {
        // Invariant 7: no new refresh token in the response means the old one stays.
        refreshToken: outcome.refreshToken ?? refreshToken,
        refreshTtlMs:
          outcome.refreshExpiresIn !== undefined ? outcome.refreshExpiresIn * 1000 : undefined,
        recovered: recovering,
      });
    case 'refused':
      return commitNeedsReauth(
        kit,
        lease,
        recovering ? 'refresh_in_doubt' : 'invalid_grant',
        outcome.error,
      );
    case 'failed':
      return commitFailed(kit, lease, outcome);
  }
}

/**
 * Invariant 6: what a leader that finds a stale intent does with the refresh token it names.
 *
 * - `replay` when a second presentation cannot cost the family (`replayIsSafe`: no rotation, no
 *   reuse punishment, inside the grace window) — and also once the access token has expired or
 *   been reported rejected: then the family's only live tokens are the ones a lost answer
 *   carried, so another presentation risks nothing still held, whichever attempt it is. A
 *   provider that never redeemed (or forgives) answers with new tokens; one that detects reuse
 *   refuses, and only that answer ends the credential (`refresh_in_doubt`). A replay whose
 *   answer is lost too teaches nothing and keeps the intent; it is paced like any failed
 *   refresh (backoff, circuit breaker), so there is no tight loop;
 * - `defer` while the access token still works: it stays in service, the decision waits;
 * - `give_up` (`needs_reauth`, `refresh_in_doubt`) where a detected reuse reaches beyond this
 *   family (`reuseRevokesAllGrants`) and one send may already have been lost: a replay there
 *   could cost the user's other connections.
 */
export function afterStaleIntent(
  provider: ResolvedProvider,
  { snapshot, rejected }: HeldLease,
): 'replay' | 'defer' | 'give_up' {
  const { record, now } = snapshot;
  if (replayIsSafe(provider, record.intentAt!, now)) return 'replay';
  if (provider.reuseRevokesAllGrants) return 'give_up';
  return !rejected && record.accessExpiresAt > now ? 'defer' : 'replay';
}

/** Names a refresh token in the intent without storing it. */
export function intentHash(refreshToken: string): string {
  return createHash('sha256').update(refreshToken).digest('base64url');
}
