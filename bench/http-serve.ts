// The servers bench/http-token.ts measures: the built `tokenwarden serve` seeded through its
// API, and what measuring one needs (its CPU, its database sessions' CPU, a KMS key in moto).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { KeyRing } from '@tokenwarden/core';
import { FAKE_AWS_ENV, type Moto, type TestProvider } from '@tokenwarden/testkit';
import type { PostgresServer } from '@tokenwarden/testkit/postgres';

export interface Target {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

export interface Server {
  target: Target;
  /** CPU µs of the server so far (its process, and its database sessions on Postgres). */
  cpuUs(): Promise<number | undefined>;
  /** Lines its log got, and whether a secret of the run is in it. */
  log(): { lines: number; leaked: boolean };
  stop(): Promise<void>;
}

const BIN = fileURLToPath(new URL('../node_modules/.bin/tokenwarden', import.meta.url));
const ADMIN_KEY = 'bench-http-admin-key-0123456789';

/** Databases made on the embedded Postgres server so far: each `serve` gets a fresh one. */
let databases = 0;

/**
 * `tokenwarden serve --port 0` (with `--log-level <level>` if `args` has one) in a fresh
 * directory, or on a fresh database of `postgres`, seeded through its API: the test provider, a
 * service client with token.read, one connection with a token valid for an hour.
 */
export async function startServe(
  provider: TestProvider,
  postgres: PostgresServer | undefined,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
  profileArgs: (name: string) => string[] = () => [],
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

/** User + system CPU µs of processes so far, from /proc (Linux); undefined elsewhere. */
export function cpuTimeUs(pids: number[]): number | undefined {
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

/** A KMS key in moto, and the environment `serve` reads it from. */
export async function motoEnv(moto: Moto): Promise<NodeJS.ProcessEnv> {
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
