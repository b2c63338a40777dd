import { WebhookEndpoints } from '@tokenwarden/core';
import { newCredential, refreshed } from '@tokenwarden/testkit/conformance';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

// The outbox in both stores: an event exists exactly when the change it reports was committed,
// is fanned out to the endpoints that take its type, and is pruned once delivered and old.

let s: Scenario | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

describe.each(['sqlite', 'postgres'] as const)('the outbox on %s', (backend) => {
  async function setUp() {
    s = await scenario({ backend });
    const endpoints = new WebhookEndpoints({
      store: s.store.webhooks,
      keyRing: s.keyRing,
      allowPrivate: true,
    });
    const all = (await endpoints.create({ url: 'https://a.example/hooks' })).endpoint.id;
    const reauthOnly = (
      await endpoints.create({
        url: 'https://b.example/hooks',
        events: ['connection.needs_reauth'],
      })
    ).endpoint.id;
    const types = async (endpoint: string) =>
      (await s!.store.webhooks.listDeliveries(endpoint, { limit: 100 }))
        .map((d) => d.eventType)
        .reverse();
    return { store: s.store, all, reauthOnly, types };
  }

  it('a fenced commit that loses its lease writes no event; one that wins writes one', async () => {
    const { store, all, reauthOnly, types } = await setUp();
    await store.insertCredential(newCredential('c1'));
    await store.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
    const failure = { reason: 'invalid_grant', lastError: 'invalid_grant' };
    expect(await store.commitNeedsReauth('c1', 'other', failure)).toBeUndefined();
    expect(await types(all)).toEqual(['connection.created']);
    expect(await store.commitNeedsReauth('c1', 'L', failure)).toBeDefined();
    expect(
      await store.reauthorize('c1', 1, { ...refreshed(), refreshTtlMs: null }),
    ).toBeUndefined();
    await store.reauthorize('c1', 2, { ...refreshed(), refreshTtlMs: null });
    expect(await store.deleteCredential('c1')).toBe(true);
    expect(await store.deleteCredential('c1')).toBe(false);
    expect(await types(all)).toEqual([
      'connection.created',
      'connection.needs_reauth',
      'connection.reauthorized',
      'connection.deleted',
    ]);
    expect(await types(reauthOnly)).toEqual(['connection.needs_reauth']);
  });

  it('refresh_failing once per run of failures, refresh_recovered when tokens come again', async () => {
    const { store, all, types } = await setUp();
    await store.insertCredential(newCredential('c1'));
    const fail = async (leaseId: string, version: number, reportFailing: boolean) => {
      await store.acquireLease('c1', { expectedVersion: version, leaseId, leaseMs: 10_000 });
      const failure = { lastError: 'server_error', retryAfterMs: 0, keepIntent: false };
      return store.commitFailure('c1', leaseId, {
        ...failure,
        providerFailed: true,
        reportFailing,
      });
    };
    const first = await fail('A', 1, false);
    expect(first!.record.failingSince).not.toBeNull();
    const second = await fail('B', 1, true);
    expect(second!.record).toMatchObject({ failingSince: first!.record.failingSince });
    expect(second!.record.failingReportedAt).not.toBeNull();
    await store.acquireLease('c1', { expectedVersion: 1, leaseId: 'C', leaseMs: 10_000 });
    const back = await store.commitRefresh('c1', 'C', { ...refreshed(), reportRecovered: true });
    expect(back!.record).toMatchObject({ failingSince: null, failingReportedAt: null });
    expect(await types(all)).toEqual([
      'connection.created',
      'connection.refresh_failing',
      'connection.refresh_recovered',
    ]);
  });

  it('prunes finished deliveries and their events, never a pending one', async () => {
    const { store, all } = await setUp();
    await store.insertCredential(newCredential('c1'));
    await store.insertCredential(newCredential('c2'));
    const [claimed] = await store.webhooks.claimDeliveries({
      limit: 1,
      leaseId: 'W',
      leaseMs: 10_000,
      excludeEndpoints: [],
    });
    expect(claimed!.endpointId).toBeDefined();
    await store.webhooks.finishAttempt(claimed!.seq, 'W', { status: 'delivered', lastStatus: 200 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    // c1's delivery and event go; c2's event stays, its delivery still pending.
    expect(await store.webhooks.prune(0)).toEqual({ deliveries: 1, events: 1 });
    const left = await store.webhooks.listDeliveries(all, { limit: 10 });
    expect(left).toEqual([expect.objectContaining({ connectionId: 'c2', status: 'pending' })]);
  });
});
