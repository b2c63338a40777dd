import { sql, type ExpressionBuilder, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { CredentialRecord } from '../credential.ts';
import { InvalidInputError } from '../errors.ts';
import { compiledOnce, compiledWith } from './compiled-once.ts';
import { RowCache } from './row-cache.ts';
import { TurnReads } from './turn-reads.ts';
import type { StoreAdapter } from './store-adapter.ts';
import type { AuditEventsTable, Database, ServiceClientsTable } from './schema.ts';
import type {
  AuditCount,
  AuditCountQuery,
  AuditQuery,
  AuditRecord,
  CredentialCount,
  CredentialQuery,
  LatestAuditQuery,
  NewAuditEvent,
  CertificateBinding,
  NewServiceClient,
  ServiceClientRecord,
  ServiceGrant,
  ServiceStore,
  StoredProvider,
  StoredProviderRecord,
} from './service-store.ts';

/** The largest page any list returns: a caller asking for more gets `invalid_input`. */
export const MAX_PAGE_SIZE = 1000;

/** 9 parameters per event: far below every database's limit on one statement's parameters. */
const AUDIT_ROWS_PER_STATEMENT = 1000;

/** Audit batches up to this many rows are inserted with a query compiled once per row count. */
const COMPILED_AUDIT_ROWS = 64;
const AUDIT_COLUMNS = [
  'at',
  'requestId',
  'actor',
  'action',
  'connectionId',
  'owner',
  'provider',
  'outcome',
  'detail',
] as const satisfies readonly (keyof NewAuditEvent)[];

/** An event's values in the order of `AUDIT_COLUMNS`. */
function auditValues(event: NewAuditEvent): unknown[] {
  return AUDIT_COLUMNS.map((column) => event[column]);
}

/**
 * An `audit_events` row with `valueOf` each column's value. Typed loosely: the compiled insert
 * passes placeholders (strings) and the other one the database clock for a missing time.
 */
function auditRow(
  valueOf: (column: (typeof AUDIT_COLUMNS)[number], index: number) => unknown,
): Insertable<AuditEventsTable> {
  const entries = AUDIT_COLUMNS.map((column, index) => [column, valueOf(column, index)]);
  return Object.fromEntries(entries) as unknown as Insertable<AuditEventsTable>;
}

/** The `ServiceStore` queries, written once for every Kysely dialect (as `KyselyStore`). */
export class KyselyServiceStore implements ServiceStore {
  /** Read on every request a service client makes: compiled once (see `compiledOnce`). */
  readonly #clientById;
  /** Clients read while the database stays unchanged, where it can say so (SQLite). */
  readonly #clients: RowCache<ServiceClientRecord> | undefined;
  /**
   * The reads of one client asked for in one turn, made once at its end (from the cache where
   * there is one): a burst of requests pays one round trip (Postgres) or one check of the
   * database (SQLite) for the row of the client they share.
   */
  readonly #clientReads = new TurnReads<ServiceClientRecord>();
  readonly #auditInserts = new Map<
    number,
    (values: readonly unknown[], on: Kysely<Database>) => Promise<unknown>
  >();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly adapter: Pick<StoreAdapter, 'now' | 'readCache'>,
  ) {
    this.#clientById = compiledOnce(db, (id) =>
      db.selectFrom('serviceClients').selectAll().where('id', '=', id),
    );
    this.#clients = adapter.readCache && new RowCache(adapter.readCache);
  }

  async putProvider(provider: StoredProvider): Promise<StoredProviderRecord> {
    const now = this.adapter.now;
    const row = await this.db
      .insertInto('providers')
      .values({
        name: provider.name,
        config: provider.config,
        clientSecret: provider.clientSecret,
        createdAt: now,
        updatedAt: now,
      })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet((eb) => ({
          config: eb.ref('excluded.config'),
          clientSecret: eb.ref('excluded.clientSecret'),
          updatedAt: now,
        })),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return row;
  }

  async getProvider(name: string): Promise<StoredProviderRecord | undefined> {
    const row = await this.db
      .selectFrom('providers')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row;
  }

  async listProviders(): Promise<StoredProviderRecord[]> {
    return this.db.selectFrom('providers').selectAll().orderBy('name').execute();
  }

  async deleteProvider(name: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('providers')
      .where('name', '=', name)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async resealProviderSecret(name: string, expected: string, sealed: string): Promise<boolean> {
    const result = await this.db
      .updateTable('providers')
      .set({ clientSecret: sealed })
      .where('name', '=', name)
      .where('clientSecret', '=', expected)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async insertClient(client: NewServiceClient): Promise<ServiceClientRecord> {
    const row = await this.db
      .insertInto('serviceClients')
      .values({
        id: client.id,
        name: client.name,
        keyHash: client.keyHash,
        grants: JSON.stringify(client.grants),
        certificate: client.certificate ? JSON.stringify(client.certificate) : null,
        createdAt: this.adapter.now,
        revokedAt: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toClient(row);
  }

  async getClient(id: string): Promise<ServiceClientRecord | undefined> {
    // A revocation is a write: it moves the cache's stamp, so a revoked client is refused at once.
    const read = async () => {
      const [row] = (await this.#clientById(id)).rows;
      return row && toClient(row);
    };
    const clients = this.#clients;
    const fromCache = clients && (() => clients.get(id, read));
    return this.#clientReads.get(id, fromCache ?? read);
  }

  async listClients(): Promise<ServiceClientRecord[]> {
    const rows = await this.db.selectFrom('serviceClients').selectAll().orderBy('id').execute();
    return rows.map(toClient);
  }

  async revokeClient(id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('serviceClients')
      .set({ revokedAt: this.adapter.now })
      .where('id', '=', id)
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async appendAudit(events: NewAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    // One statement per batch: audit sits on the path of every token hand-out. A batch too big
    // for one statement's parameters (SQLite allows 32,766, Postgres 65,535) is split, inside
    // one transaction so that it still lands whole or not at all.
    if (events.length <= AUDIT_ROWS_PER_STATEMENT) return this.#insertAudit(this.db, events);
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < events.length; i += AUDIT_ROWS_PER_STATEMENT) {
        await this.#insertAudit(trx, events.slice(i, i + AUDIT_ROWS_PER_STATEMENT));
      }
    });
  }

  async #insertAudit(db: Kysely<Database>, events: NewAuditEvent[]): Promise<void> {
    if (events.length <= COMPILED_AUDIT_ROWS && events.every((e) => e.at !== undefined)) {
      await this.#compiledAuditInsert(events.length)(events.flatMap(auditValues), db);
      return;
    }
    const now = this.adapter.now;
    await db
      .insertInto('auditEvents')
      .values(
        events.map((e) => auditRow((column) => (column === 'at' ? (e.at ?? now) : e[column]))),
      )
      .execute();
  }

  /**
   * The insert of `rows` audit events with their own `at`, built and compiled once per row count:
   * the server's audit writer sends batches of up to 64 rows on the path of every hand-out, and
   * building a 64-row insert with Kysely costs more than SQLite takes to run it.
   */
  #compiledAuditInsert(rows: number) {
    let insert = this.#auditInserts.get(rows);
    if (insert === undefined) {
      const columns = AUDIT_COLUMNS.length;
      insert = compiledWith(this.db, rows * columns, (values) =>
        this.db
          .insertInto('auditEvents')
          .values(
            Array.from({ length: rows }, (_, row) => auditRow((_, i) => values[row * columns + i])),
          ),
      );
      this.#auditInserts.set(rows, insert);
    }
    return insert;
  }

  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    let select = this.db
      .selectFrom('auditEvents')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(checkLimit(query.limit));
    if (query.connectionId !== undefined)
      select = select.where('connectionId', '=', query.connectionId);
    if (query.actor !== undefined) select = select.where('actor', '=', query.actor);
    if (query.since !== undefined) select = select.where('at', '>=', query.since);
    if (query.before !== undefined) select = select.where('seq', '<', query.before);
    return select.execute();
  }

  async getSetting(name: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('settings')
      .select('value')
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.value;
  }

  async setSettingIfAbsent(name: string, value: string): Promise<boolean> {
    // The primary key decides a race between processes: exactly one insert returns a row.
    const row = await this.db
      .insertInto('settings')
      .values({ name, value })
      .onConflict((oc) => oc.column('name').doNothing())
      .returning('name')
      .executeTakeFirst();
    return row !== undefined;
  }

  async replaceSetting(name: string, expected: string, value: string): Promise<boolean> {
    const result = await this.db
      .updateTable('settings')
      .set({ value })
      .where('name', '=', name)
      .where('value', '=', expected)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async putSetting(name: string, value: string): Promise<void> {
    await this.db
      .insertInto('settings')
      .values({ name, value })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value }))
      .execute();
  }

  async listCredentials(query: CredentialQuery): Promise<CredentialRecord[]> {
    const limit = checkLimit(query.limit);
    const { grants } = query;
    if (grants !== undefined && grants.length === 0) return [];
    let select = this.db.selectFrom('credentials').selectAll().orderBy('id').limit(limit);
    if (query.owner !== undefined) select = select.where('owner', '=', query.owner);
    if (query.provider !== undefined) select = select.where('provider', '=', query.provider);
    if (query.status !== undefined) select = select.where('status', '=', query.status);
    if (query.afterId !== undefined) select = select.where('id', '>', query.afterId);
    if (query.search !== undefined) {
      const pattern = `%${query.search.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`;
      select = select.where((eb) =>
        eb.or([contains(sql.ref('owner'), pattern), contains(sql.ref('id'), pattern)]),
      );
    }
    if (query.endsBefore !== undefined) {
      // A connection ends with its refresh token; one without ends with its access token.
      select = select.where(
        sql<number>`case when refresh_token is null then access_expires_at else refresh_expires_at end`,
        '<',
        query.endsBefore,
      );
    }
    if (grants !== undefined) select = select.where((eb) => matchesAnyGrant(eb, grants));
    return select.execute();
  }

  async countCredentials(): Promise<CredentialCount[]> {
    const rows = await this.db
      .selectFrom('credentials')
      .select(['provider', 'status', (eb) => eb.fn.countAll<number>().as('count')])
      .groupBy(['provider', 'status'])
      .orderBy('provider')
      .orderBy('status')
      .execute();
    return rows.map((row) => ({ ...row, count: Number(row.count) }));
  }

  async overdueRefreshes(): Promise<{ count: number; oldestMs: number }> {
    const now = this.adapter.now;
    const row = await this.db
      .selectFrom('credentials')
      .select((eb) => [
        eb.fn.countAll<number>().as('count'),
        sql<number | null>`${now} - min(refresh_at)`.as('oldestMs'),
      ])
      .where('status', '=', 'active')
      .where('refreshAt', '<=', now)
      .executeTakeFirstOrThrow();
    return { count: Number(row.count), oldestMs: Math.max(0, Number(row.oldestMs ?? 0)) };
  }

  async countAudit(query: AuditCountQuery): Promise<AuditCount[]> {
    if (!Number.isSafeInteger(query.bucketMs) || query.bucketMs < 1) {
      throw new InvalidInputError('bucketMs', 'must be a positive integer');
    }
    // A literal, not a parameter: integer division in every dialect.
    const bucket = sql<number>`(at / ${sql.lit(query.bucketMs)}) * ${sql.lit(query.bucketMs)}`;
    const rows = await this.db
      .selectFrom('auditEvents')
      .select((eb) => [
        'provider',
        'outcome',
        bucket.as('bucket'),
        eb.fn.countAll<number>().as('count'),
      ])
      .where('at', '>=', query.since)
      .where('action', '=', query.action)
      .groupBy(['provider', 'outcome', bucket])
      .orderBy('bucket')
      .execute();
    return rows.map((row) => ({ ...row, bucket: Number(row.bucket), count: Number(row.count) }));
  }

  async latestAudit(query: LatestAuditQuery): Promise<Map<string, number>> {
    if (query.connectionIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('auditEvents')
      .select((eb) => ['connectionId', eb.fn.max('at').as('at')])
      .where('connectionId', 'in', query.connectionIds)
      .where('action', '=', query.action)
      .where('outcome', '=', query.outcome)
      .groupBy('connectionId')
      .execute();
    return new Map(rows.map((row) => [row.connectionId!, Number(row.at)]));
  }
}

