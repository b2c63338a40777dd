// Every row of the quirk table (shared/design/provider-quirks.md), simulated by the test
// provider's personality, against the broker configured with the matching preset: the preset's
// URLs point at the test provider, everything else is the preset's data.
import {
  NeedsReauthError,
  RefreshUnavailableError,
  type BrokerEvent,
  type PresetName,
  type ProviderConfig,
} from '@tokenwarden/core';
import {
  tokenFingerprint,
  type PersonalityName,
  type TestProviderOptions,
} from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

/** The broker uses `preset` (with the test provider's URLs), the provider plays `personality`. */
function quirky(
  personality: PersonalityName,
  preset: PresetName | undefined,
  options: {
    provider?: TestProviderOptions;
    config?: Partial<ProviderConfig>;
    events?: unknown[];
  } = {},
) {
  const presetParams =
    preset === 'okta' || preset === 'auth0' ? { domain: 'tenant.example.com' } : undefined;
  return scenario({
    provider: { personality, ...options.provider },
    config: {
      preset,
      presetParams,
      // Leave the preset's behaviour alone: the helper fills these from the provider options.
      rotatesRefreshTokens: undefined,
      reuseDetection: undefined,
      reuseGraceSeconds: undefined,
      ...options.config,
    },
    events: options.events,
    fixture: { maxWaitMs: 3_000 },
  });
}

function row(id: string) {
  return s.sql.prepare('select * from credentials where id = ?').get(id) as Record<string, unknown>;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  return (await promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  )) as Error;
}

const PROVIDERS: [PersonalityName, PresetName][] = [
  ['google', 'google'],
  ['microsoft', 'microsoft'],
  ['salesforce', 'salesforce'],
  ['slack', 'slack'],
  ['github', 'github'],
  ['atlassian', 'atlassian'],
  ['xero', 'xero'],
  ['intuit', 'intuit'],
  ['hubspot', 'hubspot'],
  ['zoom', 'zoom'],
  ['dropbox', 'dropbox'],
  ['okta', 'okta'],
  ['auth0', 'auth0'],
];

