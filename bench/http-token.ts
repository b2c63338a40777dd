// HTTP benchmark: the token hand-out of `tokenwarden serve` as shipped, next to a bare Fastify
// route returning the same body, under autocannon, in one run.
//
//   npm run build && npm run bench:http -- [--duration 10] [--connections 50] [--warmup 2]
//       [--runs 1] [--store sqlite|postgres] [--key-sources] [--tracing] [--cpu-prof <dir>]
//
// Servers, each a child process of its own (autocannon runs here), measured one after the other:
// - bare: a Fastify route answering POST with a constant JSON body of the same shape, no logging.
// - serve: the built `tokenwarden serve` with no flags (log level info, its access log on), on
//   SQLite (a fresh file) or, with --store postgres, on an embedded Postgres server as a cluster's
//   replica runs it (TOKENWARDEN_KEYS); `POST /v1/connections/{id}/token` with a valid token, a
//   service client's key checked, its grant checked, the hand-out audited. Its log goes to a file.
// - serve --log-level warn: the same without any info line (a tuned variant).
// - with --key-sources: serve (KMS), the shipped configuration with the AWS KMS key source (data
//   keys wrapped by KMS: the real @aws-sdk/client-kms against moto on loopback, the key
//   heartbeat on); the KMS requests made while measuring are counted (expected: none).
// - with --tracing: serve (tracing), the shipped configuration with OpenTelemetry tracing on
//   (OTEL_TRACES_EXPORTER=otlp, every span sampled and exported over OTLP/HTTP to a sink here that
//   answers 200 and keeps nothing): the cost of making and shipping the spans.
// Server CPU per request is the server process's (and on Postgres its database sessions') user +
// system time over the measured seconds, divided by the requests answered.
// Targets (issue 21): serve ≥ 0.5 of bare's throughput and p99 ≤ 1.5 × bare's p99 + 1 ms on
// SQLite; ≥ 0.25 of bare and p99 ≤ 10 ms on Postgres.
import { spawn } from 'node:child_process';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startMoto, TestProvider } from '@tokenwarden/testkit';
import { startPostgres } from '@tokenwarden/testkit/postgres';
import { cpuTimeUs, motoEnv, startServe, type Server, type Target } from './http-serve.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    runs: { type: 'string', default: '1' },
    store: { type: 'string', default: 'sqlite' },
    'cpu-prof': { type: 'string' },
    'key-sources': { type: 'boolean', default: false },
    tracing: { type: 'boolean', default: false },
    serve: { type: 'string' },
  },
});

const BARE_BODY = {
  access_token: 'at_constant_benchmark_token_0123456789abcdef',
  token_type: 'Bearer',
  expires_at: '2030-01-01T00:00:00.000Z',
  version: 1,
};

if (values.serve === 'bare') await serveBare();
else await main();

async function main(): Promise<void> {
  const duration = Number(values.duration);
  const connections = Number(values.connections);
  const warmup = Number(values.warmup);
  const postgres = values.store === 'postgres';
  if (!postgres && values.store !== 'sqlite') throw new Error('--store is sqlite or postgres');
  console.log(
    `bench:http: ${connections} connections, ${duration} s each after a ${warmup} s warm-up, ` +
      `store ${values.store}, loopback (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ` +
      `${process.version}), load average ${loadavg()[0]!.toFixed(2)}. Shared machine: ratios ` +
      'against bare in the same run are the figures to compare.',
  );
  const provider = await TestProvider.start();
  const database = postgres ? await startPostgres() : undefined;
  const moto = values['key-sources'] ? await startMoto() : undefined;
  const variants: Array<{ name: string; start: () => Promise<Server> }> = [
    { name: 'bare', start: startBare },
    { name: 'serve', start: () => startServe(provider, database, [], {}, profileArgs) },
    {
      name: 'serve --log-level warn',
      start: () => startServe(provider, database, ['warn'], {}, profileArgs),
    },
  ];
  if (moto) {
    variants.push({
      name: 'serve (KMS)',
      start: async () => startServe(provider, database, [], await motoEnv(moto), profileArgs),
    });
  }
  const sink = values.tracing ? await startOtlpSink() : undefined;
  if (sink) {
    variants.push({
      name: 'serve (tracing)',
      start: () =>
        startServe(
          provider,
          database,
          [],
          { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: sink.url },
          profileArgs,
        ),
    });
  }
  let failed = false;
  try {
    for (let run = 1; run <= Number(values.runs); run++) {
      const rows: Row[] = [];
      for (const { name, start } of variants) {
        const server = await start();
        try {
          if (warmup > 0) await measure(server.target, connections, warmup);
          const cpuBefore = await server.cpuUs();
          const kmsBefore = moto && total(moto.counts());
          const result = await measure(server.target, connections, duration);
          const cpuAfter = await server.cpuUs();
          rows.push({
            name,
            result,
            cpuUs:
              cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore,
            kms: name === 'serve (KMS)' ? total(moto!.counts()) - kmsBefore! : undefined,
            log: server.log(),
          });
        } finally {
          await server.stop();
        }
      }
      failed = report(run, rows, postgres) || failed;
    }
  } finally {
    await moto?.close();
    sink?.server.close();
    await database?.close();
    await provider.close();
  }
  if (failed) {
    console.log('Some requests failed, or a secret reached a log: the figures above do not count.');
    process.exitCode = 1;
  }
}