/** `lower(column) LIKE pattern`, backslash the escape character in every dialect. */
function contains(column: ReturnType<typeof sql.ref>, pattern: string) {
  return sql<boolean>`lower(${column}) like ${pattern} escape '\\'`;
}

type GrantScope = Pick<ServiceGrant, 'owner' | 'provider'>;

/** OR over the grants; within one grant, '*' matches anything, so it adds no condition. */
function matchesAnyGrant(eb: ExpressionBuilder<Database, 'credentials'>, grants: GrantScope[]) {
  return eb.or(
    grants.map((grant) => {
      const conditions = [];
      if (grant.owner !== '*') conditions.push(eb('owner', '=', grant.owner));
      if (grant.provider !== '*') conditions.push(eb('provider', '=', grant.provider));
      return conditions.length === 0 ? eb.lit(true) : eb.and(conditions);
    }),
  );
}

function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new InvalidInputError('limit', `must be an integer between 1 and ${MAX_PAGE_SIZE}`);
  }
  return limit;
}

function toClient({
  grants,
  certificate,
  ...row
}: Selectable<ServiceClientsTable>): ServiceClientRecord {
  return {
    ...row,
    grants: JSON.parse(grants) as ServiceGrant[],
    certificate: certificate === null ? null : (JSON.parse(certificate) as CertificateBinding),
  };
}
