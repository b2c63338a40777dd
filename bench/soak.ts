// Soak: two `tokenwarden serve` replicas on one Postgres for a long run, hand-outs at a steady
// rate over 10,000 connections whose access tokens live a few minutes (so refreshes, by the
// schedulers and by hand-outs, go on every second or so), and one replica restarted every 5
// minutes. Prints one line per minute: hand-outs, errors (must stay 0), how many were retried on
// the other replica, p99, refreshes at the provider, and RSS and heap of each replica.
//
//   npm run bench:soak -- [--minutes 30] [--connections 10000] [--rate 20] [--ttl 600]
//                         [--restart-every 5]
//
// Needs the compiled server (`npm run build`): the replicas run the real `tokenwarden` binary.
//
// A restarting replica refuses connections (or answers 503 while it drains): the load generator
// then sends the same request to the other replica, once. Only a request that fails on both, or
// that gets any other non-2xx, counts as an error. Every tenth token is also shown to the test
// provider's resource endpoint, which must accept it.
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { KeyRing } from '@tokenwarden/core';
import { quantile, startProviderProcess } from '@tokenwarden/testkit';
import { startPostgres } from '@tokenwarden/testkit/postgres';
import pg from 'pg';
import { startReplica, type Replica } from './soak-replica.ts';

const ADMIN_KEY = 'soak-admin-key-0123456789';
/** The scheduler refreshes this long before expiry (its default lead): imports start past it. */
const REFRESH_LEAD_SECONDS = 60;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    connections: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '20' },
    ttl: { type: 'string', default: '600' },
    'restart-every': { type: 'string', default: '5' },
  },
});
const minutes = Number(values.minutes);
const connectionCount = Number(values.connections);
const rate = Number(values.rate);
const ttlSeconds = Number(values.ttl);
const restartEveryMs = Number(values['restart-every']) * 60_000;

console.log(
  `bench:soak: ${minutes} min, 2 replicas on one Postgres, ${connectionCount} connections, ` +
    `${rate} hand-outs/s, access tokens of ${ttlSeconds} s (rotating refresh tokens, reuse ` +
    `detection), a replica restarted every ${values['restart-every']} min ` +
    `(${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load ${load()})`,
);

async function run(): Promise<boolean> {
  const first = replicas[0]!;
  await admin(first, 'PUT', '/v1/providers/test', {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
  });
  const client = (await admin(first, 'POST', '/v1/clients', {
    name: 'soak-worker',
    grants: [{ owner: '*', provider: 'test', actions: ['token.read'] }],
  })) as { api_key: string };
  const ids = await importConnections(first, connectionCount);
  console.log(`imported ${ids.length} connections (access tokens due evenly over ${ttlSeconds} s)`);

  const load = new LoadGenerator(ids, client.api_key);
  const started = Date.now();
  const end = started + minutes * 60_000;
  let nextRestart = started + restartEveryMs;
  let restarted = 0;
  let redemptionsBefore = (await provider.provider.stats()).redemptions;
  console.log(
    '\nmin  hand-outs  errors  retried  p99 ms  refreshes  ' +
      'r1 RSS MB  r1 heap MB  r2 RSS MB  r2 heap MB  restarts  load',
  );
  const ticker = load.start(rate);
  let failedMinutes = 0;
  let interrupted = false;
  const interrupt = () => (interrupted = true);
  process.once('SIGINT', interrupt).once('SIGTERM', interrupt);
  for (let minute = 1; Date.now() < end && !interrupted; minute++) {
    const minuteEnd = Math.min(end, started + minute * 60_000);
    while (Date.now() < minuteEnd && !interrupted) {
      if (Date.now() >= nextRestart) {
        const replica = replicas[restarted % 2]!;
        restarted++;
        nextRestart += restartEveryMs;
        await replica.restart();
      }
      await sleep(Math.min(1_000, Math.max(0, minuteEnd - Date.now())));
    }
    const window = load.takeWindow();
    const stats = await provider.provider.stats();
    const memory = await Promise.all(replicas.map((r) => r.memory()));
    if (window.errors > 0) failedMinutes++;
    console.log(
      [
        String(minute).padStart(3),
        String(window.handOuts).padStart(10),
        String(window.errors).padStart(7),
        String(window.retried).padStart(8),
        (window.latenciesMs.length ? quantile(window.latenciesMs, 0.99).toFixed(1) : '-').padStart(
          7,
        ),
        String(stats.redemptions - redemptionsBefore).padStart(10),
        ...memory.flatMap((m) => [mb(m.rss).padStart(10), mb(m.heapUsed).padStart(11)]),
        String(restarted).padStart(9),
        `  ${load1()}`,
      ].join(' '),
    );
    for (const sample of window.errorSamples) console.log(`     error: ${sample}`);
    redemptionsBefore = stats.redemptions;
  }
  await ticker.stop();
  const stats = await provider.provider.stats();
  const states = await connectionStates();
  console.log(
    `\ntotal: ${load.total.handOuts} hand-outs, ${load.total.errors} errors, ` +
      `${load.total.retried} retried on the other replica, ${load.total.checked} tokens shown to ` +
      `the provider (${load.total.rejected} rejected); provider: ${stats.redemptions} refreshes, ` +
      `${stats.reuseViolations} reuse violations, ${stats.revokedFamilies} revoked families; ` +
      `connections by status: ${JSON.stringify(states)}; ${restarted} restarts`,
  );
  const ok =
    failedMinutes === 0 &&
    load.total.errors === 0 &&
    load.total.rejected === 0 &&
    stats.reuseViolations === 0 &&
    states.active === ids.length;
  console.log(ok ? 'soak: OK' : 'soak: FAILED');
  return ok;
}

