// Issue 14, defect 4: `min_ttl` is a wish. One no token from this provider can satisfy refreshes
// at most once per token version, and forced refreshes of one connection are rate limited.
import { afterEach, describe, expect, it } from 'vitest';
import { FORCED_REFRESH_INTERVAL_MS } from '../src/protocol/forced-refreshes.ts';
import { scenario, type Scenario } from './helpers.ts';
import { TestClock } from './test-clock.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

describe('a min_ttl no token can satisfy', () => {
  it('20 requests with min_ttl 86400 on 1-hour tokens: 1 redemption, the fresh token with its real expiry', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const tokens = [];
    for (let i = 0; i < 20; i++) {
      tokens.push(await s.broker.getAccessToken(id, { minTtlSeconds: 86_400 }));
    }
    expect(s.provider.stats().redemptions).toBe(1);
    expect(new Set(tokens.slice(1).map((t) => t.version))).toEqual(new Set([2]));
    const left = (tokens[19]!.expiresAt - Date.now()) / 1000;
    expect(left).toBeGreaterThan(3500);
    expect(left).toBeLessThanOrEqual(3600);
  });

  it('20 concurrent ones: 1 redemption', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const tokens = await Promise.all(
      Array.from({ length: 20 }, () => s.broker.getAccessToken(id, { minTtlSeconds: 86_400 })),
    );
    expect(s.provider.stats().redemptions).toBe(1);
    expect(new Set(tokens.map((t) => t.version))).toEqual(new Set([2]));
  });

  it('tokens shorter than the skew are not refreshed on every hand-out', async () => {
    s = await scenario({ provider: { accessTokenTtlSeconds: 20 } });
    const { id } = await s.importGrant();
    for (let i = 0; i < 20; i++) await s.broker.getAccessToken(id);
    expect(s.provider.stats().redemptions).toBe(1);
  });

  it('a token that has aged past half its life is still refreshed for a min_ttl', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 0 });
    expect((await s.broker.getAccessToken(id)).version).toBe(2); // learns: tokens live 1 h
    s.sql
      .prepare('update credentials set access_expires_at = ? where id = ?')
      .run(Date.now() + 1_000_000, id);
    expect((await s.broker.getAccessToken(id, { minTtlSeconds: 900 })).version).toBe(2);
    expect((await s.broker.getAccessToken(id, { minTtlSeconds: 86_400 })).version).toBe(3);
    expect(s.provider.stats().redemptions).toBe(2);
  });
});

describe('forced refreshes of one connection', () => {
  it(`happen at most once per ${FORCED_REFRESH_INTERVAL_MS / 1000} s on the process's clock`, async () => {
    const clock = new TestClock();
    s = await scenario({ broker: { clock } });
    const { id } = await s.importGrant({ expiresIn: 1_000 });
    // Forced: the token works for 1,000 s, only the wish asks for more.
    expect((await s.broker.getAccessToken(id, { minTtlSeconds: 1_500 })).version).toBe(2);
    // New tokens from a re-authorization, shorter than the wish allows (half of 1 h): it is
    // handed out as it is until the interval has passed.
    const grant = s.provider.issueGrant();
    await s.broker.reauthorize(id, {
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      expiresIn: 1_000,
    });
    for (let i = 0; i < 5; i++) {
      expect((await s.broker.getAccessToken(id, { minTtlSeconds: 1_500 })).version).toBe(3);
    }
    expect(s.provider.stats().redemptions).toBe(1);
    clock.advance(FORCED_REFRESH_INTERVAL_MS);
    expect((await s.broker.getAccessToken(id, { minTtlSeconds: 1_500 })).version).toBe(4);
    expect(s.provider.stats().redemptions).toBe(2);
  });
});
