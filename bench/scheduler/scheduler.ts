// Scheduler benchmark: N credentials due over a window, I RefreshScheduler instances (one child
// process and one connection pool each, like separate machines) on an embedded Postgres, against
// a zero-latency TestProvider in this process. Prints the refresh rate, the lag from a
// credential's `refresh_at` to the commit of its refresh (both on the database clock), peak RSS
// per instance, the provider's count of redemptions and reuse violations, and where the CPU went.
//
// Usage: npm run bench:scheduler -- [N ...] [options]        (default N: 10000 100000)
//   --rate R        credentials falling due per second; the window is N / R s (default 1000, the
//                   target rate: the run shows whether it is sustained, and at what lag)
//   --window-s S    or: a fixed window, e.g. 600 (the issue's 10 minutes) or 0 (all due at once)
//   --due D         of the N credentials, only D fall due (default N); the other N - D stay in the
//                   table, not due for a day: the scheduler must leave them alone, and its memory
//                   must not grow with them (N = 1,000,000 with a share of it refreshed)
//   --instances I   scheduler processes (default 2)
//   --batch B --concurrency C --idle-ms M   RefreshScheduler options (default 64, 64, 10)
//   --pool P        Postgres connections per instance (default 8)
//   --warmup W      credentials refreshed before the measurement starts (default 10000), so that
//                   it sees JIT-compiled code, as a long-running process would
//   --limit-s T     abort the whole run after T seconds (default 600)
//   --statements 0  without pg_stat_statements (on by default, with planning time; costs a little)
//
// The defaults keep concurrency >= batch size: then the scheduler never finds its provider
// saturated, which would make it send a claim that excludes the only provider (an empty result
// that still scans every due row) and then sleep for idle-ms with work waiting.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  KeyRing,
  openPostgresStore,
  sealField,
  type RefreshSchedulerOptions,
} from '@tokenwarden/core';
import { spawnTs, TestProvider, type ProviderStats } from '@tokenwarden/testkit';
import { startPostgres, type PostgresServer } from '@tokenwarden/testkit/postgres';
import pg from 'pg';
// Types only: a value import would run the instance script in this process.
import type { InstanceConfig, InstanceProgress, InstanceResult } from './instance.ts';

const INSTANCE = join(import.meta.dirname, 'instance.ts');
/** Rows per INSERT while seeding. */
const SEED_BATCH = 5_000;
/** access_expires_at is this long after refresh_at, like the engine's default proactive skew. */
const EXPIRY_AFTER_DUE_MS = 60_000;
/** Rows are seeded this far in the future, then moved to their real due times in one UPDATE. */
const PARKED_MS = 86_400_000;
/** Id prefixes of the measured rows and of the warm-up rows. */
const MEASURED = 'conn_bench';
const WARMUP = 'conn_warm';
/** Id prefix of the rows that stay in the table without falling due (`--due`). */
const IDLE = 'conn_idle';

interface Options {
  counts: number[];
  due: number | undefined;
  rate: number;
  windowS: number | undefined;
  instances: number;
  poolMax: number;
  scheduler: Required<RefreshSchedulerOptions>;
  limitS: number;
  warmup: number;
  statements: boolean;
}

function parseArgs(argv: string[]): Options {
  const flags = new Map<string, number>();
  const counts: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('--')) flags.set(arg.slice(2), Number(argv[++i]));
    else counts.push(Number(arg));
  }
  const known = [
    'rate',
    'due',
    'window-s',
    'instances',
    'batch',
    'concurrency',
    'idle-ms',
    'pool',
    'limit-s',
    'warmup',
    'statements',
  ];
  for (const [name, value] of flags) {
    if (!known.includes(name)) throw new TypeError(`unknown option --${name}`);
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`--${name} expects a number`);
  }
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) throw new TypeError('N must be >= 1');
  if (flags.get('rate') === 0)
    throw new TypeError('--rate must be > 0 (all due at once: --window-s 0)');
  return {
    counts: counts.length > 0 ? counts : [10_000, 100_000],
    due: flags.get('due'),
    rate: flags.get('rate') ?? 1_000,
    windowS: flags.get('window-s'),
    instances: flags.get('instances') ?? 2,
    poolMax: flags.get('pool') ?? 8,
    scheduler: {
      batchSize: flags.get('batch') ?? 64,
      concurrencyPerProvider: flags.get('concurrency') ?? 64,
      idleIntervalMs: flags.get('idle-ms') ?? 10,
    },
    limitS: flags.get('limit-s') ?? 600,
    warmup: flags.get('warmup') ?? 10_000,
    statements: flags.get('statements') !== 0,
  };
}

