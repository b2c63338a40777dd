// Every setting of a provider, once. The configuration types, `resolveProvider`'s checks and
// defaults, the registry's stored settings, the HTTP API's body schema and view, and the CLI's
// `providers put` flags are all read from this table: a new setting is one entry here plus its
// use in the protocol. Every quirk is a setting (data), never a branch in the protocol code;
// presets (`catalog.ts`) fill them in for known providers.
import {
  amount,
  apiBaseUrls,
  endpoint,
  issuer,
  oneOf,
  scopes,
  shortStrings,
  statusCodes,
  stringMap,
  text,
  yesNo,
  type SettingKind,
} from './setting-kinds.ts';

export interface Setting<T> extends SettingKind<T> {
  /** The snake_case name on the wire: the HTTP API's field, `InvalidInputError.field`. */
  readonly wire: string;
  /** One line for the API schema's description and the CLI's help. */
  readonly doc: string;
  /** The value when none is given (and no preset gives one). */
  readonly default?: T;
  /**
   * `given`: the caller must give it (a preset never does); `resolved`: a preset may fill it in,
   * but a resolved provider always has it.
   */
  readonly required?: 'given' | 'resolved';
  /** Sealed apart from the other settings, and shown only as `has_<wire>`. */
  readonly secret?: true;
  /**
   * How the API's provider view shows it: `required` and `always` every time (null when unset),
   * `whenSet` only when it says something (not the default, not empty).
   */
  readonly view: 'required' | 'always' | 'whenSet';
  /** The CLI flag, where an earlier release named it otherwise than the wire name. */
  readonly flag?: string;
}

/**
 * A setting of `kind`, as `spec` describes it. Two calls, so that the kind fixes the value's
 * type before the spec (its `default`) is checked against it.
 */
function setting<T>(kind: SettingKind<T>) {
  return <S extends Omit<Setting<T>, keyof SettingKind<T>>>(spec: S): SettingKind<T> & S => ({
    ...kind,
    ...spec,
  });
}

