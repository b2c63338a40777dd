import { sql, type Expression, type ExpressionBuilder, type Kysely, type RawBuilder } from 'kysely';
import type { CredentialRow } from './credential-row.ts';
import type { Database } from './schema.ts';
import type { StoreAdapter } from './store-adapter.ts';
import type { RefreshedTokens } from './store.ts';

/**
 * The refresh protocol's two writes per refresh, for many credentials in one statement each
 * (`WriteGroup`): every row of the group is written only where its own lease still holds
 * (invariants 4 and 6), exactly as the one-row statements would, and each row's result comes
 * back to its own caller. The rows come in as a `values` list named `v`; SQLite (3.35+) and
 * Postgres both take `with v(...) as (values ...) update ... from v ... returning`.
 */

/** A credential row as an `update ... returning` gives it, with the statement's database clock. */
export type WrittenRow = CredentialRow & { dbNow: number };

export interface IntentWrite {
  id: string;
  leaseId: string;
  intentHash: string;
}

export interface RefreshWrite {
  id: string;
  leaseId: string;
  tokens: RefreshedTokens;
}

/** Whether each intent was recorded: false where the lease was lost (or has run out). */
export async function recordIntents(
  db: Kysely<Database>,
  adapter: StoreAdapter,
  writes: IntentWrite[],
): Promise<boolean[]> {
  const now = adapter.now;
  const rows = writes.map((w) => [sql`${w.id}`, sql`${w.leaseId}`, sql`${w.intentHash}`]);
  const recorded = await db
    .with('v(id, leaseId, intentHash)', () => valuesOf(rows))
    .updateTable('credentials')
    .from('v')
    .set((eb) => ({
      intentHash: eb.ref('v.intentHash'),
      // A recovery leader keeps the first sender's time: the grace window counts from it.
      intentAt: eb.fn.coalesce('credentials.intentAt', now),
      intentAttempts: eb('credentials.intentAttempts', '+', 1),
      updatedAt: now,
    }))
    .whereRef('credentials.id', '=', 'v.id')
    .whereRef('credentials.leaseId', '=', 'v.leaseId')
    .where('credentials.leaseUntil', '>', now)
    .returning('credentials.id')
    .execute();
  const ids = new Set(recorded.map((row) => row.id));
  return writes.map((w) => ids.has(w.id));
}

/** Each row as written (with the statement's database clock), or undefined where fenced out. */
export async function commitRefreshes(
  db: Kysely<Database>,
  adapter: StoreAdapter,
  writes: RefreshWrite[],
): Promise<(WrittenRow | undefined)[]> {
  const now = adapter.now;
  const columns = Object.keys(tokenValues(writes[0]!.tokens)) as (keyof TokenValues)[];
  const rows = writes.map((w) => [
    sql`${w.id}`,
    sql`${w.leaseId}`,
    ...Object.values(tokenValues(w.tokens)),
  ]);
  const update = db
    .with(`v(id, leaseId, ${columns.join(', ')})`, () => valuesOf(rows))
    .updateTable('credentials')
    .from('v')
    .set((eb) => newTokens(eb, now, columnsOf(columns)))
    .whereRef('credentials.id', '=', 'v.id')
    .whereRef('credentials.leaseId', '=', 'v.leaseId');
  // Either way only the credentials' columns (the types differ only by what `*` could mean).
  const returning = adapter.qualifiedReturning
    ? update.returningAll('credentials')
    : (update.returningAll() as unknown as ReturnType<typeof update.returningAll<'credentials'>>);
  const committed = await returning.returning(now.as('dbNow')).execute();
  const byId = new Map(committed.map((row) => [row.id, row]));
  return writes.map((w) => byId.get(w.id));
}

/**
 * What a refresh and a re-authorization both write, as expressions (`tokenValues`: parameters of
 * one row, or a group's columns of `v`): the new sealed tokens and their lifetimes, the version
 * bumped, lease, intent and failure bookkeeping cleared, the next refresh planned.
 */
export function newTokens(
  eb: ExpressionBuilder<Database, 'credentials'>,
  now: RawBuilder<number>,
  t: TokenValues,
) {
  return {
    accessToken: t.accessToken,
    accessExpiresAt: sql<number>`${now} + ${t.accessTtlMs}`,
    tokenType: t.tokenType,
    scope: t.scope,
    refreshToken: t.refreshToken,
    refreshExpiresAt: sql<
      number | null
    >`case when ${t.keepRefreshExpiry} = 1 then ${eb.ref('credentials.refreshExpiresAt')} else ${now} + ${t.refreshTtlMs} end`,
    keyId: t.keyId,
    version: eb('credentials.version', '+', 1),
    ...CLEARED_LEASE_AND_INTENT,
    failures: 0,
    nextAttemptAt: null,
    lastError: null,
    failingSince: null,
    failingReportedAt: null,
    // Null (never) stays null: null plus a number is null in SQL.
    refreshAt: sql<number | null>`${now} + ${t.refreshInMs}`,
    commitTrace: t.commitTrace,
    updatedAt: now,
  };
}

export const CLEARED_LEASE_AND_INTENT = {
  leaseId: null,
  leaseUntil: null,
  intentHash: null,
  intentAt: null,
  intentAttempts: 0,
} as const;

type TokenValues = ReturnType<typeof tokenValues>;

/**
 * New tokens as SQL values, integers cast (a Postgres `values` list takes each column's type
 * from them); whole milliseconds, since epoch columns are integers. The three states of
 * `refreshTtlMs`: undefined keeps the stored expiry, null is none, a number is from now.
 */
export function tokenValues(t: Omit<RefreshedTokens, 'reportRecovered'>) {
  const integer = (ms: number | null | undefined) =>
    sql<number | null>`cast(${ms === null || ms === undefined ? null : Math.round(ms)} as bigint)`;
  return {
    keyId: sql<string>`${t.keyId}`,
    accessToken: sql<string>`${t.accessToken}`,
    refreshToken: sql<string | null>`${t.refreshToken}`,
    tokenType: sql<string>`${t.tokenType}`,
    scope: sql<string | null>`${t.scope}`,
    accessTtlMs: integer(t.accessTtlMs),
    refreshTtlMs: integer(t.refreshTtlMs),
    keepRefreshExpiry: integer(t.refreshTtlMs === undefined ? 1 : 0),
    refreshInMs: integer(t.refreshInMs),
    commitTrace: sql<string | null>`${t.commitTrace ?? null}`,
  };
}

/** The group's columns of `v`, in place of one row's values. */
function columnsOf(columns: (keyof TokenValues)[]): TokenValues {
  return Object.fromEntries(
    columns.map((column) => [column, sql.ref(`v.${column}`)]),
  ) as unknown as TokenValues;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the columns are named by the CTE
function valuesOf(rows: Expression<unknown>[][]): RawBuilder<any> {
  return sql`(values ${sql.join(rows.map((row) => sql`(${sql.join(row)})`))})`;
}
