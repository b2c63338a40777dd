// Public types of the test provider, their defaults, and the run-time validation shared by the
// in-process API, the admin endpoints and the CLI (the last two receive untyped JSON).

export interface TestProviderOptions {
  /** Default 'tw-test-client'. */
  clientId?: string;
  /** Default 'tw-test-secret'. */
  clientSecret?: string;
  /** Default 3600; returned as expires_in. */
  accessTokenTtlSeconds?: number;
  /** Default true: each refresh issues a new refresh token and spends the old one. */
  rotation?: boolean;
  /** Default 0: a spent refresh token replayed within this window is answered normally. */
  reuseGraceMs?: number;
  /** Default true: a spent refresh token replayed outside the grace window revokes its family. */
  reuseDetection?: boolean;
  /** Default 0: delay before answering each token request. */
  latencyMs?: number;
  /** When set, responses carry refresh_token_expires_in and refresh tokens expire. */
  refreshTokenTtlSeconds?: number;
  /**
   * A provider's whole set of quirks at once (see personalities.ts): `google`, `slack`, ...
   * Options given next to it override the personality's.
   */
  personality?: PersonalityName;
  /** How a dead refresh token is refused. Default 'oauth' (400 invalid_grant). */
  errorStyle?: ErrorStyle;
  /** error_description of refusals; default per reason. */
  refusalMessage?: string;
  /**
   * 'form-unless-json-accepted': GitHub answers form-encoded unless Accept: application/json;
   * 'form': always (a proxy that drops the Accept header).
   */
  responseFormat?: 'json' | 'form-unless-json-accepted' | 'form';
  /** How expires_in is sent: a number (default), a string, left out, or left out with issued_at. */
  expiresInFormat?: 'number' | 'string' | 'omit' | 'issued_at';
  /** Every Nth rotating redemption answers without refresh_token, keeping the old one valid. */
  omitRefreshTokenEvery?: number;
  /** Default true; false: a rotation issues a new refresh token but the old one stays valid (Entra). */
  spendOnRotation?: boolean;
  /** Google: at most this many live grants per subject; a new one silently revokes the oldest. */
  maxGrantsPerSubject?: number;
  /** Request body encodings the token endpoint accepts. Default 'form'; Atlassian 'json'. */
  requestFormat?: 'form' | 'json' | 'any';
  /** Salesforce: a second request for a refresh token being redeemed is refused, not queued. */
  refuseConcurrentRefresh?: boolean;
  /** Default true: the authorization endpoint requires PKCE S256. */
  requirePkce?: boolean;
  /** The authorization endpoint redirects back with this error instead of a code. */
  authorizeError?: string;
}

export type ErrorStyle = 'oauth' | 'oauth403' | 'slack' | 'github' | 'hubspot' | 'zoom';

export type PersonalityName =
  | 'rfc'
  | 'google'
  | 'microsoft'
  | 'salesforce'
  | 'slack'
  | 'github'
  | 'atlassian'
  | 'xero'
  | 'intuit'
  | 'hubspot'
  | 'zoom'
  | 'dropbox'
  | 'okta'
  | 'auth0'
  | 'mezzio';

type UnsetOption =
  | 'refreshTokenTtlSeconds'
  | 'personality'
  | 'refusalMessage'
  | 'omitRefreshTokenEvery'
  | 'maxGrantsPerSubject'
  | 'authorizeError';

export type ResolvedProviderOptions = Required<Omit<TestProviderOptions, UnsetOption>> &
  Pick<TestProviderOptions, UnsetOption>;

export type InjectedFailure =
  | { kind: 'server_error'; status?: number; times?: number }
  | { kind: 'rate_limited'; retryAfterSeconds: number; times?: number }
  | { kind: 'hang'; afterRedeem?: boolean; times?: number }
  | { kind: 'malformed_json'; afterRedeem?: boolean; times?: number }
  | { kind: 'error_200'; error?: string; style?: 'oauth' | 'slack'; times?: number }
  | { kind: 'invalid_grant'; times?: number }
  | { kind: 'missing_expires_in'; times?: number }
  | { kind: 'string_expires_in'; times?: number }
  /** A refresh answered with this nonsense as expires_in ("abc", -5), tokens otherwise valid. */
  | { kind: 'invalid_expires_in'; value: string | number; times?: number }
  | { kind: 'no_refresh_token'; times?: number }
  /** A 200 body of this many bytes (default 1 MiB) of JSON padding. */
  | { kind: 'huge_body'; bytes?: number; times?: number }
  /** A 200 token response sent one byte every `intervalMs` (default 200 ms). */
  | { kind: 'slow_drip'; intervalMs?: number; times?: number }
  /** A 200 text/html page (a login page, a proxy's error page). */
  | { kind: 'wrong_content_type'; times?: number }
  /** A 200 JSON body whose token fields have the wrong types. */
  | { kind: 'wrong_types'; times?: number };

