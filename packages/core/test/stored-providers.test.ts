import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CredentialBroker,
  KeyRing,
  openPostgresStore,
  openSqliteStore,
  ProviderRegistry,
  UnknownProviderError,
  type KyselyStore,
} from '@tokenwarden/core';
import { providerConfigFor, TestProvider } from '@tokenwarden/testkit';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** A broker whose providers live only in the database, put there by another replica (an admin). */
describe.each(['sqlite', 'postgres'] as const)(
  'a broker with a provider store on %s',
  (backend) => {
    let provider: TestProvider;
    let store: KyselyStore;
    let broker: CredentialBroker;
    let cleanup: () => Promise<void>;
    const keyRing = KeyRing.generate('k1');

    beforeEach(async () => {
      provider = await TestProvider.start();
      if (backend === 'sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'tw-stored-providers-'));
        store = openSqliteStore({ path: join(dir, 'tw.sqlite') });
        cleanup = async () => rmSync(dir, { recursive: true, force: true });
      } else {
        const database = await createTestDatabase();
        store = openPostgresStore({ connectionString: database.url, poolMax: 4 });
        cleanup = () => database.drop();
      }
      await store.migrate();
      const admin = new ProviderRegistry({ keyRing, store: store.service });
      await admin.put(providerConfigFor(provider, 'stored'));
      broker = new CredentialBroker({
        store,
        keyRing,
        providerStore: store.service,
        leaseMs: 2_000,
      });
    });
    afterEach(async () => {
      await store.close();
      await provider.close();
      await cleanup();
    });

    const importExpired = async (providerName = 'stored') => {
      const grant = provider.issueGrant();
      return broker.importCredential({
        provider: providerName,
        owner: 'user-1',
        accessToken: grant.access_token,
        refreshToken: grant.refresh_token,
        expiresIn: 0,
      });
    };

    it('imports and refreshes a credential whose provider exists only in the store', async () => {
      const { id } = await importExpired();
      const tokens = await Promise.all(Array.from({ length: 5 }, () => broker.getAccessToken(id)));
      expect(new Set(tokens.map((t) => t.version))).toEqual(new Set([2]));
      expect(provider.isAccessTokenValid(tokens[0]!.accessToken)).toBe(true);
      expect(provider.stats().redemptions).toBe(1);
      // The stored, sealed client secret authenticated the client.
      expect(provider.stats().tokenRequests).toBe(1);
    });

    it('lets the scheduler refresh it too', async () => {
      const { id } = await importExpired();
      const scheduler = broker.scheduler();
      expect(await scheduler.tick()).toBe(1);
      expect((await broker.getConnection(id)).version).toBe(2);
      expect(provider.stats().redemptions).toBe(1);
    });

    it('refuses a provider in neither place, leaving no lease behind', async () => {
      const error = await importExpired('nowhere').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownProviderError);

      // A connection whose provider was stored by a replica that has since lost it.
      const { id } = await importExpired();
      const forgetful = new CredentialBroker({
        store,
        keyRing,
        providerStore: Object.assign(Object.create(store.service) as typeof store.service, {
          getProvider: async () => undefined,
        }),
      });
      const refused = await forgetful.getAccessToken(id).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(UnknownProviderError);
      expect((await store.getCredential(id))!.record.leaseId).toBeNull();
      expect(provider.stats().tokenRequests).toBe(0);
    });

    it('shows the stored providers through broker.providers', async () => {
      await broker.providers.put({ ...providerConfigFor(provider, 'second'), scopes: ['a'] });
      expect((await broker.providers.list()).map((p) => p.name)).toEqual(['second', 'stored']);
    });
  },
);