const options = parseArgs(process.argv.slice(2));
const deadline = Date.now() + options.limitS * 1000;
const children = new Set<ChildProcess>();
// The last resort if cleanup itself hangs: children and Postgres die with this process (the
// testkit stops its servers at exit, children exit when their stdin closes).
setTimeout(
  () => {
    console.error(`aborted: still running ${options.limitS + 60} s after the start`);
    for (const child of children) child.kill('SIGKILL');
    process.exit(2);
  },
  (options.limitS + 60) * 1000,
).unref();
process.once('SIGINT', () => {
  for (const child of children) child.kill('SIGKILL');
  process.exit(130);
});

console.log(
  `scheduler bench: ${options.instances} instances × ${JSON.stringify(options.scheduler)}, ` +
    `pool ${options.poolMax}/instance, ` +
    (options.windowS === undefined ? `due at ${options.rate}/s` : `due over ${options.windowS} s`) +
    `, zero-latency provider (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version})`,
);

const server = await startPostgres();
try {
  if (options.statements) await enableStatementStats(server);
  for (const n of options.counts) {
    if (Date.now() > deadline) break;
    printReport(await runOnce(server, n));
  }
} finally {
  for (const child of children) child.kill('SIGKILL');
  await server.close();
}

interface Report {
  n: number;
  /** How many of the N fell due (the rest stay idle in the table). */
  due: number;
  windowMs: number;
  seedS: number;
  timedOut: boolean;
  wallS: number;
  instances: InstanceResult[];
  provider: ProviderStats & { measuredRedemptions: number };
  db: {
    never: number;
    /** Warm-up rows not refreshed exactly once. */
    warmupOff: number;
    /** Rows never due that were touched anyway (must be 0). */
    idleTouched: number;
    once: number;
    twice: number;
    inactive: number;
    failures: number;
    lag: { p50: number; p99: number; max: number };
    firstDue: number;
    lastDue: number;
    lastCommit: number;
    /** Commits per second of the run, and how many were due but not refreshed at its start. */
    seconds: { commits: number; backlog: number }[];
    statements: { calls: number; totalMs: number; planMs: number; rows: number; query: string }[];
  };
  cpuS: {
    instances: number;
    postgres: number | undefined;
    provider: number;
    /** Busy time of the machine, and time its virtual CPUs waited for the host (steal). */
    total: number;
    steal: number;
  };
  /** > 0: the first measured rows fell due before the measurement started (setup too slow). */
  setupOverrunMs: number;
  /** Mean number of active server processes per wait event ('CPU': none) over the run. */
  waitEvents: Map<string, number>;
}

