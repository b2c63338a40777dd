// The Go SDK's benchmarks (sdks/go/bench_test.go: cache hits in calls/s, a miss's round trip)
// against the scenario harness's real server, with the machine and its load printed beside them.
// Usage: npm run bench:sdk-go -- [benchtime = 2s] [count = 5]
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const [benchtime = '2s', count = '5'] = process.argv.slice(2);
const root = fileURLToPath(new URL('../', import.meta.url));
const env = {
  ...process.env,
  GOMODCACHE: `${root}.cache/go/mod`,
  GOCACHE: `${root}.cache/go/build`,
  GOFLAGS: '-mod=readonly',
};
console.log(
  `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; load average before: ${loadavg()[0]!.toFixed(2)}`,
);
const run = spawnSync(
  'go',
  ['test', '-run', '^$', '-bench', '.', `-benchtime=${benchtime}`, `-count=${count}`, '.'],
  { cwd: `${root}sdks/go`, env, stdio: 'inherit' },
);
console.log(`load average after: ${loadavg()[0]!.toFixed(2)}`);
process.exit(run.status ?? 1);
