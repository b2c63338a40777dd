import { NeedsReauthError, RefreshUnavailableError, type BrokerEvent } from '@tokenwarden/core';
import { tokenFingerprint } from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';
import { TestClock } from './test-clock.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

describe('refresh in one process', () => {
  it('gives 200 concurrent callers of an expired token one redemption and the same token', async () => {
    s = await scenario({ provider: { latencyMs: 50 } });
    const { id } = await s.importGrant();
    const results = await Promise.all(
      Array.from({ length: 200 }, () => s.broker.getAccessToken(id)),
    );
    expect(s.provider.stats().redemptions).toBe(1);
    expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
    expect(new Set(results.map((r) => r.version))).toEqual(new Set([2]));
    expect(s.provider.isAccessTokenValid(results[0]!.accessToken)).toBe(true);
  });

  it('hands out a valid token without contacting the provider', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(1);
    expect(s.provider.stats().tokenRequests).toBe(0);
  });

  it('refreshes first when the caller asks for more lifetime than is left', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 120 });
    expect((await s.broker.getAccessToken(id, { minTtlSeconds: 60 })).version).toBe(1);
    expect((await s.broker.getAccessToken(id, { minTtlSeconds: 600 })).version).toBe(2);
    expect(s.provider.stats().redemptions).toBe(1);
  });

  it('refreshes a rejected token once for 100 reports, and hands a stale reporter the new one', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const first = await s.broker.getAccessToken(id);
    const fresh = await Promise.all(
      Array.from({ length: 100 }, () => s.broker.reportRejected(id, first.version)),
    );
    expect(s.provider.stats().redemptions).toBe(1);
    expect(new Set(fresh.map((t) => t.version))).toEqual(new Set([2]));
    // A worker that used version 1 reports late: it gets version 2 at once, no refresh.
    const late = await s.broker.reportRejected(id, first.version);
    expect(late.version).toBe(2);
    expect(s.provider.stats().redemptions).toBe(1);
  });

  it('keeps the old refresh token when the response has none', async () => {
    s = await scenario();
    const { id, refreshToken } = await s.importGrant();
    s.provider.injectFailures({ kind: 'no_refresh_token' });
    await s.broker.getAccessToken(id);
    await s.expire(id);
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(3);
    // The second refresh redeemed the original refresh token again: it was kept, not lost.
    expect(s.provider.stats().redemptionsByToken).toEqual({ [tokenFingerprint(refreshToken)]: 2 });
    expect(s.provider.stats().reuseViolations).toBe(0);
  });

  it('uses the configured lifetime when expires_in is missing, and parses a string one', async () => {
    s = await scenario({ config: { defaultAccessTtlSeconds: 1234 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'missing_expires_in' });
    let token = await s.broker.getAccessToken(id);
    expect(Math.round((token.expiresAt - Date.now()) / 1000)).toBeGreaterThan(1200);
    expect(Math.round((token.expiresAt - Date.now()) / 1000)).toBeLessThanOrEqual(1234);
    await s.expire(id);
    s.provider.injectFailures({ kind: 'string_expires_in' });
    token = await s.broker.getAccessToken(id);
    expect(Math.round((token.expiresAt - Date.now()) / 1000)).toBeGreaterThan(3500);
  });
});

describe('a 2xx whose expires_in is no lifetime', () => {
  it.each(['abc', -5])(
    'expires_in %j: the rotated refresh token is kept, the default lifetime used, and said',
    async (value) => {
      const events: BrokerEvent[] = [];
      s = await scenario({ config: { defaultAccessTtlSeconds: 1234 }, events });
      const { id } = await s.importGrant();
      s.provider.injectFailures({ kind: 'invalid_expires_in', value });
      const token = await s.broker.getAccessToken(id);
      expect(token.version).toBe(2);
      expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
      const left = Math.round((token.expiresAt - Date.now()) / 1000);
      expect(left).toBeGreaterThan(1200);
      expect(left).toBeLessThanOrEqual(1234);
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'refreshed', version: 2, expiresInIgnored: true }),
      );
      // The next refresh redeems the refresh token that answer rotated in: no reuse, still active.
      await s.expire(id);
      expect((await s.broker.getAccessToken(id)).version).toBe(3);
      expect(s.provider.stats()).toMatchObject({ redemptions: 2, reuseViolations: 0 });
      expect((await s.broker.getConnection(id)).status).toBe('active');
      expect(events.filter((e) => e.type === 'refreshed' && e.expiresInIgnored)).toHaveLength(1);
    },
  );
});

