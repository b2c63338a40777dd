import type { Kysely } from 'kysely';
import { MIGRATIONS } from './migrations.ts';
import type { Database } from './schema.ts';
import type { StoreAdapter } from './store-adapter.ts';

/**
 * Applies the migrations not applied yet, shared ones and the adapter's own, in the order of
 * their names, each recorded in `tokenwarden_migrations`. Under the adapter's migration lock, so
 * that every process may call it on start: one migrates, the others then find nothing to do.
 */
export async function runMigrations(
  db: Kysely<Database>,
  adapter: Pick<StoreAdapter, 'columnTypes' | 'migrations' | 'withMigrationLock'>,
): Promise<void> {
  const migrations = [...MIGRATIONS, ...(adapter.migrations ?? [])].sort((a, b) =>
    a.name < b.name ? -1 : 1,
  );
  await adapter.withMigrationLock(db, async (trx) => {
    // Inside the lock: Postgres' CREATE TABLE IF NOT EXISTS is not safe against a concurrent one.
    await trx.schema
      .createTable('tokenwarden_migrations')
      .ifNotExists()
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('applied_at', adapter.columnTypes.epochMs, (c) => c.notNull())
      .execute();
    const applied = new Set(
      (await trx.selectFrom('tokenwardenMigrations').select('name').execute()).map((m) => m.name),
    );
    for (const migration of migrations) {
      if (applied.has(migration.name)) continue;
      await migration.up(trx, adapter.columnTypes);
      await trx
        .insertInto('tokenwardenMigrations')
        .values({ name: migration.name, appliedAt: Date.now() })
        .execute();
    }
  });
}
