import {
  sql,
  type ExpressionBuilder,
  type Kysely,
  type RawBuilder,
  type UpdateObject,
  type UpdateQueryBuilder,
  type UpdateResult,
} from 'kysely';
import type { CredentialRecord, CredentialSnapshot, CredentialState } from '../credential.ts';
import { compiledOnce } from './compiled-once.ts';
import { KyselyConnectSessionStore, type ConnectSessionStore } from './connect-session-store.ts';
import { toRecord, type CredentialRow } from './credential-row.ts';
import { KyselyServiceStore } from './kysely-service-store.ts';
import { MIGRATIONS, type ColumnTypes, type Migration } from './migrations.ts';
import { RowCache, type ReadCacheSupport } from './row-cache.ts';
import type { Database } from './schema.ts';
import type { ServiceStore } from './service-store.ts';
import type {
  ClaimRequest,
  LeaseRequest,
  NewCredential,
  ReauthorizedTokens,
  RefreshedTokens,
  SealedSecrets,
  Store,
} from './store.ts';

/**
 * What differs between databases, as capabilities (Kysely's adapter idea): the clock expression,
 * column types, how migrations are serialised across processes, and how waiters are woken.
 */
export interface StoreAdapter {
  /** The database clock as epoch milliseconds (invariant 2), one value per statement. */
  readonly now: RawBuilder<number>;
  readonly columnTypes: ColumnTypes;
  /** Runs `fn` in a transaction that no other process can run at the same time. */
  withMigrationLock(
    db: Kysely<Database>,
    fn: (locked: Kysely<Database>) => Promise<void>,
  ): Promise<void>;
  /** Schema changes only this database needs, merged into the shared ones by name. */
  readonly migrations?: readonly Migration[];
  /** How often a waiter re-reads a credential when no notification arrives. */
  readonly pollIntervalMs: number;
  /** Push notifications of credential changes, if the database has them. */
  readonly changes?: ChangeNotifications;
  /** Claim due rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never queue. */
  readonly skipLockedClaims?: boolean;
  /** Lets the hot reads be answered from memory while nothing changed (see `RowCache`). */
  readonly readCache?: ReadCacheSupport;
  /** Stops the adapter's own background work; called by `Store.close()` first. */
  readonly beforeClose?: () => Promise<void>;
}

/**
 * Tells waiters that a credential changed (Postgres LISTEN/NOTIFY). A notification names the state
 * its statement committed. One that names the state the waiter saw (its own, notified late) is no
 * news. Any other ends the wait: if it carries a state with a newer version than the waiter saw
 * (so committed after the waiter's read), the caller decides from that state; otherwise the
 * caller reads the row, since the notification may be stale, which costs one more read and wait,
 * never a wrong answer. Waiters keep polling, so a lost notification costs latency, never
 * correctness.
 */
export interface ChangeNotifications {
  /** Gets ready to notify (connects); called once the schema is known to be in place. */
  start(): void;
  watch(id: string): ChangeWatch;
  /** Where the notifications stand now, if listening: taken before a read (see `heardSince`). */
  mark(): ChangeMark | undefined;
  /**
   * The states notified for `id` since `mark` (undefined entries: unknown states), if every
   * change committed since then has been heard; undefined when that cannot be vouched for (the
   * listener reconnected, or the notifications since then are no longer all kept).
   */
  heardSince(id: string, mark: ChangeMark): (HeardState | undefined)[] | undefined;
  /** Stops listening; called by `Store.close()` before the connections are closed. */
  close(): Promise<void>;
}

/** A point in a listener's notifications: its LISTEN session, and how many it had heard. */
export interface ChangeMark {
  readonly session: number;
  readonly heard: number;
}

/** The state a notification named: what the statement that sent it committed. */
export interface HeardState {
  version: number;
  /** Null: the statement left the credential without a lease. */
  leaseId: string | null;
  /**
   * The whole state the statement committed, when it bumped the version and the notification
   * carried it (see `NOTIFY_STATE_MIGRATION`), with that statement's database clock as `now`.
   */
  state?: CredentialSnapshot<CredentialState>;
  /** Where the listener stood once it had heard this: changes committed later are heard after. */
  at: ChangeMark;
}

export interface ChangeWatch {
  /**
   * Settles once a change committed from now on will be notified, or once it is known that it
   * will not be (the listener is down): then the waiter only polls. Never rejects.
   */
  readonly ready: Promise<void>;
  /**
   * The next notification, in the order they were committed (ones that came since the last call
   * first). Resolves with the state it named, or with undefined when that is unknown: after `ms`
   * without one, when the listener reconnected (changes may have gone unnotified meanwhile) or
   * stopped, for a deleted credential, and for a bare-id payload (a database not yet migrated to
   * `0004_notify_payload`). Undefined means: read the row to know.
   */
  next(ms: number): Promise<HeardState | undefined>;
  stop(): void;
}

/** The `Store` queries, written once for every Kysely dialect. */
export class KyselyStore implements Store {
  /** Providers, service clients, audit and settings, in the same database. */
  readonly service: ServiceStore;
  /** The connect flow's pending authorization requests, in the same database. */
  readonly connect: ConnectSessionStore;

