import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '@tokenwarden/core';
import {
  describeServiceStoreConformance,
  describeStoreConformance,
} from '@tokenwarden/testkit/conformance';

/** A fresh SQLite file per test; every handle opened on it is closed at cleanup. */
async function sqliteUnderTest() {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-'));
  const path = join(dir, 'store.sqlite');
  const opened = [openSqliteStore({ path })];
  return {
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