const CLIENT_AUTH_METHODS = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_json',
] as const;
const GRANTS = ['refresh_token', 'client_credentials'] as const;
const TEN_YEARS = 315_360_000;
/** Refresh behaviour: the defaults are the cautious ones (docs/protocol.md, invariant 6). */
export const PROVIDER_SETTINGS = {
  preset: setting(text(64))({
    wire: 'preset',
    view: 'whenSet',
    doc: "A catalog entry whose URLs and settings apply unless given here; a stored provider follows the catalog's fixes.",
  }),
  presetParams: setting(stringMap())({
    wire: 'preset_params',
    view: 'whenSet',
    flag: 'param',
    doc: "Values for the {placeholders} of the preset's URLs, e.g. domain=acme.okta.com.",
  }),
  issuer: setting(issuer())({
    wire: 'issuer',
    view: 'whenSet',
    doc: 'RFC 9207 issuer: an `iss` in the authorization response must match it.',
  }),
  tokenUrl: setting(endpoint())({
    wire: 'token_url',
    view: 'required',
    required: 'resolved',
    doc: 'RFC 6749 §3.2 token endpoint: https, or plain http on loopback. Required without a preset.',
  }),
  clientId: setting(text(512))({
    wire: 'client_id',
    view: 'required',
    required: 'given',
    doc: 'The OAuth client id.',
  }),
  clientSecret: setting(text(4096))({
    wire: 'client_secret',
    view: 'required',
    secret: true,
    doc: 'The OAuth client secret: stored sealed, never shown again.',
  }),
  clientAuth: setting(oneOf(CLIENT_AUTH_METHODS))({
    wire: 'client_auth',
    view: 'required',
    default: 'client_secret_basic',
    doc: 'RFC 6749 §2.3.1 client authentication (client_secret_json: a JSON body, Atlassian).',
  }),
  grantType: setting(oneOf(GRANTS))({
    wire: 'grant_type',
    view: 'whenSet',
    default: 'refresh_token',
    doc: "client_credentials makes every connection a machine token, fetched with the client's own credentials.",
  }),
  authorizeUrl: setting(endpoint())({
    wire: 'authorize_url',
    view: 'always',
    doc: 'RFC 6749 §3.1 authorization endpoint, for the connect flow.',
  }),
  revocationUrl: setting(endpoint())({
    wire: 'revocation_url',
    view: 'always',
    doc: 'RFC 7009 endpoint: tokens are revoked when a connection is deleted.',
  }),
  introspectionUrl: setting(endpoint())({
    wire: 'introspection_url',
    view: 'whenSet',
    doc: 'RFC 7662 endpoint, to ask whether a token is still active.',
  }),
  apiBaseUrls: setting(apiBaseUrls())({
    wire: 'api_base_urls',
    view: 'whenSet',
    default: [],
    doc: "Origins (with an optional path prefix) of the provider's API that its access tokens may be sent to.",
  }),
  scopes: setting(scopes())({
    wire: 'scopes',
    view: 'always',
    default: [],
    flag: 'scope',
    doc: 'RFC 6749 §3.3 scopes the connect flow (or a client_credentials fetch) asks for.',
  }),
  authorizeParams: setting(stringMap())({
    wire: 'authorize_params',
    view: 'whenSet',
    default: {},
    doc: 'Extra authorization request parameters (access_type=offline, prompt=consent).',
  }),
  defaultAccessTtlSeconds: setting(amount(1, { type: 'integer', minimum: 1, maximum: 31_536_000 }))(
    {
      wire: 'default_access_ttl_seconds',
      view: 'always',
      default: 3600,
      flag: 'default-access-ttl',
      doc: "The access token's lifetime when a token response (or an import) does not say.",
    },
  ),
  rotatesRefreshTokens: setting(yesNo())({
    wire: 'rotates_refresh_tokens',
    view: 'always',
    default: true,
    flag: 'rotation',
    doc: 'The provider issues a new refresh token on each refresh and spends the old one.',
  }),
  reuseDetection: setting(yesNo())({
    wire: 'reuse_detection',
    view: 'always',
    default: true,
    doc: 'A spent refresh token presented again revokes the whole token family.',
  }),
  // Salesforce: "replay revokes all". Such a provider never gets a replay it cannot prove safe.
  // No default: unset means "only the family", and the view shows it only where it is said.
  reuseRevokesAllGrants: setting(yesNo())({
    wire: 'reuse_revokes_all_grants',
    view: 'whenSet',
    doc: 'A detected reuse revokes more than the token family: every grant of the user for this client.',
  }),
  reuseGraceSeconds: setting(amount(0, { type: 'number', minimum: 0, maximum: 86_400 }))({
    wire: 'reuse_grace_seconds',
    view: 'always',
    default: 0,
    doc: 'How long after its redemption a spent refresh token is still answered (Xero, Okta).',
  }),
  // Also kept well inside the refresh lease (invariant 3).
  requestTimeoutMs: setting(amount(1, { type: 'integer', minimum: 100, maximum: 60_000 }))({
    wire: 'request_timeout_ms',
    view: 'always',
    default: 10_000,
    doc: 'Upper bound for one token request, in milliseconds.',
  }),
  // Google 6 months, Xero 60 days, Salesforce per policy: the scheduler refreshes at least every
  // ¾ of it, even when the access token would still be valid.
  refreshTokenIdleSeconds: setting(amount(1, { type: 'integer', minimum: 60, maximum: TEN_YEARS }))(
    {
      wire: 'refresh_token_idle_seconds',
      view: 'always',
      doc: 'The refresh token dies after this long unused; it is refreshed in time to keep it alive.',
    },
  ),
  // Atlassian 365 days: an import that says nothing about the refresh token's expiry gets this
  // one, and rotations keep it.
  refreshTokenMaxSeconds: setting(amount(1, { type: 'integer', minimum: 60, maximum: TEN_YEARS }))({
    wire: 'refresh_token_max_seconds',
    view: 'whenSet',
    doc: "Absolute lifetime of a grant's refresh tokens, counted from the authorization.",
  }),
  // Compared case-insensitively, beside RFC 6749's invalid_grant.
  deadTokenErrors: setting(shortStrings())({
    wire: 'dead_token_errors',
    view: 'whenSet',
    default: [],
    doc: 'Error codes that mean "this refresh token is dead" (GitHub bad_refresh_token).',
  }),
  deadTokenMessages: setting(shortStrings())({
    wire: 'dead_token_messages',
    view: 'whenSet',
    default: [],
    doc: 'Error message fragments that mean the same, whatever the code (Zoom "Invalid Token!").',
  }),
  // Checked before the dead-token codes and messages.
  transientErrorMessages: setting(shortStrings())({
    wire: 'transient_error_messages',
    view: 'whenSet',
    default: [],
    doc: 'Error message fragments that mean "try again", whatever the code (Salesforce).',
  }),
  tokensAt: setting(text(200))({
    wire: 'tokens_at',
    view: 'whenSet',
    doc: "A member of the token response holding this connection's tokens when present (Slack authed_user).",
  }),
  bearerTokenTypes: setting(shortStrings())({
    wire: 'bearer_token_types',
    view: 'whenSet',
    default: [],
    doc: 'Token types this provider names differently that are used as Bearer tokens (Slack bot, user).',
  }),
  // Proxy mode: a 401, or a WWW-Authenticate with RFC 6750's invalid_token, always is one. Each
  // makes the proxy report the token version rejected and send the call once more.
  rejectedTokenStatuses: setting(statusCodes())({
    wire: 'rejected_token_statuses',
    view: 'whenSet',
    default: [],
    doc: "HTTP statuses besides 401 with which the provider's API refuses an access token (proxy mode).",
  }),
  rejectedTokenErrors: setting(shortStrings())({
    wire: 'rejected_token_errors',
    view: 'whenSet',
    default: [],
    doc: "Values of a JSON answer's top-level `error` that mean the API refused the access token, whatever the status (Slack invalid_auth; proxy mode).",
  }),
} as const;

