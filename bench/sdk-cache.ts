// SDK cache-hit benchmark: getAccessToken calls per second in one process, once the token is
// cached, against a real Tokenwarden server (buildServer on loopback, SQLite store, test provider).
// Also prints what a miss costs (one round trip to the server) for scale. Rates are given per
// wall-clock second and per CPU second of this process: on a shared machine the second says what
// one uncontended core does (the loop is single-threaded).
// Usage: npm run bench:sdk -- [millions of calls per run = 20] [runs = 5]
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, cpus, loadavg, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { TokenwardenClient } from '@tokenwarden/client';
import { startCluster } from '../packages/client/test/helpers/cluster.ts';

const [millions = 20, runs = 5] = process.argv.slice(2).map(Number);
const calls = Math.round(millions * 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-sdk-'));
const cluster = await startCluster({ dir });

try {
  let apiRequests = 0;
  const tw = new TokenwardenClient({
    baseUrl: cluster.urls[0]!,
    apiKey: cluster.apiKey,
    fetch: (input, init) => {
      apiRequests++;
      return fetch(input, init);
    },
  });

  // Misses, for scale: each connection's first call is a round trip to the server.
  const misses: number[] = [];
  for (let i = 0; i < 20; i++) {
    const id = await cluster.importConnection({ expiresIn: 3600 });
    const started = performance.now();
    await tw.getAccessToken(id);
    misses.push(performance.now() - started);
  }
  misses.sort((a, b) => a - b);

  const id = await cluster.importConnection({ expiresIn: 3600 });
  await tw.getAccessToken(id);
  const before = apiRequests;

  console.log(
    `SDK cache hit: getAccessToken in one process, ${millions}M calls × ${runs} runs ` +
      `(${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${platform()}/${arch()}, node ${process.version})`,
  );
  console.log(
    `miss (round trip to the server, SQLite): p50 ${misses[10]!.toFixed(2)} ms, ` +
      `max ${misses[19]!.toFixed(2)} ms`,
  );
  console.log(`load average before the runs: ${loadavg()[0]!.toFixed(2)}`);
  console.log('run  M calls/s (wall, per CPU s)  with minTtl (wall, per CPU s)');
  /** Millions of calls per wall-clock second and per CPU second of this process. */
  const measure = async (fn: () => Promise<unknown>): Promise<[number, number]> => {
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < calls; i++) await fn();
    const wallS = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuS = (used.user + used.system) / 1e6;
    return [calls / wallS / 1e6, calls / cpuS / 1e6];
  };
  const plain: [number, number][] = [];
  const withTtl: [number, number][] = [];
  const pair = ([wall, cpu]: [number, number]) => `${wall.toFixed(2)}, ${cpu.toFixed(2)}`;
  for (let run = 1; run <= runs; run++) {
    plain.push(await measure(() => tw.getAccessToken(id)));
    withTtl.push(await measure(() => tw.getAccessToken(id, { minTtl: 60 })));
    console.log(
      `${String(run).padEnd(4)} ${pair(plain.at(-1)!).padEnd(28)} ${pair(withTtl.at(-1)!)}`,
    );
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  const medians = (rows: [number, number][]) =>
    `${median(rows.map((r) => r[0])).toFixed(2)}M/s wall, ${median(rows.map((r) => r[1])).toFixed(2)}M per CPU s`;
  console.log(`median, await loop: ${medians(plain)}`);
  console.log(`median, minTtl: ${medians(withTtl)}`);
  console.log(`API requests during the hit runs: ${apiRequests - before}`);
} finally {
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
}
