import type { Selectable } from 'kysely';
import type { DeliveryStatus, WebhookEndpointsTable } from './schema.ts';

/**
 * Webhook endpoints and the deliveries of the outbox (`outbox.ts` writes the events, in the
 * transaction of each change). Times come from the database clock, as everywhere in the store;
 * secrets come and go sealed.
 */
export interface WebhookStore {
  insertEndpoint(endpoint: NewWebhookEndpoint): Promise<WebhookEndpointRecord>;
  listEndpoints(): Promise<WebhookEndpointRecord[]>;
  getEndpoint(id: string): Promise<WebhookEndpointRecord | undefined>;
  /** Deletes the endpoint and its deliveries. False if there was none. */
  deleteEndpoint(id: string): Promise<boolean>;
  /**
   * Replaces the secret if it is still `current` (another rotation did not get there first); the
   * current one keeps signing for `overlapMs`. Undefined if the endpoint is gone or changed.
   */
  rotateSecret(
    id: string,
    current: string,
    rotated: { secret: string; previousSecret: string; overlapMs: number },
  ): Promise<WebhookEndpointRecord | undefined>;
  /** Key rotation: the sealed secrets replaced if they are still `current`. */
  resealSecrets(
    id: string,
    current: Pick<WebhookEndpointRecord, 'secret' | 'previousSecret'>,
    resealed: Pick<WebhookEndpointRecord, 'secret' | 'previousSecret'>,
  ): Promise<boolean>;

  /** An endpoint's delivery log, newest first, `limit` rows older than `beforeSeq` if given. */
  listDeliveries(
    endpointId: string,
    page: { limit: number; beforeSeq?: number },
  ): Promise<DeliveryLogEntry[]>;
  getDelivery(endpointId: string, eventId: string): Promise<DeliveryLogEntry | undefined>;
  /** A delivery sent again from now, its retry window restarted. False if there is none. */
  redeliver(endpointId: string, eventId: string): Promise<boolean>;

  /**
   * Leases up to `limit` due deliveries, oldest first, each the earliest undelivered one of its
   * endpoint and connection (so a connection's events arrive in order). Several processes
   * claiming at once get disjoint sets (Postgres: `FOR UPDATE SKIP LOCKED`; SQLite: the write
   * lock and the lease).
   */
  claimDeliveries(request: DeliveryClaim): Promise<ClaimedDelivery[]>;
  /** Gives a claimed delivery back untouched, for any process to claim again at once. */
  releaseDelivery(seq: number, leaseId: string): Promise<void>;
  /** Writes an attempt's outcome if `leaseId` still holds the delivery. */
  finishAttempt(seq: number, leaseId: string, outcome: AttemptOutcome): Promise<boolean>;
  /** Deletes finished deliveries, and events no delivery waits for, older than `retentionMs`. */
  prune(retentionMs: number): Promise<{ deliveries: number; events: number }>;
}

export type WebhookEndpointRecord = Selectable<WebhookEndpointsTable>;

export type NewWebhookEndpoint = Pick<
  WebhookEndpointRecord,
  'id' | 'url' | 'description' | 'events' | 'secret'
>;

export interface DeliveryLogEntry {
  seq: number;
  eventId: string;
  eventType: string;
  connectionId: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: number | null;
  /** Null once delivered or failed. */
  nextAttemptAt: number | null;
  deliveredAt: number | null;
  createdAt: number;
}

export interface DeliveryClaim {
  limit: number;
  leaseId: string;
  leaseMs: number;
  /** Endpoints not to claim for now (this process has as many in flight there as it allows). */
  excludeEndpoints: string[];
}

/** A leased delivery with what sending it needs. */
export interface ClaimedDelivery {
  seq: number;
  leaseId: string;
  endpointId: string;
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: number | null;
  eventId: string;
  payload: string;
  /** Attempts before this one. */
  attempts: number;
  retryingSince: number;
  /** The database clock at the claim. */
  now: number;
}

export type AttemptOutcome =
  | { status: 'delivered'; lastStatus: number }
  | {
      status: 'pending' | 'failed';
      lastStatus: number | null;
      lastError: string;
      /** `pending`: when to try again, from now. */
      retryInMs: number;
    };