describe.each(PROVIDERS)('%s', (personality, preset) => {
  it('refreshes, and its dead-token answer means needs_reauth with nothing stored', async () => {
    const events: BrokerEvent[] = [];
    s = await quirky(personality, preset, { events });
    const { id } = await s.importGrant();
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(2);
    expect(token.tokenType).toBe('Bearer');
    expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);

    // The provider forgets every token (a user revoked the app): its refusal, in its words.
    s.provider.reset();
    await s.expire(id);
    const before = row(id);
    const error = await failure(s.broker.getAccessToken(id));
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect((error as NeedsReauthError).reason).toBe('invalid_grant');
    expect(s.provider.stats().invalidGrants).toBe(1);
    const after = row(id);
    expect(after.status).toBe('needs_reauth');
    expect([after.access_token, after.refresh_token]).toEqual([
      before.access_token,
      before.refresh_token,
    ]);
    expect(events.filter((e) => e.type === 'needs_reauth')).toHaveLength(1);
  });

  it('treats 5xx and 429 as transient: refresh_unavailable, still active, then recovers', async () => {
    s = await quirky(personality, preset, { config: { requestTimeoutMs: 2_000 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures(
      { kind: 'server_error', status: 503, times: 2 },
      { kind: 'rate_limited', retryAfterSeconds: 1 },
    );
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(2);
    expect(s.provider.stats()).toMatchObject({ tokenRequests: 4, redemptions: 1 });
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });
});

describe('expiry', () => {
  it('salesforce: no expires_in, issued_at in epoch ms: the session lifetime from issued_at', async () => {
    s = await quirky('salesforce', 'salesforce', { config: { defaultAccessTtlSeconds: 5400 } });
    const { id, refreshToken } = await s.importGrant();
    const token = await s.broker.getAccessToken(id);
    const left = (token.expiresAt - Date.now()) / 1000;
    expect(left).toBeGreaterThan(5300);
    expect(left).toBeLessThanOrEqual(5400);
    // No rotation: the response had no refresh_token and the old one was kept.
    await s.expire(id);
    await s.broker.getAccessToken(id);
    expect(s.provider.stats().redemptionsByToken).toEqual({ [tokenFingerprint(refreshToken)]: 2 });
  });

  it('mezzio: expires_in "3600" as a string is parsed', async () => {
    s = await quirky('mezzio', undefined, { config: { defaultAccessTtlSeconds: 60 } });
    const { id } = await s.importGrant();
    const token = await s.broker.getAccessToken(id);
    expect((token.expiresAt - Date.now()) / 1000).toBeGreaterThan(3500);
  });

  it('github: 8 h tokens and refresh_token_expires_in honoured', async () => {
    s = await quirky('github', 'github');
    const { id } = await s.importGrant();
    await s.broker.getAccessToken(id);
    const info = await s.broker.getConnection(id);
    expect((info.accessExpiresAt - Date.now()) / 3600_000).toBeCloseTo(8, 1);
    expect((info.refreshExpiresAt! - Date.now()) / 86_400_000).toBeCloseTo(183, 0);
  });

  it('atlassian: an absolute refresh token lifetime from the import, kept by rotations', async () => {
    s = await quirky('atlassian', 'atlassian');
    const { id } = await s.importGrant();
    const imported = await s.broker.getConnection(id);
    expect((imported.refreshExpiresAt! - Date.now()) / 86_400_000).toBeCloseTo(365, 0);
    await s.broker.getAccessToken(id);
    expect((await s.broker.getConnection(id)).refreshExpiresAt).toBe(imported.refreshExpiresAt);
  });
});

describe('refresh tokens kept or replaced', () => {
  it('atlassian: JSON bodies, and every 2nd answer lacks refresh_token: the old one is kept', async () => {
    s = await quirky('atlassian', 'atlassian');
    const { id } = await s.importGrant();
    for (let i = 0; i < 6; i++) {
      await s.expire(id);
      expect((await s.broker.getAccessToken(id)).version).toBe(i + 2);
    }
    const stats = s.provider.stats();
    expect(stats).toMatchObject({ redemptions: 6, reuseViolations: 0, graceRedemptions: 0 });
    // rt0 → rt1; rt1 → (none); rt1 → rt2; rt2 → (none); rt2 → rt3; rt3 → (none): each token
    // that came back without a successor was redeemed again, none was lost.
    expect(Object.values(stats.redemptionsByToken)).toEqual([1, 2, 2, 1]);
  });

  it('dropbox: refresh answers omit refresh_token: the old one keeps working', async () => {
    s = await quirky('dropbox', 'dropbox');
    const { id, refreshToken } = await s.importGrant();
    for (let i = 0; i < 3; i++) {
      await s.expire(id);
      await s.broker.getAccessToken(id);
    }
    expect(s.provider.stats().redemptionsByToken).toEqual({ [tokenFingerprint(refreshToken)]: 3 });
  });

  it('intuit and microsoft: a new refresh token each time, and the latest one is used', async () => {
    for (const [personality, preset] of [
      ['intuit', 'intuit'],
      ['microsoft', 'microsoft'],
    ] as const) {
      s = await quirky(personality, preset);
      const { id } = await s.importGrant();
      for (let i = 0; i < 3; i++) {
        await s.expire(id);
        await s.broker.getAccessToken(id);
      }
      const stats = s.provider.stats();
      expect(Object.values(stats.redemptionsByToken)).toEqual([1, 1, 1]);
      expect(stats.reuseViolations).toBe(0);
      await s.cleanup();
    }
    s = undefined as unknown as Scenario;
  });
});

describe('error mapping', () => {
  it('HTTP 200 error bodies are errors, never tokens (slack, github form-encoded)', async () => {
    for (const [personality, preset, extra] of [
      ['slack', 'slack', {}],
      ['github', 'github', { responseFormat: 'form' }],
    ] as const) {
      s = await quirky(personality, preset, { provider: extra });
      const { id } = await s.importGrant();
      await s.expire(id);
      const before = row(id);
      s.provider.reset(); // the refusal comes in the provider's own 200 style
      expect(await failure(s.broker.getAccessToken(id))).toBeInstanceOf(NeedsReauthError);
      expect(row(id).access_token).toBe(before.access_token);
      await s.cleanup();
    }
    s = undefined as unknown as Scenario;
  });

  it('github: a form-encoded token answer is parsed', async () => {
    s = await quirky('github', 'github', { provider: { responseFormat: 'form' } });
    const { id } = await s.importGrant();
    const token = await s.broker.getAccessToken(id);
    expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
    expect((token.expiresAt - Date.now()) / 3600_000).toBeCloseTo(8, 1);
  });

  it('zoom "Invalid Token!" is a dead token with the preset, a configuration error without', async () => {
    s = await quirky('zoom', 'zoom');
    let { id } = await s.importGrant();
    s.provider.reset();
    expect(await failure(s.broker.getAccessToken(id))).toBeInstanceOf(NeedsReauthError);
    await s.cleanup();

    s = await quirky('zoom', undefined, { config: { requestTimeoutMs: 1000 } });
    ({ id } = await s.importGrant());
    s.provider.reset();
    const error = await failure(s.broker.getAccessToken(id));
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect((error as RefreshUnavailableError).lastError).toBe('invalid_request');
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });

  it('hubspot: BAD_REFRESH_TOKEN in a non-OAuth body is a dead token', async () => {
    s = await quirky('hubspot', 'hubspot');
    const { id } = await s.importGrant();
    s.provider.reset();
    const error = (await failure(s.broker.getAccessToken(id))) as NeedsReauthError;
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect((await s.broker.getConnection(id)).lastError).toBe('BAD_REFRESH_TOKEN');
  });

  it('microsoft: interaction_required is a dead token', async () => {
    s = await quirky('microsoft', 'microsoft');
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'error_200', error: 'interaction_required' });
    expect(await failure(s.broker.getAccessToken(id))).toBeInstanceOf(NeedsReauthError);
    expect((await s.broker.getConnection(id)).lastError).toBe('interaction_required');
  });

  it('hubspot 429: Retry-After is honoured for the whole provider, and nothing dies', async () => {
    s = await quirky('hubspot', 'hubspot');
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'rate_limited', retryAfterSeconds: 30 });
    const error = (await failure(s.broker.getAccessToken(id))) as RefreshUnavailableError;
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(29_000);
    // The breaker holds the Retry-After (each process learns it from its own first 429); the
    // row only backs off, so the backlog is due as soon as the provider answers again.
    const stored = row(id);
    expect(Number(stored.next_attempt_at) - Number(stored.updated_at)).toBeLessThan(30_000);
    expect(stored.status).toBe('active');
    // Nobody asks the provider again before then, however many callers there are.
    await Promise.allSettled(Array.from({ length: 20 }, () => s.broker.getAccessToken(id)));
    expect(s.provider.stats().tokenRequests).toBe(1);
  });

  it('salesforce "token request is already being processed" is transient', async () => {
    const events: BrokerEvent[] = [];
    s = await quirky('salesforce', 'salesforce', { provider: { latencyMs: 300 }, events });
    const { id, refreshToken } = await s.importGrant();
    // Another system redeems the same refresh token at the same moment.
    const other = fetch(s.provider.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: s.provider.clientId,
        client_secret: s.provider.clientSecret,
      }),
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const token = await s.broker.getAccessToken(id);
    await other;
    expect(token.version).toBe(2);
    expect(events.filter((e) => e.type === 'needs_reauth')).toEqual([]);
    expect(events.find((e) => e.type === 'refresh_failed')).toMatchObject({ inDoubt: false });
  });

  it('google: a grant killed by the per-user cap needs re-authorization; the newer one works', async () => {
    s = await quirky('google', 'google', { provider: { maxGrantsPerSubject: 1 } });
    const old = await s.importGrant();
    const recent = await s.importGrant();
    expect(await failure(s.broker.getAccessToken(old.id))).toBeInstanceOf(NeedsReauthError);
    expect((await s.broker.getAccessToken(recent.id)).version).toBe(2);
  });
});

