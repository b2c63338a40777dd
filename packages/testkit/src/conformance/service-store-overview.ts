// The ServiceStore queries behind the admin console: search and "ends before" on the listing,
// counts per provider and status, overdue refreshes, audit events per minute, the latest event
// per connection, and deleting a provider. Part of `describeServiceStoreConformance`.
import type { NewAuditEvent, ServiceStore, Store } from '@tokenwarden/core';
import { InvalidInputError } from '@tokenwarden/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { newCredential } from './records.ts';

export function describeOverviewQueries(
  handles: () => { store: Store; service: ServiceStore },
): void {
  describe('console queries', () => {
    let store: Store;
    let service: ServiceStore;
    beforeEach(async () => {
      ({ store, service } = handles());
      const hour = 3_600_000;
      await store.insertCredential(newCredential('c1', { owner: 'Alice_1', provider: 'slack' }));
      // No refresh token: it ends with its access token, in an hour.
      await store.insertCredential(
        newCredential('c2', { owner: 'bob', refreshToken: null, accessTtlMs: hour }),
      );
      // Its refresh token ends in two hours; its refresh is overdue by a minute.
      await store.insertCredential(
        newCredential('c3', { owner: 'carol%', refreshTtlMs: 2 * hour, refreshInMs: -60_000 }),
      );
      await store.acquireLease('c1', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
      await store.commitNeedsReauth('c1', 'L', { reason: 'invalid_grant', lastError: 'x' });
    });
    const ids = async (query: Partial<Parameters<ServiceStore['listCredentials']>[0]>) =>
      (await service.listCredentials({ limit: 100, ...query })).map((r) => r.id);

    it('searches (case ignored, % and _ literal), filters by end, counts, finds overdue refreshes', async () => {
      expect(await ids({ search: 'alice' })).toEqual(['c1']);
      expect(await ids({ search: 'E_1' })).toEqual(['c1']);
      expect(await ids({ search: '%' })).toEqual(['c3']);
      expect(await ids({ search: '_' })).toEqual(['c1']);
      expect(await ids({ search: 'C2' })).toEqual(['c2']);
      expect(await ids({ search: 'o', afterId: 'c2' })).toEqual(['c3']);

      // Ends before a time: the refresh token, or without one the access token.
      const now = await store.now();
      expect(await ids({ endsBefore: now + 30 * 60_000 })).toEqual([]);
      expect(await ids({ endsBefore: now + 90 * 60_000 })).toEqual(['c2']);
      expect(await ids({ endsBefore: now + 3 * 3_600_000 })).toEqual(['c2', 'c3']);
      expect(
        await ids({ endsBefore: now + 3 * 3_600_000, status: 'active', owner: 'bob' }),
      ).toEqual(['c2']);

      expect(await service.countCredentials()).toEqual([
        { provider: 'p', status: 'active', count: 2 },
        { provider: 'slack', status: 'needs_reauth', count: 1 },
      ]);
      const overdue = await service.overdueRefreshes();
      expect(overdue.count).toBe(1);
      expect(overdue.oldestMs).toBeGreaterThanOrEqual(60_000);
      expect(overdue.oldestMs).toBeLessThan(120_000);
    });

    it('counts audit events per minute, finds the latest per connection; deletes a provider', async () => {
      const minute = 60_000;
      const t0 = 1_700_000_040_000; // a whole minute
      const event = (at: number, fields: Partial<NewAuditEvent> = {}): NewAuditEvent => ({
        at,
        requestId: 'r',
        actor: 'system',
        action: 'connection.refresh',
        connectionId: 'c1',
        owner: null,
        provider: 'slack',
        outcome: 'ok',
        detail: null,
        ...fields,
      });
      await service.appendAudit([
        event(t0 - 1),
        event(t0 + 1),
        event(t0 + 59_999, { connectionId: 'c2' }),
        event(t0 + minute, { outcome: 'refresh_unavailable' }),
        event(t0 + minute + 5, { provider: 'p', connectionId: 'c3' }),
        event(t0 + minute, { action: 'token.read' }),
      ]);
      const counts = await service.countAudit({
        action: 'connection.refresh',
        since: t0,
        bucketMs: minute,
      });
      expect(counts).toEqual(
        expect.arrayContaining([
          { provider: 'slack', outcome: 'ok', bucket: t0, count: 2 },
          { provider: 'slack', outcome: 'refresh_unavailable', bucket: t0 + minute, count: 1 },
          { provider: 'p', outcome: 'ok', bucket: t0 + minute, count: 1 },
        ]),
      );
      expect(counts).toHaveLength(3);
      expect(counts[0]!.bucket).toBe(t0); // oldest first
      await expect(
        service.countAudit({ action: 'x', since: 0, bucketMs: 0.5 }),
      ).rejects.toBeInstanceOf(InvalidInputError);

      const latest = await service.latestAudit({
        action: 'connection.refresh',
        outcome: 'ok',
        connectionIds: ['c1', 'c2', 'c9'],
      });
      expect(latest).toEqual(
        new Map([
          ['c1', t0 + 1],
          ['c2', t0 + 59_999],
        ]),
      );
      const none = { action: 'x', outcome: 'ok', connectionIds: [] };
      expect(await service.latestAudit(none)).toEqual(new Map());

      await service.putProvider({ name: 'gone', config: '{}', clientSecret: null });
      expect(await service.deleteProvider('gone')).toBe(true);
      expect(await service.getProvider('gone')).toBeUndefined();
      expect(await service.deleteProvider('gone')).toBe(false);
    });
  });
}
