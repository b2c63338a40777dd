import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * Copies the write-ahead log back into the database file from a thread of its own.
 *
 * SQLite checkpoints on the committing connection by default: every few thousand rows, one
 * commit copies megabytes and syncs the file while the event loop waits (the hand-out latency's
 * p99 went from 5 to 10 ms under load). Here the store's connection never checkpoints, and a
 * worker thread with its own connection runs a PASSIVE checkpoint every `intervalMs`: it never
 * waits for a lock and never blocks a reader or writer, in this process or another. Should the
 * thread fail, the connection checkpoints by itself again (SQLite's default), so the log never
 * grows without bound.
 *
 * The thread's code is a string of plain JavaScript so that it runs wherever the store does
 * (sources under tsx or vitest, or built), with nothing to compile.
 */
export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;

  constructor(database: BetterSqlite3.Database, path: string, intervalMs = 200) {
    database.pragma('wal_autocheckpoint = 0');
    const fallBack = () => {
      if (database.open) database.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    };
    this.#worker = new Worker(THREAD, {
      eval: true,
      workerData: { driver: require.resolve('better-sqlite3'), path, intervalMs },
    });
    // The thread must never keep the process alive on its own.
    this.#worker.unref();
    this.#worker.on('error', fallBack);
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', (code) => {
        if (code !== 0) fallBack();
        resolve();
      }),
    );
  }

  /** Stops the thread after a last checkpoint; resolves once it has closed its connection. */
  async stop(): Promise<void> {
    // Waited for now: the process must not end before the thread has closed its connection.
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }
}

const require = createRequire(import.meta.url);

/** Pages of log after which SQLite checkpoints on commit when left to itself. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const database = new Database(workerData.path);
const checkpoint = () => {
  try {
    database.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    // Another process is checkpointing right now: its checkpoint does the work.
    if (error.code !== 'SQLITE_BUSY' && error.code !== 'SQLITE_LOCKED') throw error;
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  database.close();
  parentPort.close();
});
`;
