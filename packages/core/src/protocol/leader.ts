import type { CredentialSnapshot } from '../credential.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { backoffDelay } from '../engine/backoff.ts';
import type { HeldLease, LeaderKit } from './leader-kit.ts';
import { fetchAsLeader } from './machine-token-leader.ts';
import { refreshAsLeader } from './refresh-leader.ts';

/**
 * Whoever holds a lease — a caller that won it in the loop, or the scheduler that claimed the
 * row — runs this: the leader for the connection's grant, and whatever goes wrong outside the
 * provider handled once for both. Returns the committed state, or undefined if the lease was
 * lost (nothing written).
 */
export async function lead(
  kit: LeaderKit,
  provider: ResolvedProvider,
  lease: HeldLease,
): Promise<CredentialSnapshot | undefined> {
  const { record } = lease.snapshot;
  try {
    // A machine token has no refresh token to spend: it is fetched again under the same lease.
    return provider.grantType === 'client_credentials'
      ? await fetchAsLeader(kit, provider, lease)
      : await refreshAsLeader(kit, provider, lease);
  } catch (error) {
    // Something other than the provider failed (a secret that will not decrypt, a database
    // error): hand the lease back so waiters are not stuck behind it, and leave any intent in
    // place, since a redemption may already have happened.
    const code = (error as { code?: unknown }).code;
    await kit.store
      .commitFailure(record.id, record.leaseId!, {
        lastError: typeof code === 'string' ? code : 'internal_error',
        retryAfterMs: backoffDelay(kit.backoff, record.failures + 1, undefined),
        keepIntent: true,
      })
      .catch(() => undefined);
    throw error;
  } finally {
    // A leader that never reached the provider frees its half-open probe slot; one that did has
    // reported the outcome already, and then this does nothing.
    kit.breaker(provider.name).release();
  }
}
