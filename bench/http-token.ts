// HTTP benchmark: Tokenwarden's token hand-out next to a bare Fastify route, under autocannon.
//
//   npm run bench:http -- [--duration 10] [--connections 50] [--warmup 2] [--log-requests]
//                         [--cpu-prof <dir>] [--key-sources] [--tracing]
//
// (1) bare: a Fastify route answering POST with a constant JSON body, no logging.
// (2) tokenwarden: POST /v1/connections/{id}/token with a valid (unexpired) token, a service
//     client's API key checked against the store, its grant checked, the audit event written:
//     buildServer() on the embedded SQLite store, the server's default options otherwise
//     (scheduler on), except the per-request log line: off unless --log-requests.
// (3) with --key-sources: tokenwarden-kms, the same with the AWS KMS key source (envelope
//     encryption, the real @aws-sdk/client-kms against moto on loopback, the key heartbeat on);
//     the KMS requests made while measuring are counted (expected: none).
// (4) with --tracing: tokenwarden with tracing on (startTracing, every span sampled, batched to
//     an exporter that drops them: the cost of making the spans, not of shipping them).
// Each server runs in a child process of its own, so autocannon (here) does not share its event
// loop; both are measured one after the other with the same settings, on loopback.
// Targets: tokenwarden ≥ 50 % of bare's requests/s, p99 ≤ 5 ms.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { FAKE_AWS_ENV, startMoto, type Moto } from '@tokenwarden/testkit';

interface Target {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    'cpu-prof': { type: 'string' },
    'log-requests': { type: 'boolean', default: false },
    'key-sources': { type: 'boolean', default: false },
    tracing: { type: 'boolean', default: false },
    serve: { type: 'string' },
  },
});

if (values.serve === 'bare') await serveBare();
else if (values.serve === 'tokenwarden') await serveTokenwarden(false);
else if (values.serve === 'tokenwarden-kms') await serveTokenwarden(true);
else await main();

async function main(): Promise<void> {
  const duration = Number(values.duration);
  const connections = Number(values.connections);
  const warmup = Number(values.warmup);
  console.log(
    `bench:http: ${connections} connections, ${duration} s each after a ${warmup} s warm-up, loopback ` +
      `(${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}). ` +
      'Shared machine: figures are noisy.',
  );
  const rows: Array<{ name: string; result: autocannon.Result; cpuUs: number | undefined }> = [];
  const moto = values['key-sources'] ? await startMoto() : undefined;
  const names = moto ? ['bare', 'tokenwarden', 'tokenwarden-kms'] : ['bare', 'tokenwarden'];
  let kmsRequests: number | undefined;
  for (const name of names) {
    const server = await startChild(name, moto && (await motoEnv(moto)));
    try {
      if (warmup > 0) await measure(server.target, connections, warmup);
      const cpuBefore = cpuTimeUs(server.pid);
      const kmsBefore = moto && total(moto.counts());
      const result = await measure(server.target, connections, duration);
      if (name === 'tokenwarden-kms') kmsRequests = total(moto!.counts()) - kmsBefore!;
      const cpuAfter = cpuTimeUs(server.pid);
      const cpuUs =
        cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
      rows.push({ name, result, cpuUs });
    } finally {
      await server.stop();
    }
  }
  await moto?.close();
  console.log(
    '\nserver        req/s    p50 ms  p99 ms  max ms  non-2xx  errors  server CPU µs/req',
  );
  for (const { name, result, cpuUs } of rows) {
    const requests = result.requests.total;
    console.log(
      [
        name.padEnd(12),
        result.requests.average.toFixed(0).padStart(7),
        String(result.latency.p50).padStart(8),
        String(result.latency.p99).padStart(7),
        String(result.latency.max).padStart(7),
        String(result.non2xx).padStart(8),
        String(result.errors + result.timeouts).padStart(7),
        (cpuUs === undefined || requests === 0 ? 'n/a' : (cpuUs / requests).toFixed(1)).padStart(
          18,
        ),
      ].join(' '),
    );
  }
  const [bare, tw] = rows.map((r) => r.result) as [autocannon.Result, autocannon.Result];
  const ratio = tw.requests.average / bare.requests.average;
  console.log(
    `\ntokenwarden / bare throughput: ${(ratio * 100).toFixed(1)} % (target ≥ 50 %: ${ratio >= 0.5 ? 'met' : 'MISSED'}); ` +
      `tokenwarden p99 ${tw.latency.p99} ms (target ≤ 5 ms: ${tw.latency.p99 <= 5 ? 'met' : 'MISSED'})`,
  );
  const kms = rows.find((row) => row.name === 'tokenwarden-kms')?.result;
  if (kms) {
    console.log(
      `tokenwarden-kms / tokenwarden throughput: ${((kms.requests.average / tw.requests.average) * 100).toFixed(1)} %; ` +
        `KMS requests while measuring: ${kmsRequests}`,
    );
  }
  const failed = rows.some(({ result }) => result.non2xx > 0 || result.errors > 0);
  if (failed) {
    console.log('Some requests failed: the figures above do not measure successful hand-outs.');
    process.exitCode = 1;
  }
}

function measure(
  target: Target,
  connections: number,
  duration: number,
): Promise<autocannon.Result> {
  return autocannon({ ...target, connections, duration, pipelining: 1 });
}

/**
 * User + system CPU time of a process so far, in µs, from /proc (Linux); undefined elsewhere.
 * Resolution is the kernel's clock tick (10 ms), ample over a run of seconds.
 */
