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
}

export type ResolvedProviderOptions = Required<
  Omit<TestProviderOptions, 'refreshTokenTtlSeconds'>
> &
  Pick<TestProviderOptions, 'refreshTokenTtlSeconds'>;

export type InjectedFailure =
  | { kind: 'server_error'; status?: number; times?: number }
  | { kind: 'rate_limited'; retryAfterSeconds: number; times?: number }
  | { kind: 'hang'; afterRedeem?: boolean; times?: number }
  | { kind: 'malformed_json'; afterRedeem?: boolean; times?: number }
  | { kind: 'error_200'; error?: string; style?: 'oauth' | 'slack'; times?: number }
  | { kind: 'invalid_grant'; times?: number }
  | { kind: 'missing_expires_in'; times?: number }
  | { kind: 'string_expires_in'; times?: number }
  | { kind: 'no_refresh_token'; times?: number };

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
}

export interface GrantOptions {
  accessTokenTtlSeconds?: number;
  scope?: string;
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
};

type Kind = 'string' | 'number' | 'boolean';
const OPTION_KINDS: Record<keyof TestProviderOptions, Kind> = {
  clientId: 'string',
  clientSecret: 'string',
  accessTokenTtlSeconds: 'number',
  rotation: 'boolean',
  reuseGraceMs: 'number',
  reuseDetection: 'boolean',
  latencyMs: 'number',
  refreshTokenTtlSeconds: 'number',
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkValue(name: string, value: unknown, kind: Kind): void {
  if (kind === 'number') {
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
    if (key === 'refreshTokenTtlSeconds' && (raw === null || raw === undefined)) {
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
  const { accessTokenTtlSeconds, scope, ...rest } = value;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new TypeError(`unknown grant option ${unknown}`);
  if (accessTokenTtlSeconds !== undefined) {
    checkValue('accessTokenTtlSeconds', accessTokenTtlSeconds, 'number');
  }
  if (scope !== undefined) checkValue('scope', scope, 'string');
  return { accessTokenTtlSeconds, scope } as GrantOptions;
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
  'no_refresh_token',
]);

export function validateFailure(value: unknown): InjectedFailure {
  if (!isRecord(value)) throw new TypeError('a failure must be a JSON object');
  const kind = value.kind as InjectedFailure['kind'];
  if (!FAILURE_KINDS.has(kind)) throw new TypeError(`unknown failure kind ${String(kind)}`);
  const { times, status, retryAfterSeconds, afterRedeem, style, error } = value;
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
