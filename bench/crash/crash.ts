// Crash torture: a refresh leader SIGKILLed at each of the five crash points, R rounds each,
// against three provider profiles, on SQLite and on Postgres (an embedded server started here).
// Each round is `crashRound` from the testkit, the crash-point tests' own machinery: a child takes
// the lease of an expired credential and dies at the point; the next caller in this process asks
// and the one after it asks again. Prints per point and profile: recovered rounds, expected loss
// (the provider's rules leave no choice: reuse detection, no grace, the request already
// redeemed), credentials lost otherwise (must be 0), reuse violations beyond an expected loss's
// one refused replay (0), loops (0), rounds where a provider answer outlived the broker's deadline
// (a loaded machine: its loss, with no grace, is expected too), and the recovery time from the kill to the next caller's
// valid token (mostly the rest of the dead leader's lease, 1.5 s).
//
// Usage: npm run bench:crash -- [rounds per cell, default 100] [options]
//   --lanes L          lanes per profile run side by side (a provider, a database, a broker each;
//                      default 2): the three profiles' lanes run at the same time
//   --backend B        sqlite, postgres or both (default both)
//   --compiled-worker  children run the built testkit (npm run build first): a third of the
//                      start-up CPU of running them through tsx
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  CRASH_POINTS,
  CRASH_PROFILES,
  openCrashLane,
  runCrashCell,
  summarizeCrashRounds,
  TORTURE_PROFILES,
  type CrashCellSummary,
  type OpenedCrashLane,
} from '@tokenwarden/testkit';
import {
  createTestDatabase,
  startPostgres,
  type TestDatabase,
} from '@tokenwarden/testkit/postgres';

const PROFILES = Object.entries(TORTURE_PROFILES);

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const rounds = /^\d+$/.test(args[0] ?? '') ? Number(args[0]) : 100;
const lanesPerProfile = Number(option('--lanes') ?? 2);
const backendArg = option('--backend') ?? 'both';
const backends = backendArg === 'both' ? ['sqlite', 'postgres'] : [backendArg];
const compiled = join(import.meta.dirname, '../../packages/testkit/dist/crash/crash-worker.js');
const workerScript = args.includes('--compiled-worker') ? compiled : undefined;
if (workerScript && !existsSync(workerScript))
  throw new Error(`${compiled}: run npm run build first`);
if (!backends.every((b) => b === 'sqlite' || b === 'postgres'))
  throw new Error('--backend: sqlite, postgres or both');

console.log(
  `crash torture: ${rounds} rounds × ${CRASH_POINTS.length} points × ${PROFILES.length} profiles on ${backends.join(' and ')}, ` +
    `${lanesPerProfile} lanes per profile, ${workerScript ? 'compiled' : 'tsx'} children ` +
    `(${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')})`,
);

const started = performance.now();
let failed = false;
/** Rounds that did not go the short way, printed at the end (observations hold no token). */
const unusual: string[] = [];
for (const backend of backends) {
  const postgres = backend === 'postgres' ? await startPostgres() : undefined;
  // createTestDatabase() finds the server through this variable outside vitest.
  if (postgres) process.env.TOKENWARDEN_TEST_DATABASE_URL = postgres.url;
  const databases: TestDatabase[] = [];
  const lanes = new Map<string, OpenedCrashLane[]>();
  try {
    for (const [short, name] of PROFILES) {
      const opened: OpenedCrashLane[] = [];
      for (let i = 0; i < lanesPerProfile; i++) {
        const database = postgres ? await createTestDatabase() : undefined;
        if (database) databases.push(database);
        opened.push(
          await openCrashLane({
            profile: CRASH_PROFILES[name],
            databaseUrl: database?.url,
            workerScript,
          }),
        );
      }
      lanes.set(short, opened);
    }
    console.log(`\n${backend === 'sqlite' ? 'SQLite' : 'Postgres'}`);
    console.log(
      'crash point           profile      rounds  recovered  expected loss  lost  violations  loops  timed out  recovery p50 / p99 / max (ms)',
    );
    for (const point of CRASH_POINTS) {
      // The three profiles at once, each on its own lanes.
      const summaries = await Promise.all(
        PROFILES.map(async ([short]) => {
          const profileLanes = lanes.get(short)!;
          const observations = await runCrashCell(profileLanes, point, rounds);
          const odd = observations.filter(
            (o) =>
              o.nextRequests > 1 ||
              o.leaderRequests > 1 ||
              (o.outcome !== 'token' && o.redeemedBeforeNext === 0),
          );
          for (const o of odd) unusual.push(`${backend}, ${short}: ${JSON.stringify(o)}`);
          return [short, summarizeCrashRounds(profileLanes[0]!, observations)] as const;
        }),
      );
      for (const [short, summary] of summaries) {
        console.log(row(point, short, summary));
        if (summary.lost > 0 || summary.reuseViolations > 0 || summary.loops > 0) failed = true;
      }
    }
  } finally {
    for (const opened of lanes.values()) for (const lane of opened) await lane.close();
    for (const database of databases) await database.drop();
    await postgres?.close();
  }
}
if (unusual.length > 0)
  console.log(
    `\nrounds with more than one request, or lost without a crash-time redemption:\n${unusual.join('\n')}`,
  );
console.log(
  `\n${((performance.now() - started) / 1000).toFixed(0)} s; load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}` + (failed ? '; FAILED: a credential lost, a reuse violation or a loop' : ''),
);
if (failed) process.exitCode = 1;

function row(point: string, profile: string, s: CrashCellSummary): string {
  const ms = (n: number) => n.toFixed(0);
  const recovery = s.recoveryMs
    ? `${ms(s.recoveryMs.p50)} / ${ms(s.recoveryMs.p99)} / ${ms(s.recoveryMs.max)}`
    : '—';
  const failures = Object.entries(s.failures)
    .map(([code, n]) => `${code} ×${n}`)
    .join(', ');
  return [
    point.padEnd(21),
    profile.padEnd(12),
    String(s.rounds).padEnd(7),
    String(s.recovered).padEnd(10),
    String(s.expectedLoss).padEnd(14),
    String(s.lost).padEnd(5),
    String(s.reuseViolations).padEnd(11),
    String(s.loops).padEnd(6),
    String(s.timedOut).padEnd(10),
    recovery + (failures ? `  (lost: ${failures})` : ''),
  ].join(' ');
}
