// HTTP benchmark: the token hand-out of `tokenwarden serve` as shipped, next to a bare Fastify
// route returning the same body, under autocannon, in one run.
//
//   npm run build && npm run bench:http -- [--duration 10] [--connections 50] [--warmup 2]
//       [--runs 1] [--store sqlite|postgres] [--key-sources] [--cpu-prof <dir>]
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
// Server CPU per request is the server process's (and on Postgres its database sessions') user +
// system time over the measured seconds, divided by the requests answered.
// Targets (issue 21): serve ≥ 0.5 of bare's throughput and p99 ≤ 1.5 × bare's p99 + 1 ms on
// SQLite; ≥ 0.25 of bare and p99 ≤ 10 ms on Postgres.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { KeyRing } from '@tokenwarden/core';
import { FAKE_AWS_ENV, startMoto, TestProvider, type Moto } from '@tokenwarden/testkit';
import { startPostgres, type PostgresServer } from '@tokenwarden/testkit/postgres';

interface Target {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

interface Server {
  target: Target;
  /** CPU µs of the server so far (its process, and its database sessions on Postgres). */
  cpuUs(): Promise<number | undefined>;
  /** Lines its log got, and whether a secret of the run is in it. */
  log(): { lines: number; leaked: boolean };
  stop(): Promise<void>;
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    runs: { type: 'string', default: '1' },
    store: { type: 'string', default: 'sqlite' },
    'cpu-prof': { type: 'string' },
    'key-sources': { type: 'boolean', default: false },
    serve: { type: 'string' },
  },
});

const BIN = fileURLToPath(new URL('../node_modules/.bin/tokenwarden', import.meta.url));
const ADMIN_KEY = 'bench-http-admin-key-0123456789';
const BARE_BODY = {
  access_token: 'at_constant_benchmark_token_0123456789abcdef',
  token_type: 'Bearer',
  expires_at: '2030-01-01T00:00:00.000Z',
  version: 1,
};

/** Databases made on the embedded Postgres server so far: each `serve` gets a fresh one. */
let databases = 0;

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
    { name: 'serve', start: () => startServe(provider, database, []) },
    { name: 'serve --log-level warn', start: () => startServe(provider, database, ['warn']) },
  ];
  if (moto) {
    variants.push({
      name: 'serve (KMS)',
      start: async () => startServe(provider, database, [], await motoEnv(moto)),
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

/** User + system CPU µs of processes so far, from /proc (Linux); undefined elsewhere. */
function cpuTimeUs(pids: number[]): number | undefined {
  try {
    let ticks = 0;
    for (const pid of pids) {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces, hence from its closing parenthesis).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    }
    return ticks * 10_000; // a tick is 10 ms (`getconf CLK_TCK` = 100 on Linux)
  } catch {
    return undefined;
  }
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

/**
 * `tokenwarden serve --port 0` (with `--log-level <level>` if `args` has one) in a fresh
 * directory, or on a fresh database of `postgres`, seeded through its API: the test provider, a
 * service client with token.read, one connection with a token valid for an hour.
 */
async function startServe(
  provider: TestProvider,
  postgres: PostgresServer | undefined,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-http-'));
  const databaseUrl = postgres && (await freshDatabase(postgres));
  const logPath = join(dir, 'serve.log');
  const logFd = openSync(logPath, 'w');
  const env: NodeJS.ProcessEnv = { ...withoutTokenwardenSettings(), ...extraEnv };
  env.TOKENWARDEN_ADMIN_KEY = ADMIN_KEY;
  if (databaseUrl) env.TOKENWARDEN_KEYS = KeyRing.generate('bench').serialize();
  const name =
    args.length > 0 ? 'serve-warn' : extraEnv.TOKENWARDEN_KMS_KEY_ID ? 'serve-kms' : 'serve';
  // The bin run by plain node, as its shebang would, with the profiler's flags if asked for.
  const child = spawn(
    process.execPath,
    [
      ...profileArgs(name),
      BIN,
      'serve',
      '--port',
      '0',
      '--db',
      databaseUrl ?? join(dir, 'tokenwarden.sqlite'),
      ...(args[0] ? ['--log-level', args[0]] : []),
    ],
    { cwd: dir, env, stdio: ['ignore', logFd, 'pipe'] },
  );
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const found = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      if (found) resolve(found);
    });
    void exited.then(() => reject(new Error(`tokenwarden serve exited:\n${stderr}`)));
  });
  const secrets = [ADMIN_KEY];
  const admin = async (method: string, path: string, body: object) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as Record<string, unknown>;
    if (response.status >= 300) throw new Error(`${method} ${path}: ${JSON.stringify(answer)}`);
    return answer;
  };
  await admin('PUT', '/v1/providers/acme', {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
  });
  const client = await admin('POST', '/v1/clients', {
    name: 'bench',
    grants: [{ owner: '*', provider: 'acme', actions: ['token.read'] }],
  });
  const grant = provider.issueGrant();
  const connection = await admin('POST', '/v1/connections', {
    provider: 'acme',
    owner: 'bench-user',
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    expires_in: 3600,
  });
  secrets.push(String(client.api_key), grant.access_token, grant.refresh_token);
  const sessionsCpu = databaseUrl ? databaseCpu(databaseUrl) : undefined;
  return {
    target: {
      url: `${url}/v1/connections/${String(connection.id)}/token`,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${String(client.api_key)}`,
      },
      body: '{}',
    },
    cpuUs: async () => {
      const server = cpuTimeUs([child.pid!]);
      const sessions = sessionsCpu ? await sessionsCpu() : 0;
      return server === undefined || sessions === undefined ? undefined : server + sessions;
    },
    log: () => {
      const text = readFileSync(logPath, 'utf8');
      return {
        lines: text.split('\n').length - 1,
        leaked: secrets.some((secret) => text.includes(secret)),
      };
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The environment without the caller's TOKENWARDEN_* settings, so only the bench's apply. */
function withoutTokenwardenSettings(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('TOKENWARDEN_')),
  );
}

function profileArgs(name: string): string[] {
  const dir = values['cpu-prof'];
  return dir ? ['--cpu-prof', '--cpu-prof-dir', join(dir, name)] : [];
}

/** A new database on the embedded server, for one `serve`: its URL. */
async function freshDatabase(server: PostgresServer): Promise<string> {
  const name = `bench_http_${++databases}`;
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return url.href;
}

/**
 * CPU µs so far of the database sessions serving `url`'s database (the server's pool): their
 * work is the server's too. A session that has ended since it was last seen counts with what it
 * had used then (the pool closes idle ones).
 */
function databaseCpu(url: string): () => Promise<number | undefined> {
  const seen = new Map<number, number>();
  return async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    await client.end();
    for (const { pid } of rows) {
      const used = cpuTimeUs([pid]);
      if (used !== undefined) seen.set(pid, used);
    }
    return [...seen.values()].reduce((sum, used) => sum + used, 0);
  };
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/** A KMS key in moto, and the environment `serve` reads it from. */
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
