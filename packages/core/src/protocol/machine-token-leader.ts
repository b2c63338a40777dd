import type { CredentialSnapshot } from '../credential.ts';
import { clientCredentialsGrant } from '../oauth/client-credentials-grant.ts';
import { providerRequest } from '../tracing/spans.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import {
  commitFailed,
  commitTokens,
  deadlineInsideLease,
  handBack,
  received,
  type HeldLease,
  type LeaderKit,
} from './leader-kit.ts';

/**
 * What the holder of a machine token's lease does: fetch a new access token with the client
 * credentials grant (RFC 6749 §4.4) and write it fenced by the lease, like a refresh. There is
 * no refresh token, so nothing can be spent twice and no intent is recorded: a request whose
 * answer was lost is simply made again. The lease still makes it one fetch cluster-wide, and a
 * refusal never marks the connection dead (no user could fix it): it backs off like an outage.
 */
export async function fetchAsLeader(
  kit: LeaderKit,
  provider: ResolvedProvider,
  lease: HeldLease,
): Promise<CredentialSnapshot | undefined> {
  const { record } = lease.snapshot;
  await kit.step('lease_acquired', record.id);
  const timeoutMs = deadlineInsideLease(kit, provider, lease);
  if (timeoutMs === undefined) return handBack(kit, lease, false);

  const outcome = await providerRequest(provider.name, record.id, () =>
    clientCredentialsGrant(provider, {
      fetch: kit.fetch,
      signal: AbortSignal.timeout(timeoutMs),
      scope: record.scope ?? undefined,
    }),
  );
  await received(kit, lease, outcome);
  if (outcome.kind === 'failed') {
    // Nothing was at stake: an answer lost on the way is no reason to keep an intent.
    return commitFailed(kit, lease, { ...outcome, inDoubt: false });
  }
  return commitTokens(kit, provider, lease, outcome, {
    refreshToken: null,
    refreshTtlMs: null,
    recovered: false,
  });
}
