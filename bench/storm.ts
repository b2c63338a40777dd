// Refresh storm benchmark: P processes × C concurrent callers, one expired credential on a shared
// SQLite file (or, with --postgres, an embedded Postgres server, each process with its own pool),
// provider latency L. Prints redemptions, distinct tokens and caller latency as a ratio to L.
// Usage: npm run bench:storm -- [processes] [callers] [latencyMs] [runs] [--cold] [--postgres]
import { cpus } from 'node:os';
import { quantile, runStorm } from '@tokenwarden/testkit';
import { startPostgres } from '@tokenwarden/testkit/postgres';

const args = process.argv.slice(2);
const cold = args.includes('--cold');
const postgres = args.includes('--postgres') ? await startPostgres() : undefined;
const [processes = 4, callers = 250, latencyMs = 100, runs = 5] = args
  .filter((a) => !a.startsWith('--'))
  .map(Number);

console.log(
  `storm on ${postgres ? 'Postgres' : 'SQLite'}: ${processes} processes × ${callers} callers, L = ${latencyMs} ms, ${runs} runs, ` +
    `${cold ? 'cold' : 'warm'} processes (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version})`,
);
console.log('run  redemptions  distinct  violations  errors  p50/L  p99/L  max/L');
// The issues' targets for a warm storm of 8 × 125 (Postgres) and 4 × 250 (SQLite).
const target = postgres ? 1.2 : 1.3;
const p99s: number[] = [];
const all: number[] = [];
for (let run = 1; run <= runs; run++) {
  const storm = await runStorm({
    processes,
    callersPerProcess: callers,
    latencyMs,
    warm: !cold,
    databaseUrl: postgres?.url,
  });
  const ratio = (q: number) => (quantile(storm.latenciesMs, q) / latencyMs).toFixed(2);
  p99s.push(quantile(storm.latenciesMs, 0.99) / latencyMs);
  all.push(...storm.latenciesMs);
  console.log(
    [
      String(run).padEnd(4),
      String(storm.provider.redemptions).padEnd(12),
      String(storm.distinctTokens).padEnd(9),
      String(storm.provider.reuseViolations).padEnd(11),
      String(storm.errors.length).padEnd(7),
      ratio(0.5).padEnd(6),
      ratio(0.99).padEnd(6),
      ratio(1),
    ].join(' '),
  );
}
const pooled = quantile(all, 0.99) / latencyMs;
console.log(
  `p99/L of all ${all.length} callers: ${pooled.toFixed(2)} (target ≤ ${target}: ${pooled <= target ? 'met' : 'MISSED'}); ` +
    `runs with p99/L ≤ ${target}: ${p99s.filter((p) => p <= target).length} of ${runs}`,
);
await postgres?.close();
