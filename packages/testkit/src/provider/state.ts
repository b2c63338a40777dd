// The provider's token bookkeeping: families, refresh tokens, access tokens and the counters
// tests assert on. Pure in-memory logic with an explicit clock so the HTTP layer stays thin.
import { createHash, randomBytes } from 'node:crypto';
import type { GrantOptions, IssuedGrant, ProviderStats, ResolvedProviderOptions } from './types.ts';

/** The key used in ProviderStats.redemptionsByToken: stats must never hold a token value. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

function opaque(prefix: string): string {
  // 24 random bytes are exactly 32 base64url characters.
  return prefix + randomBytes(24).toString('base64url');
}

interface Family {
  revoked: boolean;
  scope?: string;
  /** With rotation on, only the newest access token of a family is valid (GitHub-style). */
  currentAccessToken: string;
}

interface RefreshTokenRecord {
  family: string;
  spentAt?: number;
  expiresAt?: number;
}

interface AccessTokenRecord {
  family: string;
  expiresAt: number;
}

export type RefusalReason = 'unknown' | 'revoked' | 'expired' | 'reused';

export type Redemption =
  | {
      ok: true;
      accessToken: string;
      expiresIn: number;
      refreshToken?: string;
      refreshExpiresIn?: number;
      scope?: string;
    }
  | { ok: false; reason: RefusalReason };

export function emptyStats(): ProviderStats {
  return {
    tokenRequests: 0,
    redemptions: 0,
    graceRedemptions: 0,
    reuseViolations: 0,
    revokedFamilies: 0,
    redemptionsByToken: {},
    invalidGrants: 0,
    resourceRequests: 0,
    resourceRejections: 0,
  };
}

export class ProviderState {
  readonly stats = emptyStats();
  readonly #families = new Map<string, Family>();
  readonly #refreshTokens = new Map<string, RefreshTokenRecord>();
  readonly #accessTokens = new Map<string, AccessTokenRecord>();

  issueGrant(options: ResolvedProviderOptions, grant: GrantOptions, now: number): IssuedGrant {
    const family = opaque('fam_').slice(0, 20);
    const ttl = grant.accessTokenTtlSeconds ?? options.accessTokenTtlSeconds;
    this.#families.set(family, { revoked: false, scope: grant.scope, currentAccessToken: '' });
    const accessToken = this.#mintAccessToken(family, ttl, now);
    const refreshToken = this.#mintRefreshToken(family, options, now);
    return { access_token: accessToken, refresh_token: refreshToken, expires_in: ttl, family };
  }

  /**
   * Redeems a refresh token (RFC 6749 §6). `keepOld` answers without a new refresh token and
   * leaves the presented one unspent, like providers that omit refresh_token in the response.
   */
  redeem(
    refreshToken: string,
    options: ResolvedProviderOptions,
    now: number,
    keepOld = false,
  ): Redemption {
    const record = this.#refreshTokens.get(refreshToken);
    const family = record && this.#families.get(record.family);
    if (!record || !family) return { ok: false, reason: 'unknown' };
    if (family.revoked) return { ok: false, reason: 'revoked' };
    if (record.expiresAt !== undefined && now >= record.expiresAt) {
      return { ok: false, reason: 'expired' };
    }
    let grace = false;
    if (record.spentAt !== undefined) {
      if (now - record.spentAt < options.reuseGraceMs) {
        grace = true;
      } else {
        // A replay outside the window is what a stolen token looks like (RFC 9700 §4.14.2).
        this.stats.reuseViolations++;
        if (options.reuseDetection) {
          family.revoked = true;
          this.stats.revokedFamilies++;
        }
        return { ok: false, reason: 'reused' };
      }
    }

    const ttl = options.accessTokenTtlSeconds;
    const accessToken = this.#mintAccessToken(record.family, ttl, now);
    let next: string | undefined;
    if (options.rotation && !keepOld) {
      next = this.#mintRefreshToken(record.family, options, now);
      // The grace window is measured from the first redemption, so replays cannot extend it.
      record.spentAt ??= now;
    }
    this.stats.redemptions++;
    if (grace) this.stats.graceRedemptions++;
    const key = tokenFingerprint(refreshToken);
    this.stats.redemptionsByToken[key] = (this.stats.redemptionsByToken[key] ?? 0) + 1;
    return {
      ok: true,
      accessToken,
      expiresIn: ttl,
      refreshToken: next,
      refreshExpiresIn: next === undefined ? undefined : options.refreshTokenTtlSeconds,
      scope: family.scope,
    };
  }

  isAccessTokenValid(token: string, options: ResolvedProviderOptions, now: number): boolean {
    const record = this.#accessTokens.get(token);
    const family = record && this.#families.get(record.family);
    if (!record || !family || family.revoked || now >= record.expiresAt) return false;
    return !options.rotation || family.currentAccessToken === token;
  }

  /**
   * Makes every access token issued so far expire now, as if their lifetime had passed; refresh
   * tokens are untouched. Returns how many had not expired yet.
   */
  expireAccessTokens(now: number): number {
    let expired = 0;
    for (const record of this.#accessTokens.values()) {
      if (record.expiresAt > now) {
        record.expiresAt = now;
        expired++;
      }
    }
    return expired;
  }

  #mintAccessToken(familyId: string, ttlSeconds: number, now: number): string {
    const token = opaque('at_');
    this.#accessTokens.set(token, { family: familyId, expiresAt: now + ttlSeconds * 1000 });
    const family = this.#families.get(familyId);
    if (family) family.currentAccessToken = token;
    return token;
  }

  #mintRefreshToken(familyId: string, options: ResolvedProviderOptions, now: number): string {
    const token = opaque('rt_');
    const ttl = options.refreshTokenTtlSeconds;
    this.#refreshTokens.set(token, {
      family: familyId,
      expiresAt: ttl === undefined ? undefined : now + ttl * 1000,
    });
    return token;
  }
}
