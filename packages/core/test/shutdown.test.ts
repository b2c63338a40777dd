// A broker and its scheduler shutting down: nothing left leased that another process would have to
// wait out, no intent lost (invariant 6), no call left hanging.
import { RefreshUnavailableError } from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

function leaseAndIntent(sql: Scenario['sql'], id: string) {
  return sql.prepare('select lease_id, intent_hash from credentials where id = ?').get(id) as {
    lease_id: string | null;
    intent_hash: string | null;
  };
}

describe('CredentialBroker.close', () => {
  it('aborts a leader waiting for the provider: lease handed back, intent kept, caller answered retryable', async () => {
    s = await scenario({ provider: { latencyMs: 20_000 }, fixture: { leaseMs: 30_000 } });
    const { id } = await s.importGrant({ expiresIn: 0 });
    const call = s.broker.getAccessToken(id);
    const outcome = call.then(
      () => 'answered',
      (error: unknown) => error,
    );
    await until(() => s!.provider.stats().tokenRequests === 1);
    expect(leaseAndIntent(s.sql, id).lease_id).not.toBeNull();

    await s.broker.close();
    const error = await outcome;
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect((error as RefreshUnavailableError).lastError).toBe('shutting_down');
    expect((error as RefreshUnavailableError).retryAfterMs).toBeGreaterThan(0);
    // Another process may take the lease at once, and will find the intent to recover from.
    const row = leaseAndIntent(s.sql, id);
    expect(row.lease_id).toBeNull();
    expect(row.intent_hash).not.toBeNull();

    // A closed broker takes no lease and sends nothing.
    await expect(s.broker.getAccessToken(id)).rejects.toThrow(/shutting_down/);
    await expect(s.broker.reportRejected(id, 1)).rejects.toThrow(/shutting_down/);
    expect(s.provider.stats().tokenRequests).toBe(1);
    expect(s.broker.closed).toBe(true);
  });
});

describe('RefreshScheduler.stop', () => {
  it('hands back the leases of claimed credentials whose refresh has not started', async () => {
    s = await scenario({ provider: { latencyMs: 20_000 }, fixture: { leaseMs: 30_000 } });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await s.importGrant({ expiresIn: 0 })).id);
    const scheduler = s.broker.scheduler({ concurrencyPerProvider: 1, idleIntervalMs: 60_000 });
    scheduler.start();
    // One refresh at the provider, the other two claimed and queued behind it.
    await until(() => s!.provider.stats().tokenRequests === 1);
    const leased = ids.filter((id) => leaseAndIntent(s!.sql, id).lease_id !== null);
    expect(leased).toHaveLength(3);

    await Promise.all([scheduler.stop(), s.broker.close()]);
    const rows = ids.map((id) => leaseAndIntent(s!.sql, id));
    expect(rows.filter((row) => row.lease_id !== null)).toHaveLength(0);
    // The one that was out keeps its intent; the two never started recorded none.
    expect(rows.filter((row) => row.intent_hash !== null)).toHaveLength(1);
    expect(s.provider.stats().tokenRequests).toBe(1);
  });
});
