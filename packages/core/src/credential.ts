/**
 * The credential model. A connection holds one user's tokens for one provider; the access token
 * and the refresh token have separate lifetimes, so an expired access token never removes the
 * refresh token.
 */

import type { Selectable } from 'kysely';
import type { ChangeMark } from './store/change-mark.ts';
import type { CredentialStatus, CredentialsTable } from './store/schema.ts';

export type { CredentialStatus };

/**
 * A credential as the store holds it: every secret sealed (see `crypto/cipher.ts`). Its columns
 * are the `credentials` table's (`store/schema.ts`, where each is described).
 */
export interface CredentialRecord extends Selectable<CredentialsTable> {
  /**
   * How the store read this record, if it can tell (Postgres: where its change notifications
   * stood just before the read). Handed back with the record as `seen` to `Store.waitForChange`,
   * it spares a read there; a copy of the record keeps it. Never a column.
   */
  readMark?: ChangeMark;
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
  | 'commitTrace'
  | 'readMark'
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

/**
 * Connection metadata without any secret: safe to log, list and return from the API. The
 * columns are the `credentials` table's, chosen here; the metadata parsed.
 */
export interface ConnectionInfo extends Pick<
  CredentialRecord,
  | 'id'
  | 'provider'
  | 'owner'
  | 'status'
  | 'statusReason'
  | 'version'
  | 'accessExpiresAt'
  | 'refreshExpiresAt'
  | 'scope'
  | 'failures'
  | 'lastError'
  | 'createdAt'
  | 'updatedAt'
> {
  hasRefreshToken: boolean;
  metadata: Record<string, unknown>;
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
