import type { Generated } from 'kysely';
import type { CredentialStatus } from '../credential.ts';

/** Kysely's view of the tables (camelCase here, snake_case in the database). */
export interface Database {
  credentials: CredentialsTable;
  tokenwardenMigrations: MigrationsTable;
  providers: ProvidersTable;
  serviceClients: ServiceClientsTable;
  auditEvents: AuditEventsTable;
  settings: SettingsTable;
  connectSessions: ConnectSessionsTable;
}

export interface CredentialsTable {
  id: string;
  provider: string;
  owner: string;
  status: CredentialStatus;
  statusReason: string | null;
  version: number;
  accessToken: string;
  accessExpiresAt: number;
  tokenType: string;
  scope: string | null;
  refreshToken: string | null;
  refreshExpiresAt: number | null;
  keyId: string;
  leaseId: string | null;
  leaseUntil: number | null;
  intentHash: string | null;
  intentAt: number | null;
  intentAttempts: Generated<number>;
  refreshAt: number | null;
  failures: Generated<number>;
  nextAttemptAt: number | null;
  lastError: string | null;
  metadata: string;
  createdAt: number;
  updatedAt: number;
}

export interface MigrationsTable {
  name: string;
  appliedAt: number;
}

export interface ProvidersTable {
  name: string;
  /** JSON text of the provider's configuration, without its client secret. */
  config: string;
  /** Sealed (`sealProviderSecret`), or null. */
  clientSecret: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface ServiceClientsTable {
  id: string;
  name: string;
  keyHash: string;
  /** JSON text: `ServiceGrant[]`. */
  grants: string;
  createdAt: number;
  revokedAt: number | null;
}

export interface AuditEventsTable {
  seq: Generated<number>;
  at: number;
  requestId: string;
  actor: string;
  action: string;
  connectionId: string | null;
  owner: string | null;
  provider: string | null;
  outcome: string;
  detail: string | null;
}

export interface SettingsTable {
  name: string;
  value: string;
}

/** A connect flow between its authorization request and its callback (`ConnectSessionStore`). */
export interface ConnectSessionsTable {
  /** SHA-256 of the `state` sent to the provider; the state itself is never stored. */
  stateHash: string;
  provider: string;
  owner: string;
  /** JSON text: the scopes asked for. */
  scopes: string;
  /** Where the backend wants the browser sent afterwards. */
  redirectUri: string;
  /** The redirect URI registered at the provider (Tokenwarden's callback). */
  callbackUri: string;
  /** Sealed PKCE code verifier. */
  codeVerifier: string;
  /** Set when the flow re-authorizes an existing connection. */
  connectionId: string | null;
  createdAt: number;
  expiresAt: number;
}
