// Real providers' refresh behaviour as option sets, one per row of the quirk table
// (shared/design/provider-quirks.md). Options given next to a personality override it.
import type { PersonalityName, TestProviderOptions } from './types.ts';

export const PERSONALITIES: Record<PersonalityName, Partial<TestProviderOptions>> = {
  /** RFC 6749 as written, with strict rotation: the defaults. */
  rfc: {},
  /** No rotation; a cap on live grants per user silently kills the oldest (Google: 100). */
  google: {
    rotation: false,
    reuseDetection: false,
    refusalMessage: 'Token has been expired or revoked.',
    maxGrantsPerSubject: 100,
  },
  /** A new refresh token on each use, the old one NOT revoked. */
  microsoft: {
    rotation: true,
    spendOnRotation: false,
    reuseDetection: false,
    refusalMessage: 'AADSTS700082: The refresh token has expired due to inactivity.',
  },
  /**
   * No expires_in, issued_at in epoch ms as a string; no refresh_token in the answer (rotation
   * off, the default); a concurrent refresh of one token is refused.
   */
  salesforce: {
    expiresInFormat: 'issued_at',
    rotation: false,
    reuseDetection: true,
    refuseConcurrentRefresh: true,
    refusalMessage: 'expired access/refresh token',
  },
  /** HTTP 200 {"ok":false,"error":"invalid_refresh_token"}; 12 h tokens; bot and user pairs. */
  slack: { errorStyle: 'slack', accessTokenTtlSeconds: 43_200 },
  /** HTTP 200 error=bad_refresh_token; form-encoded unless Accept: application/json. */
  github: {
    errorStyle: 'github',
    responseFormat: 'form-unless-json-accepted',
    accessTokenTtlSeconds: 28_800,
    refreshTokenTtlSeconds: 15_811_200,
  },
  /** 403 invalid_grant; JSON bodies; 10-minute reuse window; sometimes no new refresh token. */
  atlassian: {
    errorStyle: 'oauth403',
    requestFormat: 'json',
    reuseGraceMs: 600_000,
    omitRefreshTokenEvery: 2,
  },
  /** 30-minute tokens; a spent refresh token is answered for 30 minutes. */
  xero: { accessTokenTtlSeconds: 1800, reuseGraceMs: 1_800_000 },
  /** The refresh token may change on each refresh; store the latest. */
  intuit: { rotation: true, reuseDetection: false },
  /** {"status":"BAD_REFRESH_TOKEN","message":...}; no rotation; 429s on the token endpoint. */
  hubspot: { errorStyle: 'hubspot', rotation: false, accessTokenTtlSeconds: 1800 },
  /** Rotation; an old refresh token is answered {"reason":"Invalid Token!"}. */
  zoom: { errorStyle: 'zoom' },
  /** No rotation, no refresh_token in refresh answers; 4 h tokens. */
  dropbox: { rotation: false, reuseDetection: false, accessTokenTtlSeconds: 14_400 },
  /** Rotation with a 30 s grace period; reuse after it kills the family. */
  okta: { reuseGraceMs: 30_000 },
  /** Rotation, reuse kills the family, 403 "Unknown or invalid refresh token." */
  auth0: { errorStyle: 'oauth403', refusalMessage: 'Unknown or invalid refresh token.' },
  /** "expires_in": "3600" as a string. */
  mezzio: { expiresInFormat: 'string' },
};
