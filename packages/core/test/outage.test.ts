import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing, RefreshUnavailableError } from '@tokenwarden/core';
import {
  openBroker,
  providerConfigFor,
  TestProvider,
  type OpenedBroker,
} from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from './test-clock.ts';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function importExpired(opened: OpenedBroker, name: string, provider: TestProvider) {
  const grant = provider.issueGrant();
  const { id } = await opened.broker.importCredential({
    provider: name,
    owner: 'o',
    accessToken: grant.access_token,
    refreshToken: grant.refresh_token,
    expiresIn: 0,
  });
  return id;
}

describe('provider outage', () => {
  it.each([
    ['with the circuit breaker', undefined],
    ['without it (control)', { threshold: Number.MAX_SAFE_INTEGER }],
  ])('%s', async (label, breaker) => {
    const withBreaker = breaker === undefined;
    const dir = mkdtempSync(join(tmpdir(), 'tw-outage-'));
    const down = await TestProvider.start();
    const up = await TestProvider.start({ latencyMs: 20 });
    const clock = new TestClock();
    const opened = await openBroker(
      {
        dbPath: join(dir, 'tw.sqlite'),
        keys: KeyRing.generate('k').serialize(),
        provider: providerConfigFor(down, 'down'),
        maxWaitMs: 400,
        backoff: { baseMs: 10, maxMs: 50 },
        breaker,
      },
      { clock },
    );
    opened.broker.configureProvider(providerConfigFor(up, 'up'));
    cleanup.push(async () => {
      await opened.close();
      await Promise.all([down.close(), up.close()]);
      rmSync(dir, { recursive: true, force: true });
    });

    const downIds = await Promise.all(
      Array.from({ length: 20 }, () => importExpired(opened, 'down', down)),
    );
    const upIds = await Promise.all(
      Array.from({ length: 5 }, () => importExpired(opened, 'up', up)),
    );
    down.injectFailures({ kind: 'server_error', status: 503, times: 1_000_000 });

    const outcomes = await Promise.allSettled(
      [...downIds, ...upIds].map((id) => opened.broker.getAccessToken(id)),
    );
    const downOutcomes = outcomes.slice(0, 20);
    const upOutcomes = outcomes.slice(20);
    for (const outcome of downOutcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(RefreshUnavailableError);
    }
    expect(upOutcomes.map((o) => o.status)).toEqual(Array(5).fill('fulfilled'));
    expect(up.stats().redemptions).toBe(5);
    // With the breaker, the first concurrent wave (one per credential, plus retries of those
    // answered before the fifth failure came back) opens it and nothing more goes out before the
    // 1 s cooldown ends. The control, with backoff alone, goes past that bound: how far past
    // depends on how many retries this machine fits into 400 ms, so only the bound is asserted.
    const breakerBound = 20 + 5;
    const duringOutage = down.stats().tokenRequests;
    if (withBreaker) expect(duringOutage, label).toBeLessThanOrEqual(breakerBound);
    else expect(duringOutage, label).toBeGreaterThan(breakerBound);
    for (const id of downIds) {
      expect((await opened.broker.getConnection(id)).status).toBe('active');
    }

    if (!withBreaker) return;
    // Recovery: the outage ends, the breaker's probe succeeds, every credential refreshes.
    down.clearFailures();
    clock.advance(1_000); // the first cooldown is 1 s: skipped, not slept
    const recovered = await Promise.all(downIds.map((id) => opened.broker.getAccessToken(id)));
    expect(recovered.map((t) => t.version)).toEqual(Array(20).fill(2));
    expect(down.stats().redemptions).toBe(20);
    expect(down.stats().reuseViolations).toBe(0);
  });

  it('honours Retry-After for the whole provider', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-outage-'));
    const limited = await TestProvider.start();
    const opened = await openBroker({
      dbPath: join(dir, 'tw.sqlite'),
      keys: KeyRing.generate('k').serialize(),
      provider: providerConfigFor(limited, 'limited'),
      maxWaitMs: 300,
    });
    cleanup.push(async () => {
      await opened.close();
      await limited.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const ids = await Promise.all(
      Array.from({ length: 10 }, () => importExpired(opened, 'limited', limited)),
    );
    limited.injectFailures({ kind: 'rate_limited', retryAfterSeconds: 5 });
    const outcomes = await Promise.allSettled(ids.map((id) => opened.broker.getAccessToken(id)));
    // Requests that were already on their way when the 429 came back may land; after it,
    // nobody asks again before Retry-After.
    const requestsAfterFirstWave = limited.stats().tokenRequests;
    await Promise.allSettled(ids.map((id) => opened.broker.getAccessToken(id)));
    expect(limited.stats().tokenRequests).toBe(requestsAfterFirstWave);
    const rejected = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
    expect(rejected.length).toBeGreaterThanOrEqual(1);
    for (const r of rejected) {
      expect(r.reason).toBeInstanceOf(RefreshUnavailableError);
      expect((r.reason as RefreshUnavailableError).retryAfterMs).toBeGreaterThan(4_000);
    }
  });
});
