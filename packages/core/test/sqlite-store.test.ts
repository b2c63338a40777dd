import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '@tokenwarden/core';
import {
  describeKeyStoreConformance,
  describeServiceStoreConformance,
  describeStoreConformance,
  newCredential,
} from '@tokenwarden/testkit/conformance';
import { describe, expect, it } from 'vitest';
import { TestClock } from './test-clock.ts';

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

const AN_AUDIT_EVENT = {
  requestId: 'r',
  actor: 'admin',
  action: 'x',
  connectionId: null,
  owner: null,
  provider: null,
  outcome: 'ok',
  detail: null,
};

describeStoreConformance('sqlite', sqliteUnderTest);
describeServiceStoreConformance('sqlite', sqliteUnderTest);
describeKeyStoreConformance('sqlite', sqliteUnderTest);

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
      await upgraded.service.appendAudit([AN_AUDIT_EVENT]);
      expect(await upgraded.service.listAudit({ limit: 1 })).toHaveLength(1);
    } finally {
      await t.cleanup();
    }
  });
});

describe('SQLite read cache', () => {
  it('answers a repeated read from memory while nothing is written, with the clock of now', async () => {
    const t = await sqliteUnderTest();
    try {
      await t.store.migrate();
      await t.store.insertCredential(newCredential('c1'));
      await t.store.service.insertClient({ id: 'k1', name: 'w', keyHash: 'h', grants: [] });
      const first = await t.store.getCredential('c1');
      const client = await t.store.service.getClient('k1');
      const before = Date.now();
      const second = await t.store.getCredential('c1');
      expect(second!.record).toBe(first!.record);
      expect(second!.now).toBeGreaterThanOrEqual(before);
      expect(Object.isFrozen(second!.record)).toBe(true);
      expect(await t.store.service.getClient('k1')).toBe(client);
      // An audit append changes no row the cache holds (one row or many, with or without `at`):
      // the reads stay in memory.
      await t.store.service.appendAudit([AN_AUDIT_EVENT]);
      await t.store.service.appendAudit([{ ...AN_AUDIT_EVENT, at: 1 }]);
      await t.store.service.appendAudit(Array.from({ length: 70 }, () => AN_AUDIT_EVENT));
      expect((await t.store.getCredential('c1'))!.record).toBe(first!.record);
      expect(await t.store.service.getClient('k1')).toBe(client);
      // Any other write is a write: the next read goes to the database again.
      await t.store.service.insertClient({ id: 'k2', name: 'w', keyHash: 'h', grants: [] });
      const third = await t.store.getCredential('c1');
      expect(third!.record).not.toBe(first!.record);
      expect(third!.record).toEqual(first!.record);
    } finally {
      await t.cleanup();
    }
  });

  it('sees a revocation written by another process at once', async () => {
    const t = await sqliteUnderTest();
    try {
      await t.store.migrate();
      await t.store.service.insertClient({ id: 'k1', name: 'w', keyHash: 'h', grants: [] });
      for (let i = 0; i < 3; i++)
        expect((await t.store.service.getClient('k1'))!.revokedAt).toBeNull();
      execFileSync(process.execPath, [
        '-e',
        `const db = new (require('better-sqlite3'))(process.argv[1]);
         db.pragma('busy_timeout = 5000');
         db.prepare("update service_clients set revoked_at = 1 where id = 'k1'").run();`,
        join(t.dir, 'store.sqlite'),
      ]);
      expect((await t.store.service.getClient('k1'))!.revokedAt).toBe(1);
    } finally {
      await t.cleanup();
    }
  });
});

describe('SQLite read cache with arrivals announced', () => {
  it('sees a write committed before a request arrived, and one from an earlier turn', async () => {
    const t = await sqliteUnderTest();
    const other = new Database(join(t.dir, 'store.sqlite'));
    try {
      await t.store.migrate();
      await t.store.service.insertClient({ id: 'k1', name: 'w', keyHash: 'h', grants: [] });
      other.pragma('busy_timeout = 5000');
      const revoke = other.prepare("update service_clients set revoked_at = ? where id = 'k1'");
      const revokedAt = async () => (await t.store.service.getClient('k1'))!.revokedAt;
      const arrived = t.store.announceArrivals();
      arrived();
      expect(await revokedAt()).toBeNull();
      // Committed by another handle in this same turn of the event loop: the next request sees it.
      revoke.run(1);
      arrived();
      expect(await revokedAt()).toBe(1);
      // A read in a later turn sees what was committed before it, request or not.
      revoke.run(2);
      await new Promise((resolve) => setImmediate(resolve));
      expect(await revokedAt()).toBe(2);
    } finally {
      other.close();
      await t.cleanup();
    }
  });
});

describe('SQLite checkpoints', () => {
  it('copies the log back into the database file from its own thread, and stops on close', async () => {
    const t = await sqliteUnderTest();
    try {
      await t.store.migrate();
      const file = join(t.dir, 'store.sqlite');
      const before = statSync(file).size;
      const events = Array.from({ length: 1000 }, (_, i) => ({
        requestId: `r${i}`,
        actor: 'a'.repeat(200),
        action: 'token.read',
        connectionId: null,
        owner: null,
        provider: null,
        outcome: 'ok',
        detail: null,
      }));
      for (let i = 0; i < 10; i++) await t.store.service.appendAudit(events);
      // Only a checkpoint writes to the database file itself; the store's connection does not.
      for (let waited = 0; statSync(file).size < before + 2_000_000; waited += 20) {
        if (waited > 10_000) throw new Error('the log was never copied back');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await t.store.close();
      // Closed: the last connection gone, SQLite removed the log.
      expect(() => statSync(`${file}-wal`)).toThrow();
    } finally {
      await t.cleanup();
    }
  });
});

describe('SQLite waits', () => {
  it('time out on the injected clock, so a test moves time instead of sleeping through it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-'));
    const clock = new TestClock({ frozen: true });
    const store = openSqliteStore({ path: join(dir, 'store.sqlite'), clock });
    try {
      await store.migrate();
      const { record } = await store.insertCredential(newCredential('c1'));
      let settled = false;
      // Ten minutes: were the wait timed by the real clock, the test would run out first.
      const waiting = store.waitForChange('c1', record, 600_000).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(settled).toBe(false); // the frozen clock has not moved
      clock.advance(600_000);
      await expect(waiting).resolves.toBeUndefined();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite file modes', () => {
  it('creates the database, its WAL and its shared memory file 0600, whatever the umask', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-mode-'));
    const path = join(dir, 'tokenwarden.sqlite');
    const umask = process.umask(0o002);
    try {
      const store = openSqliteStore({ path });
      await store.migrate();
      await store.service.setSettingIfAbsent('x', 'y');
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        expect(statSync(file).mode & 0o777, file).toBe(0o600);
      }
      await store.close();
    } finally {
      process.umask(umask);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves the mode of an existing database file alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-mode-'));
    const path = join(dir, 'tokenwarden.sqlite');
    try {
      writeFileSync(path, '');
      chmodSync(path, 0o640);
      const store = openSqliteStore({ path });
      await store.migrate();
      expect(statSync(path).mode & 0o777).toBe(0o640);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
