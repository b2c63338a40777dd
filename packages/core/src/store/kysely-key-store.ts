import { sql, type Kysely } from 'kysely';
import type { DataKeyRecord, KeyHolder, KeyStore } from './key-store.ts';
import type { Database } from './schema.ts';
import type { StoreAdapter } from './store-adapter.ts';

/** The `KeyStore` queries, written once for every Kysely dialect. */
export class KyselyKeyStore implements KeyStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly adapter: StoreAdapter,
  ) {}

  listDataKeys(): Promise<DataKeyRecord[]> {
    return this.db
      .selectFrom('dataKeys')
      .selectAll()
      .orderBy('createdAt')
      .orderBy('keyId')
      .execute();
  }

  async insertDataKey(key: {
    keyId: string;
    kmsKeyId: string;
    wrappedKey: string;
    active: boolean;
  }): Promise<boolean> {
    const { now } = this.adapter;
    const row = await this.db
      .insertInto('dataKeys')
      .values({
        keyId: key.keyId,
        kmsKeyId: key.kmsKeyId,
        wrappedKey: key.wrappedKey,
        createdAt: now,
        activatedAt: key.active ? now : null,
      })
      .onConflict((oc) => oc.column('keyId').doNothing())
      .returning('keyId')
      .executeTakeFirst();
    return row !== undefined;
  }

  async activateDataKey(keyId: string): Promise<boolean> {
    // Later than every other activation even within one millisecond of the clock.
    const { now } = this.adapter;
    const next = sql<number>`(select coalesce(max(activated_at), 0) + 1 from data_keys)`;
    const result = await this.db
      .updateTable('dataKeys')
      .set({ activatedAt: sql<number>`case when ${now} > ${next} then ${now} else ${next} end` })
      .where('keyId', '=', keyId)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async rewrapDataKey(
    keyId: string,
    expectedWrappedKey: string,
    wrapped: { kmsKeyId: string; wrappedKey: string },
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('dataKeys')
      .set(wrapped)
      .where('keyId', '=', keyId)
      .where('wrappedKey', '=', expectedWrappedKey)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async putKeyHolder(processId: string, keyIds: readonly string[]): Promise<void> {
    const values = { keyIds: JSON.stringify(keyIds), seenAt: this.adapter.now };
    await this.db
      .insertInto('keyHolders')
      .values({ processId, ...values })
      .onConflict((oc) => oc.column('processId').doUpdateSet(values))
      .execute();
  }

  async listKeyHolders(maxAgeMs: number): Promise<KeyHolder[]> {
    const rows = await this.db
      .selectFrom('keyHolders')
      .selectAll()
      .where('seenAt', '>=', sql<number>`${this.adapter.now} - ${Math.round(maxAgeMs)}`)
      .orderBy('processId')
      .execute();
    return rows.map((row) => ({ ...row, keyIds: JSON.parse(row.keyIds) as string[] }));
  }

  async removeKeyHolder(processId: string): Promise<void> {
    await this.db.deleteFrom('keyHolders').where('processId', '=', processId).execute();
  }
}
