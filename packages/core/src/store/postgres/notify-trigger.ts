import { sql } from 'kysely';
import type { Migration } from '../migrations.ts';

/** The LISTEN/NOTIFY channel; the payload is the credential id. */
export const CHANGES_CHANNEL = 'tokenwarden_credentials';

/**
 * Postgres only: every change a waiter waits for (a new version, a lease taken or released, a
 * deleted credential) sends a notification, at commit, from the statement that made it. So no
 * code path can forget to notify, and a rolled-back change notifies nobody.
 */
export const NOTIFY_MIGRATION: Migration = {
  name: '0002_postgres_notify_changes',
  async up(db) {
    await sql`
      create or replace function tokenwarden_notify_credential_change() returns trigger
      language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          perform pg_notify(${sql.lit(CHANGES_CHANNEL)}, old.id);
        else
          perform pg_notify(${sql.lit(CHANGES_CHANNEL)}, new.id);
        end if;
        return null;
      end
      $$`.execute(db);
    await sql`
      create trigger credentials_notify_change after update on credentials for each row
      when (old.version is distinct from new.version or old.lease_id is distinct from new.lease_id)
      execute function tokenwarden_notify_credential_change()`.execute(db);
    await sql`
      create trigger credentials_notify_delete after delete on credentials for each row
      execute function tokenwarden_notify_credential_change()`.execute(db);
  },
};
