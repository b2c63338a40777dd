import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { OutboxEvent } from '../webhooks/events.ts';
import type { Database } from './schema.ts';

/**
 * Writes a lifecycle event to the outbox and fans it out, one pending delivery per endpoint that
 * takes its type. Called inside the transaction of the change the event reports, so the event
 * exists exactly when the change does: a process killed right after the commit leaves it to be
 * delivered by any other (or by itself, restarted).
 */
export async function recordEvent(
  db: Kysely<Database>,
  now: RawBuilder<number>,
  event: OutboxEvent,
): Promise<void> {
  const { seq } = await db
    .insertInto('webhookEvents')
    .values({
      id: event.id,
      type: event.type,
      connectionId: event.connectionId,
      payload: event.payload,
      createdAt: now,
    })
    .returning('seq')
    .executeTakeFirstOrThrow();
  await db
    .insertInto('webhookDeliveries')
    .columns([
      'endpointId',
      'eventSeq',
      'connectionId',
      'status',
      'nextAttemptAt',
      'retryingSince',
      'createdAt',
    ])
    .expression(
      db
        .selectFrom('webhookEndpoints')
        // Cast: Postgres takes a bare parameter in a select list for text.
        .select([
          'id',
          sql<number>`cast(${seq} as bigint)`.as('eventSeq'),
          sql<string>`cast(${event.connectionId} as text)`.as('connectionId'),
          sql<'pending'>`cast(${'pending'} as text)`.as('status'),
          now.as('nextAttemptAt'),
          now.as('retryingSince'),
          now.as('createdAt'),
        ])
        .where((eb) =>
          eb.or([
            eb('events', 'is', null),
            // `events` is a JSON array of type names, which hold no quote: "type" matches one.
            sql<boolean>`${eb.ref('events')} like ${`%${likeEscaped(JSON.stringify(event.type))}%`} escape '!'`,
          ]),
        ),
    )
    .execute();
}

/** `text` as a LIKE pattern matching itself, with `!` as the escape character. */
function likeEscaped(text: string): string {
  return text.replace(/[!%_]/g, (c) => `!${c}`);
}
