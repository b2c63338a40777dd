import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { CredentialRecord, CredentialSnapshot } from '../credential.ts';
import { MIGRATIONS, type ColumnTypes } from './migrations.ts';
import type { Database } from './schema.ts';
import type {
  LeaseRequest,
  NewCredential,
  RefreshedTokens,
  SealedSecrets,
  Store,
} from './store.ts';

/**
 * What differs between databases, as capabilities (Kysely's adapter idea): the clock expression,
 * column types, how migrations are serialised across processes, and how waiters are woken.
 */
export interface StoreAdapter {
  /** The database clock as epoch milliseconds (invariant 2). */
  readonly now: RawBuilder<number>;
  readonly columnTypes: ColumnTypes;
  /** Runs `fn` in a transaction that no other process can run at the same time. */
  withMigrationLock(
    db: Kysely<Database>,
    fn: (locked: Kysely<Database>) => Promise<void>,
  ): Promise<void>;
  /** How often a waiter re-reads a credential when no notification arrives. */
  readonly pollIntervalMs: number;
}

/** The `Store` queries, written once for every Kysely dialect. */
export class KyselyStore implements Store {
  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly adapter: StoreAdapter,
  ) {}

  async migrate(): Promise<void> {
    await this.db.schema
      .createTable('tokenwarden_migrations')
      .ifNotExists()
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('applied_at', this.adapter.columnTypes.epochMs, (c) => c.notNull())
      .execute();
    await this.adapter.withMigrationLock(this.db, async (trx) => {
      const applied = new Set(
        (await trx.selectFrom('tokenwardenMigrations').select('name').execute()).map((m) => m.name),
      );
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.name)) continue;
        await migration.up(trx, this.adapter.columnTypes);
        await trx
          .insertInto('tokenwardenMigrations')
          .values({ name: migration.name, appliedAt: Date.now() })
          .execute();
      }
    });
  }

  async now(): Promise<number> {
    const row = await sql<{ now: number }>`select ${this.adapter.now} as now`.execute(this.db);
    return Number(row.rows[0]!.now);
  }

  async insertCredential(c: NewCredential): Promise<CredentialSnapshot> {
    const now = this.adapter.now;
    const row = await this.db
      .insertInto('credentials')
      .values({
        id: c.id,
        provider: c.provider,
        owner: c.owner,
        status: 'active',
        statusReason: null,
        version: 1,
        accessToken: c.accessToken,
        accessExpiresAt: sql`${now} + ${c.accessTtlMs}`,
        tokenType: c.tokenType,
        scope: c.scope,
        refreshToken: c.refreshToken,
        refreshExpiresAt: c.refreshTtlMs === null ? null : sql`${now} + ${c.refreshTtlMs}`,
        keyId: c.keyId,
        leaseId: null,
        leaseUntil: null,
        intentHash: null,
        intentAt: null,
        refreshAt: c.refreshInMs === null ? null : sql`${now} + ${c.refreshInMs}`,
        nextAttemptAt: null,
        lastError: null,
        metadata: c.metadata,
        createdAt: now,
        updatedAt: now,
      })
      .returningAll()
      .returning(now.as('dbNow'))
      .executeTakeFirstOrThrow();
    return snapshot(row);
  }

  async getCredential(id: string): Promise<CredentialSnapshot | undefined> {
    const row = await this.db
      .selectFrom('credentials')
      .selectAll()
      .select(this.adapter.now.as('dbNow'))
      .where('id', '=', id)
      .executeTakeFirst();
    return row && snapshot(row);
  }

  async deleteCredential(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('credentials').where('id', '=', id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async acquireLease(id: string, lease: LeaseRequest): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    const row = await this.db
      .updateTable('credentials')
      .set({
        leaseId: lease.leaseId,
        leaseUntil: sql`${now} + ${lease.leaseMs}`,
        updatedAt: now,
      })
      .where('id', '=', id)
      .where('version', '=', lease.expectedVersion)
      .where('status', '=', 'active')
      .where((eb) => eb.or([eb('leaseUntil', 'is', null), eb('leaseUntil', '<=', now)]))
      .returningAll()
      .returning(now.as('dbNow'))
      .executeTakeFirst();
    return row && snapshot(row);
  }

  async recordIntent(id: string, leaseId: string, intentHash: string): Promise<boolean> {
    const now = this.adapter.now;
    const result = await this.db
      .updateTable('credentials')
      .set((eb) => ({
        intentHash,
        // A recovery leader keeps the first sender's time: the grace window counts from it.
        intentAt: eb.fn.coalesce('intentAt', now),
        intentAttempts: eb('intentAttempts', '+', 1),
        updatedAt: now,
      }))
      .where('id', '=', id)
      .where('leaseId', '=', leaseId)
      .where('leaseUntil', '>', now)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async commitRefresh(
    id: string,
    leaseId: string,
    t: RefreshedTokens,
  ): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    const row = await this.db
      .updateTable('credentials')
      .set((eb) => ({
        accessToken: t.accessToken,
        accessExpiresAt: sql`${now} + ${t.accessTtlMs}`,
        tokenType: t.tokenType,
        scope: t.scope,
        refreshToken: t.refreshToken,
        refreshExpiresAt:
          t.refreshTtlMs === undefined
            ? eb.ref('refreshExpiresAt')
            : t.refreshTtlMs === null
              ? null
              : sql`${now} + ${t.refreshTtlMs}`,
        keyId: t.keyId,
        version: eb('version', '+', 1),
        ...CLEARED_LEASE_AND_INTENT,
        failures: 0,
        nextAttemptAt: null,
        lastError: null,
        refreshAt: t.refreshInMs === null ? null : sql`${now} + ${t.refreshInMs}`,
        updatedAt: now,
      }))
      .where('id', '=', id)
      .where('leaseId', '=', leaseId)
      .returningAll()
      .returning(now.as('dbNow'))
      .executeTakeFirst();
    return row && snapshot(row);
  }

  async commitNeedsReauth(
    id: string,
    leaseId: string,
    failure: { reason: string; lastError: string },
  ): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    const row = await this.db
      .updateTable('credentials')
      .set((eb) => ({
        status: 'needs_reauth',
        statusReason: failure.reason,
        lastError: failure.lastError,
        version: eb('version', '+', 1),
        ...CLEARED_LEASE_AND_INTENT,
        refreshAt: null,
        nextAttemptAt: null,
        updatedAt: now,
      }))
      .where('id', '=', id)
      .where('leaseId', '=', leaseId)
      .returningAll()
      .returning(now.as('dbNow'))
      .executeTakeFirst();
    return row && snapshot(row);
  }

  async commitFailure(
    id: string,
    leaseId: string,
    failure: { lastError: string; retryAfterMs: number; keepIntent: boolean },
  ): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    const row = await this.db
      .updateTable('credentials')
      .set((eb) => ({
        leaseId: null,
        leaseUntil: null,
        failures: eb('failures', '+', 1),
        nextAttemptAt: sql`${now} + ${Math.max(0, Math.round(failure.retryAfterMs))}`,
        lastError: failure.lastError,
        // The provider answered without redeeming: this send is no longer in doubt. An intent
        // left by an earlier, unanswered send stays.
        ...(failure.keepIntent
          ? {}
          : {
              intentAttempts: sql`case when ${eb.ref('intentAttempts')} > 0 then ${eb.ref('intentAttempts')} - 1 else 0 end`,
              intentHash: sql`case when ${eb.ref('intentAttempts')} <= 1 then null else ${eb.ref('intentHash')} end`,
              intentAt: sql`case when ${eb.ref('intentAttempts')} <= 1 then null else ${eb.ref('intentAt')} end`,
            }),
        updatedAt: now,
      }))
      .where('id', '=', id)
      .where('leaseId', '=', leaseId)
      .returningAll()
      .returning(now.as('dbNow'))
      .executeTakeFirst();
    return row && snapshot(row);
  }

  async waitForChange(
    id: string,
    seen: { version: number; leaseId: string | null },
    timeoutMs: number,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      // Jitter keeps pollers in several processes from reading in lockstep.
      const interval = this.adapter.pollIntervalMs * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, interval)));
      const row = await this.db
        .selectFrom('credentials')
        .select(['version', 'leaseId'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row || Number(row.version) !== seen.version || row.leaseId !== seen.leaseId) return;
    }
  }

  async listNotUnderKey(
    keyId: string,
    afterId: string | null,
    limit: number,
  ): Promise<CredentialRecord[]> {
    let query = this.db
      .selectFrom('credentials')
      .selectAll()
      .where('keyId', '!=', keyId)
      .orderBy('id')
      .limit(limit);
    if (afterId !== null) query = query.where('id', '>', afterId);
    return (await query.execute()).map(toRecord);
  }

  async resealSecrets(id: string, version: number, secrets: SealedSecrets): Promise<boolean> {
    const result = await this.db
      .updateTable('credentials')
      .set({
        keyId: secrets.keyId,
        accessToken: secrets.accessToken,
        refreshToken: secrets.refreshToken,
        updatedAt: this.adapter.now,
      })
      .where('id', '=', id)
      .where('version', '=', version)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

const CLEARED_LEASE_AND_INTENT = {
  leaseId: null,
  leaseUntil: null,
  intentHash: null,
  intentAt: null,
  intentAttempts: 0,
} as const;

type Row = Record<keyof CredentialRecord, unknown> & { dbNow: unknown };

/** Drivers return integers as numbers or strings (`pg` bigint); the model wants numbers. */
function toRecord(row: Omit<Row, 'dbNow'>): CredentialRecord {
  const num = (v: unknown) => Number(v);
  const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: row.id as string,
    provider: row.provider as string,
    owner: row.owner as string,
    status: row.status as CredentialRecord['status'],
    statusReason: row.statusReason as string | null,
    version: num(row.version),
    accessToken: row.accessToken as string,
    accessExpiresAt: num(row.accessExpiresAt),
    tokenType: row.tokenType as string,
    scope: row.scope as string | null,
    refreshToken: row.refreshToken as string | null,
    refreshExpiresAt: numOrNull(row.refreshExpiresAt),
    keyId: row.keyId as string,
    leaseId: row.leaseId as string | null,
    leaseUntil: numOrNull(row.leaseUntil),
    intentHash: row.intentHash as string | null,
    intentAt: numOrNull(row.intentAt),
    intentAttempts: num(row.intentAttempts),
    refreshAt: numOrNull(row.refreshAt),
    failures: num(row.failures),
    nextAttemptAt: numOrNull(row.nextAttemptAt),
    lastError: row.lastError as string | null,
    metadata: row.metadata as string,
    createdAt: num(row.createdAt),
    updatedAt: num(row.updatedAt),
  };
}

function snapshot(row: Row): CredentialSnapshot {
  const { dbNow, ...rest } = row;
  return { record: toRecord(rest), now: Number(dbNow) };
}