type Settings = typeof PROVIDER_SETTINGS;
export type SettingName = keyof Settings;
type ValueOf<K extends SettingName> = Settings[K] extends SettingKind<infer T> ? T : never;
type KeysWhere<Condition> = {
  [K in SettingName]: Settings[K] extends Condition ? K : never;
}[SettingName];
type Given = KeysWhere<{ required: 'given' }>;
type AlwaysResolved = KeysWhere<{ required: string } | { default: unknown }>;

/** The settings as one record of name → setting, in table order. */
export const SETTING_ENTRIES = Object.entries(PROVIDER_SETTINGS) as [
  SettingName,
  Setting<unknown>,
][];

/** RFC 6749 §2.3.1 client authentication at the token, revocation and introspection endpoints. */
export type ClientAuthMethod = ValueOf<'clientAuth'>;

/** Which grant keeps a connection's access token fresh: a user's refresh token, or a machine token. */
export type ConnectionGrant = ValueOf<'grantType'>;

/**
 * How Tokenwarden talks to one authorization server's token endpoint, and how that server
 * behaves: a name plus the settings of `PROVIDER_SETTINGS` (each entry's `doc` says what it
 * means), all optional but `clientId`.
 */
export type ProviderConfig = {
  /** 1-64 characters of A-Z, a-z, 0-9, `_`, `.` or `-`, starting with a letter or digit. */
  name: string;
} & { [K in keyof Pick<Settings, Given>]: ValueOf<K> } & {
  [K in keyof Omit<Settings, Given>]?: ValueOf<K>;
};

/** A provider as the protocol uses it: checked, with every default and preset setting filled in. */
export type ResolvedProvider = { name: string } & {
  [K in keyof Pick<Settings, AlwaysResolved>]: ValueOf<K>;
} & { [K in keyof Omit<Settings, AlwaysResolved>]?: ValueOf<K> };