export interface ProviderStats {
  /** Every POST /token. */
  tokenRequests: number;
  /** Refresh grants that issued a new access token (grace redemptions included). */
  redemptions: number;
  /** Redemptions of an already-spent refresh token inside the grace window. */
  graceRedemptions: number;
  /** Spent refresh token presented outside the grace window (with or without reuse detection). */
  reuseViolations: number;
  revokedFamilies: number;
  /** Key: tokenFingerprint(refresh token), never the token itself. */
  redemptionsByToken: Record<string, number>;
  /** Requests refused as invalid_grant for any reason, injected ones and HTTP-200 errors included. */
  invalidGrants: number;
  /** Every request to the protected resource, GET /resource. */
  resourceRequests: number;
  /** Of those, the ones refused with 401 (no, unknown, expired, superseded or revoked token). */
  resourceRejections: number;
  /** Access tokens issued by the client_credentials grant. */
  clientCredentialsGrants: number;
  /** Codes issued by GET /authorize, and codes exchanged for tokens. */
  authorizationCodes: number;
  codeExchanges: number;
  /** Requests to POST /revoke and POST /introspect. */
  revocations: number;
  introspections: number;
}

export interface GrantOptions {
  accessTokenTtlSeconds?: number;
  scope?: string;
  /** Whose grant this is, for `maxGrantsPerSubject`. Default 'user'. */
  subject?: string;
}

export interface IssuedGrant {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  family: string;
}

export const DEFAULT_OPTIONS: ResolvedProviderOptions = {
  clientId: 'tw-test-client',
  clientSecret: 'tw-test-secret',
  accessTokenTtlSeconds: 3600,
  rotation: true,
  reuseGraceMs: 0,
  reuseDetection: true,
  latencyMs: 0,
  refreshTokenTtlSeconds: undefined,
  personality: undefined,
  errorStyle: 'oauth',
  refusalMessage: undefined,
  responseFormat: 'json',
  expiresInFormat: 'number',
  omitRefreshTokenEvery: undefined,
  spendOnRotation: true,
  maxGrantsPerSubject: undefined,
  requestFormat: 'form',
  refuseConcurrentRefresh: false,
  requirePkce: true,
  authorizeError: undefined,
};

type Kind = 'string' | 'number' | 'boolean' | readonly string[];
const OPTION_KINDS: Record<keyof TestProviderOptions, Kind> = {
  clientId: 'string',
  clientSecret: 'string',
  accessTokenTtlSeconds: 'number',
  rotation: 'boolean',
  reuseGraceMs: 'number',
  reuseDetection: 'boolean',
  latencyMs: 'number',
  refreshTokenTtlSeconds: 'number',
  personality: [
    'rfc',
    'google',
    'microsoft',
    'salesforce',
    'slack',
    'github',
    'atlassian',
    'xero',
    'intuit',
    'hubspot',
    'zoom',
    'dropbox',
    'okta',
    'auth0',
    'mezzio',
  ],
  errorStyle: ['oauth', 'oauth403', 'slack', 'github', 'hubspot', 'zoom'],
  refusalMessage: 'string',
  responseFormat: ['json', 'form-unless-json-accepted', 'form'],
  expiresInFormat: ['number', 'string', 'omit', 'issued_at'],
  omitRefreshTokenEvery: 'number',
  spendOnRotation: 'boolean',
  maxGrantsPerSubject: 'number',
  requestFormat: ['form', 'json', 'any'],
  refuseConcurrentRefresh: 'boolean',
  requirePkce: 'boolean',
  authorizeError: 'string',
};

