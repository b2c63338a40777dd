import { sql } from 'kysely';
import type { Migration } from '../migrations.ts';

/**
 * The LISTEN/NOTIFY channel. The payload is `<id> <version> <lease id>` (see
 * `NOTIFY_PAYLOAD_MIGRATION`; an empty lease id for none), or just the id for a deleted credential
 * and from a database that is not migrated that far yet.
 */
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

/**
 * Postgres only: an update's notification names the state it committed, `<id> <version> <lease
 * id>`, so a woken waiter knows whether it is news without reading the row (ids and lease ids
 * have no spaces). A delete still sends the bare id: there is no state to name, the waiter reads.
 * Same triggers, new function body; listeners take either format.
 */
export const NOTIFY_PAYLOAD_MIGRATION: Migration = {
  name: '0004_notify_payload',
  async up(db) {
    await sql`
      create or replace function tokenwarden_notify_credential_change() returns trigger
      language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          perform pg_notify(${sql.lit(CHANGES_CHANNEL)}, old.id);
        else
          perform pg_notify(
            ${sql.lit(CHANGES_CHANNEL)},
            new.id || ' ' || new.version || ' ' || coalesce(new.lease_id, ''));
        end if;
        return null;
      end
      $$`.execute(db);
  },
};
