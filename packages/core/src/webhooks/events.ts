import { randomBytes } from 'node:crypto';
import type { CredentialRecord } from '../credential.ts';

/**
 * The lifecycle events a backend hears by webhook, and the one place their shape is written
 * down. Each is `{type, id, timestamp, data}` (the Standard Webhooks payload, with the message id
 * in it too); `data` names the connection and its state, never a token, a secret or a hash.
 */
export const LIFECYCLE_EVENT_TYPES = [
  'connection.created',
  'connection.deleted',
  'connection.needs_reauth',
  'connection.reauthorized',
  'connection.refresh_failing',
  'connection.refresh_recovered',
] as const;

export type LifecycleEventType = (typeof LIFECYCLE_EVENT_TYPES)[number];

export interface LifecycleEvent {
  type: LifecycleEventType;
  /** `msg_...`, also the `webhook-id` header: the receiver's idempotency key. */
  id: string;
  /** ISO 8601, the database clock at the commit of the change. */
  timestamp: string;
  data: {
    connection_id: string;
    owner: string;
    provider: string;
    /** The connection's status after the change; `deleted` for `connection.deleted`. */
    status: string;
    version: number;
    /** `connection.needs_reauth`: why (`invalid_grant`, `refresh_in_doubt`, ...). */
    reason?: string;
    /** `connection.needs_reauth` and `connection.refresh_failing`: the last error, as a code. */
    error?: string;
  };
}

/** An event ready for the outbox: the row's columns and the JSON body every endpoint gets. */
export interface OutboxEvent {
  id: string;
  type: LifecycleEventType;
  connectionId: string;
  payload: string;
}

/** The row fields an event is built from: the credential as the change left it. */
type ChangedRow = Pick<
  CredentialRecord,
  'id' | 'owner' | 'provider' | 'status' | 'statusReason' | 'version' | 'lastError'
>;

/**
 * The event `type` reporting the change that left `row` so, at `at` (epoch ms, database clock).
 * `reason` and `error` are filled where the type has them, from the row.
 */
export function lifecycleEvent(type: LifecycleEventType, row: ChangedRow, at: number): OutboxEvent {
  const event: LifecycleEvent = {
    type,
    id: newEventId(),
    timestamp: new Date(at).toISOString(),
    data: {
      connection_id: row.id,
      owner: row.owner,
      provider: row.provider,
      status: type === 'connection.deleted' ? 'deleted' : row.status,
      version: row.version,
      ...(type === 'connection.needs_reauth' && {
        reason: row.statusReason ?? 'unknown',
        error: row.lastError ?? 'unknown',
      }),
      ...(type === 'connection.refresh_failing' && { error: row.lastError ?? 'unknown' }),
    },
  };
  return { id: event.id, type, connectionId: row.id, payload: JSON.stringify(event) };
}

/** `msg_` and 120 random bits. */
function newEventId(): string {
  return `msg_${randomBytes(15).toString('base64url')}`;
}
