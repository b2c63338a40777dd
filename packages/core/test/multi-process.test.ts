import { once } from 'node:events';
import { join } from 'node:path';
import { NeedsReauthError, type ProtocolStep } from '@tokenwarden/core';
import { fixtureEnv, runStorm, spawnTs, type TestProviderOptions } from '@tokenwarden/testkit';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';
import { RoundsWorker } from './rounds.ts';

const workers = join(import.meta.dirname, 'workers');
let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

describe('several processes on one SQLite file', () => {
  it('4 processes × 50 callers, latency 100 ms: one redemption, one token', async () => {
    const storm = await runStorm({ processes: 4, callersPerProcess: 50, latencyMs: 100 });
    expect(storm.errors).toEqual([]);
    expect(storm.versions).toHaveLength(200);
    expect(storm.distinctTokens).toBe(1);
    expect(storm.provider).toMatchObject({ redemptions: 1, reuseViolations: 0 });
  });

  it('50 expiry rounds with rotation and reuse detection: 50 redemptions, still active', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const workers = await Promise.all(
      Array.from({ length: 3 }, () => RoundsWorker.start(s.fixture, id, 10)),
    );
    const versions = new Set<number>();
    for (let round = 1; round <= 50; round++) {
      await s.expire(id);
      for (const worker of workers) worker.send(round);
      const got = (await Promise.all(workers.map((w) => w.answer()))).flat();
      expect(got.filter((g) => g.error)).toEqual([]);
      expect(new Set(got.map((g) => g.token)).size).toBe(1);
      versions.add(got[0]!.version!);
    }
    await Promise.all(workers.map((w) => w.stop()));

    expect(versions.size).toBe(50);
    expect(s.provider.stats()).toMatchObject({
      redemptions: 50,
      reuseViolations: 0,
      revokedFamilies: 0,
    });
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });
});

describe('several machines on one Postgres', () => {
  it('8 processes with their own pools × 50 callers, latency 100 ms: one redemption, one token', async () => {
    const database = await createTestDatabase();
    try {
      const storm = await runStorm({
        processes: 8,
        callersPerProcess: 50,
        latencyMs: 100,
        databaseUrl: database.url,
      });
      expect(storm.errors).toEqual([]);
      expect(storm.versions).toHaveLength(400);
      expect(storm.distinctTokens).toBe(1);
      expect(storm.provider).toMatchObject({ redemptions: 1, reuseViolations: 0 });
    } finally {
      await database.drop();
    }
  });

  it('100 expiry rounds in 4 processes while a random one is SIGKILLed every few rounds', async () => {
    // A grace window (Xero, Atlassian) lets a leader that died after the provider answered be
    // recovered by a replay instead of a re-authorization.
    s = await scenario({
      backend: 'postgres',
      provider: { reuseGraceMs: 60_000 },
      fixture: { leaseMs: 1_500 },
    });
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const workers = await Promise.all(
      Array.from({ length: 4 }, () => RoundsWorker.start(s.fixture, id, 10)),
    );
    let kills = 0;
    for (let round = 1; round <= 100; round++) {
      await s.expire(id);
      for (const worker of workers) worker.send(round);
      const victim = round % 7 === 0 ? Math.floor(Math.random() * workers.length) : -1;
      if (victim >= 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
        await workers[victim]!.kill();
        kills++;
      }
      const survivors = workers.filter((_, i) => i !== victim);
      const got = (await Promise.all(survivors.map((w) => w.answer()))).flat();
      expect(
        got.filter((g) => g.error),
        `round ${round}`,
      ).toEqual([]);
      expect(new Set(got.map((g) => g.token)).size, `round ${round}`).toBe(1);
      if (victim >= 0) workers[victim] = await RoundsWorker.start(s.fixture, id, 10);
    }
    await Promise.all(workers.map((w) => w.stop()));

    const stats = s.provider.stats();
    expect(kills).toBe(14);
    expect(stats.reuseViolations).toBe(0);
    expect(stats.revokedFamilies).toBe(0);
    // One redemption per round, plus a grace-window replay wherever a killed leader had
    // already been answered by the provider.
    expect(stats.redemptions - stats.graceRedemptions).toBe(100);
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });
});

/**
 * The crash points of the design brief. A child takes the lease and is SIGKILLed at one point;
 * then the next caller must get a valid token, or — only where the refresh token really may have
 * been spent and a replay would be reuse — `needs_reauth` / `refresh_in_doubt`. Never a second
 * redemption outside a grace window, never a loop.
 */
type CrashPoint = ProtocolStep | 'waiting_for_provider';
const CRASH_POINTS: CrashPoint[] = [
  'lease_acquired',
  'intent_recorded',
  'waiting_for_provider',
  'response_received',
  'committed',
];
const PROVIDERS: Record<string, { options: TestProviderOptions; inDoubtAt: CrashPoint[] }> = {
  'rotation with a grace window (Xero, Atlassian)': {
    options: { rotation: true, reuseDetection: true, reuseGraceMs: 60_000 },
    inDoubtAt: [],
  },
  'rotation with reuse detection, no grace (Auth0, Salesforce)': {
    options: { rotation: true, reuseDetection: true, reuseGraceMs: 0 },
    // After the intent, the request may have left: replaying it would be reuse.
    inDoubtAt: ['intent_recorded', 'waiting_for_provider', 'response_received'],
  },
  'no rotation (Google)': { options: { rotation: false }, inDoubtAt: [] },
};

const CASES = (['sqlite', 'postgres'] as const).flatMap((backend) =>
  Object.entries(PROVIDERS).map(
    ([name, provider]) => [`${backend}, ${name}`, backend, provider] as const,
  ),
);

describe.each(CASES)('SIGKILL at each crash point: %s', (_, backend, provider) => {
  it.each(CRASH_POINTS)('%s', async (point) => {
    s = await scenario({
      backend,
      provider: { ...provider.options, latencyMs: point === 'waiting_for_provider' ? 400 : 0 },
      fixture: { leaseMs: 1_500 },
    });
    const { id } = await s.importGrant();
    const child = spawnTs(join(workers, 'crash-worker.ts'), [id], {
      ...fixtureEnv(s.fixture),
      ...(point === 'waiting_for_provider' ? {} : { TW_CRASH_AT: point }),
    });
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    if (point === 'waiting_for_provider') {
      while (s.provider.stats().tokenRequests === 0) await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 500)); // the provider finishes the redemption
    }
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
    const beforeNext = s.provider.stats();
    const redeemedBeforeCrash = ['lease_acquired', 'intent_recorded'].includes(point) ? 0 : 1;
    expect(beforeNext.redemptions).toBe(redeemedBeforeCrash);

    const outcome = await s.broker.getAccessToken(id).catch((error: unknown) => error);
    const stats = s.provider.stats();
    expect(stats.reuseViolations).toBe(0);
    expect(stats.revokedFamilies).toBe(0);
    // Never a loop: the next caller sends at most one request.
    expect(stats.tokenRequests - beforeNext.tokenRequests).toBeLessThanOrEqual(1);
    if (provider.inDoubtAt.includes(point)) {
      expect(outcome).toBeInstanceOf(NeedsReauthError);
      expect((outcome as NeedsReauthError).reason).toBe('refresh_in_doubt');
    } else {
      expect(outcome).not.toBeInstanceOf(Error);
      const token = outcome as { accessToken: string; version: number };
      expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
      expect(token.version).toBe(2);
      expect((await s.broker.getConnection(id)).status).toBe('active');
    }
  });
});
