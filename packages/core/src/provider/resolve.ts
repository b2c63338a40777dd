import { InvalidInputError } from '../errors.ts';
import { applyPreset } from './catalog.ts';

/** RFC 6749 §2.3.1 client authentication at the token, revocation and introspection endpoints. */
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  /** Id and secret as members of a JSON request body instead of a form (Atlassian). */
  | 'client_secret_json';

/** Which grant keeps a connection's access token fresh. */
export type ConnectionGrant =
  /** RFC 6749 §6: the connection holds a user's refresh token. */
  | 'refresh_token'
  /** RFC 6749 §4.4: a machine token, fetched with the client's own credentials; no user. */
  | 'client_credentials';

/**
 * How Tokenwarden talks to one authorization server's token endpoint, and how that server
 * behaves. Every quirk is a setting (data), never a branch in the protocol code; presets
 * (`preset`, see `providers/catalog.ts`) fill them in for known providers.
 */
export interface ProviderConfig {
  /** 1-64 characters of A-Z, a-z, 0-9, `_`, `.` or `-`, starting with a letter or digit. */
  name: string;
  /**
   * A catalog entry (`google`, `slack`, `okta`, ...) whose URLs and settings apply unless given
   * here: any setting of this object overrides the preset's (proxies, sovereign clouds, tests).
   */
  preset?: string;
  /** Values for the `{placeholders}` of a preset's URLs, e.g. `{ domain: 'acme.okta.com' }`. */
  presetParams?: Record<string, string>;
  /**
   * RFC 9207: the authorization server's issuer identifier. When set, an `iss` in the
   * authorization response must match it; discovery (`discoverProvider`) sets it.
   */
  issuer?: string;
  /** RFC 6749 §3.2. Plain `http:` is allowed only for loopback hosts. Required without a preset. */
  tokenUrl?: string;
  /** RFC 6749 §3.1, for the connect flow. Same rule as `tokenUrl`. */
  authorizeUrl?: string;
  /** RFC 7009 §2, to revoke tokens when a connection is deleted. Same rule as `tokenUrl`. */
  revocationUrl?: string;
  /** RFC 7662 §2, to ask whether a token is still active. Same rule as `tokenUrl`. */
  introspectionUrl?: string;
  /** RFC 6749 §3.3: the scopes the connect flow (or a client_credentials fetch) asks for. */
  scopes?: string[];
  /** Extra authorization request parameters (`access_type=offline`, `audience=...`). */
  authorizeParams?: Record<string, string>;
  clientId: string;
  clientSecret?: string;
  /** RFC 6749 §2.3.1. Default `client_secret_basic`. */
  clientAuth?: ClientAuthMethod;
  /** Default `refresh_token`; `client_credentials` makes every connection a machine token. */
  grantType?: ConnectionGrant;
  /** Used when a token response (or an import) says nothing about the access token's lifetime. */
  defaultAccessTtlSeconds?: number;
  /** The provider issues a new refresh token on each refresh and spends the old one. Default true. */
  rotatesRefreshTokens?: boolean;
  /** A spent refresh token presented again revokes the whole token family. Default true. */
  reuseDetection?: boolean;
  /** How long after its redemption a spent refresh token is still answered (Xero, Atlassian, Okta). */
  reuseGraceSeconds?: number;
  /** Upper bound for one token request; it is also kept well inside the refresh lease. Default 10 s. */
  requestTimeoutMs?: number;
  /**
   * Keep-alive: the refresh token dies after this long unused (Google 6 months, Xero 60 days,
   * Salesforce per policy). The scheduler then refreshes at least every ¾ of it, even when the
   * access token would still be valid. Default: none.
   */
  refreshTokenIdleSeconds?: number;
  /**
   * Absolute lifetime of a grant's refresh tokens, counted from the authorization (Atlassian 365
   * days): an import that says nothing about the refresh token's expiry gets this one, and
   * rotations keep it. Default: none.
   */
  refreshTokenMaxSeconds?: number;
  /**
   * Error codes that mean "this refresh token is dead" besides RFC 6749's `invalid_grant`
   * (GitHub `bad_refresh_token`, HubSpot `BAD_REFRESH_TOKEN`, Slack `invalid_refresh_token`).
   * Compared case-insensitively.
   */
  deadTokenErrors?: string[];
  /** Error message fragments that mean the same, whatever the code (Zoom "Invalid Token!"). */
  deadTokenMessages?: string[];
  /**
   * Error message fragments that mean "try again", whatever the code, checked first (Salesforce
   * "token request is already being processed").
   */
  transientErrorMessages?: string[];
  /**
   * A member of the token response holding this connection's tokens when present (Slack's
   * `authed_user` for user tokens); otherwise the top level is used.
   */
  tokensAt?: string;
  /** Token types this provider names differently that are used as Bearer tokens (Slack `bot`, `user`). */
  bearerTokenTypes?: string[];
}

