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
