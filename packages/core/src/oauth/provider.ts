import { InvalidInputError } from '../errors.ts';

/** How Tokenwarden talks to one authorization server's token endpoint, and how that server behaves. */
export interface ProviderConfig {
  name: string;
  /** RFC 6749 §3.2. Plain `http:` is allowed only for loopback hosts. */
  tokenUrl: string;
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

export type ResolvedProvider = Required<
  Omit<ProviderConfig, 'clientSecret' | 'refreshTokenIdleSeconds'>
> &
  Pick<ProviderConfig, 'clientSecret' | 'refreshTokenIdleSeconds'>;

/** Fills in defaults and refuses configurations that cannot work. */
export function resolveProvider(config: ProviderConfig): ResolvedProvider {
  const url = parseUrl(config.tokenUrl);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new InvalidInputError('token_url', 'must be https (plain http only on loopback)');
  }
  if (!config.clientId) throw new InvalidInputError('client_id', 'must not be empty');
  return {
    name: config.name,
    tokenUrl: url.href,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    clientAuth: config.clientAuth ?? 'client_secret_basic',
    defaultAccessTtlSeconds: config.defaultAccessTtlSeconds ?? 3600,
    rotatesRefreshTokens: config.rotatesRefreshTokens ?? true,
    reuseDetection: config.reuseDetection ?? true,
    reuseGraceSeconds: config.reuseGraceSeconds ?? 0,
    requestTimeoutMs: config.requestTimeoutMs ?? 10_000,
    refreshTokenIdleSeconds: config.refreshTokenIdleSeconds,
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

function parseUrl(value: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new InvalidInputError('token_url', 'is not a valid URL');
  }
}