async function runOnce(server: PostgresServer, n: number): Promise<Report> {
  const name = `sched_${n}_${Date.now()}`;
  await withClient(server.url, (c) => c.query(`create database ${name}`));
  const url = server.url.replace(/\/postgres$/, `/${name}`);
  const provider = await TestProvider.start(); // zero latency, rotation and reuse detection on
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const running: Child[] = [];
  try {
    const store = openPostgresStore({ connectionString: url });
    await store.migrate();
    await store.close();
    if (options.statements) await db.query('create extension pg_stat_statements');

    const keyRing = KeyRing.generate('bench');
    const due = Math.min(n, options.due ?? n);
    const windowMs = Math.round((options.windowS ?? due / options.rate) * 1000);
    const seedStarted = performance.now();
    const parked = (await dbNow(db)) + PARKED_MS;
    await seed(db, provider, keyRing, { prefix: MEASURED, count: due, parked, windowMs });
    await seed(db, provider, keyRing, { prefix: IDLE, count: n - due, parked, windowMs: 0 });
    await seed(db, provider, keyRing, {
      prefix: WARMUP,
      count: options.warmup,
      parked,
      windowMs: 0,
    });
    const seedS = (performance.now() - seedStarted) / 1000;

    const config: InstanceConfig = {
      databaseUrl: url,
      keys: keyRing.serialize(),
      provider: {
        name: 'test',
        tokenUrl: provider.tokenUrl,
        clientId: provider.clientId,
        clientSecret: provider.clientSecret,
      },
      poolMax: options.poolMax,
      scheduler: options.scheduler,
    };
    for (let i = 0; i < options.instances; i++) running.push(await spawnInstance(config));
    let timedOut = false;
    const refreshedAtLeast = async (count: number) => {
      while (sum(running.map((c) => c.progress.refreshed)) < count) {
        if (Date.now() > deadline || running.some((c) => c.exited)) return false;
        await sleep(100);
      }
      return true;
    };

    // Warm-up: the instances refresh the warm-up rows, due now, before anything is measured, so
    // that the measurement sees JIT-compiled code, as a long-running process would.
    await shift(db, WARMUP, (await dbNow(db)) - parked);
    for (const child of running) child.send('GO');
    if (!(await refreshedAtLeast(options.warmup))) timedOut = true;

    // The measured rows go to their real due times, the first one `lead` ms from now: enough to
    // vacuum away the old row versions. Their lag counts from these times, whatever happens after.
    const lead = 2_000 + Math.ceil(due / 20);
    const firstDue = (await dbNow(db)) + lead;
    await shift(db, MEASURED, firstDue - parked);
    await db.query(
      `create table bench_due as select id, refresh_at as due_at from credentials where id like '${MEASURED}%'`,
    );
    await db.query('vacuum analyze credentials');
    // The measurement starts when the first row falls due (idle polling until then is not in it).
    const setupOverrunMs = (await dbNow(db)) - firstDue;
    await sleep(-setupOverrunMs);
    if (options.statements) await db.query('select pg_stat_statements_reset()');
    for (const child of running) child.send('MARK');
    const postmaster = await postmasterOf(db);
    const before = {
      redemptions: provider.stats().redemptions,
      provider: process.cpuUsage(),
      postgres: postgresCpuS(postmaster),
      machine: machineCpu(),
    };
    const started = performance.now();
    const waits = sampleWaits(db);
    if (!timedOut && !(await refreshedAtLeast(options.warmup + due))) timedOut = true;
    // A credential refreshed twice by mistake would show up within this.
    if (!timedOut) await sleep(1_000);
    const waitEvents = await waits.stop();
    const instances = await Promise.all(running.map((c) => c.stop()));
    const wallS = (performance.now() - started) / 1000;
    await sleep(200); // the postmaster reaps the instances' server processes (their CPU time)
    const providerCpu = process.cpuUsage(before.provider);
    const postgresAfter = postgresCpuS(postmaster);
    const stats = provider.stats();
    return {
      n,
      due,
      windowMs,
      setupOverrunMs,
      seedS,
      timedOut,
      wallS,
      instances,
      provider: { ...stats, measuredRedemptions: stats.redemptions - before.redemptions },
      db: await measure(db),
      waitEvents,
      cpuS: {
        instances: sum(instances.map((r) => r.cpuS)),
        postgres:
          postgresAfter === undefined || before.postgres === undefined
            ? undefined
            : postgresAfter - before.postgres,
        provider: (providerCpu.user + providerCpu.system) / 1e6,
        total: machineCpu().busyS - before.machine.busyS,
        steal: machineCpu().stealS - before.machine.stealS,
      },
    };
  } finally {
    for (const child of running) child.kill();
    await db.end();
    await provider.close();
    await withClient(server.url, (c) => c.query(`drop database if exists ${name} with (force)`));
  }
}

/**
 * Samples what the active server processes of this database wait for, every 100 ms, until
 * stopped: where the database spends its time, besides the statements themselves.
 */
function sampleWaits(db: pg.Client): { stop(): Promise<Map<string, number>> } {
  const counts = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await db.query(`
        select coalesce(wait_event_type || ':' || wait_event, 'CPU') as wait, count(*) as n
        from pg_stat_activity
        where datname = current_database() and state = 'active' and pid <> pg_backend_pid()
        group by 1`);
      for (const row of rows as { wait: string; n: string }[]) {
        counts.set(row.wait, (counts.get(row.wait) ?? 0) + Number(row.n));
      }
      samples++;
      await sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return new Map([...counts].map(([wait, n]) => [wait, n / Math.max(1, samples)]));
    },
  };
}