function cpuTimeUs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, hence from its closing parenthesis).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return ticks * 10_000; // a tick is 10 ms (`getconf CLK_TCK` = 100 on Linux)
  } catch {
    return undefined;
  }
}

/** Starts this script as `--serve <name>` in a child process; it prints its target as JSON. */
async function startChild(
  name: string,
  env?: NodeJS.ProcessEnv,
): Promise<{ target: Target; pid: number | undefined; stop: () => Promise<void> }> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const profile = values['cpu-prof'];
  const child = spawn(
    process.execPath,
    [
      '--conditions=tokenwarden-source',
      '--import',
      tsx,
      ...(profile ? ['--cpu-prof', '--cpu-prof-dir', join(profile, name)] : []),
      fileURLToPath(import.meta.url),
      '--serve',
      name,
      ...(values['log-requests'] ? ['--log-requests'] : []),
      ...(values.tracing ? ['--tracing'] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const target = await new Promise<Target>((resolve, reject) => {
    let out = '';
    let ready = false;
    child.stdout.on('data', (chunk: Buffer) => {
      // After the target line comes the request log (--log-requests): read and dropped.
      if (ready) return;
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        ready = true;
        resolve(JSON.parse(line) as Target);
      }
    });
    void exited.then(() => reject(new Error(`the ${name} server exited before it was ready`)));
  });
  return {
    target,
    pid: child.pid,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function announce(target: Target): void {
  process.stdout.write(`${JSON.stringify(target)}\n`);
}

function stopOnSignal(close: () => Promise<void>): void {
  process.once('SIGTERM', () => {
    void close().then(() => process.exit(0));
  });
}

async function serveBare(): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  const body = {
    access_token: 'at_constant_benchmark_token_0123456789abcdef',
    token_type: 'Bearer',
    expires_at: '2030-01-01T00:00:00.000Z',
    version: 1,
  };
  app.post('/v1/bare', async () => body);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  stopOnSignal(() => app.close());
  announce({
    url: `${url}/v1/bare`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer unused' },
    body: '{}',
  });
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/** A KMS key in moto, and the environment the KMS server child reads it from. */
async function motoEnv(moto: Moto): Promise<NodeJS.ProcessEnv> {
  // moto checks no signature: set-up straight to its JSON API.
  const response = await fetch(moto.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'TrentService.CreateKey',
      authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request',
    },
    body: '{}',
  });
  const created = (await response.json()) as { KeyMetadata: { KeyId: string } };
  return {
    ...FAKE_AWS_ENV,
    AWS_ENDPOINT_URL_KMS: moto.countedUrl,
    TOKENWARDEN_KMS_KEY_ID: created.KeyMetadata.KeyId,
  };
}

/** The key ring from the embedded key file, or (`kms`) from data keys wrapped by AWS KMS. */
async function openKeys(dir: string, kms: boolean) {
  const core = await import('@tokenwarden/core');
  if (!kms) return core.openEmbedded({ directory: dir, env: {}, warn: () => {} });
  const store = core.openSqliteStore({ path: join(dir, 'tokenwarden.sqlite') });
  await store.migrate();
  const source = new core.EnvelopeKeySource({
    wrapper: new core.AwsKms(),
    kmsKeyId: process.env.TOKENWARDEN_KMS_KEY_ID!,
    store: store.keys,
  });
  const keyRing = await source.load();
  const live = new core.LiveKeys({ source, ring: keyRing, store, log: () => {} });
  await live.start();
  return { store, keyRing };
}

async function serveTokenwarden(kms: boolean): Promise<void> {
  const { buildServer, generateApiKey, hashApiKey } = await import('@tokenwarden/server');
  const { TestProvider } = await import('@tokenwarden/testkit');
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-http-'));
  const provider = await TestProvider.start();
  const { store, keyRing } = await openKeys(dir, kms);
  const adminKey = generateApiKey();
  if (values.tracing) await startDroppingTracing();
  const app = await buildServer({
    store,
    keyRing,
    adminKeyHash: hashApiKey(adminKey),
    logger: { level: values['log-requests'] ? 'info' : 'warn' },
    tracing: values.tracing,
  });
  const admin = { authorization: `Bearer ${adminKey}` };
  const call = async (method: 'PUT' | 'POST', url: string, payload: object) => {
    const response = await app.inject({ method, url, headers: admin, payload });
    if (response.statusCode >= 300) throw new Error(`${method} ${url}: ${response.body}`);
    return response.json<Record<string, unknown>>();
  };
  await call('PUT', '/v1/providers/acme', {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
  });
  const client = await call('POST', '/v1/clients', {
    name: 'bench',
    grants: [{ owner: '*', provider: 'acme', actions: ['token.read'] }],
  });
  const grant = provider.issueGrant();
  const connection = await call('POST', '/v1/connections', {
    provider: 'acme',
    owner: 'bench-user',
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    expires_in: 3600,
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  stopOnSignal(async () => {
    await app.close();
    await store.close();
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  });
  announce({
    url: `${url}/v1/connections/${String(connection.id)}/token`,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${String(client.api_key)}`,
    },
    body: '{}',
  });
}

/** Tracing on, as `serve` starts it, every span batched (as OTLP export is) to an exporter that drops it. */
async function startDroppingTracing(): Promise<void> {
  const { startTracing } = await import('@tokenwarden/server');
  const { BatchSpanProcessor } = await import('@opentelemetry/sdk-trace');
  const drop = {
    export: (_spans: unknown[], done: (r: { code: 0 }) => void) => done({ code: 0 }),
    shutdown: async () => {},
  };
  await startTracing({ spanProcessors: [new BatchSpanProcessor({ exporter: drop })] });
}