  /** The reads of every hand-out and every poll, compiled once (see `compiledOnce`). */
  readonly #credentialById;
  readonly #versionById;
  /** Credentials read while the database stays unchanged, where it can say so (SQLite). */
  readonly #credentials: RowCache<CredentialRecord> | undefined;
  /**
   * Where the notifications stood just before each record was read, or once the state a
   * notification carried was heard (Postgres): a waiter that saw this record needs no second read
   * to know what changed since (see `waitForChange`).
   */
  readonly #readMarks = new WeakMap<object, ChangeMark>();

  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly adapter: StoreAdapter,
  ) {
    this.service = new KyselyServiceStore(db, adapter);
    this.connect = new KyselyConnectSessionStore(db, adapter);
    this.#credentialById = compiledOnce(db, (id) =>
      db.selectFrom('credentials').selectAll().select(adapter.now.as('dbNow')).where('id', '=', id),
    );
    this.#versionById = compiledOnce(db, (id) =>
      db.selectFrom('credentials').select(['version', 'leaseId']).where('id', '=', id),
    );
    this.#credentials = adapter.readCache && new RowCache(adapter.readCache);
  }

  async migrate(): Promise<void> {
    const migrations = [...MIGRATIONS, ...(this.adapter.migrations ?? [])].sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
    await this.adapter.withMigrationLock(this.db, async (trx) => {
      // Inside the lock: Postgres' CREATE TABLE IF NOT EXISTS is not safe against a concurrent one.
      await trx.schema
        .createTable('tokenwarden_migrations')
        .ifNotExists()
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('applied_at', this.adapter.columnTypes.epochMs, (c) => c.notNull())
        .execute();
      const applied = new Set(
        (await trx.selectFrom('tokenwardenMigrations').select('name').execute()).map((m) => m.name),
      );
      for (const migration of migrations) {
        if (applied.has(migration.name)) continue;
        await migration.up(trx, this.adapter.columnTypes);
        await trx
          .insertInto('tokenwardenMigrations')
          .values({ name: migration.name, appliedAt: Date.now() })
          .execute();
      }
    });
    // Every process migrates on start: from here on, waiters are woken without delay.
    this.adapter.changes?.start();
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
      .executeTakeFirstOrThrow();
    return snapshot(row);
  }

  async getCredential(id: string): Promise<CredentialSnapshot | undefined> {
    const cache = this.#credentials;
    if (cache === undefined) {
      const mark = this.adapter.changes?.mark();
      const [row] = (await this.#credentialById(id)).rows;
      const read = row && snapshot(row);
      if (read && mark) this.#readMarks.set(read.record, mark);
      return read;
    }
    const record = await cache.get(id, async () => {
      const [row] = (await this.#credentialById(id)).rows;
      return row && toRecord(row);
    });
    return record && { record, now: cache.support.now() };
  }

  async deleteCredential(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('credentials').where('id', '=', id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async acquireLease(id: string, lease: LeaseRequest): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    return this.#written(
      this.db
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
    return this.#fenced(id, leaseId, (eb) => newTokens(eb, this.adapter.now, t));
  }

  async commitNeedsReauth(
    id: string,
    leaseId: string,
    failure: { reason: string; lastError: string },
  ): Promise<CredentialSnapshot | undefined> {
    return this.#fenced(id, leaseId, (eb) => ({
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
    failure: { lastError: string; retryAfterMs: number; keepIntent: boolean },
  ): Promise<CredentialSnapshot | undefined> {
    const now = this.adapter.now;
    return this.#fenced(id, leaseId, (eb) => ({
      leaseId: null,
      leaseUntil: null,
      failures: eb('failures', '+', 1),
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
      this.db
        .updateTable('credentials')
        .set((eb) => ({
          ...newTokens(eb, this.adapter.now, t),
          status: 'active',
          statusReason: null,
        }))
        .where('id', '=', id)
        .where('version', '=', expectedVersion),
    );
  }

  /** Invariant 4: `set` is written only while `leaseId` holds the lease. */
  #fenced(
    id: string,
    leaseId: string,
    set: (eb: ExpressionBuilder<Database, 'credentials'>) => UpdateObject<Database, 'credentials'>,
  ): Promise<CredentialSnapshot | undefined> {
    return this.#written(
      this.db
        .updateTable('credentials')
        .set(set)
        .where('id', '=', id)
        .where('leaseId', '=', leaseId),
    );
  }

  /** Runs an update of one credential: the row as written, with the database clock, if it matched. */
  async #written(update: CredentialUpdate): Promise<CredentialSnapshot | undefined> {
    const row = await update
      .returningAll()
      .returning(this.adapter.now.as('dbNow'))
      .executeTakeFirst();
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
      .updateTable('credentials')
      .set({
        leaseId: request.leaseId,
        leaseUntil: later(now, request.leaseMs),
        updatedAt: now,
      })
      .where('id', 'in', candidates)
      .where(due) // re-checked on the locked row, in case it changed since it was selected
      .returningAll()
      .returning(now.as('dbNow'))
      .execute();
    return rows.map(snapshot);
  }

  async waitForChange(
    id: string,
    seen: { version: number; leaseId: string | null },
    timeoutMs: number,
  ): Promise<CredentialSnapshot<CredentialState> | undefined> {
    const deadline = Date.now() + timeoutMs;
    const watch = this.adapter.changes?.watch(id);
    try {
      // The change may have landed between the caller's read and the watch, and then no
      // notification will come: look once more, as soon as later changes will be notified.
      // Unless the listener heard everything since the caller's read began (the record `seen`
      // came from getCredential, or from here, while listening): then what it heard meanwhile
      // tells, the newest last.
      if (watch) {
        const mark = this.#readMarks.get(seen);
        const heard = mark && this.adapter.changes!.heardSince(id, mark);
        if (heard === undefined) {
          await settleWithin(watch.ready, deadline - Date.now());
          if (await this.#changed(id, seen)) return undefined;
        } else if (heard.some((h) => namesAnother(h, seen))) {
          return this.#newerState(seen, heard.at(-1));
        }
      }
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        // Jitter keeps pollers in several processes from reading in lockstep.
        const pollAt =
          Date.now() + Math.min(left, this.adapter.pollIntervalMs * (0.5 + Math.random()));
        if (watch) {
          // A notification that names another state than `seen` is the change: the caller
          // reads the row next anyway, so no read here. One that names `seen` itself (the
          // caller's own state, notified late) is no news: keep waiting, until the next poll.
          for (;;) {
            const heard = await watch.next(pollAt - Date.now());
            if (!heard) break;
            if (namesAnother(heard, seen)) {
              return this.#newerState(seen, heard);
            }
          }
        } else {
          await sleep(pollAt - Date.now());
        }
        if (await this.#changed(id, seen)) return undefined;
      }
    } finally {
      watch?.stop();
    }
  }

  /**
   * The state a notification carried, if its version is newer than `seen`'s: then it was
   * committed after the caller's read, and the caller may decide from it as from a read. An older
   * or equal version may come from a notification of a change the read already saw, or one
   * before it: the caller reads.
   */
  #newerState(
    seen: { version: number },
    heard: HeardState | undefined,
  ): CredentialSnapshot<CredentialState> | undefined {
    if (!heard?.state || heard.version <= seen.version) return undefined;
    this.#readMarks.set(heard.state.record, heard.at);
    return heard.state;
  }

  async #changed(id: string, seen: { version: number; leaseId: string | null }): Promise<boolean> {
    const [row] = (await this.#versionById(id)).rows;
    return !row || Number(row.version) !== seen.version || row.leaseId !== seen.leaseId;
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
    await this.adapter.beforeClose?.();
    await this.adapter.changes?.close();
    await this.db.destroy();
  }
}

