import {
  crashRound,
  CRASH_POINTS,
  CRASH_PROFILES,
  IN_DOUBT_POINTS,
  lossIsExpected,
  type CrashPoint,
  type CrashProfileName,
  WAITING_LATENCY_MS,
} from '@tokenwarden/testkit';
import { describe, it } from 'vitest';
import { scenario } from './helpers.ts';
/**
 * The crash points of the design brief (`crashRound` in the testkit: a child takes the lease and
 * is SIGKILLed at one point; then the next caller, its access token expired, asks). It must get a
 * valid token, or — only where the provider really redeemed the refresh token and punishes its
 * reuse — `needs_reauth` / `refresh_in_doubt`. Invariant 6: with nothing left that a replay could
 * cost, the refresh token is replayed (a provider that never received it answers, one that
 * detects reuse refuses); a provider whose reuse punishment reaches beyond the family is never
 * sent an unsafe replay. The credential ends only on an answer; every send is paced.
 */
/** Of the in-doubt points, where the provider did redeem the refresh token. */
const REDEEMED: CrashPoint[] = ['waiting_for_provider', 'response_received'];

/** What the next caller's one request (if any) does at each crash point, per profile. */
const EXPECTED: Record<CrashProfileName, (point: CrashPoint) => Expected> = {
  // The replay reaches a provider that never saw the first request, or one that refuses it.
  'rotation, reuse detection, no grace (Auth0, Okta past its grace)': (point) =>
    REDEEMED.includes(point) ? 'replay_refused' : 'token',
  'rotation with a grace window (Xero, Atlassian)': () => 'token',
  'no rotation (Google)': () => 'token',
  'reuse revokes every grant of the user (Salesforce)': (point) =>
    IN_DOUBT_POINTS.includes(point) ? 'not_replayed' : 'token',
};
type Expected = 'token' | 'replay_refused' | 'not_replayed';

const BACKENDS = ['sqlite', 'postgres'] as const;
type Backend = (typeof BACKENDS)[number];
const CASES = BACKENDS.flatMap((backend) =>
  (Object.keys(CRASH_PROFILES) as CrashProfileName[]).map(
    (name) => [`${backend}, ${name}`, backend, name] as const,
  ),
);

/** A scenario of its own for one cell: the profile's provider, slow only where the crash waits on it. */
function crashScenario(backend: Backend, name: CrashProfileName, point: CrashPoint) {
  const profile = CRASH_PROFILES[name];
  return scenario({
    backend,
    provider: {
      ...profile.provider,
      latencyMs: point === 'waiting_for_provider' ? WAITING_LATENCY_MS : 0,
    },
    config: profile.config,
    fixture: { leaseMs: 1_500 },
  });
}

// Concurrent cells, each with its own scenario: a round waits mostly for a dead lease to expire.
const CELLS = CASES.flatMap(([label, backend, name]) =>
  CRASH_POINTS.map((point) => [`${label}: ${point}`, backend, name, point] as const),
);

describe.concurrent('SIGKILL at each crash point', () => {
  it.for(CELLS)('%s', async ([, backend, name, point], { expect }) => {
    const t = await crashScenario(backend, name, point);
    try {
      const round = await crashRound(t, point);
      expect(round.signal).toBe('SIGKILL');
      expect(round.redeemedBeforeNext).toBe(
        ['lease_acquired', 'intent_recorded'].includes(point) ? 0 : 1,
      );
      // Never a loop: the next caller sends at most one request, and a later one is told the
      // same without another request.
      expect(round.nextRequests).toBeLessThanOrEqual(1);
      expect(round.laterRequests).toBe(0);
      expect(round.laterOutcome).toBe(round.outcome);
      const expected = EXPECTED[name](point);
      if (expected === 'token') {
        expect(round).toMatchObject({
          outcome: 'token',
          version: 2,
          status: 'active',
          reuseViolations: 0,
          revokedFamilies: 0,
        });
      } else {
        expect(round.outcome).toBe('refresh_in_doubt');
        // The one replay, refused as reuse — or, beyond the family, no replay at all.
        expect(round.nextRequests).toBe(expected === 'replay_refused' ? 1 : 0);
        expect(round.reuseViolations).toBe(expected === 'replay_refused' ? 1 : 0);
      }
      expect(lossIsExpected(t.fixture.provider, round)).toBe(expected !== 'token');
    } finally {
      await t.cleanup();
    }
  });
});

describe.concurrent('a replay whose answer is lost (no redemption) at each in-doubt point', () => {
  const name = 'rotation, reuse detection, no grace (Auth0, Okta past its grace)';
  const cells = BACKENDS.flatMap((backend) =>
    IN_DOUBT_POINTS.map((point) => [`${backend}: ${point}`, backend, point] as const),
  );
  it.for(cells)('%s: the next replay decides', async ([, backend, point], { expect }) => {
    const t = await crashScenario(backend, name, point);
    try {
      const round = await crashRound(t, point, { loseNextAnswer: true });
      // The lost send, then one more that the provider answers: never given up on a lost answer.
      expect(round.nextRequests).toBe(2);
      expect(round.laterRequests).toBe(0);
      if (EXPECTED[name](point) === 'token') {
        expect(round).toMatchObject({ outcome: 'token', version: 2, reuseViolations: 0 });
      } else {
        expect(round).toMatchObject({ outcome: 'refresh_in_doubt', reuseViolations: 1 });
      }
      expect(round.laterOutcome).toBe(round.outcome);
    } finally {
      await t.cleanup();
    }
  });
});
