// A broken or malicious token endpoint cannot crash the broker or make it store garbage: every
// answer is read with a size limit and a deadline, type checked, and turned into a typed error.
import {
  RefreshUnavailableError,
  refreshTokenGrant,
  resolveProvider,
  type AccessToken,
  type BrokerEvent,
} from '@tokenwarden/core';
import type { InjectedFailure } from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

function row(id: string) {
  return s.sql.prepare('select * from credentials where id = ?').get(id) as Record<string, unknown>;
}

const HOSTILE: [string, InjectedFailure, string][] = [
  [
    'a 20 MB body',
    { kind: 'huge_body', bytes: 20 * 1024 * 1024, times: 100 },
    'malformed_response',
  ],
  [
    'a body just over the limit',
    { kind: 'huge_body', bytes: 300_000, times: 100 },
    'malformed_response',
  ],
  ['a slow drip past the deadline', { kind: 'slow_drip', intervalMs: 100, times: 100 }, 'timeout'],
  ['invalid JSON', { kind: 'malformed_json', times: 100 }, 'malformed_response'],
  ['an HTML page', { kind: 'wrong_content_type', times: 100 }, 'malformed_response'],
  ['token fields of the wrong types', { kind: 'wrong_types', times: 100 }, 'malformed_response'],
];

describe('a hostile token endpoint', () => {
  it.each(HOSTILE)(
    '%s: refresh_unavailable, nothing stored, and it recovers',
    async (_, failure, code) => {
      const events: BrokerEvent[] = [];
      // No rotation: an unreadable 2xx cannot have cost the refresh token, so retrying is safe.
      s = await scenario({
        provider: { rotation: false, reuseDetection: false },
        config: { requestTimeoutMs: 400 },
        // A short circuit-breaker cooldown, so the recovery below is not kept waiting by it.
        fixture: { maxWaitMs: 1_500, breaker: { cooldownMs: 50, maxCooldownMs: 100 } },
        events,
      });
      const { id } = await s.importGrant();
      const before = row(id);
      s.provider.injectFailures(failure);
      const error = (await s.broker.getAccessToken(id).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect((error as RefreshUnavailableError).lastError).toBe(code);
      const after = row(id);
      expect(after).toMatchObject({
        status: 'active',
        version: before.version,
        access_token: before.access_token,
        refresh_token: before.refresh_token,
        token_type: before.token_type,
        scope: before.scope,
        last_error: code,
      });
      expect(events.every((e) => e.type === 'refresh_failed')).toBe(true);
      expect(events.length).toBeGreaterThan(0);
      // The provider comes back to its senses: the same connection refreshes.
      s.provider.clearFailures();
      await s.expire(id);
      s.sql.prepare('update credentials set next_attempt_at = null where id = ?').run(id);
      const token = await s.broker.getAccessToken(id);
      expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
    },
  );

  it('an unreadable 2xx from a rotating provider with reuse detection is in doubt, never stored', async () => {
    s = await scenario({ fixture: { maxWaitMs: 1_000 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'wrong_types' });
    const first = (await s.broker.getAccessToken(id)) as AccessToken;
    // In doubt, so the answer was not stored; with the access token expired the refresh token
    // was replayed once (invariant 6): this provider had not redeemed it, and answered.
    expect(first.version).toBe(2);
    expect(s.provider.isAccessTokenValid(first.accessToken)).toBe(true);
    expect(row(id).access_token).not.toContain(first.accessToken);
    expect(s.provider.stats()).toMatchObject({ tokenRequests: 2, reuseViolations: 0 });
  });

  it('bounds what one grant call reads and how long it waits', async () => {
    s = await scenario();
    const provider = resolveProvider({ ...s.fixture.provider, requestTimeoutMs: 300 });
    const grant = s.provider.issueGrant();
    s.provider.injectFailures({ kind: 'huge_body', bytes: 5 * 1024 * 1024 });
    expect(await refreshTokenGrant(provider, grant.refresh_token)).toEqual({
      kind: 'failed',
      error: 'malformed_response',
      inDoubt: true,
      retryAfterMs: undefined,
    });
    s.provider.injectFailures({ kind: 'slow_drip', intervalMs: 50 });
    // No signal given: the provider's requestTimeoutMs applies.
    expect(await refreshTokenGrant(provider, grant.refresh_token)).toMatchObject({
      kind: 'failed',
      error: 'timeout',
      inDoubt: true,
    });
    s.provider.injectFailures({ kind: 'error_200', error: 'x'.repeat(500) });
    // A provider's error code goes to the database and logs only as a short safe token.
    expect(await refreshTokenGrant(provider, grant.refresh_token)).toMatchObject({
      kind: 'failed',
      error: 'provider_error',
    });
    expect((await refreshTokenGrant(provider, grant.refresh_token)).kind).toBe('tokens');
  });
});
