// Webhook benchmark: N state changes (imports, each writing `connection.created` to the outbox in
// its transaction) made by 2 replicas, each also delivering the outbox, into one receiver on
// loopback. Prints delivered/s, the delay from commit to delivery (p50/p99), duplicates, and the
// hand-out throughput of a third process's broker while delivering against without.
// Usage: npm run bench:webhooks -- [changes=10000] [--sqlite]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { KeyRing, WebhookEndpoints } from '@tokenwarden/core';
import {
  fixtureEnv,
  onLines,
  openBroker,
  providerConfigFor,
  quantile,
  spawnTs,
  TestProvider,
  WebhookReceiver,
  type BrokerFixture,
} from '@tokenwarden/testkit';
import { startPostgres } from '@tokenwarden/testkit/postgres';

const args = process.argv.slice(2);
const sqlite = args.includes('--sqlite');
const [changes = 10_000] = args.filter((a) => !a.startsWith('--')).map(Number);
const HAND_OUT_CALLERS = 16;
let stopping = false;
const BASELINE_MS = 3_000;

const dir = mkdtempSync(join(tmpdir(), 'tw-bench-webhooks-'));
const postgres = sqlite ? undefined : await startPostgres();
const provider = await TestProvider.start();
const receiver = await WebhookReceiver.start();
const fixture: BrokerFixture = {
  dbPath: join(dir, 'tokenwarden.sqlite'),
  databaseUrl: postgres?.url,
  keys: KeyRing.generate('k1').serialize(),
  provider: providerConfigFor(provider),
};
const main = await openBroker(fixture);

console.log(
  `webhooks on ${sqlite ? 'SQLite' : 'Postgres'}: ${changes} changes by 2 replicas, 1 receiver ` +
    `(${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load average ` +
    `${loadavg()[0]!.toFixed(1)} at start)`,
);

// Hand-outs from this process: valid tokens, read from the store (each replica's broker too).
const handOutIds: string[] = [];
for (let i = 0; i < HAND_OUT_CALLERS; i++) {
  const grant = provider.issueGrant();
  const info = await main.broker.importConnection({
    provider: 'test',
    owner: 'hand-out',
    accessToken: grant.access_token,
    refreshToken: grant.refresh_token,
    expiresIn: 3600,
  });
  handOutIds.push(info.id);
}
/** Hand-outs per second while `until()` is false (or for `ms`). */
async function handOuts(until: () => boolean): Promise<number> {
  let count = 0;
  const started = performance.now();
  await Promise.all(
    handOutIds.map(async (id) => {
      while (!until()) {
        await main.broker.getAccessToken(id);
        // SQLite answers from memory without I/O: let the receiver in this process run too.
        if (++count % 64 === 0) await new Promise(setImmediate);
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}
// After the hand-out connections: only the replicas' changes reach the receiver.
await new WebhookEndpoints({
  store: main.store.webhooks,
  keyRing: main.keyRing,
  allowPrivate: true,
}).create({ url: receiver.url, events: ['connection.created'] });
const baselineEnd = performance.now() + BASELINE_MS;
const without = await handOuts(() => performance.now() > baselineEnd);

const replicas = await Promise.all([replica(), replica()]);
const startedAt = Date.now();
for (const [index, child] of replicas.entries()) {
  const share = index === 0 ? Math.ceil(changes / 2) : Math.floor(changes / 2);
  child.stdin!.write(`GO ${share}\n`);
}
let committedAt = 0;
let done = 0;
for (const child of replicas) {
  onLines(child.stdout!, (line) => {
    if (line === 'DONE' && ++done === replicas.length) committedAt = Date.now();
  });
}
const expected = changes;
const during = await handOuts(() => receiver.requests.length >= expected);
await receiver.until((got) => got.length >= expected, 600_000);
const finishedAt = Date.now();
await new Promise((resolve) => setTimeout(resolve, 1_000)); // anything sent twice arrives too

const requests = receiver.requests;
const ids = new Set(requests.map((r) => r.headers['webhook-id']));
const delays = requests.map(
  (r) => r.receivedAt - Date.parse((JSON.parse(r.body) as { timestamp: string }).timestamp),
);
console.log(
  `committed ${changes} changes in ${((committedAt - startedAt) / 1000).toFixed(1)} s; ` +
    `delivered ${ids.size} events in ${((finishedAt - startedAt) / 1000).toFixed(1)} s: ` +
    `${Math.round(ids.size / ((finishedAt - startedAt) / 1000))}/s`,
);
console.log(
  `commit → delivery: p50 ${quantile(delays, 0.5).toFixed(0)} ms, p99 ` +
    `${quantile(delays, 0.99).toFixed(0)} ms, max ${Math.max(...delays).toFixed(0)} ms`,
);
console.log(`duplicates: ${requests.length - ids.size}`);
console.log(
  `hand-outs/s (${HAND_OUT_CALLERS} callers, another process): ${Math.round(without)} without ` +
    `deliveries, ${Math.round(during)} while delivering`,
);
console.log(`load average at the end: ${loadavg()[0]!.toFixed(1)}`);

stopping = true;
for (const child of replicas) child.stdin!.end();
await Promise.all(replicas.map((child) => new Promise((r) => child.once('exit', r))));
await main.close();
await receiver.close();
await provider.close();
await postgres?.close();
rmSync(dir, { recursive: true, force: true });

function replica(): Promise<ChildProcess> {
  const child = spawnTs(join(import.meta.dirname, 'replica.ts'), [], fixtureEnv(fixture));
  child.stderr!.pipe(process.stderr);
  return new Promise((resolve, reject) => {
    onLines(child.stdout!, (line) => line === 'READY' && resolve(child));
    child.once('exit', (code, signal) => {
      const error = new Error(`a replica exited (${code ?? signal})`);
      reject(error);
      // After READY: the run cannot finish; say so rather than wait.
      if (!stopping) {
        console.error(error.message);
        process.exit(1);
      }
    });
  });
}