/** The settings that stay unset unless configured. */
type OptionalSetting =
  | 'clientSecret'
  | 'refreshTokenIdleSeconds'
  | 'refreshTokenMaxSeconds'
  | 'authorizeUrl'
  | 'revocationUrl'
  | 'introspectionUrl'
  | 'issuer'
  | 'preset'
  | 'presetParams'
  | 'tokensAt';

export type ResolvedProvider = Required<Omit<ProviderConfig, OptionalSetting>> &
  Pick<ProviderConfig, OptionalSetting>;

const CLIENT_AUTH_METHODS: readonly unknown[] = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_json',
];
const GRANTS: readonly unknown[] = ['refresh_token', 'client_credentials'];

/** What a provider name may look like: it appears in URLs, and '*' is a grant's wildcard. */
export const PROVIDER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Fills in defaults (the preset's first, when one is named) and refuses configurations that
 * cannot work. Throws InvalidInputError naming the field.
 */
export function resolveProvider(input: ProviderConfig): ResolvedProvider {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidInputError('provider', 'must be an object');
  }
  const config = input.preset === undefined ? input : applyPreset(input);
  if (typeof config.name !== 'string' || !PROVIDER_NAME_PATTERN.test(config.name)) {
    throw new InvalidInputError(
      'name',
      'must be 1-64 characters of A-Z, a-z, 0-9, _, . or -, starting with a letter or digit',
    );
  }
  const tokenUrl = endpointUrl('token_url', config.tokenUrl);
  if (typeof config.clientId !== 'string' || config.clientId === '') {
    throw new InvalidInputError('client_id', 'must not be empty');
  }
  if (
    config.clientSecret !== undefined &&
    (typeof config.clientSecret !== 'string' || config.clientSecret === '')
  ) {
    throw new InvalidInputError('client_secret', 'must be a non-empty string when given');
  }
  if (config.clientAuth !== undefined && !CLIENT_AUTH_METHODS.includes(config.clientAuth)) {
    throw new InvalidInputError('client_auth', `must be one of ${CLIENT_AUTH_METHODS.join(', ')}`);
  }
  if (config.grantType !== undefined && !GRANTS.includes(config.grantType)) {
    throw new InvalidInputError('grant_type', `must be one of ${GRANTS.join(', ')}`);
  }
  return {
    name: config.name,
    preset: input.preset,
    presetParams: input.presetParams === undefined ? undefined : { ...input.presetParams },
    issuer: config.issuer === undefined ? undefined : issuerUrl(config.issuer),
    tokenUrl,
    authorizeUrl: optionalEndpointUrl('authorize_url', config.authorizeUrl),
    revocationUrl: optionalEndpointUrl('revocation_url', config.revocationUrl),
    introspectionUrl: optionalEndpointUrl('introspection_url', config.introspectionUrl),
    scopes: checkScopes(config.scopes),
    authorizeParams: stringMap('authorize_params', config.authorizeParams) ?? {},
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    clientAuth: config.clientAuth ?? 'client_secret_basic',
    grantType: config.grantType ?? 'refresh_token',
    defaultAccessTtlSeconds:
      duration('default_access_ttl_seconds', config.defaultAccessTtlSeconds, 1) ?? 3600,
    rotatesRefreshTokens: flag('rotates_refresh_tokens', config.rotatesRefreshTokens) ?? true,
    reuseDetection: flag('reuse_detection', config.reuseDetection) ?? true,
    reuseGraceSeconds: duration('reuse_grace_seconds', config.reuseGraceSeconds, 0) ?? 0,
    requestTimeoutMs: duration('request_timeout_ms', config.requestTimeoutMs, 1) ?? 10_000,
    refreshTokenIdleSeconds: duration(
      'refresh_token_idle_seconds',
      config.refreshTokenIdleSeconds,
      1,
    ),
    refreshTokenMaxSeconds: duration('refresh_token_max_seconds', config.refreshTokenMaxSeconds, 1),
    deadTokenErrors: shortStrings('dead_token_errors', config.deadTokenErrors),
    deadTokenMessages: shortStrings('dead_token_messages', config.deadTokenMessages),
    transientErrorMessages: shortStrings('transient_error_messages', config.transientErrorMessages),
    tokensAt: config.tokensAt === undefined ? undefined : shortString('tokens_at', config.tokensAt),
    bearerTokenTypes: shortStrings('bearer_token_types', config.bearerTokenTypes),
  };
}

