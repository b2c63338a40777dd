import { KyselyKeyStore } from './kysely-key-store.ts';
import type { KeyStore } from './key-store.ts';
import {
  sql,
  type ExpressionBuilder,
  type Kysely,
  type UpdateObject,
  type UpdateQueryBuilder,
  type UpdateResult,
} from 'kysely';
import { systemClock } from '../clock.ts';
import type { CredentialRecord, CredentialSnapshot, CredentialState } from '../credential.ts';
import { waitForChange } from './change-notifications.ts';
import { compiledOnce } from './compiled-once.ts';
import { KyselyConnectSessionStore, type ConnectSessionStore } from './connect-session-store.ts';
import { toRecord } from './credential-row.ts';
import { KyselyServiceStore } from './kysely-service-store.ts';
import { runMigrations } from './migration-runner.ts';
import { RowCache } from './row-cache.ts';
import type { Database } from './schema.ts';
import type { ServiceStore } from './service-store.ts';
import { inWriteTransaction, later, type StoreAdapter } from './store-adapter.ts';
import { KyselyWebhookStore } from './kysely-webhook-store.ts';
import { recordEvent } from './outbox.ts';
import type { WebhookStore } from './webhook-store.ts';
import { WriteGroup } from './write-group.ts';
import {
  CLEARED_LEASE_AND_INTENT,
  commitRefreshes,
  newTokens,
  recordIntents,
  tokenValues,
  type IntentWrite,
  type RefreshWrite,
  type WrittenRow,
} from './grouped-writes.ts';
import { lifecycleEvent, type LifecycleEventType } from '../webhooks/events.ts';
import type {
  ClaimRequest,
  LeaseRequest,
  NewCredential,
  ReauthorizedTokens,
  RefreshedTokens,
  SealedSecrets,
  Seen,
  Store,
} from './store.ts';

/** The `Store` queries, written once for every Kysely dialect. */
export class KyselyStore implements Store {
  /** Providers, service clients, audit and settings, in the same database. */
  readonly service: ServiceStore;
  /** The connect flow's pending authorization requests, in the same database. */
  readonly connect: ConnectSessionStore;
  /** The key sources' wrapped data keys and the processes' key heartbeats. */
  readonly keys: KeyStore;
  /** Webhook endpoints and the deliveries of the outbox, in the same database. */
  readonly webhooks: WebhookStore;

