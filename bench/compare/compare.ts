// The refresh storm three ways: P processes × C concurrent callers, one expired credential,
// a provider with latency L that rotates refresh tokens and revokes the whole family when a
// spent refresh token comes back (no grace window). Tokenwarden against google-auth-library
// (one OAuth2Client per process) against no coordination at all.
// Usage: npm run bench:compare -- [processes] [callers] [latencyMs]
import { cpus } from 'node:os';
import { join } from 'node:path';
import { runStorm, runWorkers, TestProvider, type ProviderStats } from '@tokenwarden/testkit';
import { startPostgres } from '@tokenwarden/testkit/postgres';
// Types only: a value import would run the worker script in this process.
import type { CompareFixture, CompareResult } from './worker.ts';

const [processes = 8, callers = 125, latencyMs = 100] = process.argv.slice(2).map(Number);

interface Row {
  approach: string;
  provider: ProviderStats;
  /** Callers whose token the provider still accepts once the storm is over. */
  working: number;
  errors: number;
}

async function tokenwarden(): Promise<Row> {
  // runStorm brings its own provider (rotation and reuse detection on, no grace: the defaults)
  // and reports fingerprints, not tokens. One token for everybody, minted by a redemption the
  // provider did not refuse, is a token that works, so then every caller has a working one.
  // On Postgres, each process with its own pool: the cluster case the other two cannot cover.
  const postgres = await startPostgres();
  const storm = await runStorm({
    processes,
    callersPerProcess: callers,
    latencyMs,
    warm: true,
    databaseUrl: postgres.url,
  }).finally(() => postgres.close());
  const allGood =
    storm.errors.length === 0 && storm.distinctTokens === 1 && storm.provider.redemptions >= 1;
  return {
    approach: 'Tokenwarden (Postgres)',
    provider: storm.provider,
    working: allGood ? storm.callers : 0,
    errors: storm.errors.length,
  };
}

/** The same storm with worker.ts children, against a fresh provider, judged in this process. */
async function withWorkers(approach: string, mode: 'google' | 'naive'): Promise<Row> {
  const provider = await TestProvider.start({
    latencyMs,
    rotation: true,
    reuseDetection: true,
    reuseGraceMs: 0,
  });
  try {
    const fixture: CompareFixture = {
      tokenUrl: provider.tokenUrl,
      clientId: provider.clientId,
      clientSecret: provider.clientSecret,
      refreshToken: provider.issueGrant().refresh_token,
    };
    const results = await runWorkers<CompareResult>({
      script: join(import.meta.dirname, 'worker.ts'),
      args: [mode, String(callers)],
      env: { TW_COMPARE_FIXTURE: JSON.stringify(fixture) },
      count: processes,
      barrier: true,
    });
    const failed = results.find((r) => r.exitCode !== 0 || !r.result);
    if (failed) {
      // A crash dump may quote a request body; keep token values out of the console.
      const stderr = failed.stderr.replace(/\b(at|rt)_[\w-]{32}/g, '$1_<redacted>');
      throw new Error(
        `${approach} worker ${failed.index} failed (exit ${failed.exitCode})\n${stderr}`,
      );
    }
    const all = results.map((r) => r.result!);
    // Checked after every process is done: a token that worked mid-storm may be dead by now.
    const working = all
      .flatMap((r) => r.tokens)
      .filter(({ token }) => provider.isAccessTokenValid(token))
      .reduce((sum, { callers: n }) => sum + n, 0);
    return {
      approach,
      provider: provider.stats(),
      working,
      errors: all.reduce((sum, r) => sum + r.errors.length, 0),
    };
  } finally {
    await provider.close();
  }
}

const cpu = cpus();
console.log(
  `refresh storm, ${processes} processes × ${callers} callers, L = ${latencyMs} ms; provider rotates ` +
    `refresh tokens, reuse detection on, no grace (${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ` +
    `node ${process.version})`,
);
const columns = [
  ['approach', 36],
  ['redemptions', 11],
  ['requests', 8],
  ['refused', 7],
  ['violations', 10],
  ['revoked', 7],
  ['working', 9],
  ['errors', 6],
] as const;
// The provider answers a replayed refresh token with invalid_grant and revokes its family; once
// revoked, further replays are refused as revoked, so they show as refused, not as violations.
console.log(
  'refused = invalid_grant answers, violations = spent refresh token replayed, revoked = ' +
    'families revoked, working = callers whose token still works after the storm',
);
const line = (cells: readonly (string | number)[]): string =>
  cells
    .map((cell, i) => String(cell).padEnd(columns[i]![1]))
    .join(' ')
    .trimEnd();
console.log(line(columns.map(([name]) => name)));

const rows: Row[] = [];
for (const run of [
  tokenwarden,
  () => withWorkers('google-auth-library (1 per process)', 'google'),
  () => withWorkers('naive (fetch per caller)', 'naive'),
]) {
  const row = await run();
  rows.push(row);
  const { provider: p } = row;
  const cells = [
    row.approach,
    p.redemptions,
    p.tokenRequests,
    p.invalidGrants,
    p.reuseViolations,
    p.revokedFamilies,
    `${row.working}/${processes * callers}`,
    row.errors,
  ];
  console.log(line(cells));
}

const [tw, google, naiveRow] = rows as [Row, Row, Row];
const total = processes * callers;
const requests = (row: Row) =>
  `${row.provider.tokenRequests} request${row.provider.tokenRequests === 1 ? '' : 's'}`;
const fate = (name: string, row: Row): string =>
  row.working === total
    ? `${name} kept all callers working too (${requests(row)})`
    : `${name} sent ${requests(row)} and left ${row.working}/${total} ` +
      `working${row.provider.revokedFamilies > 0 ? ' (credential revoked)' : ''}`;
console.log(
  tw.working === total && tw.provider.redemptions === 1 && tw.provider.reuseViolations === 0
    ? `verdict: Tokenwarden refreshed once and kept all ${total} callers working; ` +
        `${fate('google-auth-library', google)}; ${fate('naive', naiveRow)}.`
    : `verdict: Tokenwarden did NOT keep every caller working with one redemption ` +
        `(${tw.provider.redemptions} redemptions, ${tw.working}/${total} working): investigate.`,
);