interface Window {
  handOuts: number;
  errors: number;
  retried: number;
  latenciesMs: number[];
  errorSamples: string[];
}

/** Hand-outs at a steady rate: every tick sends its share, never waiting for earlier ones. */
class LoadGenerator {
  readonly total = { handOuts: 0, errors: 0, retried: 0, checked: 0, rejected: 0 };
  #window: Window = emptyWindow();
  readonly #ids: string[];
  readonly #apiKey: string;
  #next = 0;

  constructor(ids: string[], apiKey: string) {
    this.#ids = ids;
    this.#apiKey = apiKey;
  }

  start(perSecond: number): { stop(): Promise<void> } {
    const inFlight = new Set<Promise<void>>();
    const tickMs = 100;
    let owed = 0;
    const timer = setInterval(() => {
      owed += (perSecond * tickMs) / 1000;
      for (; owed >= 1; owed--) {
        const request = this.#handOut().finally(() => inFlight.delete(request));
        inFlight.add(request);
      }
    }, tickMs);
    return {
      async stop() {
        clearInterval(timer);
        await Promise.all(inFlight);
      },
    };
  }

  takeWindow(): Window {
    const window = this.#window;
    this.#window = emptyWindow();
    return window;
  }

  async #handOut(): Promise<void> {
    const id = this.#ids[Math.floor(Math.random() * this.#ids.length)]!;
    // Round robin; on a refused connection or a 503 the same request goes to the other one.
    const order = this.#next++ % 2 === 0 ? [0, 1] : [1, 0];
    const startedAt = performance.now();
    let failure = '';
    for (const [attempt, index] of order.entries()) {
      const outcome = await this.#try(replicas[index]!, id);
      if (outcome.ok) {
        this.#window.latenciesMs.push(performance.now() - startedAt);
        this.#window.handOuts++;
        this.total.handOuts++;
        if (attempt > 0) {
          this.#window.retried++;
          this.total.retried++;
        }
        if (this.total.handOuts % 10 === 0) await this.#check(outcome.accessToken);
        return;
      }
      failure = outcome.why;
      if (!outcome.retryable) break;
    }
    this.#window.errors++;
    this.total.errors++;
    if (this.#window.errorSamples.length < 3) this.#window.errorSamples.push(failure);
  }

  async #try(
    replica: Replica,
    id: string,
  ): Promise<{ ok: true; accessToken: string } | { ok: false; retryable: boolean; why: string }> {
    try {
      const response = await fetch(`${replica.url}/v1/connections/${id}/token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.#apiKey}` },
        signal: AbortSignal.timeout(15_000),
      });
      const body = (await response.json()) as { access_token?: string; error?: string };
      if (response.ok && body.access_token) return { ok: true, accessToken: body.access_token };
      return {
        ok: false,
        retryable: response.status === 503,
        why: `${response.status} ${body.error ?? ''}`,
      };
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      return { ok: false, retryable: true, why: cause?.code ?? (error as Error).name };
    }
  }

  /** The provider's resource endpoint must accept the token just handed out. */
  async #check(accessToken: string): Promise<void> {
    this.total.checked++;
    const response = await fetch(`${provider.url}/resource`, {
      headers: { authorization: `Bearer ${accessToken}` },
    }).catch(() => undefined);
    await response?.body?.cancel();
    if (response?.status !== 200) {
      this.total.rejected++;
      this.#window.errors++;
      this.total.errors++;
      if (this.#window.errorSamples.length < 3) {
        this.#window.errorSamples.push(`provider refused a handed-out token: ${response?.status}`);
      }
    }
  }
}

function emptyWindow(): Window {
  return { handOuts: 0, errors: 0, retried: 0, latenciesMs: [], errorSamples: [] };
}

/**
 * Imports `count` connections, each with a fresh grant from the provider; their access tokens
 * are said to come due at even intervals over one lifetime, so refreshes come at a steady rate
 * from the start instead of all at once.
 */
async function importConnections(replica: Replica, count: number): Promise<string[]> {
  const ids: string[] = new Array<string>(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const grant = await provider.provider.issueGrant({ subject: `user-${i}` });
      const created = (await admin(replica, 'POST', '/v1/connections', {
        provider: 'test',
        owner: `user-${i}`,
        access_token: grant.access_token,
        refresh_token: grant.refresh_token,
        expires_in: REFRESH_LEAD_SECONDS + Math.ceil((i / count) * ttlSeconds),
      })) as { id: string };
      ids[i] = created.id;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return ids;
}

async function admin(replica: Replica, method: string, path: string, body: unknown) {
  const response = await fetch(`${replica.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json: unknown = await response.json();
  if (!response.ok)
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function connectionStates(): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ status: string; count: string }>(
      'select status, count(*) from credentials group by status',
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.count)]));
  } finally {
    await client.end();
  }
}

function mb(bytes: number | undefined): string {
  return bytes === undefined ? 'n/a' : (bytes / 2 ** 20).toFixed(1);
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

function load1(): string {
  return loadavg()[0]!.toFixed(2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Started last in this file: the classes and functions below must be defined first.
const postgres = await startPostgres();
const provider = await startProviderProcess({
  accessTokenTtlSeconds: ttlSeconds,
  rotation: true,
  reuseDetection: true,
});
const env = {
  TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
  TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize(),
  TOKENWARDEN_LOG_LEVEL: 'error',
};
const replicas = [
  await startReplica(env, postgres.url, 0),
  await startReplica(env, postgres.url, 0),
];
try {
  if (!(await run())) process.exitCode = 1;
} finally {
  for (const replica of replicas) await replica.stop();
  await provider.stop();
  await postgres.close();
}