  /** The reads of every hand-out and every poll, compiled once (see `compiledOnce`). */
  readonly #credentialById;
  readonly #versionById;
  /** Credentials read while the database stays unchanged, where it can say so (SQLite). */
  readonly #credentials: RowCache<CredentialRecord> | undefined;
  /** The intents and the commits of concurrent refreshes, one statement per group each. */
  readonly #intents: WriteGroup<IntentWrite, boolean>;
  readonly #refreshes: WriteGroup<RefreshWrite, WrittenRow | undefined>;

  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly adapter: StoreAdapter,
  ) {
    this.service = new KyselyServiceStore(db, adapter);
    this.connect = new KyselyConnectSessionStore(db, adapter);
    this.keys = new KyselyKeyStore(db, adapter);
    this.webhooks = new KyselyWebhookStore(db, adapter);
    this.#credentialById = compiledOnce(db, (id) =>
      db.selectFrom('credentials').selectAll().select(adapter.now.as('dbNow')).where('id', '=', id),
    );
    this.#versionById = compiledOnce(db, (id) =>
      db.selectFrom('credentials').select(['version', 'leaseId']).where('id', '=', id),
    );
    this.#credentials = adapter.readCache && new RowCache(adapter.readCache);
    const keyOf = (write: { id: string }) => write.id;
    this.#intents = new WriteGroup<IntentWrite, boolean>({
      write: (writes) => recordIntents(db, adapter, writes),
      keyOf,
      maxItems: MAX_GROUP,
    });
    this.#refreshes = new WriteGroup<RefreshWrite, WrittenRow | undefined>({
      write: (writes) => commitRefreshes(db, adapter, writes),
      keyOf,
      maxItems: MAX_GROUP,
    });
  }

  async migrate(): Promise<void> {
    await runMigrations(this.db, this.adapter);
    // Every process migrates on start: from here on, waiters are woken without delay.
    this.adapter.changes?.start();
  }

  /**
   * For a server: from now on it calls the function returned at the arrival of each request,
   * before any read made for it. Reads made for a request still see every write committed before
   * the request arrived (a revoked key is refused on its very next request), but on SQLite one
   * check of the database then vouches for the reads of several requests instead of one check
   * per read. A no-op where every read goes to the database (Postgres).
   */
  announceArrivals(): () => void {
    return this.adapter.readCache?.announceArrivals() ?? (() => {});
  }

  async now(): Promise<number> {
    const row = await sql<{ now: number }>`select ${this.adapter.now} as now`.execute(this.db);
    return Number(row.rows[0]!.now);
  }

  async insertCredential(c: NewCredential): Promise<CredentialSnapshot> {
    const now = this.adapter.now;
    const inserted = await this.#reported('connection.created', (db) =>
      db
        .insertInto('credentials')
        .values({
          id: c.id,
          provider: c.provider,
          owner: c.owner,
          status: 'active',
          statusReason: null,
          version: 1,
          accessToken: c.accessToken,
          accessExpiresAt: later(now, c.accessTtlMs),
          tokenType: c.tokenType,
          scope: c.scope,
          refreshToken: c.refreshToken,
          refreshExpiresAt: c.refreshTtlMs === null ? null : later(now, c.refreshTtlMs),
          keyId: c.keyId,
          leaseId: null,
          leaseUntil: null,
          intentHash: null,
          intentAt: null,
          refreshAt: c.refreshInMs === null ? null : later(now, c.refreshInMs),
          nextAttemptAt: null,
          lastError: null,
          metadata: c.metadata,
          createdAt: now,
          updatedAt: now,
        })
        .returningAll()
        .returning(now.as('dbNow'))
        .executeTakeFirstOrThrow(),
    );
    return inserted!;
  }

  async getCredential(id: string): Promise<CredentialSnapshot | undefined> {
    const cache = this.#credentials;
    if (cache === undefined) {
      // Taken before the read: a change committed meanwhile is heard after the mark.
      const readMark = this.adapter.changes?.mark();
      const [row] = (await this.#credentialById(id)).rows;
      const read = row && snapshot(row);
      if (read && readMark) read.record.readMark = readMark;
      return read;
    }
    const record = await cache.get(id, async () => {
      const [row] = (await this.#credentialById(id)).rows;
      return row && toRecord(row);
    });
    return record && { record, now: cache.support.now() };
  }

  async deleteCredential(id: string): Promise<boolean> {
    const deleted = await this.#reported('connection.deleted', (db) =>
      db
        .deleteFrom('credentials')
        .where('id', '=', id)
        .returningAll()
        .returning(this.adapter.now.as('dbNow'))
        .executeTakeFirst(),
    );
    return deleted !== undefined;
  }

  async acquireLease(id: string, lease: LeaseRequest): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    return this.#written((db) =>
      db
        .updateTable('credentials')
        .set({
          leaseId: lease.leaseId,
          leaseUntil: later(now, lease.leaseMs),
          updatedAt: now,
        })
        .where('id', '=', id)
        .where('version', '=', lease.expectedVersion)
        .where('status', '=', 'active')
        .where((eb) => eb.or([eb('leaseUntil', 'is', null), eb('leaseUntil', '<=', now)])),
    );
  }

  recordIntent(id: string, leaseId: string, intentHash: string): Promise<boolean> {
    return this.#intents.add({ id, leaseId, intentHash });
  }

  async commitRefresh(
    id: string,
    leaseId: string,
    t: RefreshedTokens,
  ): Promise<CredentialSnapshot | undefined> {
    // A commit that reports a recovery writes its outbox event in the same transaction: alone.
    if (t.reportRecovered) {
      return this.#fenced('connection.refresh_recovered', id, leaseId, (eb) =>
        newTokens(eb, this.adapter.now, tokenValues(t)),
      );
    }
    const row = await this.#refreshes.add({ id, leaseId, tokens: t });
    return row && snapshot(row);
  }

  async commitNeedsReauth(
    id: string,
    leaseId: string,
    failure: { reason: string; lastError: string },
  ): Promise<CredentialSnapshot | undefined> {
    return this.#fenced('connection.needs_reauth', id, leaseId, (eb) => ({
      status: 'needs_reauth',
      statusReason: failure.reason,
      lastError: failure.lastError,
      version: eb('version', '+', 1),
      ...CLEARED_LEASE_AND_INTENT,
      refreshAt: null,
      nextAttemptAt: null,
      updatedAt: this.adapter.now,
    }));
  }

  async commitFailure(
    id: string,
    leaseId: string,
    failure: Failure,
  ): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    const event = failure.reportFailing ? 'connection.refresh_failing' : undefined;
    return this.#fenced(event, id, leaseId, (eb) => ({
      leaseId: null,
      leaseUntil: null,
      failures: eb('failures', '+', 1),
      ...(failure.providerFailed && { failingSince: eb.fn.coalesce('failingSince', now) }),
      ...(failure.reportFailing && { failingReportedAt: now }),
      nextAttemptAt: later(now, Math.max(0, failure.retryAfterMs)),
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
    }));
  }

  async reauthorize(
    id: string,
    expectedVersion: number,
    t: ReauthorizedTokens,
  ): Promise<CredentialSnapshot | undefined> {
    return this.#written(
      (db) =>
        db
          .updateTable('credentials')
          .set((eb) => ({
            ...newTokens(eb, this.adapter.now, tokenValues(t)),
            status: 'active',
            statusReason: null,
          }))
          .where('id', '=', id)
          .where('version', '=', expectedVersion),
      'connection.reauthorized',
    );
  }

  /** Invariant 4: `set` is written only while `leaseId` holds the lease. */
  #fenced(
    event: LifecycleEventType | undefined,
    id: string,
    leaseId: string,
    set: (eb: ExpressionBuilder<Database, 'credentials'>) => UpdateObject<Database, 'credentials'>,
  ): Promise<CredentialSnapshot | undefined> {
    return this.#written(
      (db) =>
        db.updateTable('credentials').set(set).where('id', '=', id).where('leaseId', '=', leaseId),
      event,
    );
  }

  /**
   * Runs an update of one credential: the row as written, with the database clock, if it
   * matched; `event` is recorded with it when given.
   */
  #written(
    update: (db: Kysely<Database>) => CredentialUpdate,
    event?: LifecycleEventType,
  ): Promise<CredentialSnapshot | undefined> {
    return this.#reported(event, (db) =>
      update(db).returningAll().returning(this.adapter.now.as('dbNow')).executeTakeFirst(),
    );
  }

  /**
   * Runs a write of one credential and, when it wrote one and `event` is given, records the event
   * in the same transaction (`recordEvent`). Without an event, one statement as before.
   */
  async #reported(
    event: LifecycleEventType | undefined,
    write: (db: Kysely<Database>) => Promise<Row | undefined>,
  ): Promise<CredentialSnapshot | undefined> {
    const row =
      event === undefined
        ? await write(this.db)
        : await inWriteTransaction(this.adapter, this.db, async (trx) => {
            const written = await write(trx);
            if (written) {
              await recordEvent(
                trx,
                this.adapter.now,
                lifecycleEvent(event, written, written.dbNow),
              );
            }
            return written;
          });
    return row && snapshot(row);
  }

  async claimDue(request: ClaimRequest): Promise<CredentialSnapshot[]> {
    const now = this.adapter.now;
    const due = (eb: ExpressionBuilder<Database, 'credentials'>) =>
      eb.and([
        eb('status', '=', 'active'),
        eb('refreshAt', '<=', now),
        eb.or([eb('leaseUntil', 'is', null), eb('leaseUntil', '<=', now)]),
        eb.or([eb('nextAttemptAt', 'is', null), eb('nextAttemptAt', '<=', now)]),
        ...(request.excludeProviders.length > 0
          ? [eb('provider', 'not in', request.excludeProviders)]
          : []),
      ]);
    let candidates = this.db
      .selectFrom('credentials')
      .select('id')
      .where(due)
      .orderBy('refreshAt')
      .limit(request.limit);
    if (this.adapter.skipLockedClaims) candidates = candidates.forUpdate().skipLocked();
    const rows = await this.db
      // Picked once. As a plain `in (subquery)`, Postgres may run the subquery again while the
      // update goes on, and each run, no longer seeing the rows just leased as due, would pick
      // the next ones: a claim of n rows could lease every due row.
      .with(
        (cte) => cte('picked').materialized(),
        () => candidates,
      )
      .updateTable('credentials')
      .set({
        leaseId: request.leaseId,
        leaseUntil: later(now, request.leaseMs),
        updatedAt: now,
      })
      .where('id', 'in', (eb) => eb.selectFrom('picked').select('picked.id'))
      .where(due) // re-checked on the locked row, in case it changed since it was selected
      .returningAll()
      .returning(now.as('dbNow'))
      .execute();
    return rows.map(snapshot);
  }

  waitForChange(
    id: string,
    seen: Seen,
    timeoutMs: number,
  ): Promise<CredentialSnapshot<CredentialState> | undefined> {
    const { changes, pollIntervalMs, clock = systemClock } = this.adapter;
    const sources = { changes, pollIntervalMs, clock, changed: this.#changed };
    return waitForChange(sources, id, seen, timeoutMs);
  }

  /** One look at the row: whether it moved on from `seen` (or is gone). */
  readonly #changed = async (id: string, seen: Seen): Promise<boolean> => {
    const [row] = (await this.#versionById(id)).rows;
    return !row || row.version !== seen.version || row.leaseId !== seen.leaseId;
  };

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
    return query.execute();
  }

  async keysInUse(): Promise<Array<{ keyId: string; credentialId: string }>> {
    // One pass over the key_id index; run once per start, not per request.
    return this.db
      .selectFrom('credentials')
      .select(['keyId', (eb) => eb.fn.min<string>('id').as('credentialId')])
      .groupBy('keyId')
      .orderBy('keyId')
      .execute();
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
    await this.adapter.beforeClose?.();
    await this.adapter.changes?.close();
    await this.db.destroy();
  }
}

type Row = WrittenRow;

/**
 * Rows per grouped statement: a commit binds 11 parameters per row, well inside every driver's
 * limit, and a group larger than a scheduler's batch buys nothing more.
 */
const MAX_GROUP = 256;

type Failure = Parameters<Store['commitFailure']>[2];

type CredentialUpdate = UpdateQueryBuilder<Database, 'credentials', 'credentials', UpdateResult>;

function snapshot(row: Row): CredentialSnapshot {
  return { record: toRecord(row), now: row.dbNow };
}
