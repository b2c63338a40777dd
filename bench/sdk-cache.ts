// SDK cache-hit benchmark: getAccessToken calls per second in one process, once the token is
// cached, against a real Tokenwarden server (buildServer on loopback, SQLite store, test provider).
// Also prints what a miss costs (one round trip to the server) for scale.
// Usage: npm run bench:sdk -- [millions of calls per run = 20] [runs = 5]
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, cpus, platform, tmpdir } from 'node:os';
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
  console.log('run  await loop (M calls/s)  with minTtlSeconds (M calls/s)');
  const plain: number[] = [];
  const withTtl: number[] = [];
  for (let run = 1; run <= runs; run++) {
    let started = performance.now();
    for (let i = 0; i < calls; i++) await tw.getAccessToken(id);
    plain.push(calls / ((performance.now() - started) / 1000) / 1e6);
    started = performance.now();
    for (let i = 0; i < calls; i++) await tw.getAccessToken(id, { minTtlSeconds: 60 });
    withTtl.push(calls / ((performance.now() - started) / 1000) / 1e6);
    console.log(
      `${String(run).padEnd(4)} ${plain.at(-1)!.toFixed(2).padEnd(24)} ${withTtl.at(-1)!.toFixed(2)}`,
    );
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  console.log(
    `median: ${median(plain).toFixed(2)}M calls/s (await loop), ` +
      `${median(withTtl).toFixed(2)}M calls/s (minTtlSeconds); ` +
      `API requests during the hit runs: ${apiRequests - before}`,
  );
} finally {
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
}
