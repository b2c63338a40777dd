// Provider outage: the provider fails for M minutes of real time, in three phases (503s, then
// requests that hang until the broker's deadline, then 429 with Retry-After), while N connections
// come due — their refresh_at spread evenly over the outage, their access tokens expiring a minute
// later. The broker's scheduler runs, and callers ask for random due connections all along. Prints
// the provider's requests per second every 10 s (the circuit breaker keeps them bounded), the
// callers' outcomes (0 `needs_reauth`: an outage is never the refresh token's fault), and, once
// the provider is back, the time until the last connection has been refreshed.
//
// Usage: npm run bench:outage -- [--minutes M (10)] [--connections N (10000)] [--callers R (50)]
//   R: caller requests started per second (at most 200 in flight).
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { KeyRing, NeedsReauthError, type TokenwardenError } from '@tokenwarden/core';
import {
  openBroker,
  providerConfigFor,
  TestProvider,
  type InjectedFailure,
} from '@tokenwarden/testkit';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const minutes = option('--minutes', 10);
const connections = option('--connections', 10_000);
const callerRate = option('--callers', 50);
const outageMs = minutes * 60_000;
const MAX_CALLERS_IN_FLIGHT = 200;
/** Stop waiting for the recovery after this long: its absence is the figure then. */
const RECOVERY_LIMIT_MS = 5 * 60_000;

const PHASES: { name: string; failure: InjectedFailure }[] = [
  { name: '503', failure: { kind: 'server_error', status: 503, times: 1e9 } },
  { name: 'hang', failure: { kind: 'hang', times: 1e9 } },
  {
    name: '429 Retry-After 30',
    failure: { kind: 'rate_limited', retryAfterSeconds: 30, times: 1e9 },
  },
];
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

console.log(
  `provider outage: ${minutes} min (${PHASES.map((p) => p.name).join(', then ')}), ${connections} connections ` +
    `due during it, callers ${callerRate}/s, SQLite (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load ${load()})`,
);

const dir = mkdtempSync(join(tmpdir(), 'tw-outage-'));
const provider = await TestProvider.start({ latencyMs: 20 });
const dbPath = join(dir, 'tokenwarden.sqlite');
const opened = await openBroker({
  dbPath,
  keys: KeyRing.generate('k1').serialize(),
  // Hanging requests end at the provider's default deadline (10 s).
  provider: providerConfigFor(provider),
  maxWaitMs: 2_000,
});
const { broker } = opened;
const sql = new Database(dbPath);

// The connections, then their due times moved into the outage: row i falls due at i/N of it.
const ids: string[] = [];
for (let start = 0; start < connections; start += 200) {
  const batch = Array.from({ length: Math.min(200, connections - start) }, async () => {
    const grant = provider.issueGrant();
    const { id } = await broker.importCredential({
      provider: 'test',
      owner: `owner-${ids.length}-${Math.random()}`,
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      expiresIn: 86_400,
    });
    return id;
  });
  ids.push(...(await Promise.all(batch)));
}
const t0 = Date.now();
const setDue = sql.prepare(
  'update credentials set refresh_at = ?, access_expires_at = ? where id = ?',
);
sql.transaction(() => {
  ids.forEach((id, i) => {
    const due = t0 + Math.floor((outageMs * i) / connections);
    setDue.run(due, due + 60_000, id);
  });
})();
const stillOld = sql.prepare('select count(*) as n from credentials where version = 1');
// What holds the ones not yet refreshed back: a lease, a backoff, and why.
const waiting = sql.prepare(`
  select count(*) filter (where lease_until > ?) as leased,
         count(*) filter (where next_attempt_at > ?) as backing_off,
         count(*) filter (where intent_hash is not null) as in_doubt
  from credentials where version = 1`);
const statuses = sql.prepare('select status, count(*) as n from credentials group by status');

