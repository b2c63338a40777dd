/**
 * `@tokenwarden/core`: the engine that hands out valid access tokens and refreshes each
 * credential exactly once, across processes, with every secret encrypted at rest.
 *
 * ```ts
 * import { CredentialBroker, openEmbedded } from '@tokenwarden/core';
 *
 * // tokenwarden.sqlite, and tokenwarden.keys beside it, checked against each other.
 * const { store, keyRing } = await openEmbedded();
 * const broker = new CredentialBroker({
 *   store,
 *   keyRing,
 *   providers: [{ name: 'acme', tokenUrl: 'https://acme.example/oauth/token', clientId, clientSecret }],
 * });
 * const { accessToken, version } = await broker.getAccessToken(connectionId);
 * ```
 */
export * from './errors.ts';
export {
  connectionInfo,
  type AccessToken,
  type ConnectionInfo,
  type CredentialRecord,
  type CredentialSnapshot,
  type CredentialState,
  type CredentialStatus,
} from './credential.ts';
export * from './crypto/index.ts';
export {
  CredentialBroker,
  type CredentialBrokerOptions,
  type GetAccessTokenOptions,
} from './engine/credential-broker.ts';
export type {
  ImportConnectionInput,
  ImportCredentialInput,
  MachineConnectionInput,
} from './engine/import-input.ts';
export type { ReauthorizeInput } from './engine/connection-lifecycle.ts';
export { systemClock, type Clock } from './clock.ts';
export type {
  BrokerEvent,
  ConnectionEvent,
  ProtocolMeasure,
  ProtocolStep,
  RecoveredEvent,
} from './engine/events.ts';
export { RefreshScheduler, type RefreshSchedulerOptions } from './engine/refresh-scheduler.ts';
export {
  ConnectFlow,
  type ConnectFlowOptions,
  type ConnectResult,
  type StartConnectInput,
} from './engine/connect-flow.ts';
export type {
  ConnectSessionRecord,
  ConnectSessionStore,
  NewConnectSession,
} from './store/connect-session-store.ts';
export type {
  BreakerReport,
  BreakerState,
  CircuitBreakerOptions,
} from './engine/circuit-breaker.ts';
export { backoffDelay, refreshLeadTime, type BackoffPolicy } from './engine/backoff.ts';
export { rotateKeys, type RotateKeysOptions, type RotateKeysResult } from './engine/rotate-keys.ts';
export {
  ProviderRegistry,
  type ProviderListing,
  type ProviderRegistryOptions,
} from './provider/registry.ts';
export { resolveProvider, PROVIDER_NAME_PATTERN } from './provider/resolve.ts';
export {
  PROVIDER_SETTINGS,
  SETTING_ENTRIES,
  type ClientAuthMethod,
  type ConnectionGrant,
  type ProviderConfig,
  type ResolvedProvider,
  type Setting,
  type SettingName,
} from './provider/settings.ts';
export type { JsonSchema } from './provider/setting-kinds.ts';
export { refreshTokenGrant, type RefreshOutcome } from './oauth/refresh-token-grant.ts';
export type { GrantOptions, TokenOutcome } from './oauth/token-endpoint.ts';
export { providerFetch } from './oauth/provider-transport.ts';
export {
  authorizationCodeGrant,
  createAuthorizationRequest,
  parseAuthorizationResponse,
  type AuthorizationRequest,
  type AuthorizationResponse,
} from './oauth/authorization-code-grant.ts';
export { clientCredentialsGrant } from './oauth/client-credentials-grant.ts';
export { revokeToken, type RevocationOutcome } from './oauth/revocation.ts';
export {
  introspectToken,
  type IntrospectionOutcome,
  type IntrospectionResult,
} from './oauth/introspection.ts';
export {
  PRESET_NAMES,
  PROVIDER_PRESETS,
  resolvePreset,
  type PresetEntry,
  type PresetName,
} from './provider/catalog.ts';
export {
  PROBE_VERDICTS,
  probeTokenEndpoint,
  type ProbeResult,
  type ProbeVerdict,
} from './provider/probe.ts';
export { discoverProvider, type DiscoveryOptions } from './provider/discovery.ts';
export { isLoopback } from './provider/urls.ts';
export type {
  Store,
  NewCredential,
  ReauthorizedTokens,
  RefreshedTokens,
  SealedSecrets,
} from './store/store.ts';
export { KyselyStore } from './store/kysely-store.ts';
export type { KeyStore, DataKeyRecord, KeyHolder } from './store/key-store.ts';
export {
  LIFECYCLE_EVENT_TYPES,
  type LifecycleEvent,
  type LifecycleEventType,
} from './webhooks/events.ts';
export {
  WebhookDelivery,
  type DeliveryAttempt,
  type WebhookDeliveryOptions,
} from './webhooks/delivery-worker.ts';
export {
  WebhookEndpoints,
  type NewWebhookInput,
  type WebhookEndpoint,
  type WebhookEndpointWithSecret,
  type WebhookEndpointsOptions,
} from './webhooks/webhook-endpoints.ts';
export { isPrivateAddress } from './webhooks/url-policy.ts';
export type {
  DeliveryLogEntry,
  WebhookEndpointRecord,
  WebhookStore,
} from './store/webhook-store.ts';
export type { StoreAdapter } from './store/store-adapter.ts';
export { guardStore } from './store/guard-store.ts';
export type {
  AuditCount,
  AuditCountQuery,
  AuditQuery,
  AuditRecord,
  CredentialCount,
  CredentialQuery,
  LatestAuditQuery,
  NewAuditEvent,
  CertificateBinding,
  NewServiceClient,
  ServiceAction,
  ServiceClientRecord,
  ServiceGrant,
  ServiceStore,
  StoredProvider,
  StoredProviderRecord,
} from './store/service-store.ts';
export { SERVICE_ACTIONS } from './store/service-store.ts';
export { MAX_PAGE_SIZE } from './store/kysely-service-store.ts';
export { openSqliteStore, type SqliteStoreOptions } from './store/sqlite/sqlite-store.ts';
export { embeddedKeyFile, openEmbedded, type Embedded, type EmbeddedOptions } from './embedded.ts';
export { openPostgresStore, type PostgresStoreOptions } from './store/postgres/postgres-store.ts';