/** Moves the parked rows whose id starts with `prefix` by `ms`. */
async function shift(db: pg.Client, prefix: string, ms: number): Promise<void> {
  await db.query(
    `update credentials set refresh_at = refresh_at + $1::bigint,
       access_expires_at = access_expires_at + $1::bigint
     where id like '${prefix}%'`,
    [ms],
  );
}

/**
 * Bulk insert for the benchmark only: what `broker.importCredential` would store, but thousands
 * of rows per statement. Grants come from the provider (in memory), tokens sealed as the engine
 * seals them. Due times are spread evenly over the window, parked `parked` ms in the future.
 */
async function seed(
  db: pg.Client,
  provider: TestProvider,
  keyRing: KeyRing,
  rows: { prefix: string; count: number; parked: number; windowMs: number },
): Promise<void> {
  const { prefix, count, parked, windowMs } = rows;
  const now = await dbNow(db);
  for (let start = 0; start < count; start += SEED_BATCH) {
    const ids: string[] = [];
    const owners: string[] = [];
    const accessTokens: string[] = [];
    const refreshTokens: string[] = [];
    const dueAt: number[] = [];
    for (let i = start; i < Math.min(count, start + SEED_BATCH); i++) {
      const grant = provider.issueGrant();
      const id = `${prefix}${String(i).padStart(7, '0')}`;
      const seal = (plaintext: string, field: 'access_token' | 'refresh_token') =>
        sealField(keyRing, plaintext, { credentialId: id, field });
      ids.push(id);
      owners.push(`owner-${id}`);
      accessTokens.push(seal(grant.access_token, 'access_token'));
      refreshTokens.push(seal(grant.refresh_token, 'refresh_token'));
      dueAt.push(parked + Math.floor((windowMs * i) / count));
    }
    await db.query(
      `insert into credentials (id, provider, owner, status, version, access_token,
         access_expires_at, token_type, refresh_token, key_id, intent_attempts, refresh_at,
         failures, metadata, created_at, updated_at)
       select id, 'test', owner, 'active', 1, access_token, due_at + ${EXPIRY_AFTER_DUE_MS},
         'Bearer', refresh_token, $6, 0, due_at, 0, '{}', $7, $7
       from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
         as u(id, owner, access_token, refresh_token, due_at)`,
      [ids, owners, accessTokens, refreshTokens, dueAt, keyRing.activeKeyId, now],
    );
  }
}

