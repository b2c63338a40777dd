import { NeedsReauthError, RefreshUnavailableError } from '@tokenwarden/core';
import { crashLeader, runStorm, type CrashPoint } from '@tokenwarden/testkit';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';
import { RoundsWorker } from './rounds.ts';

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

  it(
    '60 expiry rounds in 4 processes while a random one is SIGKILLed every few rounds',
    { timeout: 180_000 },
    async () => {
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
      for (let round = 1; round <= 60; round++) {
        await s.expire(id);
        for (const worker of workers) worker.send(round);
        const victim = round % 5 === 0 ? Math.floor(Math.random() * workers.length) : -1;
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
      expect(kills).toBe(12);
      expect(stats.reuseViolations).toBe(0);
      expect(stats.revokedFamilies).toBe(0);
      // One redemption per round, plus a grace-window replay wherever a killed leader had
      // already been answered by the provider.
      expect(stats.redemptions - stats.graceRedemptions).toBe(60);
      expect((await s.broker.getConnection(id)).status).toBe('active');
    },
  );
});

const BACKENDS = ['sqlite', 'postgres'] as const;

/** A child that asks for a token of connection `id` and is SIGKILLed at `point`. */
async function crashAt(point: CrashPoint, id: string): Promise<void> {
  const { signal } = await crashLeader(s, id, point);
  expect(signal).toBe('SIGKILL');
  const redeemedBeforeCrash = ['lease_acquired', 'intent_recorded'].includes(point) ? 0 : 1;
  expect(s.provider.stats().redemptions).toBe(redeemedBeforeCrash);
}

function expectValidToken(outcome: unknown, version: number): void {
  expect(outcome).not.toBeInstanceOf(Error);
  const token = outcome as { accessToken: string; version: number };
  expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
  expect(token.version).toBe(version);
}

function expectInDoubt(outcome: unknown): void {
  expect(outcome).toBeInstanceOf(NeedsReauthError);
  expect((outcome as NeedsReauthError).reason).toBe('refresh_in_doubt');
}

describe.each(BACKENDS)('a stale intent while the access token still works: %s', (backend) => {
  const noGrace = { rotation: true, reuseDetection: true, reuseGraceMs: 0 };

  it('is not decided while the token works; once it has expired, a replay the provider never received renews it', async () => {
    s = await scenario({ backend, provider: noGrace, fixture: { leaseMs: 1_500 } });
    // Under the broker's 30 s skew: the child refreshes it, the next caller wants to.
    const { id } = await s.importGrant({ expiresIn: 20 });
    await crashAt('intent_recorded', id);

    const kept = await s.broker.getAccessToken(id);
    expect(kept.version).toBe(1);
    expect(await s.broker.getAccessToken(id, { minTtlSeconds: 600 })).toMatchObject({ version: 1 });
    expect(s.provider.stats().tokenRequests).toBe(0);
    expect((await s.broker.getConnection(id)).lastError).toBe('replay_deferred');

    await s.expire(id);
    expectValidToken(await s.broker.getAccessToken(id), 2);
    expect(s.provider.stats()).toMatchObject({ tokenRequests: 1, reuseViolations: 0 });
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });

  it('a rejected token ends the wait: one replay, refused where the provider had redeemed it', async () => {
    s = await scenario({ backend, provider: noGrace, fixture: { leaseMs: 1_500 } });
    const { id } = await s.importGrant({ expiresIn: 20 });
    await crashAt('response_received', id);

    const kept = await s.broker.getAccessToken(id);
    expect(kept.version).toBe(1);
    expect(s.provider.stats().tokenRequests).toBe(1); // the child's
    expectInDoubt(await s.broker.reportRejected(id, kept.version).catch((e: unknown) => e));
    expect(s.provider.stats()).toMatchObject({ tokenRequests: 2, reuseViolations: 1 });
    expectInDoubt(await s.broker.getAccessToken(id).catch((e: unknown) => e));
    expect(s.provider.stats().tokenRequests).toBe(2);
  });

  it('replays lost to hangs keep the credential: it stays active, retried after the backoff, until an answer decides', async () => {
    s = await scenario({
      backend,
      provider: noGrace,
      config: { requestTimeoutMs: 100 },
      // The wait outlasts the crashed child's lease (1.5 s), then sees replays lost.
      fixture: { leaseMs: 1_500, maxWaitMs: 3_000 },
    });
    const { id } = await s.importGrant();
    await crashAt('intent_recorded', id);
    s.provider.injectFailures({ kind: 'hang', times: 1_000 });
    const unavailable = await s.broker.getAccessToken(id).catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(RefreshUnavailableError);
    // More than one replay, each lost, and paced: the backoff and the breaker (5 failures open
    // it for 1 s, then 2 s) leave room for a handful in the 1.5 s left to the caller, not a loop.
    const lost = s.provider.stats().tokenRequests;
    expect(lost).toBeGreaterThanOrEqual(2);
    expect(lost).toBeLessThanOrEqual(10);
    expect(s.provider.stats().redemptions).toBe(0);
    expect(await s.broker.getConnection(id)).toMatchObject({ status: 'active', version: 1 });

    s.provider.clearFailures();
    // The breaker may still be open from the hangs: ask again when it says to.
    let answer: unknown = unavailable;
    for (let i = 0; i < 5 && answer instanceof RefreshUnavailableError; i++) {
      const wait = answer.retryAfterMs ?? 100;
      await new Promise((resolve) => setTimeout(resolve, wait));
      answer = await s.broker.getAccessToken(id).catch((e: unknown) => e);
    }
    expectValidToken(answer, 2);
    expect(s.provider.stats()).toMatchObject({ redemptions: 1, reuseViolations: 0 });
  });

  it('a lost replay that had redeemed: the next replay is refused, refresh_in_doubt', async () => {
    s = await scenario({ backend, provider: noGrace, fixture: { leaseMs: 1_500 } });
    const { id } = await s.importGrant();
    await crashAt('intent_recorded', id);
    // The replay is redeemed, and its answer lost (a 2xx that cannot be read); the next replay
    // meets reuse detection: with no grace window that loss could not be avoided.
    s.provider.injectFailures({ kind: 'malformed_json', afterRedeem: true, times: 1 });
    expectInDoubt(await s.broker.getAccessToken(id).catch((e: unknown) => e));
    expect(s.provider.stats()).toMatchObject({
      tokenRequests: 2,
      redemptions: 1,
      reuseViolations: 1,
    });
    expectInDoubt(await s.broker.getAccessToken(id).catch((e: unknown) => e));
    expect(s.provider.stats().tokenRequests).toBe(2);
  });
});