interface Row {
  name: string;
  result: autocannon.Result;
  cpuUs: number | undefined;
  kms: number | undefined;
  log: { lines: number; leaked: boolean };
}

/** Prints one run's table and its verdicts; true if a request failed or a secret leaked. */
function report(run: number, rows: Row[], postgres: boolean): boolean {
  console.log(
    `\nrun ${run} (load average ${loadavg()[0]!.toFixed(2)})\n` +
      'server                    req/s  × bare  p50 ms  p99 ms  max ms  non-2xx  errors  CPU µs/req  log lines',
  );
  const bare = rows[0]!.result;
  for (const { name, result, cpuUs, log } of rows) {
    const requests = result.requests.total;
    console.log(
      [
        name.padEnd(22),
        result.requests.average.toFixed(0).padStart(8),
        (result.requests.average / bare.requests.average).toFixed(2).padStart(7),
        String(result.latency.p50).padStart(7),
        String(result.latency.p99).padStart(7),
        String(result.latency.max).padStart(7),
        String(result.non2xx).padStart(8),
        String(result.errors + result.timeouts).padStart(7),
        (cpuUs === undefined || requests === 0 ? 'n/a' : (cpuUs / requests).toFixed(1)).padStart(
          11,
        ),
        String(log.lines).padStart(10),
      ].join(' '),
    );
  }
  const serve = rows[1]!.result;
  const ratio = serve.requests.average / bare.requests.average;
  const [minRatio, p99Limit] = postgres ? [0.25, 10] : [0.5, 1.5 * bare.latency.p99 + 1];
  console.log(
    `serve / bare throughput ${ratio.toFixed(2)} (target ≥ ${minRatio}: ${ratio >= minRatio ? 'met' : 'MISSED'}); ` +
      `serve p99 ${serve.latency.p99} ms (target ≤ ${p99Limit} ms: ${serve.latency.p99 <= p99Limit ? 'met' : 'MISSED'})`,
  );
  const kms = rows.find((row) => row.kms !== undefined);
  if (kms) {
    console.log(
      `serve (KMS) / serve throughput ${(kms.result.requests.average / serve.requests.average).toFixed(2)}; ` +
        `KMS requests while measuring: ${kms.kms}`,
    );
  }
  return rows.some(
    ({ result, log }) =>
      result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || log.leaked,
  );
}

function measure(
  target: Target,
  connections: number,
  duration: number,
): Promise<autocannon.Result> {
  return autocannon({ ...target, connections, duration, pipelining: 1 });
}

/** This script as `--serve bare` in a child process; it prints its target as JSON. */
async function startBare(): Promise<Server> {
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      ...profileArgs('bare'),
      fileURLToPath(import.meta.url),
      '--serve',
      'bare',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const target = await new Promise<Target>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as Target);
    });
    void exited.then(() => reject(new Error('the bare server exited before it was ready')));
  });
  return {
    target,
    cpuUs: async () => cpuTimeUs([child.pid!]),
    log: () => ({ lines: 0, leaked: false }),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function serveBare(): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  app.post('/v1/bare', async () => BARE_BODY);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
  const target: Target = {
    url: `${url}/v1/bare`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer unused' },
    body: '{}',
  };
  process.stdout.write(`${JSON.stringify(target)}\n`);
}

function profileArgs(name: string): string[] {
  const dir = values['cpu-prof'];
  return dir ? ['--cpu-prof', '--cpu-prof-dir', join(dir, name)] : [];
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/** An OTLP/HTTP trace endpoint that accepts every export and keeps nothing. */
async function startOtlpSink(): Promise<{ url: string; server: HttpServer }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/traces`, server };
}
