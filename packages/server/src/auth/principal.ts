import type { ServiceAction, ServiceGrant } from '@tokenwarden/core';

/** Who is calling: the operator with the admin key, or a service client with its grants. */
export type Principal =
  { kind: 'admin' } | { kind: 'client'; clientId: string; grants: readonly ServiceGrant[] };

export const ADMIN: Principal = { kind: 'admin' };

/** The audit log's name for a principal: `admin` or the client id. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'admin' ? 'admin' : principal.clientId;
}

export interface GrantTarget {
  owner: string;
  provider: string;
}

/** May this principal do `action` on the connections of (owner, provider)? Admin may do all. */
export function allows(principal: Principal, action: ServiceAction, target: GrantTarget): boolean {
  if (principal.kind === 'admin') return true;
  return principal.grants.some(
    (grant) =>
      grant.actions.includes(action) &&
      (grant.owner === '*' || grant.owner === target.owner) &&
      (grant.provider === '*' || grant.provider === target.provider),
  );
}

/**
 * The (owner, provider) patterns under which a principal may list connections matching a query;
 * undefined for the admin (no restriction). An empty result means the query asks only for
 * connections the principal may not see.
 */
export function listableGrants(
  principal: Principal,
  query: Partial<GrantTarget>,
): GrantTarget[] | undefined {
  if (principal.kind === 'admin') return undefined;
  return principal.grants
    .filter(
      (grant) =>
        grant.actions.includes('connections.read') &&
        (query.owner === undefined || grant.owner === '*' || grant.owner === query.owner) &&
        (query.provider === undefined ||
          grant.provider === '*' ||
          grant.provider === query.provider),
    )
    .map(({ owner, provider }) => ({ owner, provider }));
}
