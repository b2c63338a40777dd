// Proxy benchmark: a loopback resource server called directly with the token, and through
// Tokenwarden's proxy (`/v1/proxy/{id}/...`) with a service client's key, in one run.
//
//   npm run bench:proxy -- [--duration 10] [--connections 50] [--warmup 2] [--rate 1000]
//                          [--stream-mb 100] [--cpu-prof <dir>]
//
// (1) small JSON, throughput: GET /json under autocannon, `--connections` connections as fast
//     as they are answered, direct then proxied (the same connection count on both sides: the
//     proxy's upstream pool opens at most one connection per call in flight).
// (2) small JSON, latency: the same at a fixed `--rate` requests/s, the same for both, below
//     what either side can do: a saturated run's latency is its queue (connections ÷ req/s),
//     not what the proxy adds to a call. The p99 target is judged here. Paced here (autocannon
//     sends each second's budget in one burst).
// (3) stream: GET /bytes/<n> of `--stream-mb` MB, read to the end, best of three, each way.
// The resource server (with the test provider that issued the token) runs in one child process,
// Tokenwarden (buildServer on the embedded SQLite store, no per-request log line) in another, so
// that neither shares an event loop with autocannon here.
// Targets: the proxied p99 adds at most 2 ms to the direct one; proxied throughput ≥ 50 % of
// direct for small answers and ≥ 90 % for the stream.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Pool, request } from 'undici';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    'stream-mb': { type: 'string', default: '100' },
    rate: { type: 'string', default: '1000' },
    serve: { type: 'string' },
    // Writes a V8 CPU profile of the Tokenwarden child into this directory (node --cpu-prof).
    'cpu-prof': { type: 'string' },
  },
});

/** What the resource child prints: where it is, and a grant its provider issued. */
interface ResourceInfo {
  resourceUrl: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  accessToken: string;
  refreshToken: string;
}

/** What the Tokenwarden child prints: the proxy prefix of the connection and the worker's key. */
interface ProxyInfo {
  proxyUrl: string;
  apiKey: string;
}

if (values.serve === 'resource') await serveResource();
else if (values.serve === 'tokenwarden') await serveTokenwarden();
else await main();

async function main(): Promise<void> {
  const duration = Number(values.duration);
  const connections = Number(values.connections);
  const warmup = Number(values.warmup);
  const streamBytes = Number(values['stream-mb']) * 1024 * 1024;
  console.log(
    `bench:proxy: ${connections} connections, ${duration} s each after a ${warmup} s warm-up; ` +
      `a ${values['stream-mb']} MB stream; loopback (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ` +
      `node ${process.version}, load average ${loadavg()[0]!.toFixed(1)} at start). Shared machine: figures are noisy.`,
  );
  const resource = await startChild<ResourceInfo>('resource', {});
  const tokenwarden = await startChild<ProxyInfo>('tokenwarden', {
    BENCH_RESOURCE: JSON.stringify(resource.info),
  });
  try {
    const direct = {
      url: `${resource.info.resourceUrl}/json`,
      headers: { authorization: `Bearer ${resource.info.accessToken}` },
    };
    const proxied = {
      url: `${tokenwarden.info.proxyUrl}/json`,
      headers: { authorization: `Bearer ${tokenwarden.info.apiKey}` },
    };
    const small: Record<string, autocannon.Result> = {};
    const paced: Record<string, Latency> = {};
    const cpuPerCall: Record<string, number> = {};
    const rate = Number(values.rate);
    for (const [name, target] of [
      ['direct', direct],
      ['proxied', proxied],
    ] as const) {
      if (warmup > 0) await autocannon({ ...target, connections, duration: warmup });
      const before = cpuTimeUs(resource.pid) + cpuTimeUs(tokenwarden.pid);
      small[name] = await autocannon({ ...target, connections, duration });
      const spent = cpuTimeUs(resource.pid) + cpuTimeUs(tokenwarden.pid) - before;
      cpuPerCall[name] = spent / small[name].requests.total;
      paced[name] = await pacedLatency(target, rate, connections, duration);
    }
    const stream: Record<string, number> = {};
    for (const [name, target] of [
      ['direct', direct],
      ['proxied', proxied],
    ] as const) {
      const url = target.url.replace(/\/json$/, `/bytes/${streamBytes}`);
      let best = 0;
      for (let i = 0; i < 3; i++) best = Math.max(best, await streamMBs(url, target.headers));
      stream[name] = best;
    }
    report(small as Pair, paced as { direct: Latency; proxied: Latency }, rate, stream);
    console.log(
      `server CPU per call (resource server + Tokenwarden): direct ${cpuPerCall.direct!.toFixed(0)} µs, ` +
        `proxied ${cpuPerCall.proxied!.toFixed(0)} µs`,
    );
  } finally {
    await tokenwarden.stop();
    await resource.stop();
  }
}

