import type { Generated } from 'kysely';

/**
 * Kysely's view of the tables (camelCase here, snake_case in the database): the one definition of
 * every row. The model's types are derived from it with Kysely's `Selectable` (what a read
 * returns), so a column is written down here and in the migration that adds it, nowhere else.
 *
 * Integers are JavaScript numbers as they come from the driver: epoch milliseconds and counters
 * stay far below 2^53, and each adapter makes its driver return them so (Postgres' `bigint`: see
 * `postgres/connection.ts`).
 */
export interface Database {
  credentials: CredentialsTable;
  tokenwardenMigrations: MigrationsTable;
  providers: ProvidersTable;
  serviceClients: ServiceClientsTable;
  auditEvents: AuditEventsTable;
  settings: SettingsTable;
  connectSessions: ConnectSessionsTable;
  dataKeys: DataKeysTable;
  keyHolders: KeyHoldersTable;
  webhookEndpoints: WebhookEndpointsTable;
  webhookEvents: WebhookEventsTable;
  webhookDeliveries: WebhookDeliveriesTable;
}

export const CREDENTIAL_STATUSES = ['active', 'needs_reauth', 'revoked'] as const;
export type CredentialStatus = (typeof CREDENTIAL_STATUSES)[number];

/** A credential as the store holds it: every secret sealed (see `crypto/cipher.ts`). */
export interface CredentialsTable {
  id: string;
  provider: string;
  /** Who the tokens belong to in the caller's world: a user id, a tenant id, ... */
  owner: string;
  status: CredentialStatus;
  /** Why the status is not `active` (a `ReauthReason`), or null. */
  statusReason: string | null;
  /** Bumped on every change of the tokens or the status; waiters watch it. */
  version: number;
  accessToken: string;
  /** Epoch milliseconds, database clock. */
  accessExpiresAt: number;
  tokenType: string;
  scope: string | null;
  refreshToken: string | null;
  refreshExpiresAt: number | null;
  /** Key that sealed both tokens; key rotation looks for rows not under the active key. */
  keyId: string;
  /** Refresh lease: who may redeem the refresh token right now, and until when. */
  leaseId: string | null;
  leaseUntil: number | null;
  /** Hash of the refresh token a leader is about to redeem (invariant 6), and when. */
  intentHash: string | null;
  intentAt: number | null;
  /** How many leaders have sent the refresh token named by the intent. */
  intentAttempts: Generated<number>;
  /** When the proactive scheduler should refresh this credential. */
  refreshAt: number | null;
  failures: Generated<number>;
  nextAttemptAt: number | null;
  lastError: string | null;
  /** Since when refreshes fail without a verdict (the provider down): null while they succeed. */
  failingSince: number | null;
  /** When `connection.refresh_failing` was written for this run of failures, or null. */
  failingReportedAt: number | null;
  /** JSON text: caller-provided metadata, never secret. */
  metadata: string;
  createdAt: number;
  updatedAt: number;
  /**
   * The W3C `traceparent` of the span that committed the current tokens, when tracing: a
   * waiter in another process links its wake-up to it (docs/protocol.md, "Traces"). Never secret.
   */
  commitTrace: Generated<string | null>;
}

export interface MigrationsTable {
  name: string;
  appliedAt: number;
}

