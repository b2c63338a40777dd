import type { CredentialRecord } from '../credential.ts';

/** A `credentials` row as a driver returns it. */
export type CredentialRow = Record<keyof CredentialRecord, unknown>;

/** Drivers return integers as numbers or strings (`pg` bigint); the model wants numbers. */
export function toRecord(row: CredentialRow): CredentialRecord {
  return {
    id: row.id as string,
    provider: row.provider as string,
    owner: row.owner as string,
    status: row.status as CredentialRecord['status'],
    statusReason: row.statusReason as string | null,
    version: Number(row.version),
    accessToken: row.accessToken as string,
    accessExpiresAt: Number(row.accessExpiresAt),
    tokenType: row.tokenType as string,
    scope: row.scope as string | null,
    refreshToken: row.refreshToken as string | null,
    refreshExpiresAt: numberOrNull(row.refreshExpiresAt),
    keyId: row.keyId as string,
    leaseId: row.leaseId as string | null,
    leaseUntil: numberOrNull(row.leaseUntil),
    intentHash: row.intentHash as string | null,
    intentAt: numberOrNull(row.intentAt),
    intentAttempts: Number(row.intentAttempts),
    refreshAt: numberOrNull(row.refreshAt),
    failures: Number(row.failures),
    nextAttemptAt: numberOrNull(row.nextAttemptAt),
    lastError: row.lastError as string | null,
    metadata: row.metadata as string,
    createdAt: Number(row.createdAt),
    updatedAt: Number(row.updatedAt),
  };
}

export function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}