describe('grace windows and reuse detection after a lost answer', () => {
  it.each([
    ['xero', 'xero'],
    ['okta', 'okta'],
    ['atlassian', 'atlassian'],
  ] as const)('%s: the refresh token is replayed inside the grace window', async (p, preset) => {
    s = await quirky(p, preset, { config: { requestTimeoutMs: 300 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'hang', afterRedeem: true });
    const token = await s.broker.getAccessToken(id);
    expect(token.version).toBe(2);
    expect(s.provider.stats()).toMatchObject({
      graceRedemptions: 1,
      reuseViolations: 0,
      revokedFamilies: 0,
    });
  });

  it('auth0: no grace window, so a lost answer is replayed once, refused as reuse (refresh_in_doubt)', async () => {
    s = await quirky('auth0', 'auth0', { config: { requestTimeoutMs: 300 } });
    const { id } = await s.importGrant();
    s.provider.injectFailures({ kind: 'hang', afterRedeem: true });
    const error = (await failure(s.broker.getAccessToken(id))) as NeedsReauthError;
    expect(error.reason).toBe('refresh_in_doubt');
    // The access token had expired: the family's live tokens were the lost answer's, so the one
    // replay cost nothing still held.
    expect(s.provider.stats()).toMatchObject({
      tokenRequests: 2,
      redemptions: 1,
      reuseViolations: 1,
      revokedFamilies: 1,
    });
  });
});
