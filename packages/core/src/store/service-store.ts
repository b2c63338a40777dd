import type { Selectable } from 'kysely';
import type { CredentialRecord, CredentialStatus } from '../credential.ts';
import type { AuditEventsTable, ProvidersTable, ServiceClientsTable } from './schema.ts';

/**
 * What the service layer keeps next to the credentials, in the same database: provider
 * configurations (client secret sealed), service clients and their grants, the audit log, and a
 * few settings (the admin key's hash). Implemented once for every Kysely dialect, like `Store`,
 * and checked by the same conformance suite.
 *
 * Secrets never reach this interface in plaintext: provider client secrets arrive sealed,
 * API keys arrive as hashes.
 */
export interface ServiceStore {
  /** Creates or replaces the provider named `provider.name`; returns it as stored. */
  putProvider(provider: StoredProvider): Promise<StoredProviderRecord>;
  getProvider(name: string): Promise<StoredProviderRecord | undefined>;
  /** Ordered by name. */
  listProviders(): Promise<StoredProviderRecord[]>;
  /** False if there was no such provider. */
  deleteProvider(name: string): Promise<boolean>;
  /**
   * Key rotation: replaces a provider's sealed client secret only if it is still `expected`, so
   * a concurrent `putProvider` is never overwritten. Leaves `updatedAt` alone: nothing changed.
   */
  resealProviderSecret(name: string, expected: string, sealed: string): Promise<boolean>;

  insertClient(client: NewServiceClient): Promise<ServiceClientRecord>;
  /** Revoked clients are returned too (with `revokedAt` set): the caller refuses them. */
  getClient(id: string): Promise<ServiceClientRecord | undefined>;
  /** Ordered by id, revoked ones included. */
  listClients(): Promise<ServiceClientRecord[]>;
  /** Sets `revokedAt` (database clock). False if no such client or already revoked. */
  revokeClient(id: string): Promise<boolean>;

  /**
   * Appends events in order, all or none: one statement for up to 1000 events, a transaction
   * for more. `at` is the database clock when not given.
   */
  appendAudit(events: NewAuditEvent[]): Promise<void>;
  /** Newest first; `before` is the `seq` cursor from a previous page. `limit` is 1-1000. */
  listAudit(query: AuditQuery): Promise<AuditRecord[]>;

  getSetting(name: string): Promise<string | undefined>;
  /** Sets a setting only if it has no value yet; true if this call set it. */
  setSettingIfAbsent(name: string, value: string): Promise<boolean>;
  /** Replaces a setting's value only if it is still `expected`; true if this call replaced it. */
  replaceSetting(name: string, expected: string, value: string): Promise<boolean>;
  /** Sets a setting, whatever it held. */
  putSetting(name: string, value: string): Promise<void>;

  /**
   * Connections, metadata included, secrets still sealed; ordered by id, after `afterId`.
   * `grants`, when given, keeps only rows matching at least one grant (owner/provider or '*');
   * an empty list matches nothing. `limit` is 1-1000 (else `InvalidInputError`).
   */
  listCredentials(query: CredentialQuery): Promise<CredentialRecord[]>;

  /** How many connections there are, per provider and status. */
  countCredentials(): Promise<CredentialCount[]>;
  /**
   * Active connections whose proactive refresh is due (`refresh_at` passed, database clock):
   * how many, and how long ago the oldest one fell due (the scheduler's lag), in ms.
   */
  overdueRefreshes(): Promise<{ count: number; oldestMs: number }>;
  /**
   * Audit events with `action` since `since`, counted per provider, outcome and time bucket
   * (`bucketMs` wide, starting at multiples of it). Uses the index on `at`.
   */
  countAudit(query: AuditCountQuery): Promise<AuditCount[]>;
  /** The newest `at` of events with `action` and `outcome` per connection among `ids`. */
  latestAudit(query: LatestAuditQuery): Promise<Map<string, number>>;
}

export interface LatestAuditQuery {
  action: string;
  outcome: string;
  connectionIds: string[];
}

export interface CredentialCount {
  provider: string;
  status: CredentialStatus;
  count: number;
}

export interface AuditCountQuery {
  action: string;
  /** Epoch ms, inclusive. */
  since: number;
  bucketMs: number;
}

export interface AuditCount {
  provider: string | null;
  outcome: string;
  /** The bucket's start, epoch ms. */
  bucket: number;
  count: number;
}

/** A provider as stored (`providers` table). */
export type StoredProviderRecord = Selectable<ProvidersTable>;
export type StoredProvider = Omit<StoredProviderRecord, 'createdAt' | 'updatedAt'>;

/** A service client as stored (`service_clients` table), its grants parsed. */
export type ServiceClientRecord = Omit<
  Selectable<ServiceClientsTable>,
  'grants' | 'certificate'
> & {
  grants: ServiceGrant[];
  certificate: CertificateBinding | null;
};
export type NewServiceClient = Omit<
  ServiceClientRecord,
  'createdAt' | 'revokedAt' | 'certificate'
> & {
  certificate?: CertificateBinding | null;
};

/**
 * The TLS client certificate a service client must present: its SHA-256 fingerprint (as Node's
 * `fingerprint256`: upper-case hex pairs joined by ':'), or its subject's common name (for
 * certificates a CA re-issues under the same name).
 */
export type CertificateBinding = { sha256: string } | { subjectCn: string };

/**
 * What a grant may allow: `token.read` hands out tokens, `proxy` sends requests to the provider's
 * API through Tokenwarden with the token added (the caller never sees it).
 */
export const SERVICE_ACTIONS = [
  'token.read',
  'proxy',
  'connections.read',
  'connections.write',
] as const;
export type ServiceAction = (typeof SERVICE_ACTIONS)[number];

export interface ServiceGrant {
  /** An owner, or '*' for every owner. */
  owner: string;
  /** A provider name, or '*' for every provider. */
  provider: string;
  actions: ServiceAction[];
}

/** An audit event as stored (`audit_events` table). */
export type AuditRecord = Selectable<AuditEventsTable>;
/** An audit event to append: `seq` is the database's, `at` the database clock when not given. */
export type NewAuditEvent = Omit<AuditRecord, 'seq' | 'at'> & { at?: number };

export interface AuditQuery {
  connectionId?: string;
  actor?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Only events with `seq` below this (the previous page's last `seq`). */
  before?: number;
  limit: number;
}

export interface CredentialQuery {
  owner?: string;
  provider?: string;
  status?: CredentialStatus;
  afterId?: string;
  /** Owner or id contains this, ignoring case. */
  search?: string;
  /**
   * Epoch ms: only connections that end before it: whose refresh token expires before it, or,
   * for one without a refresh token, whose access token does.
   */
  endsBefore?: number;
  limit: number;
  grants?: Array<Pick<ServiceGrant, 'owner' | 'provider'>>;
}