export interface ProvidersTable {
  name: string;
  /** JSON text of the provider's configuration, without its client secret. */
  config: string;
  /** Sealed (`sealProviderSecret`), or null. */
  clientSecret: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface ServiceClientsTable {
  id: string;
  name: string;
  /** SHA-256 of the API key's secret part, hex. The key itself is never stored. */
  keyHash: string;
  /** JSON text: `ServiceGrant[]`. */
  grants: string;
  /**
   * JSON text: `CertificateBinding`, or null. A client bound to a certificate is refused unless
   * its request arrives over TLS with that client certificate, so its key alone is not enough.
   */
  certificate: string | null;
  createdAt: number;
  revokedAt: number | null;
}

/** Who did what to which connection, when, with what outcome. */
export interface AuditEventsTable {
  /** Monotonic within one database; the pagination cursor. */
  seq: Generated<number>;
  /** Epoch ms; on insert, the database clock when not given. */
  at: number;
  requestId: string;
  /** A service client id, 'admin', or 'system' (scheduler). */
  actor: string;
  /** e.g. 'token.read', 'token.rejected', 'connection.create', 'client.revoke'. */
  action: string;
  connectionId: string | null;
  owner: string | null;
  provider: string | null;
  /** 'ok' or a stable error code ('forbidden', 'needs_reauth', ...). */
  outcome: string;
  /** Small JSON text with non-secret details (version, reason, ...), or null. */
  detail: string | null;
}

export interface SettingsTable {
  name: string;
  value: string;
}

/** A connect flow between its authorization request and its callback (`ConnectSessionStore`). */
export interface ConnectSessionsTable {
  /** SHA-256 of the `state` sent to the provider; the state itself is never stored. */
  stateHash: string;
  provider: string;
  owner: string;
  /** JSON text: the scopes asked for. */
  scopes: string;
  /** Where the backend wants the browser sent afterwards. */
  redirectUri: string;
  /** The redirect URI registered at the provider (Tokenwarden's callback). */
  callbackUri: string;
  /** Sealed PKCE code verifier. */
  codeVerifier: string;
  /** Set when the flow re-authorizes an existing connection. */
  connectionId: string | null;
  createdAt: number;
  expiresAt: number;
}

/** A data key of the envelope key source, only ever stored wrapped by the KMS (`KeyStore`). */
export interface DataKeysTable {
  /** Our key id: the one in every ciphertext sealed with this data key. */
  keyId: string;
  /** The KMS key that wraps it (an ARN, alias or key id, as the KMS names it). */
  kmsKeyId: string;
  /** The KMS ciphertext of the data key, base64. */
  wrappedKey: string;
  /** Epoch milliseconds, database clock. */
  createdAt: number;
  /** When it became the active key; null while `keys rotate` waits for every replica to load it. */
  activatedAt: number | null;
}

/** A live process and the key ids it holds, refreshed by its heartbeat (`KeyStore`). */
export interface KeyHoldersTable {
  processId: string;
  /** JSON array of key ids. */
  keyIds: string;
  /** Epoch milliseconds, database clock. */
  seenAt: number;
}

/** Where lifecycle events are sent (`webhooks/`). */
export interface WebhookEndpointsTable {
  /** `wh_` and 120 random bits. */
  id: string;
  url: string;
  description: string | null;
  /** JSON text: the event types sent there, or null for all. */
  events: string | null;
  /** The signing secret (`whsec_...`), sealed (`sealWebhookSecret`). */
  secret: string;
  /** The secret before the last rotation, sealed, still signing until `previousSecretUntil`. */
  previousSecret: string | null;
  previousSecretUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

/** The outbox: each lifecycle event, written in the transaction of the change it reports. */
export interface WebhookEventsTable {
  /** Monotonic: the order the changes committed in, per connection. */
  seq: Generated<number>;
  /** `msg_...`: the `webhook-id` every endpoint receives it under. */
  id: string;
  type: string;
  connectionId: string;
  /** The JSON body sent, as `webhooks/events.ts` builds it. Never a secret. */
  payload: string;
  createdAt: number;
}

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One event for one endpoint: fanned out with the event, leased by the replica sending it. */
export interface WebhookDeliveriesTable {
  seq: Generated<number>;
  endpointId: string;
  eventSeq: number;
  /** The event's, copied: deliveries of one connection to one endpoint go out in order. */
  connectionId: string;
  status: DeliveryStatus;
  attempts: Generated<number>;
  nextAttemptAt: number;
  leaseId: string | null;
  leaseUntil: number | null;
  /** Retries give up this long after it (the event, or a redelivery by hand). */
  retryingSince: number;
  /** The last answer's HTTP status, or null when none came. */
  lastStatus: number | null;
  /** Why the last attempt failed (`http_500`, `timeout`, `address_refused`, ...), or null. */
  lastError: string | null;
  lastAttemptAt: number | null;
  deliveredAt: number | null;
  createdAt: number;
}
