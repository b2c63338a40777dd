import type { CredentialRecord, NewCredential, Store } from '@tokenwarden/core';

/** A credential row with placeholder sealed secrets, for store-level tests. */
export function newCredential(id: string, overrides: Partial<NewCredential> = {}): NewCredential {
  return {
    id,
    provider: 'p',
    owner: 'o',
    keyId: 'k1',
    accessToken: 'sealed-at-1',
    refreshToken: 'sealed-rt-1',
    tokenType: 'Bearer',
    scope: null,
    accessTtlMs: 0,
    refreshTtlMs: null,
    refreshInMs: null,
    metadata: '{}',
    ...overrides,
  };
}

/** What a leader commits after a refresh, with placeholder sealed secrets. */
export function refreshed(
  overrides: Partial<Parameters<Store['commitRefresh']>[2]> = {},
): Parameters<Store['commitRefresh']>[2] {
  return {
    keyId: 'k1',
    accessToken: 'sealed-at-2',
    refreshToken: 'sealed-rt-2',
    tokenType: 'Bearer',
    scope: null,
    accessTtlMs: 60_000,
    refreshTtlMs: undefined,
    refreshInMs: 30_000,
    ...overrides,
  };
}

/** A record's columns: without how the store read it (`readMark`), which is not stored. */
export function columnsOf(record: CredentialRecord): Omit<CredentialRecord, 'readMark'> {
  const { readMark: _, ...columns } = record;
  return columns;
}
