import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * A schema change, applied once, in order, inside the adapter's migration lock. Names set the
 * order, also across the adapter-only migrations (`StoreAdapter.migrations`) merged into these.
 */
export interface Migration {
  name: string;
  up(db: Kysely<Database>, types: ColumnTypes): Promise<void>;
}

/** The few column types that differ between databases. */
export interface ColumnTypes {
  /** Epoch milliseconds. */
  epochMs: 'integer' | 'bigint';
}

export const MIGRATIONS: readonly Migration[] = [
  {
    name: '0001_credentials',
    async up(db, { epochMs }) {
      await db.schema
        .createTable('credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_reason', 'text')
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('access_token', 'text', (c) => c.notNull())
        .addColumn('access_expires_at', epochMs, (c) => c.notNull())
        .addColumn('token_type', 'text', (c) => c.notNull())
        .addColumn('scope', 'text')
        .addColumn('refresh_token', 'text')
        .addColumn('refresh_expires_at', epochMs)
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('lease_id', 'text')
        .addColumn('lease_until', epochMs)
        .addColumn('intent_hash', 'text')
        .addColumn('intent_at', epochMs)
        .addColumn('intent_attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('refresh_at', epochMs)
        .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', epochMs)
        .addColumn('last_error', 'text')
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('updated_at', epochMs, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('credentials_owner_provider')
        .on('credentials')
        .columns(['owner', 'provider'])
        .execute();
      await db.schema
        .createIndex('credentials_refresh_at')
        .on('credentials')
        .column('refresh_at')
        .execute();
      await db.schema
        .createIndex('credentials_key_id')
        .on('credentials')
        .column('key_id')
        .execute();
    },
  },
];
