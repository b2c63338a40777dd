import type { Selectable } from 'kysely';
import type { CredentialRecord } from '../credential.ts';
import type { CredentialsTable } from './schema.ts';

/** A `credentials` row as a query returns it (integers as numbers: see `schema.ts`). */
export type CredentialRow = Selectable<CredentialsTable>;

/**
 * The record in `row`, without what the query selected beside the columns: the record is
 * handed out and cached, and must not hold on to the rest.
 */
export function toRecord({
  dbNow: _,
  ...record
}: CredentialRow & { dbNow?: unknown }): CredentialRecord {
  return record;
}
