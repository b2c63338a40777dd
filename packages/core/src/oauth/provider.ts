import { InvalidInputError } from '../errors.ts';

/** How Tokenwarden talks to one authorization server's token endpoint, and how that server behaves. */
export interface ProviderConfig {
  /** 1-64 characters of A-Z, a-z, 0-9, `_`, `.` or `-`, starting with a letter or digit. */
  name: string;
  /** RFC 6749 §3.2. Plain `http:` is allowed only for loopback hosts. */
  tokenUrl: string;
  /** RFC 6749 §3.1, for the connect flow. Same rule as `tokenUrl`. */
  authorizeUrl?: string;
  /** RFC 7009 §2, to revoke tokens when a connection is deleted. Same rule as `tokenUrl`. */
  revocationUrl?: string;
  /** RFC 6749 §3.3: the scopes the connect flow asks for. Default none. */
  scopes?: string[];
  clientId: string;
  clientSecret?: string;
  /** RFC 6749 §2.3.1. Default `client_secret_basic`. */
  clientAuth?: 'client_secret_basic' | 'client_secret_post';
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
}

/** The settings that stay unset unless configured. */
type OptionalSetting =
  'clientSecret' | 'refreshTokenIdleSeconds' | 'authorizeUrl' | 'revocationUrl';

export type ResolvedProvider = Required<Omit<ProviderConfig, OptionalSetting>> &
  Pick<ProviderConfig, OptionalSetting>;

const CLIENT_AUTH_METHODS: readonly unknown[] = ['client_secret_basic', 'client_secret_post'];

/** What a provider name may look like: it appears in URLs, and '*' is a grant's wildcard. */
export const PROVIDER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Fills in defaults and refuses configurations that cannot work. */
export function resolveProvider(config: ProviderConfig): ResolvedProvider {
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
  return {
    name: config.name,
    tokenUrl,
    authorizeUrl: optionalEndpointUrl('authorize_url', config.authorizeUrl),
    revocationUrl: optionalEndpointUrl('revocation_url', config.revocationUrl),
    scopes: checkScopes(config.scopes),
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    clientAuth: config.clientAuth ?? 'client_secret_basic',
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

function checkScopes(scopes: unknown): string[] {
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