describe('client authentication', () => {
  it.each(['client_secret_basic', 'client_secret_post'] as const)(
    'refreshes with %s',
    async (method) => {
      s = await scenario({ config: { clientAuth: method } });
      const { id } = await s.importGrant();
      expect((await s.broker.getAccessToken(id)).version).toBe(2);
    },
  );

  it('treats a wrong client secret as a configuration failure, not a dead credential', async () => {
    s = await scenario({ config: { clientSecret: 'wrong' }, fixture: { maxWaitMs: 100 } });
    const { id } = await s.importGrant();
    const error = (await s.broker
      .getAccessToken(id)
      .catch((e: unknown) => e)) as RefreshUnavailableError;
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect(error.lastError).toBe('invalid_client');
    expect(String(error)).not.toContain('wrong');
    expect((await s.broker.getConnection(id)).status).toBe('active');
    expect(s.provider.stats().redemptions).toBe(0);
  });
});

describe('failures', () => {
  it('retries 5xx with backoff inside one call and never marks the credential dead', async () => {
    const events: BrokerEvent[] = [];
    s = await scenario({ events });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'server_error', times: 3 });
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(2);
    expect(s.provider.stats()).toMatchObject({ tokenRequests: 4, redemptions: 1 });
    expect(events.filter((e) => e.type === 'refresh_failed')).toHaveLength(3);
    expect((await s.broker.getConnection(id)).failures).toBe(0);
  });

  it('answers refresh_unavailable during an outage and stays active', async () => {
    const clock = new TestClock();
    s = await scenario({
      fixture: {
        maxWaitMs: 500,
        backoff: { baseMs: 100, maxMs: 400 },
        breaker: { cooldownMs: 50, maxCooldownMs: 50 },
      },
      broker: { clock },
    });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'server_error', times: 1000 });
    const error = await s.broker.getAccessToken(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect((error as RefreshUnavailableError).retryAfterMs).toBeGreaterThanOrEqual(0);
    const info = await s.broker.getConnection(id);
    expect(info).toMatchObject({ status: 'active', lastError: 'server_error' });
    expect(info.failures).toBeGreaterThan(0);
    // Recovery after the outage: the circuit breaker's cooldown is skipped; the credential's
    // own backoff (the database's clock) is waited out inside the call, well within maxWaitMs.
    s.provider.clearFailures();
    clock.advance(50);
    expect((await s.broker.getAccessToken(id)).version).toBe(2);
  });

  it('grows no backoff while the circuit is open: the breaker paces the provider', async () => {
    const clock = new TestClock();
    const events: BrokerEvent[] = [];
    s = await scenario({
      events,
      fixture: {
        maxWaitMs: 20,
        backoff: { baseMs: 50, maxMs: 60_000 },
        breaker: { threshold: 1, cooldownMs: 1_000, maxCooldownMs: 1_000 },
      },
      broker: { clock },
    });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'server_error', times: 1000 });
    for (let i = 0; i < 8; i++) {
      clock.advance(1_000); // the breaker's cooldown ends: one probe
      await s.broker.getAccessToken(id).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 60)); // the backoff, on the database clock
    }
    expect((await s.broker.getConnection(id)).failures).toBe(8);
    const failed = events.filter((e) => e.type === 'refresh_failed');
    expect(failed).toHaveLength(8);
    // Eight failures in a row would have a backoff of up to 6.4 s; once the provider is back,
    // the first answered probe makes this credential due again at once.
    for (const event of failed) expect(event.retryAfterMs).toBeLessThanOrEqual(50);
  });

  it('honours Retry-After on 429', async () => {
    s = await scenario({ fixture: { maxWaitMs: 200 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'rate_limited', retryAfterSeconds: 30 });
    const error = (await s.broker
      .getAccessToken(id)
      .catch((e: unknown) => e)) as RefreshUnavailableError;
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect(error.lastError).toBe('rate_limited');
    expect(error.retryAfterMs).toBeGreaterThan(29_000);
    expect(s.provider.stats().tokenRequests).toBe(1);
    // Callers during the backoff do not reach the provider.
    await expect(s.broker.getAccessToken(id)).rejects.toBeInstanceOf(RefreshUnavailableError);
    expect(s.provider.stats().tokenRequests).toBe(1);
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });

  it('keeps a still-valid token in service while the provider fails', async () => {
    // The backoff has full jitter, a delay in [0, base]: with a short base, a loaded machine can
    // re-read the row after its delay is over and try again. Ten minutes: never.
    s = await scenario({ fixture: { backoff: { baseMs: 600_000, maxMs: 600_000 } } });
    const { id } = await s.importGrant({ expiresIn: 10 }); // inside the 30 s skew: refresh wanted
    s.provider.injectFailures({ kind: 'server_error', times: 1000 });
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(1);
    expect(s.provider.stats().tokenRequests).toBe(1);
  });

  it('a leader left too little of its lease sends nothing and hands the lease back', async () => {
    const clock = new TestClock();
    const steps: string[] = [];
    s = await scenario({
      broker: {
        clock,
        onStep: (step) => {
          // The first leader stalls for its whole lease (2 s) right after taking it.
          if (step === 'lease_acquired' && !steps.includes(step)) clock.advance(2_000);
          steps.push(step);
        },
      },
    });
    const { id } = await s.importGrant();
    expect((await s.broker.getAccessToken(id)).version).toBe(2);
    expect(steps).toEqual([
      'lease_acquired',
      'lease_acquired',
      'intent_recorded',
      'response_received',
      'committed',
    ]);
    expect(s.provider.stats().tokenRequests).toBe(1);
  });

  it('recovers from a timeout when a replay is safe (grace window)', async () => {
    s = await scenario({
      provider: { reuseGraceMs: 60_000 },
      config: { requestTimeoutMs: 300 },
    });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'hang', afterRedeem: true });
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(2);
    expect(s.provider.stats()).toMatchObject({ reuseViolations: 0, graceRedemptions: 1 });
    expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
  });

  it('recovers from a timeout on a provider that does not rotate', async () => {
    s = await scenario({ provider: { rotation: false }, config: { requestTimeoutMs: 300 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'hang' });
    expect((await s.broker.getAccessToken(id)).version).toBe(2);
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });

  it('marks invalid_grant as needs_reauth, reports it, and stops calling the provider', async () => {
    const events: BrokerEvent[] = [];
    s = await scenario({ events });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'invalid_grant' });
    const error = await s.broker.getAccessToken(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect((error as NeedsReauthError).reason).toBe('invalid_grant');
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'needs_reauth', connectionId: id, reason: 'invalid_grant' }),
    );
    await expect(s.broker.getAccessToken(id)).rejects.toBeInstanceOf(NeedsReauthError);
    expect(s.provider.stats().tokenRequests).toBe(1);
  });

  it.each(['oauth', 'slack'] as const)(
    'treats an HTTP 200 error body (%s) as a refusal',
    async (style) => {
      // Slack's own code for a dead token is data (its preset's deadTokenErrors), not protocol.
      s = await scenario({
        config: style === 'slack' ? { deadTokenErrors: ['invalid_refresh_token'] } : {},
      });
      const { id } = await s.importGrant();
      s.provider.injectFailures({ kind: 'error_200', style });
      await expect(s.broker.getAccessToken(id)).rejects.toBeInstanceOf(NeedsReauthError);
      const row = s.sql.prepare('select version, status from credentials where id = ?').get(id);
      expect(row).toEqual({ version: 2, status: 'needs_reauth' });
    },
  );

  it('treats an unreadable 2xx as in doubt: replayed inside a grace window', async () => {
    s = await scenario({ provider: { reuseGraceMs: 60_000 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'malformed_json', afterRedeem: true });
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(2);
    expect(s.provider.stats()).toMatchObject({ graceRedemptions: 1, reuseViolations: 0 });
  });

  it('treats an unreadable 2xx as in doubt: one replay, refused as reuse, is refresh_in_doubt', async () => {
    s = await scenario();
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'malformed_json', afterRedeem: true });
    const error = (await s.broker.getAccessToken(id).catch((e: unknown) => e)) as NeedsReauthError;
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect(error.reason).toBe('refresh_in_doubt');
    expect(s.provider.stats()).toMatchObject({
      tokenRequests: 2,
      redemptions: 1,
      reuseViolations: 1,
    });
  });

  it('needs re-authorization when there is no refresh token, or it has expired', async () => {
    s = await scenario();
    const noRefresh = await s.broker.importCredential({
      provider: 'test',
      owner: 'u',
      accessToken: 'at-only',
      expiresIn: 0,
    });
    await expect(s.broker.getAccessToken(noRefresh.id)).rejects.toMatchObject({
      reason: 'no_refresh_token',
    });
    const { id } = await s.importGrant();
    s.sql.prepare('update credentials set refresh_expires_at = 1 where id = ?').run(id);
    await expect(s.broker.getAccessToken(id)).rejects.toMatchObject({
      reason: 'refresh_token_expired',
    });
    expect(s.provider.stats().tokenRequests).toBe(0);
  });
});
