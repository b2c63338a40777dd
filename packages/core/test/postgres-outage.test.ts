import { join } from 'node:path';
import { KeyRing } from '@tokenwarden/core';
import {
  openBroker,
  providerConfigFor,
  runWorkers,
  TestProvider,
  fixtureEnv,
  type BrokerFixture,
} from '@tokenwarden/testkit';
import { startPostgres, type PostgresServer } from '@tokenwarden/testkit/postgres';
import { afterEach, describe, expect, it } from 'vitest';

let server: PostgresServer | undefined;
let provider: TestProvider | undefined;
afterEach(async () => {
  await provider?.close();
  await server?.close();
});

describe('Postgres stopped and restarted in the middle of a storm', () => {
  it('callers get a token or refresh_unavailable; afterwards everything is active, nothing redeemed twice', async () => {
    server = await startPostgres(); // a server of its own: this test stops it
    // Rotation with reuse detection and no grace window: a second redemption of any refresh
    // token would show as a reuse violation and a revoked family.
    provider = await TestProvider.start({ latencyMs: 100 });
    const fixture: BrokerFixture = {
      dbPath: '',
      databaseUrl: server.url,
      keys: KeyRing.generate('k').serialize(),
      provider: providerConfigFor(provider),
      leaseMs: 5_000,
      maxWaitMs: 2_000,
      backoff: { baseMs: 20, maxMs: 200 },
    };
    const setup = await openBroker(fixture);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const grant = provider.issueGrant();
      const info = await setup.broker.importCredential({
        provider: 'test',
        owner: `owner-${i}`,
        accessToken: grant.access_token,
        refreshToken: grant.refresh_token,
        expiresIn: 0,
      });
      ids.push(info.id);
    }
    await setup.close();

    const storm = runWorkers<{ tokens: number; errors: Record<string, number> }>({
      script: join(import.meta.dirname, 'workers', 'churn-worker.ts'),
      args: ['6000', '10', ids.join(',')],
      env: fixtureEnv(fixture),
      count: 4,
      barrier: true,
    });
    // Stop the server while refreshes are in flight, keep it down for 2 s, start it again.
    while (provider.stats().redemptions < 20) await new Promise((r) => setTimeout(r, 20));
    const refreshesBeforeOutage = provider.stats().redemptions;
    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await server.start();
    const results = await storm;

    expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0, 0]);
    const errors: Record<string, number> = {};
    for (const r of results) {
      for (const [code, n] of Object.entries(r.result!.errors))
        errors[code] = (errors[code] ?? 0) + n;
    }
    // The only error callers ever saw is the typed, retryable one.
    expect(Object.keys(errors).filter((code) => code !== 'refresh_unavailable')).toEqual([]);
    expect(errors.refresh_unavailable ?? 0).toBeGreaterThan(0); // the outage was felt
    expect(results.reduce((n, r) => n + r.result!.tokens, 0)).toBeGreaterThan(0);
    expect(provider.stats().redemptions).toBeGreaterThan(refreshesBeforeOutage);

    // Convergence: every credential is active with a token the provider accepts.
    const after = await openBroker(fixture);
    try {
      for (const id of ids) {
        const token = await after.broker.getAccessToken(id);
        expect((await after.broker.getConnection(id)).status).toBe('active');
        expect(provider.isAccessTokenValid(token.accessToken)).toBe(true);
      }
    } finally {
      await after.close();
    }
    const stats = provider.stats();
    expect(stats.reuseViolations).toBe(0);
    expect(stats.revokedFamilies).toBe(0);
    expect(Math.max(...Object.values(stats.redemptionsByToken))).toBe(1);
  });
});
