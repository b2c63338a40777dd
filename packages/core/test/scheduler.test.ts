import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing } from '@tokenwarden/core';
import {
  openBroker,
  providerConfigFor,
  TestProvider,
  type BrokerFixture,
} from '@tokenwarden/testkit';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterEach, describe, expect, it } from 'vitest';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function setup(
  count: number,
  backend: 'sqlite' | 'postgres',
  overrides: Partial<BrokerFixture> = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'tw-scheduler-'));
  const provider = await TestProvider.start();
  const database = backend === 'postgres' ? await createTestDatabase() : undefined;
  const fixture: BrokerFixture = {
    dbPath: join(dir, 'tw.sqlite'),
    databaseUrl: database?.url,
    keys: KeyRing.generate('k').serialize(),
    provider: providerConfigFor(provider),
    ...overrides,
  };
  const refreshedBy = [0, 0];
  const instances = await Promise.all(
    [0, 1].map((i) =>
      openBroker(fixture, {
        onEvent: (event) => {
          if (event.type === 'refreshed') refreshedBy[i]!++;
        },
      }),
    ),
  );
  cleanup.push(async () => {
    await Promise.all(instances.map((i) => i.close()));
    await provider.close();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const grant = provider.issueGrant();
    const info = await instances[0]!.broker.importCredential({
      provider: 'test',
      owner: `owner-${i}`,
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      expiresIn: 0, // due for refresh at once
    });
    ids.push(info.id);
  }
  return { provider, instances, ids, refreshedBy, fixture };
}

describe.each(['sqlite', 'postgres'] as const)('proactive scheduler on %s', (backend) => {
  it('two instances refresh 2,000 due credentials, each exactly once', async () => {
    const { provider, instances, ids, refreshedBy } = await setup(2_000, backend);
    const schedulers = instances.map((i) =>
      i.broker.scheduler({ batchSize: 100, idleIntervalMs: 50 }),
    );
    for (const s of schedulers) s.start();
    const deadline = Date.now() + 60_000;
    while (provider.stats().redemptions < 2_000 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Let anything claimed twice by mistake show up before stopping.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await Promise.all(schedulers.map((s) => s.stop()));

    const stats = provider.stats();
    expect(stats.redemptions).toBe(2_000);
    // Both instances took part; together they refreshed each credential once.
    expect(refreshedBy[0]! + refreshedBy[1]!).toBe(2_000);
    expect(Math.min(...refreshedBy)).toBeGreaterThan(0);
    expect(stats.reuseViolations).toBe(0);
    expect(Object.values(stats.redemptionsByToken).every((n) => n === 1)).toBe(true);
    const versions = await Promise.all(ids.map((id) => instances[1]!.broker.getConnection(id)));
    expect(versions.every((c) => c.version === 2 && c.status === 'active')).toBe(true);
    // Callers now find fresh tokens: no waiting, no provider call.
    await instances[0]!.broker.getAccessToken(ids[0]!);
    expect(provider.stats().tokenRequests).toBe(2_000);
  });

  it('leaves credentials alone until they are due, and skips those backing off', async () => {
    // The backoff has full jitter, a delay in [0, base]: with the default 500 ms base, one of
    // three could be over before the second tick on a busy machine. Ten minutes: never.
    const backoff = { baseMs: 600_000, maxMs: 600_000 };
    const { provider, instances, ids } = await setup(3, backend, { backoff });
    const [fresh] = await Promise.all([
      instances[0]!.broker.importCredential({
        provider: 'test',
        owner: 'fresh',
        accessToken: 'at-fresh',
        refreshToken: 'rt-fresh',
        expiresIn: 3_600,
      }),
    ]);
    provider.injectFailures({ kind: 'server_error', times: 3 });
    const scheduler = instances[0]!.broker.scheduler({ idleIntervalMs: 10 });
    expect(await scheduler.tick()).toBe(3); // all three fail, and back off
    expect(await scheduler.tick()).toBe(0); // backing off: not claimed again yet
    expect(provider.stats().tokenRequests).toBe(3);
    const info = await instances[0]!.broker.getConnection(ids[0]!);
    expect(info).toMatchObject({ status: 'active', failures: 1, lastError: 'server_error' });
    expect((await instances[0]!.broker.getConnection(fresh.id)).version).toBe(1);
  });

  it('a refresh queued for its slot when the circuit opens is handed back, not sent', async () => {
    const breaker = { threshold: 1, cooldownMs: 600_000, maxCooldownMs: 600_000 };
    const { provider, instances, ids } = await setup(6, backend, { breaker });
    provider.injectFailures({ kind: 'server_error', times: 6 });
    const scheduler = instances[0]!.broker.scheduler({ batchSize: 6, concurrencyPerProvider: 2 });
    expect(await scheduler.tick()).toBe(6);
    // The first to get a slot were sent and failed, which opened the circuit; the rest waited
    // for a slot and were handed back when they got one.
    const sent = provider.stats().tokenRequests;
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(sent).toBeLessThanOrEqual(2);
    const rows = await Promise.all(ids.map((id) => instances[0]!.broker.getConnection(id)));
    expect(rows.every((row) => row.status === 'active' && row.version === 1)).toBe(true);
    const errors = rows.map((row) => row.lastError);
    expect(errors.filter((e) => e === 'server_error')).toHaveLength(sent);
    expect(errors.filter((e) => e === 'provider_unavailable')).toHaveLength(6 - sent);
    // Due again, but not claimed by this instance while its circuit is open.
    expect(await scheduler.tick()).toBe(0);
    expect(provider.stats().tokenRequests).toBe(sent);
  });

  it('half open, the scheduler sends one probe, not a batch', async () => {
    const breaker = { threshold: 1, cooldownMs: 100, maxCooldownMs: 100 };
    const backoff = { baseMs: 1, maxMs: 1 };
    const { provider, instances, fixture } = await setup(6, backend, { breaker, backoff });
    // A probe that hangs holds the one half-open slot until its deadline.
    instances[0]!.broker.configureProvider({ ...fixture.provider, requestTimeoutMs: 300 });
    provider.injectFailures({ kind: 'server_error', times: 1 });
    expect(await instances[0]!.broker.scheduler({ batchSize: 1 }).tick()).toBe(1);
    expect(provider.stats().tokenRequests).toBe(1); // failed: the circuit is open
    await new Promise((resolve) => setTimeout(resolve, 150)); // the cooldown passes: half open
    provider.clearFailures();
    provider.injectFailures({ kind: 'hang', times: 100 });
    const scheduler = instances[0]!.broker.scheduler({ batchSize: 6, concurrencyPerProvider: 6 });
    expect(await scheduler.tick()).toBe(6);
    expect(provider.stats().tokenRequests).toBe(2); // the probe, which hung: open again
  });

  it('keep-alive: a refresh token that dies unused is refreshed within ¾ of its idle lifetime', async () => {
    const { instances, fixture } = await setup(0, backend);
    const { broker, store } = instances[0]!;
    broker.configureProvider({ ...fixture.provider, refreshTokenIdleSeconds: 600 });
    const info = await broker.importCredential({
      provider: 'test',
      owner: 'idle',
      accessToken: 'at-long-lived',
      refreshToken: 'rt-idle',
      expiresIn: 30 * 24 * 3600, // the access token alone would not be refreshed for weeks
    });
    const { record, now } = (await store.getCredential(info.id))!;
    expect(record.refreshAt! - now).toBeLessThanOrEqual(450_000);
    expect(record.refreshAt! - now).toBeGreaterThan(440_000);
  });
});