/**
 * `ms` from the database's `now`. Whole milliseconds: epoch columns are integers (a Postgres
 * `bigint` refuses 1.5), and callers compute durations with floating point.
 */
function later(now: RawBuilder<number>, ms: number): RawBuilder<number> {
  return sql<number>`${now} + ${Math.round(ms)}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for `promise` to settle, at most `ms`, leaving no timer behind. */
function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

/** Whether a notification is news to a waiter that saw `seen` (unknown states always are). */
function namesAnother(
  heard: HeardState | undefined,
  seen: { version: number; leaseId: string | null },
): boolean {
  return heard?.version !== seen.version || heard.leaseId !== seen.leaseId;
}

/**
 * What a refresh and a re-authorization both write: the new sealed tokens and their lifetimes,
 * the version bumped, lease, intent and failure bookkeeping cleared, the next refresh planned.
 */
function newTokens(
  eb: ExpressionBuilder<Database, 'credentials'>,
  now: RawBuilder<number>,
  t: RefreshedTokens,
) {
  return {
    accessToken: t.accessToken,
    accessExpiresAt: later(now, t.accessTtlMs),
    tokenType: t.tokenType,
    scope: t.scope,
    refreshToken: t.refreshToken,
    refreshExpiresAt:
      t.refreshTtlMs === undefined
        ? eb.ref('refreshExpiresAt')
        : t.refreshTtlMs === null
          ? null
          : later(now, t.refreshTtlMs),
    keyId: t.keyId,
    version: eb('version', '+', 1),
    ...CLEARED_LEASE_AND_INTENT,
    failures: 0,
    nextAttemptAt: null,
    lastError: null,
    refreshAt: t.refreshInMs === null ? null : later(now, t.refreshInMs),
    updatedAt: now,
  };
}

const CLEARED_LEASE_AND_INTENT = {
  leaseId: null,
  leaseUntil: null,
  intentHash: null,
  intentAt: null,
  intentAttempts: 0,
} as const;

type Row = CredentialRow & { dbNow: unknown };

type CredentialUpdate = UpdateQueryBuilder<Database, 'credentials', 'credentials', UpdateResult>;

function snapshot(row: Row): CredentialSnapshot {
  // toRecord copies the record's fields only: dbNow stays behind without a copy of the row.
  return { record: toRecord(row), now: Number(row.dbNow) };
}
