import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '@tokenwarden/core';
import {
  describeServiceStoreConformance,
  describeStoreConformance,
  newCredential,
} from '@tokenwarden/testkit/conformance';
import { describe, expect, it } from 'vitest';

/** A fresh SQLite file per test; every handle opened on it is closed at cleanup. */
async function sqliteUnderTest() {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-'));
  const path = join(dir, 'store.sqlite');
  const opened = [openSqliteStore({ path })];
  return {
    dir,
    store: opened[0]!,
    async openAnother() {
      const store = openSqliteStore({ path });
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.allSettled(opened.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeStoreConformance('sqlite', sqliteUnderTest);
describeServiceStoreConformance('sqlite', sqliteUnderTest);

describe('SQLite store upgrade', () => {
  it('adds the service tables to a database created before them', async () => {
    const t = await sqliteUnderTest();
    try {
      await t.store.migrate();
      await t.store.insertCredential(newCredential('c1'));
      await t.store.close();
      // Back to the schema of a release that only had credentials.
      const path = join(t.dir, 'store.sqlite');
      const raw = new Database(path);
      raw.exec(`drop table providers; drop table service_clients; drop table audit_events;
                drop table settings; delete from tokenwarden_migrations where name = '0002_service'`);
      raw.close();

      const upgraded = await t.openAnother();
      await upgraded.migrate();
      expect((await upgraded.getCredential('c1'))?.record.version).toBe(1);
      expect(await upgraded.service.setSettingIfAbsent('s', 'v')).toBe(true);
      await upgraded.service.appendAudit([
        {
          requestId: 'r',
          actor: 'admin',
          action: 'x',
          connectionId: null,
          owner: null,
          provider: null,
          outcome: 'ok',
          detail: null,
        },
      ]);
      expect(await upgraded.service.listAudit({ limit: 1 })).toHaveLength(1);
    } finally {
      await t.cleanup();
    }
  });
});
