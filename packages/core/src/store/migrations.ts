import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
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
  /**
   * How a key numbers rows on insert: SQLite's `integer primary key autoincrement` (never reuses
   * a number, even after a delete) or a Postgres `bigint generated always as identity`.
   */
  sequence: 'autoincrement' | 'identity';
}

/** A primary key the database numbers on insert, in the adapter's way. */
function sequenceKey(types: ColumnTypes): {
  dataType: 'integer' | 'bigint';
  build: (column: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
} {
  return types.sequence === 'identity'
    ? { dataType: 'bigint', build: (c) => c.primaryKey().generatedAlwaysAsIdentity() }
    : { dataType: 'integer', build: (c) => c.primaryKey().autoIncrement() };
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
  {
    // What the service layer keeps next to the credentials (see `ServiceStore`).
    name: '0002_service',
    async up(db, types) {
      const { epochMs } = types;
      await db.schema
        .createTable('providers')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('client_secret', 'text')
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('updated_at', epochMs, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('service_clients')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull())
        .addColumn('grants', 'text', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('revoked_at', epochMs)
        .execute();
      const seq = sequenceKey(types);
      await db.schema
        .createTable('audit_events')
        .addColumn('seq', seq.dataType, seq.build)
        .addColumn('at', epochMs, (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('connection_id', 'text')
        .addColumn('owner', 'text')
        .addColumn('provider', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .execute();
      await db.schema
        .createIndex('audit_events_connection_id_seq')
        .on('audit_events')
        .columns(['connection_id', 'seq'])
        .execute();
      await db.schema
        .createIndex('audit_events_actor_seq')
        .on('audit_events')
        .columns(['actor', 'seq'])
        .execute();
      await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
      await db.schema
        .createTable('settings')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  {
    // The connect flow's pending authorization requests (`ConnectSessionStore`).
    name: '0003_connect_sessions',
    async up(db, { epochMs }) {
      await db.schema
        .createTable('connect_sessions')
        .addColumn('state_hash', 'text', (c) => c.primaryKey())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('redirect_uri', 'text', (c) => c.notNull())
        .addColumn('callback_uri', 'text', (c) => c.notNull())
        .addColumn('code_verifier', 'text', (c) => c.notNull())
        .addColumn('connection_id', 'text')
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('expires_at', epochMs, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('connect_sessions_expires_at')
        .on('connect_sessions')
        .column('expires_at')
        .execute();
    },
  },
  {
    // A service client bound to a TLS client certificate (`ServiceClientsTable.certificate`).
    name: '0006_client_certificates',
    async up(db) {
      await db.schema.alterTable('service_clients').addColumn('certificate', 'text').execute();
    },
  },
  {
    // Envelope encryption (`KeyStore`): data keys wrapped by a KMS, and the key ids each live
    // process holds, so `keys rotate` can tell whether every replica opens the new key.
    name: '0007_data_keys',
    async up(db, { epochMs }) {
      await db.schema
        .createTable('data_keys')
        .addColumn('key_id', 'text', (c) => c.primaryKey())
        .addColumn('kms_key_id', 'text', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('activated_at', epochMs)
        .execute();
      await db.schema
        .createTable('key_holders')
        .addColumn('process_id', 'text', (c) => c.primaryKey())
        .addColumn('key_ids', 'text', (c) => c.notNull())
        .addColumn('seen_at', epochMs, (c) => c.notNull())
        .execute();
    },
  },
  {
    // Lifecycle webhooks (`webhooks/`): endpoints, the outbox of events, their deliveries; and
    // on credentials, the run of transient failures `connection.refresh_failing` reports.
    name: '0008_webhooks',
    async up(db, types) {
      const { epochMs } = types;
      await db.schema.alterTable('credentials').addColumn('failing_since', epochMs).execute();
      await db.schema.alterTable('credentials').addColumn('failing_reported_at', epochMs).execute();
      await db.schema
        .createTable('webhook_endpoints')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('events', 'text')
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('previous_secret', 'text')
        .addColumn('previous_secret_until', epochMs)
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('updated_at', epochMs, (c) => c.notNull())
        .execute();
      const seq = sequenceKey(types);
      await db.schema
        .createTable('webhook_events')
        .addColumn('seq', seq.dataType, seq.build)
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('connection_id', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('webhook_events_created_at')
        .on('webhook_events')
        .column('created_at')
        .execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('seq', seq.dataType, seq.build)
        .addColumn('endpoint_id', 'text', (c) => c.notNull())
        .addColumn('event_seq', seq.dataType, (c) => c.notNull())
        .addColumn('connection_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', epochMs, (c) => c.notNull())
        .addColumn('lease_id', 'text')
        .addColumn('lease_until', epochMs)
        .addColumn('retrying_since', epochMs, (c) => c.notNull())
        .addColumn('last_status', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('last_attempt_at', epochMs)
        .addColumn('delivered_at', epochMs)
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .execute();
      // The claim: pending rows that are due; and per endpoint and connection, the earliest.
      await db.schema
        .createIndex('webhook_deliveries_due')
        .on('webhook_deliveries')
        .columns(['status', 'next_attempt_at'])
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_order')
        .on('webhook_deliveries')
        .columns(['endpoint_id', 'connection_id', 'event_seq'])
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_endpoint_event')
        .on('webhook_deliveries')
        .columns(['endpoint_id', 'event_seq'])
        .unique()
        .execute();
    },
  },
  {
    // The admin console's overview counts connections per provider and status from this index
    // alone, instead of reading every row with its sealed tokens.
    name: '0009_console_indexes',
    async up(db) {
      await db.schema
        .createIndex('credentials_provider_status')
        .on('credentials')
        .columns(['provider', 'status'])
        .execute();
    },
  },
  {
    // Tracing: the span that committed a refresh, for the waiters it woke to link to.
    name: '0010_commit_trace',
    async up(db) {
      await db.schema.alterTable('credentials').addColumn('commit_trace', 'text').execute();
    },
  },
];