type Pair = { direct: autocannon.Result; proxied: autocannon.Result };

function report(
  small: Pair,
  paced: { direct: Latency; proxied: Latency },
  rate: number,
  stream: Record<string, number>,
): void {
  console.log('\nsmall JSON            req/s    p50 ms  p99 ms  max ms  non-2xx  errors');
  const rows = [
    ['direct', small.direct],
    ['proxied', small.proxied],
  ] as const;
  for (const [name, result] of rows) {
    console.log(
      [
        name.padEnd(18),
        result.requests.average.toFixed(0).padStart(8),
        String(result.latency.p50).padStart(8),
        String(result.latency.p99).padStart(7),
        String(result.latency.max).padStart(7),
        String(result.non2xx).padStart(8),
        String(result.errors + result.timeouts).padStart(7),
      ].join(' '),
    );
  }
  for (const [name, result] of Object.entries(paced)) {
    console.log(
      [
        `${name} @${rate}/s`.padEnd(18),
        result.perSecond.toFixed(0).padStart(8),
        result.p50.toFixed(2).padStart(8),
        result.p99.toFixed(2).padStart(7),
        result.max.toFixed(1).padStart(7),
        String(result.failed).padStart(8),
        '-'.padStart(7),
      ].join(' '),
    );
  }
  const ratio = small.proxied.requests.average / small.direct.requests.average;
  const added = paced.proxied.p99 - paced.direct.p99;
  const addedSaturated = small.proxied.latency.p99 - small.direct.latency.p99;
  const streamRatio = stream.proxied! / stream.direct!;
  console.log(
    `\nstream: direct ${stream.direct!.toFixed(0)} MB/s, proxied ${stream.proxied!.toFixed(0)} MB/s (best of 3)` +
      `\nsmall throughput proxied / direct: ${(ratio * 100).toFixed(1)} % (target ≥ 50 %: ${ratio >= 0.5 ? 'met' : 'MISSED'})` +
      `\np99 added by the proxy at ${rate} req/s: ${added.toFixed(2)} ms (target ≤ 2 ms: ${added <= 2 ? 'met' : 'MISSED'}); saturated: ${addedSaturated} ms` +
      `\nstream throughput proxied / direct: ${(streamRatio * 100).toFixed(1)} % (target ≥ 90 %: ${streamRatio >= 0.9 ? 'met' : 'MISSED'})` +
      `\nload average at the end: ${loadavg()[0]!.toFixed(1)}`,
  );
  const failed =
    rows.some(([, r]) => r.non2xx > 0 || r.errors > 0) ||
    Object.values(paced).some((r) => r.failed > 0);
  if (failed) {
    console.log('Some requests failed: the figures above do not measure successful calls.');
    process.exitCode = 1;
  }
}

interface Latency {
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** Answers other than 2xx, and errors. */
  failed: number;
}

/**
 * `rate` requests a second for `seconds`, one every 1/rate s (autocannon's rate limit sends each
 * second's budget in one burst, which measures a queue), over at most `connections` keep-alive
 * connections. A call's latency counts from when it was due, so a stall is not hidden by the
 * calls it held back (coordinated omission).
 */
async function pacedLatency(
  target: { url: string; headers: Record<string, string> },
  rate: number,
  connections: number,
  seconds: number,
): Promise<Latency> {
  const url = new URL(target.url);
  const pool = new Pool(url.origin, { connections });
  const path = url.pathname + url.search;
  const latencies: number[] = [];
  let failed = 0;
  const calls: Promise<void>[] = [];
  const started = performance.now();
  const total = rate * seconds;
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    // Sent late: counted from when it was due. Sent early (timers are coarse): from now.
    const from = Math.min(due, performance.now());
    calls.push(
      pool.request({ method: 'GET', path, headers: target.headers }).then(
        async (answer) => {
          await answer.body.dump();
          if (answer.statusCode >= 300) failed += 1;
          latencies.push(performance.now() - from);
        },
        () => void (failed += 1),
      ),
    );
  }
  await Promise.all(calls);
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    perSecond: latencies.length / ((performance.now() - started) / 1000),
    p50: at(0.5),
    p99: at(0.99),
    max: latencies.at(-1) ?? NaN,
    failed,
  };
}

