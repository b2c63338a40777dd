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
  subject: string;
  /** What token_type the provider names this family's tokens (Slack: bot, user). */
  tokenType: string;
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
      family: string;
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
    clientCredentialsGrants: 0,
    authorizationCodes: 0,
    codeExchanges: 0,
    revocations: 0,
    introspections: 0,
  };
}

/** RFC 7662 §2.2, as far as the test provider knows it. */
export interface Introspection {
  active: boolean;
  client_id?: string;
  scope?: string;
  token_type?: string;
  exp?: number;
}

export class ProviderState {
  readonly stats = emptyStats();
  readonly #families = new Map<string, Family>();
  readonly #refreshTokens = new Map<string, RefreshTokenRecord>();
  readonly #accessTokens = new Map<string, AccessTokenRecord>();

  /** Rotating redemptions so far, for `omitRefreshTokenEvery`. */
  #rotations = 0;
  /** Live families per subject, oldest first, for `maxGrantsPerSubject`. */
  readonly #bySubject = new Map<string, string[]>();

  issueGrant(
    options: ResolvedProviderOptions,
    grant: GrantOptions,
    now: number,
    tokenType = 'Bearer',
  ): IssuedGrant {
    const family = opaque('fam_').slice(0, 20);
    const ttl = grant.accessTokenTtlSeconds ?? options.accessTokenTtlSeconds;
    const subject = grant.subject ?? 'user';
    this.#families.set(family, {
      revoked: false,
      scope: grant.scope,
      subject,
      tokenType,
      currentAccessToken: '',
    });
    this.#capGrants(subject, family, options);
    const accessToken = this.#mintAccessToken(family, ttl, now);
    const refreshToken = this.#mintRefreshToken(family, options, now);
    return { access_token: accessToken, refresh_token: refreshToken, expires_in: ttl, family };
  }

  /**
   * Google: past the cap, the subject's oldest live grant is revoked, without a word. Without a
   * cap nothing is kept: a subject's list would grow with every grant, and filtering it on each
   * one made issuing n grants cost n² (the scheduler bench issues 110,000 for one subject).
   */
  #capGrants(subject: string, family: string, options: ResolvedProviderOptions): void {
    const max = options.maxGrantsPerSubject;
    if (max === undefined || max <= 0) return;
    const live = (this.#bySubject.get(subject) ?? []).filter(
      (f) => this.#families.get(f)?.revoked === false,
    );
    live.push(family);
    while (live.length > max) {
      const oldest = this.#families.get(live.shift()!);
      if (oldest) oldest.revoked = true;
      this.stats.revokedFamilies++;
    }
    this.#bySubject.set(subject, live);
  }

  /** RFC 6749 §4.4: an access token for the client itself, no refresh token. */
  clientCredentials(options: ResolvedProviderOptions, scope: string | undefined, now: number) {
    const family = opaque('cc_').slice(0, 20);
    this.#families.set(family, {
      revoked: false,
      scope,
      subject: options.clientId,
      tokenType: 'Bearer',
      currentAccessToken: '',
    });
    this.stats.clientCredentialsGrants++;
    const accessToken = this.#mintAccessToken(family, options.accessTokenTtlSeconds, now);
    return { accessToken, expiresIn: options.accessTokenTtlSeconds, scope };
  }

  /** The token_type the provider names a family's tokens. */
  tokenTypeOf(family: string): string {
    return this.#families.get(family)?.tokenType ?? 'Bearer';
  }

  /** Revokes a whole family (RFC 6749 §4.1.2: a reused authorization code). */
  revokeFamily(family: string): void {
    const record = this.#families.get(family);
    if (record && !record.revoked) {
      record.revoked = true;
      this.stats.revokedFamilies++;
    }
  }

  /**
   * RFC 7009 §2.1: a refresh token takes its whole grant with it; an access token only itself.
   * Unknown tokens are fine (§2.2). Returns what was revoked.
   */
  revoke(token: string): 'refresh_token' | 'access_token' | 'unknown' {
    const refresh = this.#refreshTokens.get(token);
    if (refresh) {
      this.revokeFamily(refresh.family);
      return 'refresh_token';
    }
    if (this.#accessTokens.delete(token)) return 'access_token';
    return 'unknown';
  }

  /** RFC 7662 §2.2. */
  introspect(token: string, options: ResolvedProviderOptions, now: number): Introspection {
    const access = this.#accessTokens.get(token);
    if (access && this.isAccessTokenValid(token, options, now)) {
      return {
        active: true,
        client_id: options.clientId,
        token_type: 'Bearer',
        exp: Math.floor(access.expiresAt / 1000),
        ...(this.#families.get(access.family)?.scope === undefined
          ? {}
          : { scope: this.#families.get(access.family)!.scope }),
      };
    }
    const refresh = this.#refreshTokens.get(token);
    const family = refresh && this.#families.get(refresh.family);
    if (
      refresh &&
      family &&
      !family.revoked &&
      (refresh.expiresAt === undefined || now < refresh.expiresAt) &&
      (refresh.spentAt === undefined || now - refresh.spentAt < options.reuseGraceMs)
    ) {
      return {
        active: true,
        client_id: options.clientId,
        token_type: 'refresh_token',
        ...(refresh.expiresAt === undefined ? {} : { exp: Math.floor(refresh.expiresAt / 1000) }),
      };
    }
    return { active: false };
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
    const omit =
      options.rotation &&
      options.omitRefreshTokenEvery !== undefined &&
      options.omitRefreshTokenEvery > 0 &&
      ++this.#rotations % options.omitRefreshTokenEvery === 0;
    if (options.rotation && !keepOld && !omit) {
      next = this.#mintRefreshToken(record.family, options, now);
      // The grace window is measured from the first redemption, so replays cannot extend it.
      // Entra-style providers issue a new token without spending the old one.
      if (options.spendOnRotation) record.spentAt ??= now;
    }
    this.stats.redemptions++;
    if (grace) this.stats.graceRedemptions++;
    const key = tokenFingerprint(refreshToken);
    this.stats.redemptionsByToken[key] = (this.stats.redemptionsByToken[key] ?? 0) + 1;
    return {
      ok: true,
      family: record.family,
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
