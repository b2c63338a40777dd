import { connectionInfo, type ConnectionInfo, type CredentialRecord } from '@tokenwarden/core';
import { closedObject, isoTime, nullableIsoTime } from './schemas.ts';

/** What the API says about a connection: metadata only, never a token. */
export interface ConnectionView {
  id: string;
  provider: string;
  owner: string;
  status: string;
  status_reason: string | null;
  version: number;
  access_expires_at: string;
  refresh_expires_at: string | null;
  has_refresh_token: boolean;
  scope: string | null;
  failures: number;
  last_error: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export const connectionViewSchema = closedObject(
  {
    id: { type: 'string' },
    provider: { type: 'string' },
    owner: { type: 'string' },
    status: { type: 'string', enum: ['active', 'needs_reauth', 'revoked'] },
    status_reason: { type: ['string', 'null'] },
    version: { type: 'integer' },
    access_expires_at: isoTime,
    refresh_expires_at: nullableIsoTime,
    has_refresh_token: { type: 'boolean' },
    scope: { type: ['string', 'null'] },
    failures: { type: 'integer' },
    last_error: { type: ['string', 'null'], description: 'An error code, never a message.' },
    metadata: { type: 'object', additionalProperties: true },
    created_at: isoTime,
    updated_at: isoTime,
  },
  ['id', 'provider', 'owner', 'status', 'version', 'access_expires_at'],
);

const viewProperties = connectionViewSchema.properties;

/**
 * The short answer to a write: which connection, and where its access token stands (`status`
 * without the enum, as it always was here).
 */
export const connectionSummarySchema = closedObject(
  {
    id: viewProperties.id,
    provider: viewProperties.provider,
    owner: viewProperties.owner,
    status: { type: 'string' },
    version: viewProperties.version,
    access_expires_at: viewProperties.access_expires_at,
  },
  connectionViewSchema.required,
);

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

export function connectionView(info: ConnectionInfo): ConnectionView {
  return {
    id: info.id,
    provider: info.provider,
    owner: info.owner,
    status: info.status,
    status_reason: info.statusReason,
    version: info.version,
    access_expires_at: iso(info.accessExpiresAt),
    refresh_expires_at: isoOrNull(info.refreshExpiresAt),
    has_refresh_token: info.hasRefreshToken,
    scope: info.scope,
    failures: info.failures,
    last_error: info.lastError,
    metadata: info.metadata,
    created_at: iso(info.createdAt),
    updated_at: iso(info.updatedAt),
  };
}

/** The same view from a stored row: only the fields named here leave it, sealed secrets never. */
export function recordView(record: CredentialRecord): ConnectionView {
  return connectionView(connectionInfo(record));
}

/** The fields of `connectionSummarySchema`. */
export function connectionSummary(info: ConnectionInfo) {
  const view = connectionView(info);
  return {
    id: view.id,
    provider: view.provider,
    owner: view.owner,
    status: view.status,
    version: view.version,
    access_expires_at: view.access_expires_at,
  };
}
