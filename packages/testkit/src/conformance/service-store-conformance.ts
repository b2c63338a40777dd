import type { NewAuditEvent, ServiceStore, Store } from '@tokenwarden/core';
import { InvalidInputError } from '@tokenwarden/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { columnsOf, newCredential } from './records.ts';
import { describeOverviewQueries } from './service-store-overview.ts';

/** A store that carries its `ServiceStore`, as `openSqliteStore` and `openPostgresStore` do. */
export type StoreWithService = Store & { readonly service: ServiceStore };

export interface ServiceStoreUnderTest {
  store: StoreWithService;
  /** A second, independent handle on the same database (another replica's view). */
  openAnother(): Promise<StoreWithService>;
  cleanup(): Promise<void>;
}

/**
 * The behaviour every `ServiceStore` must have, next to the `Store` it shares a database with:
 * `describeServiceStoreConformance('sqlite', async () => ({ store, openAnother, cleanup }))`.
 */
export function describeServiceStoreConformance(
  name: string,
  setup: () => Promise<ServiceStoreUnderTest>,
): void {
  describe(`ServiceStore conformance: ${name}`, () => {
    let t: ServiceStoreUnderTest;
    let store: StoreWithService;
    let service: ServiceStore;
    beforeEach(async () => {
      t = await setup();
      store = t.store;
      service = store.service;
      await store.migrate();
    });
    afterEach(async () => {
      await t.cleanup();
    });
    describeOverviewQueries(() => ({ store, service }));

    describe('providers', () => {
      it('creates, replaces and lists providers, keeping the creation time', async () => {
        const created = await service.putProvider({
          name: 'slack',
          config: '{"v":1}',
          clientSecret: 'sealed-1',
        });
        expect(created).toMatchObject({
          name: 'slack',
          config: '{"v":1}',
          clientSecret: 'sealed-1',
        });
        expect(created.updatedAt).toBe(created.createdAt);
        expect(Math.abs(created.createdAt - (await store.now()))).toBeLessThan(5_000);
        await service.putProvider({ name: 'acme', config: '{}', clientSecret: null });

        const replaced = await service.putProvider({
          name: 'slack',
          config: '{"v":2}',
          clientSecret: null,
        });
        expect(replaced).toMatchObject({ name: 'slack', config: '{"v":2}', clientSecret: null });
        expect(replaced.createdAt).toBe(created.createdAt);
        expect(replaced.updatedAt).toBeGreaterThanOrEqual(created.updatedAt);
        expect(await service.getProvider('slack')).toEqual(replaced);
        expect(await service.getProvider('nope')).toBeUndefined();
        expect((await service.listProviders()).map((p) => p.name)).toEqual(['acme', 'slack']);
      });

      it('reseals a client secret only if it is still the one expected', async () => {
        await service.putProvider({ name: 'p', config: '{}', clientSecret: 'old' });
        expect(await service.resealProviderSecret('p', 'other', 'new')).toBe(false);
        expect(await service.resealProviderSecret('missing', 'old', 'new')).toBe(false);
        expect(await service.resealProviderSecret('p', 'old', 'new')).toBe(true);
        expect((await service.getProvider('p'))!.clientSecret).toBe('new');
        expect(await service.resealProviderSecret('p', 'old', 'newer')).toBe(false);
      });
    });

    describe('service clients', () => {
      const grants = [
        { owner: '*', provider: 'slack', actions: ['token.read' as const] },
        { owner: 'u1', provider: '*', actions: ['connections.read' as const] },
      ];

      it('inserts, reads, lists and refuses a duplicate id', async () => {
        const client = await service.insertClient({
          id: 'c2',
          name: 'worker',
          keyHash: 'h2',
          grants,
        });
        expect(client).toEqual({
          id: 'c2',
          name: 'worker',
          keyHash: 'h2',
          grants,
          certificate: null,
          createdAt: client.createdAt,
          revokedAt: null,
        });
        expect(Math.abs(client.createdAt - (await store.now()))).toBeLessThan(5_000);
        await service.insertClient({ id: 'c1', name: 'cron', keyHash: 'h1', grants: [] });
        await expect(
          service.insertClient({ id: 'c1', name: 'again', keyHash: 'h3', grants: [] }),
        ).rejects.toThrow();
        expect(await service.getClient('c2')).toEqual(client);
        expect(await service.getClient('nope')).toBeUndefined();
        const listed = await service.listClients();
        expect(listed.map((c) => [c.id, c.name, c.grants])).toEqual([
          ['c1', 'cron', []],
          ['c2', 'worker', grants],
        ]);
      });

      it('keeps a client certificate binding', async () => {
        const sha256 = Array.from({ length: 32 }, () => 'AB').join(':');
        await service.insertClient({
          id: 'c1',
          name: 'a',
          keyHash: 'h',
          grants,
          certificate: { sha256 },
        });
        await service.insertClient({
          id: 'c2',
          name: 'b',
          keyHash: 'h',
          grants,
          certificate: { subjectCn: 'worker-1' },
        });
        expect((await service.getClient('c1'))?.certificate).toEqual({ sha256 });
        expect((await service.listClients()).map((c) => c.certificate)).toEqual([
          { sha256 },
          { subjectCn: 'worker-1' },
        ]);
      });

      it('revokes once, and still returns the revoked client', async () => {
        await service.insertClient({ id: 'c1', name: 'w', keyHash: 'h', grants });
        expect(await service.revokeClient('c1')).toBe(true);
        const revoked = await service.getClient('c1');
        expect(revoked!.revokedAt).not.toBeNull();
        expect(revoked!.revokedAt!).toBeGreaterThanOrEqual(revoked!.createdAt);
        expect(await service.revokeClient('c1')).toBe(false);
        expect((await service.getClient('c1'))!.revokedAt).toBe(revoked!.revokedAt);
        expect(await service.revokeClient('missing')).toBe(false);
      });

      it('reads a client revoked through another handle as revoked at once', async () => {
        await service.insertClient({ id: 'c1', name: 'w', keyHash: 'h', grants });
        for (let i = 0; i < 3; i++) expect((await service.getClient('c1'))!.revokedAt).toBeNull();
        const other = await t.openAnother();
        try {
          expect(await other.service.revokeClient('c1')).toBe(true);
          expect((await service.getClient('c1'))!.revokedAt).not.toBeNull();
        } finally {
          await other.close();
        }
      });
    });

    describe('audit', () => {
      const event = (overrides: Partial<NewAuditEvent> = {}): NewAuditEvent => ({
        requestId: 'r',
        actor: 'client-a',
        action: 'token.read',
        connectionId: 'conn-1',
        owner: 'u1',
        provider: 'slack',
        outcome: 'ok',
        detail: null,
        ...overrides,
      });

      it('appends a batch in order, newest first on read, with the database clock', async () => {
        const before = await store.now();
        await service.appendAudit([
          event({ requestId: 'r1' }),
          event({ requestId: 'r2', at: 1_000, detail: '{"version":2}' }),
          event({ requestId: 'r3', outcome: 'forbidden', connectionId: null, owner: null }),
        ]);
        await service.appendAudit([]);
        const after = await store.now();
        const events = await service.listAudit({ limit: 10 });
        expect(events.map((e) => e.requestId)).toEqual(['r3', 'r2', 'r1']);
        expect(events[0]!.seq).toBeGreaterThan(events[1]!.seq);
        expect(events[1]!.seq).toBeGreaterThan(events[2]!.seq);
        expect(events[1]).toEqual({
          ...event({ requestId: 'r2', detail: '{"version":2}' }),
          at: 1_000,
          seq: events[1]!.seq,
        });
        expect(events[0]).toMatchObject({ outcome: 'forbidden', connectionId: null, owner: null });
        for (const e of [events[0]!, events[2]!]) {
          expect(e.at).toBeGreaterThanOrEqual(before);
          expect(e.at).toBeLessThanOrEqual(after);
        }
      });

      it('writes a batch all or nothing', async () => {
        const broken = event({ requestId: 'r2', actor: null as unknown as string });
        await expect(
          service.appendAudit([event({ requestId: 'r1' }), broken, event({ requestId: 'r3' })]),
        ).rejects.toThrow();
        // The same with every time given (the server's batches, see `#compiledAuditInsert`).
        await expect(
          service.appendAudit([event({ at: 1 }), { ...broken, at: 2 }, event({ at: 3 })]),
        ).rejects.toThrow();
        expect(await service.listAudit({ limit: 10 })).toEqual([]);
      });

      it('keeps every column of every event in its place, batch after batch', async () => {
        const batch = (n: number, from: number) =>
          Array.from({ length: n }, (_, i) => ({
            at: from + i,
            requestId: `req-${from + i}`,
            actor: `actor-${from + i}`,
            action: `action-${from + i}`,
            connectionId: i % 2 ? null : `conn-${from + i}`,
            owner: i % 3 ? `owner-${from + i}` : null,
            provider: `provider-${from + i}`,
            outcome: `outcome-${from + i}`,
            detail: i % 2 ? `{"n":${from + i}}` : null,
          }));
        const written = [...batch(3, 0), ...batch(64, 100), ...batch(3, 200)];
        await service.appendAudit(written.slice(0, 3));
        await service.appendAudit(written.slice(3, 67));
        await service.appendAudit(written.slice(67));
        const read = (await service.listAudit({ limit: 100 })).reverse();
        expect(read.map(({ seq: _seq, ...e }) => e)).toEqual(written);
      });

      it('writes a batch too big for one statement whole, in order, or not at all', async () => {
        // 8,000 events × 9 columns: more parameters than SQLite or Postgres take in one statement.
        const many = Array.from({ length: 8_000 }, (_, i) => event({ requestId: `r${i}` }));
        const broken = [...many.slice(0, 7_900), event({ outcome: null as unknown as string })];
        await expect(service.appendAudit(broken)).rejects.toThrow();
        expect(await service.listAudit({ limit: 10 })).toEqual([]);

        await service.appendAudit(many);
        const read: string[] = [];
        let before: number | undefined;
        for (;;) {
          const page = await service.listAudit({ limit: 1000, before });
          if (page.length === 0) break;
          read.push(...page.map((e) => e.requestId));
          before = page[page.length - 1]!.seq;
        }
        expect(read).toEqual(many.map((e) => e.requestId).reverse());
      });

      it('writes a big batch with its own times whole, its short last statement in the transaction', async () => {
        // 1,010 events: a 1,000-row statement, then a 10-row one (the compiled insert).
        const timed = Array.from({ length: 1_010 }, (_, i) => event({ requestId: `t${i}`, at: i }));
        const broken = [
          ...timed.slice(0, 1_005),
          { ...timed[1_005]!, actor: null as unknown as string },
        ];
        await expect(service.appendAudit(broken)).rejects.toThrow();
        expect(await service.listAudit({ limit: 10 })).toEqual([]);
        await service.appendAudit(timed);
        const newest = await service.listAudit({ limit: 20 });
        expect(newest.map((e) => [e.requestId, e.at])).toEqual(
          timed
            .slice(-20)
            .reverse()
            .map((e) => [e.requestId, e.at]),
        );
      });

      it('filters by connection, actor and time, and pages with the seq cursor', async () => {
        await service.appendAudit([
          event({ requestId: 'a1', at: 100 }),
          event({ requestId: 'b1', at: 200, actor: 'client-b', connectionId: 'conn-2' }),
          event({ requestId: 'a2', at: 300 }),
          event({ requestId: 'b2', at: 400, actor: 'client-b' }),
          event({ requestId: 'a3', at: 500, connectionId: 'conn-2' }),
        ]);
        const ids = async (query: Parameters<ServiceStore['listAudit']>[0]) =>
          (await service.listAudit(query)).map((e) => e.requestId);
        expect(await ids({ limit: 10, connectionId: 'conn-2' })).toEqual(['a3', 'b1']);
        expect(await ids({ limit: 10, actor: 'client-b' })).toEqual(['b2', 'b1']);
        expect(await ids({ limit: 10, since: 300 })).toEqual(['a3', 'b2', 'a2']);
        expect(
          await ids({ limit: 10, actor: 'client-a', since: 200, connectionId: 'conn-1' }),
        ).toEqual(['a2']);
        expect(await ids({ limit: 2 })).toEqual(['a3', 'b2']);

        const pages = await everyPage(
          (before?: number) => service.listAudit({ limit: 2, before }),
          (last) => last.seq,
          (e) => e.requestId,
        );
        expect(pages).toEqual([['a3', 'b2'], ['a2', 'b1'], ['a1']]);
      });

      it('refuses a limit outside 1-1000 with invalid_input', async () => {
        for (const limit of [0, -1, 1.5, 1001, Number.NaN]) {
          const error = await service.listAudit({ limit }).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(InvalidInputError);
          expect((error as InvalidInputError).code).toBe('invalid_input');
        }
      });
    });

    describe('settings', () => {
      it('sets a value only once', async () => {
        expect(await service.getSetting('admin_key_hash')).toBeUndefined();
        expect(await service.setSettingIfAbsent('admin_key_hash', 'h1')).toBe(true);
        expect(await service.setSettingIfAbsent('admin_key_hash', 'h2')).toBe(false);
        expect(await service.getSetting('admin_key_hash')).toBe('h1');
      });

      it('replaces a value only while it is the expected one; puts one whatever it was', async () => {
        await service.setSettingIfAbsent('k', 'v1');
        expect(await service.replaceSetting('k', 'v0', 'v2')).toBe(false);
        expect(await service.replaceSetting('k', 'v1', 'v2')).toBe(true);
        expect(await service.replaceSetting('absent', 'v1', 'v2')).toBe(false);
        expect(await service.getSetting('k')).toBe('v2');
        await service.putSetting('k', 'v3');
        await service.putSetting('new', 'n1');
        expect([await service.getSetting('k'), await service.getSetting('new')]).toEqual([
          'v3',
          'n1',
        ]);
      });

      it('lets exactly one of many concurrent writers set it, across handles', async () => {
        const other = await t.openAnother();
        const attempts = Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? other : store).service.setSettingIfAbsent('s', `v${i}`),
        );
        const results = await Promise.all(attempts);
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        expect(await other.service.getSetting('s')).toBe(`v${winner}`);
        await other.close();
      });
    });

    describe('listCredentials', () => {
      const rows: [string, string, string][] = [
        ['c1', 'alice', 'slack'],
        ['c2', 'alice', 'google'],
        ['c3', 'bob', 'slack'],
        ['c4', 'bob', 'google'],
        ['c5', 'carol', 'xero'],
      ];
      beforeEach(async () => {
        for (const [id, owner, provider] of rows)
          await store.insertCredential(newCredential(id, { owner, provider }));
        // c3 can no longer be refreshed.
        await store.acquireLease('c3', { expectedVersion: 1, leaseId: 'L', leaseMs: 10_000 });
        await store.commitNeedsReauth('c3', 'L', { reason: 'invalid_grant', lastError: 'x' });
      });
      const ids = async (query: Partial<Parameters<ServiceStore['listCredentials']>[0]>) =>
        (await service.listCredentials({ limit: 100, ...query })).map((r) => r.id);

      it('lists by id with owner, provider and status filters, secrets still sealed', async () => {
        const all = await service.listCredentials({ limit: 100 });
        expect(all.map((r) => r.id)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
        expect(all[0]).toEqual(columnsOf((await store.getCredential('c1'))!.record));
        expect(await ids({ owner: 'alice' })).toEqual(['c1', 'c2']);
        expect(await ids({ provider: 'slack' })).toEqual(['c1', 'c3']);
        expect(await ids({ owner: 'bob', provider: 'google' })).toEqual(['c4']);
        expect(await ids({ status: 'needs_reauth' })).toEqual(['c3']);
        expect(await ids({ status: 'active', provider: 'slack' })).toEqual(['c1']);
        expect(await ids({ owner: 'nobody' })).toEqual([]);
      });

      it('pages by id after a cursor', async () => {
        const pages = await everyPage(
          (afterId?: string) => service.listCredentials({ limit: 2, afterId }),
          (last) => last.id,
          (r) => r.id,
        );
        expect(pages).toEqual([['c1', 'c2'], ['c3', 'c4'], ['c5']]);
        expect(await ids({ afterId: 'c2', owner: 'bob' })).toEqual(['c3', 'c4']);
      });

      it('keeps only rows some grant covers, with * as a wildcard', async () => {
        expect(await ids({ grants: [{ owner: 'alice', provider: 'slack' }] })).toEqual(['c1']);
        expect(await ids({ grants: [{ owner: 'alice', provider: '*' }] })).toEqual(['c1', 'c2']);
        expect(await ids({ grants: [{ owner: '*', provider: 'google' }] })).toEqual(['c2', 'c4']);
        expect(
          await ids({
            grants: [
              { owner: 'carol', provider: '*' },
              { owner: 'bob', provider: 'slack' },
            ],
          }),
        ).toEqual(['c3', 'c5']);
        expect(await ids({ grants: [{ owner: '*', provider: '*' }] })).toHaveLength(5);
        expect(await ids({ grants: [{ owner: '*', provider: '*' }], owner: 'bob' })).toEqual([
          'c3',
          'c4',
        ]);
        // Filters narrow within the grants, never widen them.
        expect(
          await ids({ grants: [{ owner: 'alice', provider: '*' }], provider: 'google' }),
        ).toEqual(['c2']);
        expect(await ids({ grants: [{ owner: 'alice', provider: '*' }], owner: 'bob' })).toEqual(
          [],
        );
        // '*' is a wildcard only as a whole value, and grant values are data, not patterns.
        expect(await ids({ grants: [{ owner: 'al%', provider: '*' }] })).toEqual([]);
      });

      it('matches nothing for an empty list of grants', async () => {
        expect(await ids({ grants: [] })).toEqual([]);
        expect(await ids({ grants: [], owner: 'alice' })).toEqual([]);
      });

      it('refuses a limit outside 1-1000 with invalid_input', async () => {
        const error = await service.listCredentials({ limit: 5000 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidInputError);
      });
    });
  });
}

/** Follows a keyset-paged listing from the start until it answers an empty page: each page's keys. */
async function everyPage<Item, Cursor, Key>(
  page: (cursor?: Cursor) => Promise<Item[]>,
  cursorAfter: (last: Item) => Cursor,
  key: (item: Item) => Key,
): Promise<Key[][]> {
  const pages: Key[][] = [];
  for (let items = await page(); items.length > 0; items = await page(cursorAfter(items.at(-1)!)))
    pages.push(items.map(key));
  return pages;
}