const outcomes = new Map<string, number>();
const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
let inFlight = 0;
let calling = true;
const started = performance.now();
const callers = setInterval(() => {
  const dueSoFar = Math.max(
    1,
    Math.min(connections, Math.floor((connections * (Date.now() - t0)) / outageMs)),
  );
  for (let i = 0; i < callerRate / 10 && inFlight < MAX_CALLERS_IN_FLIGHT && calling; i++) {
    inFlight++;
    const id = ids[Math.floor(Math.random() * dueSoFar)]!;
    broker
      .getAccessToken(id)
      .then(() => count('token'))
      .catch((error: unknown) =>
        count(
          error instanceof NeedsReauthError
            ? `needs_reauth/${error.reason}`
            : ((error as TokenwardenError).code ?? String(error)),
        ),
      )
      .finally(() => inFlight--);
  }
}, 100);

const scheduler = broker.scheduler();
scheduler.start();

let lastRequests = 0;
const sample = (label: string) => {
  const requests = provider.stats().tokenRequests;
  const rate = (requests - lastRequests) / 10;
  lastRequests = requests;
  const t = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
  const now = Date.now();
  const held = waiting.get(now, now) as { leased: number; backing_off: number; in_doubt: number };
  console.log(
    `${t} s  ${label.padEnd(20)} ${rate.toFixed(1).padStart(7)} req/s   not yet refreshed ${(stillOld.get() as { n: number }).n}` +
      ` (leased ${held.leased}, backing off ${held.backing_off}, intent kept ${held.in_doubt})`,
  );
  return rate;
};

console.log('   t  phase                provider   connections');
const rates: number[] = [];
const phaseAt = (ms: number) =>
  Math.min(PHASES.length - 1, Math.floor((ms * PHASES.length) / outageMs));
let phase = -1;
let nextSample = started + 10_000;
for (let now = started; now < started + outageMs; now = performance.now()) {
  if (phaseAt(now - started) !== phase) {
    phase = phaseAt(now - started);
    provider.clearFailures();
    provider.injectFailures(PHASES[phase]!.failure);
  }
  if (now >= nextSample) {
    rates.push(sample(PHASES[phase]!.name));
    nextSample += 10_000;
  }
  await sleep(Math.min(1_000, nextSample - now, started + outageMs - now));
}
if (performance.now() >= nextSample - 100) rates.push(sample(PHASES[phase]!.name));
provider.clearFailures();
const endedAt = performance.now();
const outageRequests = provider.stats().tokenRequests;
console.log(`outage over after ${((endedAt - started) / 1000).toFixed(0)} s; load ${load()}`);

let lastRefreshedAfterMs: number | undefined;
nextSample = endedAt + 10_000;
while (performance.now() - endedAt < RECOVERY_LIMIT_MS) {
  if ((stillOld.get() as { n: number }).n === 0) {
    lastRefreshedAfterMs = performance.now() - endedAt;
    break;
  }
  if (performance.now() >= nextSample) {
    sample('recovered');
    nextSample += 10_000;
  }
  await sleep(100);
}
calling = false;
clearInterval(callers);
while (inFlight > 0) await sleep(50);
await scheduler.stop();

const stats = provider.stats();
const reauth = [...outcomes]
  .filter(([k]) => k.startsWith('needs_reauth'))
  .reduce((n, [, v]) => n + v, 0);
console.log(
  `\nprovider requests during the outage: ${outageRequests} (${(outageRequests / (outageMs / 1000)).toFixed(2)} req/s on average, ` +
    `max ${Math.max(...rates).toFixed(1)} req/s over 10 s)`,
);
console.log(`callers: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(
  `spurious needs_reauth: ${reauth} at callers; connections by status: ${JSON.stringify(statuses.all())}`,
);
console.log(
  lastRefreshedAfterMs === undefined
    ? `NOT every connection refreshed ${RECOVERY_LIMIT_MS / 1000} s after the end: ${(stillOld.get() as { n: number }).n} left`
    : `every connection refreshed ${(lastRefreshedAfterMs / 1000).toFixed(1)} s after the end of the outage`,
);
console.log(
  `redemptions ${stats.redemptions}, reuse violations ${stats.reuseViolations}; load ${load()}`,
);

sql.close();
await opened.close();
await provider.close();
rmSync(dir, { recursive: true, force: true });
if (reauth > 0 || lastRefreshedAfterMs === undefined || lastRefreshedAfterMs > 60_000)
  process.exitCode = 1;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
