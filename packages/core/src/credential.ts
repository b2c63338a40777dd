/**
 * The credential model. A connection holds one user's tokens for one provider; the access token
 * and the refresh token have separate lifetimes, so an expired access token never removes the
 * refresh token.
 */

export type CredentialStatus = 'active' | 'needs_reauth' | 'revoked';

/** A credential as the store holds it: every secret sealed (see `crypto/cipher.ts`). */
export interface CredentialRecord {
  id: string;
  provider: string;
  /** Who the tokens belong to in the caller's world: a user id, a tenant id, ... */
  owner: string;
  status: CredentialStatus;
  /** Why the status is not `active` (a `ReauthReason`), or null. */
  statusReason: string | null;
  /** Bumped on every change of the tokens or the status; waiters watch it. */
  version: number;
  accessToken: string;
  /** Epoch milliseconds, database clock. */
  accessExpiresAt: number;
  tokenType: string;
  scope: string | null;
  refreshToken: string | null;
  refreshExpiresAt: number | null;
  /** Key that sealed both tokens; key rotation looks for rows not under the active key. */
  keyId: string;
  /** Refresh lease: who may redeem the refresh token right now, and until when. */
  leaseId: string | null;
  leaseUntil: number | null;
  /** Hash of the refresh token a leader is about to redeem (invariant 6), and when. */
  intentHash: string | null;
  intentAt: number | null;
  /** How many leaders have sent the refresh token named by the intent. */
  intentAttempts: number;
  /** When the proactive scheduler should refresh this credential. */
  refreshAt: number | null;
  failures: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  /** JSON text: caller-provided metadata, never secret. */
  metadata: string;
  createdAt: number;
  updatedAt: number;
}

/**
 * What a caller decides from (hand the token out, wait, back off, or take the lease): a
 * credential without its refresh token, owner, metadata or bookkeeping. A store may learn it
 * from a change notification, without a read (see `Store.waitForChange`).
 */
export type CredentialState = Pick<
  CredentialRecord,
  | 'id'
  | 'provider'
  | 'status'
  | 'statusReason'
  | 'version'
  | 'accessToken'
  | 'accessExpiresAt'
  | 'tokenType'
  | 'scope'
  | 'leaseId'
  | 'leaseUntil'
  | 'nextAttemptAt'
  | 'lastError'
>;

/** A record (or a state) together with the database clock at the moment it was read. */
export interface CredentialSnapshot<R extends CredentialState = CredentialRecord> {
  record: R;
  now: number;
}

/** What a caller gets: a usable access token and the version it belongs to. */
export interface AccessToken {
  connectionId: string;
  accessToken: string;
  tokenType: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  version: number;
  scope: string | null;
}

/** Connection metadata without any secret: safe to log, list and return from the API. */
export interface ConnectionInfo {
  id: string;
  provider: string;
  owner: string;
  status: CredentialStatus;
  statusReason: string | null;
  version: number;
  accessExpiresAt: number;
  refreshExpiresAt: number | null;
  hasRefreshToken: boolean;
  scope: string | null;
  failures: number;
  lastError: string | null;
  metadata: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

export function connectionInfo(record: CredentialRecord): ConnectionInfo {
  return {
    id: record.id,
    provider: record.provider,
    owner: record.owner,
    status: record.status,
    statusReason: record.statusReason,
    version: record.version,
    accessExpiresAt: record.accessExpiresAt,
    refreshExpiresAt: record.refreshExpiresAt,
    hasRefreshToken: record.refreshToken !== null,
    scope: record.scope,
    failures: record.failures,
    lastError: record.lastError,
    metadata: JSON.parse(record.metadata) as Record<string, unknown>,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}
