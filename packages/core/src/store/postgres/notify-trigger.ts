import { sql, type RawBuilder } from 'kysely';
import type { Migration } from '../migrations.ts';

/**
 * The LISTEN/NOTIFY channel. The payload is `<id> <version> <lease id>` (see
 * `NOTIFY_PAYLOAD_MIGRATION`; an empty lease id for none), followed by ` <state JSON>` when the
 * statement bumped the version (see `NOTIFY_STATE_MIGRATION`), or just the id for a deleted
 * credential and from a database that is not migrated that far yet.
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
    await notifyFunction(sql`perform pg_notify(${sql.lit(CHANGES_CHANNEL)}, new.id);`).execute(db);
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
    await notifyFunction(sql`
      perform pg_notify(
        ${sql.lit(CHANGES_CHANNEL)},
        new.id || ' ' || new.version || ' ' || coalesce(new.lease_id, ''));`).execute(db);
  },
};

/**
 * The trigger function of migrations 0002 and 0004: a delete notifies the bare id, an update runs
 * `onUpdate`. (0005 replaces it with one that declares variables, written out in full.)
 */
function notifyFunction(onUpdate: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`
      create or replace function tokenwarden_notify_credential_change() returns trigger
      language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          perform pg_notify(${sql.lit(CHANGES_CHANNEL)}, old.id);
        else
          ${onUpdate}
        end if;
        return null;
      end
      $$`;
}

/**
 * The largest payload `pg_notify` takes is 7999 bytes (it raises an error, which would fail the
 * commit, on a longer one): a state that does not fit is left out and waiters read the row.
 */
const MAX_PAYLOAD_BYTES = 7999;

/**
 * Postgres only, two changes that spare work in a refresh storm:
 * - A statement that bumps the version (a refresh committed, a re-authorization, a credential
 *   marked `needs_reauth`) appends to its notification the state a waiter decides from
 *   (`CredentialState`, with the statement's database clock as `now`), so that the waiters woken
 *   by a refresh hand out its token without reading the row. Never the refresh token, the owner
 *   or the metadata; the access token only sealed, as in the row.
 * - A lease taken where there was none is no longer notified: nobody waits for that (callers wait
 *   only behind a lease), and each notification wakes every listening process in the cluster,
 *   just when they all read and race for that lease. A lease released or taken over, a new
 *   version and a delete still notify; a waiter polls for the rest.
 */
export const NOTIFY_STATE_MIGRATION: Migration = {
  name: '0005_notify_state',
  async up(db) {
    await sql`drop trigger credentials_notify_change on credentials`.execute(db);
    await sql`
      create trigger credentials_notify_change after update on credentials for each row
      when (old.version is distinct from new.version
        or (old.lease_id is not null and old.lease_id is distinct from new.lease_id))
      execute function tokenwarden_notify_credential_change()`.execute(db);
    await notifyStateFunction(false).execute(db);
  },
};

/**
 * Postgres only: the state a notification carries also names the span that committed it
 * (`commit_trace`, migration `0010_commit_trace`), so a waiter that decides from the
 * notification, without reading the row, still links its wake-up to that commit.
 */
export const NOTIFY_COMMIT_TRACE_MIGRATION: Migration = {
  name: '0010_notify_commit_trace',
  async up(db) {
    await notifyStateFunction(true).execute(db);
  },
};

/** The trigger function of migrations 0005 and 0009: the state a waiter decides from, as JSON. */
function notifyStateFunction(withCommitTrace: boolean): RawBuilder<unknown> {
  return sql`
      create or replace function tokenwarden_notify_credential_change() returns trigger
      language plpgsql as $$
      declare
        payload text;
        state text;
      begin
        if tg_op = 'DELETE' then
          perform pg_notify(${sql.lit(CHANGES_CHANNEL)}, old.id);
          return null;
        end if;
        payload := new.id || ' ' || new.version || ' ' || coalesce(new.lease_id, '');
        if new.version is distinct from old.version then
          state := json_build_object(
            'now', floor(extract(epoch from statement_timestamp()) * 1000)::bigint,
            'provider', new.provider,
            'status', new.status,
            'status_reason', new.status_reason,
            'access_token', new.access_token,
            'access_expires_at', new.access_expires_at,
            'token_type', new.token_type,
            'scope', new.scope,
            'lease_until', new.lease_until,
            'next_attempt_at', new.next_attempt_at,
            'last_error', new.last_error${withCommitTrace ? sql`, 'commit_trace', new.commit_trace` : sql``})::text;
          if octet_length(payload) + 1 + octet_length(state) <= ${sql.lit(MAX_PAYLOAD_BYTES)} then
            payload := payload || ' ' || state;
          end if;
        end if;
        perform pg_notify(${sql.lit(CHANGES_CHANNEL)}, payload);
        return null;
      end
      $$`;
}
