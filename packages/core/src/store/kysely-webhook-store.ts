import type { ExpressionBuilder, Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { inWriteTransaction, later, type StoreAdapter } from './store-adapter.ts';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  DeliveryClaim,
  DeliveryLogEntry,
  NewWebhookEndpoint,
  WebhookEndpointRecord,
  WebhookStore,
} from './webhook-store.ts';

/** The `WebhookStore` queries, written once for every Kysely dialect (as `KyselyStore`). */
export class KyselyWebhookStore implements WebhookStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly adapter: StoreAdapter,
  ) {}

  async insertEndpoint(endpoint: NewWebhookEndpoint): Promise<WebhookEndpointRecord> {
    const now = this.adapter.now;
    return this.db
      .insertInto('webhookEndpoints')
      .values({ ...endpoint, createdAt: now, updatedAt: now })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  listEndpoints(): Promise<WebhookEndpointRecord[]> {
    return this.db
      .selectFrom('webhookEndpoints')
      .selectAll()
      .orderBy('createdAt')
      .orderBy('id')
      .execute();
  }

  getEndpoint(id: string): Promise<WebhookEndpointRecord | undefined> {
    return this.db
      .selectFrom('webhookEndpoints')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    return inWriteTransaction(this.adapter, this.db, async (trx) => {
      await trx.deleteFrom('webhookDeliveries').where('endpointId', '=', id).execute();
      const result = await trx
        .deleteFrom('webhookEndpoints')
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  rotateSecret(
    id: string,
    current: string,
    rotated: { secret: string; previousSecret: string; overlapMs: number },
  ): Promise<WebhookEndpointRecord | undefined> {
    const now = this.adapter.now;
    return this.db
      .updateTable('webhookEndpoints')
      .set({
        secret: rotated.secret,
        previousSecret: rotated.previousSecret,
        previousSecretUntil: later(now, rotated.overlapMs),
        updatedAt: now,
      })
      .where('id', '=', id)
      .where('secret', '=', current)
      .returningAll()
      .executeTakeFirst();
  }

  async resealSecrets(
    id: string,
    current: Pick<WebhookEndpointRecord, 'secret' | 'previousSecret'>,
    resealed: Pick<WebhookEndpointRecord, 'secret' | 'previousSecret'>,
  ): Promise<boolean> {
    let update = this.db
      .updateTable('webhookEndpoints')
      .set(resealed)
      .where('id', '=', id)
      .where('secret', '=', current.secret);
    update =
      current.previousSecret === null
        ? update.where('previousSecret', 'is', null)
        : update.where('previousSecret', '=', current.previousSecret);
    const result = await update.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async listDeliveries(
    endpointId: string,
    page: { limit: number; beforeSeq?: number },
  ): Promise<DeliveryLogEntry[]> {
    let query = this.#log()
      .where('d.endpointId', '=', endpointId)
      .orderBy('d.seq', 'desc')
      .limit(page.limit);
    if (page.beforeSeq !== undefined) query = query.where('d.seq', '<', page.beforeSeq);
    return (await query.execute()).map(logEntry);
  }

  async getDelivery(endpointId: string, eventId: string): Promise<DeliveryLogEntry | undefined> {
    const row = await this.#log()
      .where('d.endpointId', '=', endpointId)
      .where('e.id', '=', eventId)
      .executeTakeFirst();
    return row && logEntry(row);
  }

  #log() {
    return this.db
      .selectFrom('webhookDeliveries as d')
      .innerJoin('webhookEvents as e', 'e.seq', 'd.eventSeq')
      .select([
        'd.seq',
        'e.id as eventId',
        'e.type as eventType',
        'd.connectionId',
        'd.status',
        'd.attempts',
        'd.lastStatus',
        'd.lastError',
        'd.lastAttemptAt',
        'd.nextAttemptAt',
        'd.deliveredAt',
        'd.createdAt',
      ]);
  }

  async redeliver(endpointId: string, eventId: string): Promise<boolean> {
    const now = this.adapter.now;
    const result = await this.db
      .updateTable('webhookDeliveries')
      .set({
        status: 'pending',
        nextAttemptAt: now,
        retryingSince: now,
        leaseId: null,
        leaseUntil: null,
      })
      .where('endpointId', '=', endpointId)
      .where(
        'eventSeq',
        'in',
        this.db.selectFrom('webhookEvents').select('seq').where('id', '=', eventId),
      )
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async claimDeliveries(request: DeliveryClaim): Promise<ClaimedDelivery[]> {
    const now = this.adapter.now;
    const due = (eb: ExpressionBuilder<Database, 'webhookDeliveries'>) =>
      eb.and([
        eb('status', '=', 'pending'),
        eb('nextAttemptAt', '<=', now),
        eb.or([eb('leaseUntil', 'is', null), eb('leaseUntil', '<=', now)]),
        ...(request.excludeEndpoints.length > 0
          ? [eb('endpointId', 'not in', request.excludeEndpoints)]
          : []),
      ]);
    let candidates = this.db
      .selectFrom('webhookDeliveries')
      .select('seq')
      .where(due)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('webhookDeliveries as earlier')
              .select('earlier.seq')
              .whereRef('earlier.endpointId', '=', 'webhookDeliveries.endpointId')
              .whereRef('earlier.connectionId', '=', 'webhookDeliveries.connectionId')
              .whereRef('earlier.eventSeq', '<', 'webhookDeliveries.eventSeq')
              .where('earlier.status', '=', 'pending'),
          ),
        ),
      )
      .orderBy('seq')
      .limit(request.limit);
    if (this.adapter.skipLockedClaims) candidates = candidates.forUpdate().skipLocked();
    const claimed = await this.db
      .updateTable('webhookDeliveries')
      .set({ leaseId: request.leaseId, leaseUntil: later(now, request.leaseMs) })
      .where('seq', 'in', candidates)
      .where(due) // re-checked on the locked row, in case it changed since it was selected
      .returning('seq')
      .execute();
    if (claimed.length === 0) return [];
    const rows = await this.db
      .selectFrom('webhookDeliveries as d')
      .innerJoin('webhookEvents as e', 'e.seq', 'd.eventSeq')
      .innerJoin('webhookEndpoints as w', 'w.id', 'd.endpointId')
      .select([
        'd.seq',
        'd.leaseId',
        'd.endpointId',
        'w.url',
        'w.secret',
        'w.previousSecret',
        'w.previousSecretUntil',
        'e.id as eventId',
        'e.payload',
        'd.attempts',
        'd.retryingSince',
        now.as('now'),
      ])
      .where(
        'd.seq',
        'in',
        claimed.map((c) => c.seq),
      )
      .where('d.leaseId', '=', request.leaseId)
      .orderBy('d.seq')
      .execute();
    return rows.map((row) => ({ ...row, leaseId: row.leaseId!, now: Number(row.now) }));
  }

  async releaseDelivery(seq: number, leaseId: string): Promise<void> {
    await this.db
      .updateTable('webhookDeliveries')
      .set({ leaseId: null, leaseUntil: null })
      .where('seq', '=', seq)
      .where('leaseId', '=', leaseId)
      .execute();
  }

  async finishAttempt(seq: number, leaseId: string, outcome: AttemptOutcome): Promise<boolean> {
    const now = this.adapter.now;
    const result = await this.db
      .updateTable('webhookDeliveries')
      .set((eb) => ({
        status: outcome.status,
        attempts: eb('attempts', '+', 1),
        leaseId: null,
        leaseUntil: null,
        lastStatus: outcome.lastStatus,
        lastAttemptAt: now,
        ...(outcome.status === 'delivered'
          ? { lastError: null, deliveredAt: now }
          : { lastError: outcome.lastError, nextAttemptAt: later(now, outcome.retryInMs) }),
      }))
      .where('seq', '=', seq)
      .where('leaseId', '=', leaseId)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async prune(retentionMs: number): Promise<{ deliveries: number; events: number }> {
    const before = later(this.adapter.now, -retentionMs);
    const deliveries = await this.db
      .deleteFrom('webhookDeliveries')
      .where('status', '!=', 'pending')
      .where('createdAt', '<', before)
      .executeTakeFirst();
    const events = await this.db
      .deleteFrom('webhookEvents')
      .where('createdAt', '<', before)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('webhookDeliveries as d')
              .select('d.seq')
              .whereRef('d.eventSeq', '=', 'webhookEvents.seq'),
          ),
        ),
      )
      .executeTakeFirst();
    return { deliveries: Number(deliveries.numDeletedRows), events: Number(events.numDeletedRows) };
  }
}

type LogRow = Omit<DeliveryLogEntry, 'nextAttemptAt'> & { nextAttemptAt: number };

function logEntry(row: LogRow): DeliveryLogEntry {
  return { ...row, nextAttemptAt: row.status === 'pending' ? row.nextAttemptAt : null };
}