/**
 * Invariant 6: may a leader that finds a stale intent send the same refresh token again?
 * Only if a second presentation cannot cost the token family: the provider does not rotate, or
 * does not punish reuse, or the first send is still inside its grace window (with a margin for
 * the request's own travel time).
 */
export function replayIsSafe(provider: ResolvedProvider, intentAt: number, now: number): boolean {
  if (!provider.rotatesRefreshTokens || !provider.reuseDetection) return true;
  const graceMs = provider.reuseGraceSeconds * 1000;
  return now - intentAt + provider.requestTimeoutMs < graceMs;
}

export function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    hostname === '::1' ||
    /^127(\.\d{1,3}){3}$/.test(hostname)
  );
}

/** An endpoint Tokenwarden sends secrets to: https, or plain http on loopback only. */
function endpointUrl(field: string, value: unknown): string {
  let url: URL;
  try {
    url = new URL(value as string);
  } catch {
    throw new InvalidInputError(field, 'is not a valid URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new InvalidInputError(field, 'must be https (plain http only on loopback)');
  }
  return url.href;
}

function optionalEndpointUrl(field: string, value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : endpointUrl(field, value);
}

function duration(field: string, value: unknown, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidInputError(field, `must be a number of at least ${min}`);
  }
  return value;
}

function flag(field: string, value: unknown): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw new InvalidInputError(field, 'must be true or false');
}

export function checkScopes(scopes: unknown): string[] {
  if (scopes === undefined || scopes === null) return [];
  if (
    !Array.isArray(scopes) ||
    !scopes.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))
  ) {
    throw new InvalidInputError(
      'scopes',
      'must be a list of scope tokens (printable ASCII without spaces, quotes or backslashes)',
    );
  }
  return [...scopes] as string[];
}

function shortString(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new InvalidInputError(field, 'must be a string of 1-200 characters');
  }
  return value;
}

function shortStrings(field: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > 50) {
    throw new InvalidInputError(field, 'must be a list of at most 50 strings');
  }
  return value.map((v) => shortString(field, v));
}

function stringMap(field: string, value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInputError(field, 'must be an object of strings');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 50) throw new InvalidInputError(field, 'must have at most 50 entries');
  const out: Record<string, string> = {};
  for (const [key, v] of entries) {
    if (!/^[\w.-]{1,64}$/.test(key)) throw new InvalidInputError(field, 'has an invalid name');
    out[key] = shortString(field, v);
  }
  return out;
}

function issuerUrl(value: unknown): string {
  const href = endpointUrl('issuer', value);
  if (typeof value !== 'string' || value.length > 2048 || /[?#]/.test(value)) {
    throw new InvalidInputError('issuer', 'must be a URL without query or fragment');
  }
  // RFC 9207 compares issuers as strings: keep the configured spelling.
  return href === value || href === `${value}/` ? value : href;
}