async function measure(db: pg.Client): Promise<Report['db']> {
  const int = (v: unknown) => Number(v ?? 0);
  // First, before this function's own queries are counted.
  const statements = !options.statements
    ? []
    : (
        await db.query(`
      select calls, total_exec_time, total_plan_time, rows, query from pg_stat_statements
      where dbid = (select oid from pg_database where datname = current_database())
      and calls > 0 and query not like '%pg_stat_statements%' and query not like '%pg_stat_activity%'
        and query not like '%clock_timestamp%'
      order by total_exec_time + total_plan_time desc limit 5`)
      ).rows.map((r: Record<string, unknown>) => ({
        calls: int(r.calls),
        totalMs: Number(r.total_exec_time),
        planMs: Number(r.total_plan_time),
        rows: int(r.rows),
        query: String(r.query).replace(/\s+/g, ' ').replace(/"/g, ''),
      }));
  const versions = (
    await db.query(`
      select count(*) filter (where version = 1) as never,
             count(*) filter (where version = 2) as once,
             count(*) filter (where version > 2) as twice,
             count(*) filter (where status <> 'active') as inactive,
             count(*) filter (where failures > 0 or last_error is not null) as failures,
             (select count(*) from credentials
              where id like '${WARMUP}%' and version <> 2) as warmup_off,
             (select count(*) from credentials
              where id like '${IDLE}%' and (version <> 1 or lease_id is not null)) as idle_touched
      from credentials where id like '${MEASURED}%'`)
  ).rows[0] as Record<string, unknown>;
  // The lag of a credential: its due time to the commit of its refresh (updated_at, set by
  // the commit statement), both on the database clock.
  const lag = (
    await db.query(`
      select percentile_disc(0.5) within group (order by lag) as p50,
             percentile_disc(0.99) within group (order by lag) as p99,
             max(lag) as max
      from (select c.updated_at - d.due_at as lag
            from credentials c join bench_due d using (id) where c.version >= 2) l`)
  ).rows[0] as Record<string, unknown>;
  const span = (
    await db.query(`
      select (select min(due_at) from bench_due) as first_due,
             (select max(due_at) from bench_due) as last_due,
             (select max(updated_at) from credentials join bench_due using (id)
              where version >= 2) as last_commit`)
  ).rows[0] as Record<string, unknown>;
  const firstDue = int(span.first_due);
  const perSecond = async (query: string) =>
    new Map(
      (await db.query(query, [firstDue])).rows.map((r: Record<string, unknown>) => [
        int(r.s),
        int(r.count),
      ]),
    );
  const due = await perSecond(
    'select floor((due_at - $1) / 1000.0) as s, count(*) from bench_due group by 1',
  );
  const commits = await perSecond(`
    select floor((updated_at - $1) / 1000.0) as s, count(*) from credentials
    join bench_due using (id) where version >= 2 group by 1`);
  const seconds: Report['db']['seconds'] = [];
  const last = Math.max(-1, ...commits.keys(), ...due.keys());
  for (let s = 0, dueSoFar = 0, doneSoFar = commits.get(-1) ?? 0; s <= last; s++) {
    seconds.push({ commits: commits.get(s) ?? 0, backlog: dueSoFar - doneSoFar });
    dueSoFar += due.get(s) ?? 0;
    doneSoFar += commits.get(s) ?? 0;
  }
  return {
    never: int(versions.never),
    warmupOff: int(versions.warmup_off),
    idleTouched: int(versions.idle_touched),
    once: int(versions.once),
    twice: int(versions.twice),
    inactive: int(versions.inactive),
    failures: int(versions.failures),
    lag: { p50: int(lag.p50), p99: int(lag.p99), max: int(lag.max) },
    firstDue,
    lastDue: int(span.last_due),
    lastCommit: int(span.last_commit),
    seconds,
    statements,
  };
}

function printReport(r: Report): void {
  const { db, cpuS } = r;
  const f = (x: number, digits = 0) => x.toFixed(digits);
  const each = <T>(fn: (i: InstanceResult) => T) => r.instances.map(fn).join(', ');
  const refreshed = db.once + db.twice;
  const activeS = (db.lastCommit - db.firstDue) / 1000;
  const rates = db.seconds.map((s) => s.commits);
  const group = 10 * Math.max(1, Math.ceil(rates.length / 200)); // at most about 20 groups
  // Seconds that began with more waiting than one claim takes: the instances were never short of work.
  const waiting = options.scheduler.batchSize;
  const busy = db.seconds.filter((s) => s.backlog >= waiting).map((s) => s.commits);
  const other = cpuS.total - cpuS.instances - (cpuS.postgres ?? 0) - cpuS.provider;
  const perRefresh = (s: number) => `${f((s * 1000) / Math.max(1, refreshed), 2)} ms`;
  const lines = [
    `N = ${r.n}, ${r.instances.length} instances, measured after a warm-up of ${options.warmup}` +
      (r.timedOut ? '  ** TIMED OUT: INCOMPLETE **' : ''),
    `  due:         ${r.due} over ${f(r.windowMs / 1000, 1)} s` +
      (r.windowMs > 0 ? ` (${f(r.due / (r.windowMs / 1000))}/s)` : ' (all at once)') +
      (r.due < r.n ? `, ${r.n - r.due} more in the table not due` : '') +
      `; seeded in ${f(r.seedS, 1)} s`,
    `  refreshed:   ${refreshed} in ${f(activeS, 1)} s from first due to last commit = ${f(refreshed / activeS)}/s`,
    `               per second: peak ${Math.max(...rates)}, ` +
      (busy.length > 0
        ? `median ${median(busy)} over the ${busy.length} s that began with >= ${waiting} waiting`
        : `never >= ${waiting} waiting (kept up)`),
    `               per second, mean of each ${group} s: ${means(rates, group).join(' ')}`,
    `  lag:         refresh_at -> commit p50 ${db.lag.p50} ms, p99 ${db.lag.p99} ms, max ${db.lag.max} ms`,
    `  memory:      peak RSS ${each((i) => `${f(i.peakRssMb)} MB`)} (at start ${each((i) => f(i.startRssMb))} MB);` +
      ` peak heap used ${each((i) => f(i.peakHeapUsedMb))} MB;` +
      ` live heap after full GC at start, after warm-up, at end ${each((i) => `${f(i.liveHeapMb.start, 1)}/${f(i.liveHeapMb.mark, 1)}/${f(i.liveHeapMb.end, 1)}`)} MB`,
    `  provider:    ${r.provider.measuredRedemptions} redemptions (+ ${r.provider.redemptions - r.provider.measuredRedemptions} warm-up),` +
      ` ${r.provider.reuseViolations} reuse violations, ${r.provider.invalidGrants} invalid_grant,` +
      ` at most ${Math.max(0, ...Object.values(r.provider.redemptionsByToken))} redemption(s) per refresh token`,
    `  rows:        ${db.once} refreshed once, ${db.twice} more than once, ${db.never} never,` +
      ` ${db.inactive} not active, ${db.failures} with a failure; warm-up rows not refreshed exactly once: ${db.warmupOff}` +
      (r.due < r.n ? `; rows not due touched: ${db.idleTouched}` : ''),
    `  instances:   refreshed ${each((i) => i.measured.refreshed)};` +
      ` ${sum(r.instances.map((i) => i.measured.failed))} refresh_failed, ${sum(r.instances.map((i) => i.measured.needsReauth))} needs_reauth events`,
    `  CPU:         instances ${f(cpuS.instances, 1)} s (${f(sum(r.instances.map((i) => i.systemCpuS)), 1)} s of it in the kernel), postgres ${cpuS.postgres === undefined ? '?' : f(cpuS.postgres, 1)} s,` +
      ` provider+parent ${f(cpuS.provider, 1)} s, other ${f(other, 1)} s: ${f(cpuS.total, 1)} of ${f(r.wallS * cpus().length, 1)} s on ${cpus().length} cores (${f(cpuS.steal, 1)} s stolen by the host)`,
    `               per refresh: instances ${perRefresh(cpuS.instances)}, postgres ${cpuS.postgres === undefined ? '?' : perRefresh(cpuS.postgres)}, provider ${perRefresh(cpuS.provider)}`,
  ];
  if (r.setupOverrunMs > 0) {
    lines.push(
      `  ** the first rows fell due ${r.setupOverrunMs} ms before the measurement began **`,
    );
  }
  if (other > 0.1 * cpuS.total)
    lines.push(`  ** other processes used ${f(other, 1)} CPU s: disturbed **`);
  // Wait events seen in under 1 % of the samples are left out.
  const waits = [...r.waitEvents].filter(([, n]) => n >= 0.01).sort(([, a], [, b]) => b - a);
  lines.push(
    `  postgres:    active server processes, mean of 100 ms samples: ${f(sum([...r.waitEvents.values()]), 2)}, of which` +
      ` ${waits.map(([wait, n]) => `${wait} ${f(n, 2)}`).join(', ')}`,
  );
  lines.push('  store calls, client side incl. pool wait: calls, mean ms (max)');
  for (const [i, inst] of r.instances.entries()) {
    const parts = Object.entries(inst.store)
      .sort(([, a], [, b]) => b.totalMs - a.totalMs)
      .map(([m, t]) => `${m} ${t.calls} ${f(t.totalMs / t.calls, 1)} (${f(t.maxMs)})`);
    lines.push(`    #${i}: ${parts.join('; ')}`);
  }
  if (db.statements.length > 0) {
    lines.push(
      '  top statements (pg_stat_statements): exec ms, plan ms, calls, exec ms per call, rows',
    );
    for (const s of db.statements) {
      lines.push(
        `    ${f(s.totalMs).padStart(6)} ${f(s.planMs).padStart(6)} ${String(s.calls).padStart(7)} ${f(s.totalMs / s.calls, 3).padStart(6)} ${String(s.rows).padStart(7)}  ${s.query.slice(0, 72)}`,
      );
    }
  }
  console.log(`\n${lines.join('\n')}`);
}

interface Child {
  progress: InstanceProgress;
  exited: boolean;
  send(line: string): void;
  stop(): Promise<InstanceResult>;
  kill(): void;
}

async function spawnInstance(config: InstanceConfig): Promise<Child> {
  const child = spawnTs(INSTANCE, [], { TW_SCHEDULER_BENCH: JSON.stringify(config) });
  children.add(child);
  child.stdin!.on('error', () => {}); // EPIPE if it died first; its exit is reported
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
  const state = {
    progress: { refreshed: 0, failed: 0, needsReauth: 0 } as InstanceProgress,
    exited: false,
  };
  let ready: (() => void) | undefined;
  let result: ((r: InstanceResult) => void) | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      state.exited = true;
      children.delete(child);
      resolve();
    }),
  );
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [kind = '', json = ''] = line.split(/ (.*)/s);
    if (kind === 'READY') ready?.();
    else if (kind === 'PROGRESS') state.progress = JSON.parse(json) as InstanceProgress;
    else if (kind === 'RESULT') result?.(JSON.parse(json) as InstanceResult);
  });
  const failed = (what: string) => new Error(`scheduler instance ${what}\n${stderr}`);
  await Promise.race([
    new Promise<void>((resolve) => (ready = resolve)),
    exited.then(() => Promise.reject(failed('exited before it was ready'))),
    rejectAfter(30_000, () => failed('not ready within 30 s')),
  ]);
  return {
    get progress() {
      return state.progress;
    },
    get exited() {
      return state.exited;
    },
    send: (line) => child.stdin!.write(`${line}\n`),
    async stop() {
      child.stdin!.write('STOP\n');
      const reported = await Promise.race([
        new Promise<InstanceResult>((resolve) => (result = resolve)),
        exited.then(() => sleep(100)).then(() => Promise.reject(failed('exited without a result'))),
        rejectAfter(30_000, () => failed('did not stop within 30 s')),
      ]);
      // It exits once its connections are closed: their server processes are gone by then.
      await Promise.race([
        exited,
        rejectAfter(10_000, () => failed('did not exit')).catch(() => {}),
      ]);
      return reported;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

/** pg_stat_statements must be preloaded: set it and restart the (throwaway) server once. */
async function enableStatementStats(server: PostgresServer): Promise<void> {
  await withClient(server.url, (c) =>
    c.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`),
  );
  await withClient(server.url, (c) =>
    c.query(`alter system set pg_stat_statements.track_planning = on`),
  );
  await server.stop();
  await server.start();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function dbNow(db: pg.Client): Promise<number> {
  const { rows } = await db.query(
    'select floor(extract(epoch from clock_timestamp()) * 1000)::bigint as now',
  );
  return Number((rows[0] as { now: string }).now);
}

/**
 * CPU seconds of this benchmark's Postgres server: its postmaster (with the exited children it
 * reaped) and its live children. Other servers on the machine (other work's) are not counted.
 */
function postgresCpuS(postmaster: number | undefined): number | undefined {
  if (postmaster === undefined) return undefined;
  try {
    const tick = 100; // USER_HZ
    let total = 0;
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue;
      }
      // Fields after the command: ppid is field 4; utime, stime, cutime, cstime are 14-17.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pid) !== postmaster && Number(fields[1]) !== postmaster) continue;
      total += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    }
    return total / tick;
  } catch {
    return undefined;
  }
}

/** The postmaster of the server `db` is connected to: the parent of its server process. */
async function postmasterOf(db: pg.Client): Promise<number | undefined> {
  const { rows } = await db.query('select pg_backend_pid() as pid');
  try {
    const stat = readFileSync(`/proc/${(rows[0] as { pid: number }).pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** CPU seconds of the whole machine (all cores), from /proc/stat: busy, and stolen by the host. */
function machineCpu(): { busyS: number; stealS: number } {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number);
    return { busyS: (user! + nice! + system! + irq! + softirq!) / 100, stealS: steal! / 100 };
  } catch {
    return { busyS: Number.NaN, stealS: Number.NaN };
  }
}

/** Means of consecutive groups of `size` values. */
function means(values: number[], size: number): number[] {
  const result: number[] = [];
  for (let i = 0; i < values.length; i += size) {
    const group = values.slice(i, i + size);
    result.push(Math.round(sum(group) / group.length));
  }
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects after `ms` without keeping the process alive meanwhile. */
function rejectAfter(ms: number, error: () => Error): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(error()), ms).unref());
}
