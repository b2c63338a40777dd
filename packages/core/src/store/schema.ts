import type { Generated } from 'kysely';
import type { CredentialStatus } from '../credential.ts';

/** Kysely's view of the tables (camelCase here, snake_case in the database). */
export interface Database {
  credentials: CredentialsTable;
  tokenwardenMigrations: MigrationsTable;
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