/** User + system CPU time of a process so far, in µs, from /proc (Linux; 10 ms ticks). */
function cpuTimeUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Downloads `url` to the end, in MB/s. */
async function streamMBs(url: string, headers: Record<string, string>): Promise<number> {
  const started = performance.now();
  const answer = await request(url, { headers });
  let bytes = 0;
  for await (const chunk of answer.body as AsyncIterable<Buffer>) bytes += chunk.length;
  if (answer.statusCode !== 200) throw new Error(`stream answered ${answer.statusCode}`);
  return bytes / 1024 / 1024 / ((performance.now() - started) / 1000);
}

/** This script as `--serve <name>` in a child process; it prints what it serves as JSON. */
async function startChild<T>(
  name: string,
  env: Record<string, string>,
): Promise<{ info: T; pid: number; stop: () => Promise<void> }> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = spawn(
    process.execPath,
    [
      ...(name === 'tokenwarden' && values['cpu-prof']
        ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`]
        : []),
      '--conditions=tokenwarden-source',
      '--import',
      tsx,
      fileURLToPath(import.meta.url),
      '--serve',
      name,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const info = await new Promise<T>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as T);
    });
    void exited.then(() => reject(new Error(`${name} exited before it was ready`)));
  });
  return {
    info,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function serveResource(): Promise<void> {
  const { ResourceServer, TestProvider } = await import('@tokenwarden/testkit');
  const provider = await TestProvider.start();
  const resource = await ResourceServer.start({
    accepts: (token) => provider.isAccessTokenValid(token),
  });
  const grant = provider.issueGrant();
  const info: ResourceInfo = {
    resourceUrl: resource.url,
    tokenUrl: provider.tokenUrl,
    clientId: provider.clientId,
    clientSecret: provider.clientSecret,
    accessToken: grant.access_token,
    refreshToken: grant.refresh_token,
  };
  console.log(JSON.stringify(info));
  process.once('SIGTERM', () => {
    void Promise.all([resource.close(), provider.close()]).then(() => process.exit(0));
  });
}

async function serveTokenwarden(): Promise<void> {
  const { KeyRing, openSqliteStore } = await import('@tokenwarden/core');
  const { buildServer, generateApiKey, hashApiKey } = await import('@tokenwarden/server');
  const resource = JSON.parse(process.env.BENCH_RESOURCE!) as ResourceInfo;
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-proxy-'));
  const store = openSqliteStore({ path: join(dir, 'tokenwarden.sqlite') });
  await store.migrate();
  const adminKey = generateApiKey();
  const app = await buildServer({
    store,
    keyRing: KeyRing.generate('k1'),
    adminKeyHash: hashApiKey(adminKey),
    // As bench:http: no per-request log line (a line per request is measured there).
    logger: { level: 'warn' },
    docs: false,
  });
  const admin = async (method: 'PUT' | 'POST', url: string, body: unknown) => {
    const answer = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${adminKey}` },
      payload: body as Record<string, unknown>,
    });
    if (answer.statusCode >= 300) throw new Error(`${method} ${url}: ${answer.body}`);
    return answer.json<Record<string, string>>();
  };
  await admin('PUT', '/v1/providers/test', {
    token_url: resource.tokenUrl,
    client_id: resource.clientId,
    client_secret: resource.clientSecret,
    api_base_urls: [resource.resourceUrl],
  });
  const worker = await admin('POST', '/v1/clients', {
    name: 'bench',
    grants: [{ owner: '*', provider: 'test', actions: ['proxy'] }],
  });
  const connection = await admin('POST', '/v1/connections', {
    provider: 'test',
    owner: 'bench-user',
    access_token: resource.accessToken,
    refresh_token: resource.refreshToken,
    expires_in: 86_400,
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const info: ProxyInfo = {
    proxyUrl: `${base}/v1/proxy/${connection.id}`,
    apiKey: worker.api_key!,
  };
  console.log(JSON.stringify(info));
  process.once('SIGTERM', () => {
    void app
      .close()
      .then(() => store.close())
      .then(() => rmSync(dir, { recursive: true, force: true }))
      .then(() => process.exit(0));
  });
}