/** Options that can be unset again with null (JSON) or undefined. */
const UNSETTABLE = new Set([
  'refreshTokenTtlSeconds',
  'personality',
  'refusalMessage',
  'omitRefreshTokenEvery',
  'maxGrantsPerSubject',
  'authorizeError',
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkValue(name: string, value: unknown, kind: Kind): void {
  if (typeof kind !== 'string') {
    if (typeof value !== 'string' || !kind.includes(value)) {
      throw new TypeError(`${name} must be one of ${kind.join(', ')}`);
    }
  } else if (kind === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`${name} must be a non-negative number`);
    }
  } else if (kind === 'string') {
    if (typeof value !== 'string' || value === '') {
      throw new TypeError(`${name} must be a non-empty string`);
    }
  } else if (typeof value !== 'boolean') {
    throw new TypeError(`${name} must be a boolean`);
  }
}

/**
 * Checks a configuration patch. Unknown keys are rejected so that a typo in a test fails loudly
 * instead of silently testing the default behaviour. `refreshTokenTtlSeconds: null` (JSON) unsets.
 */
export function validateOptionsPatch(value: unknown): Partial<TestProviderOptions> {
  if (!isRecord(value)) throw new TypeError('options must be a JSON object');
  const patch: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value)) {
    const kind = OPTION_KINDS[key as keyof TestProviderOptions];
    if (kind === undefined) throw new TypeError(`unknown option ${key}`);
    if (UNSETTABLE.has(key) && (raw === null || raw === undefined)) {
      patch[key] = undefined;
      continue;
    }
    if (raw === undefined) continue;
    checkValue(key, raw, kind);
    patch[key] = raw;
  }
  return patch as Partial<TestProviderOptions>;
}

export function validateGrantOptions(value: unknown): GrantOptions {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new TypeError('grant options must be a JSON object');
  const { accessTokenTtlSeconds, scope, subject, ...rest } = value;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new TypeError(`unknown grant option ${unknown}`);
  if (accessTokenTtlSeconds !== undefined) {
    checkValue('accessTokenTtlSeconds', accessTokenTtlSeconds, 'number');
  }
  if (scope !== undefined) checkValue('scope', scope, 'string');
  if (subject !== undefined) checkValue('subject', subject, 'string');
  return { accessTokenTtlSeconds, scope, subject } as GrantOptions;
}

const FAILURE_KINDS = new Set<InjectedFailure['kind']>([
  'server_error',
  'rate_limited',
  'hang',
  'malformed_json',
  'error_200',
  'invalid_grant',
  'missing_expires_in',
  'string_expires_in',
  'invalid_expires_in',
  'no_refresh_token',
  'huge_body',
  'slow_drip',
  'wrong_content_type',
  'wrong_types',
]);

export function validateFailure(value: unknown): InjectedFailure {
  if (!isRecord(value)) throw new TypeError('a failure must be a JSON object');
  const kind = value.kind as InjectedFailure['kind'];
  if (!FAILURE_KINDS.has(kind)) throw new TypeError(`unknown failure kind ${String(kind)}`);
  const { times, status, retryAfterSeconds, afterRedeem, style, error, bytes, intervalMs } = value;
  if (kind === 'invalid_expires_in' && !['string', 'number'].includes(typeof value.value)) {
    throw new TypeError('invalid_expires_in needs a value (a string or a number)');
  }
  if (bytes !== undefined) checkValue('bytes', bytes, 'number');
  if (intervalMs !== undefined) checkValue('intervalMs', intervalMs, 'number');
  if (times !== undefined && (!Number.isInteger(times) || (times as number) < 1)) {
    throw new TypeError('times must be a positive integer');
  }
  if (kind === 'server_error' && status !== undefined) {
    if (!Number.isInteger(status) || (status as number) < 500 || (status as number) > 599) {
      throw new TypeError('server_error status must be 5xx');
    }
  }
  if (kind === 'rate_limited') checkValue('retryAfterSeconds', retryAfterSeconds, 'number');
  if (afterRedeem !== undefined) checkValue('afterRedeem', afterRedeem, 'boolean');
  if (style !== undefined && style !== 'oauth' && style !== 'slack') {
    throw new TypeError("style must be 'oauth' or 'slack'");
  }
  if (error !== undefined) checkValue('error', error, 'string');
  return value as InjectedFailure;
}
