// The whole example against a Temporal server (`temporal server start-dev`): the test provider and
// Tokenwarden on loopback, WORKERS worker processes, and one fan-out workflow whose activities
// call the protected API while its access tokens keep expiring under them.
//
//   temporal server start-dev            # in another terminal
//   TEMPORAL_ADDRESS=localhost:7233 node --conditions=tokenwarden-source --import tsx examples/temporal/run.ts
//
// Prints how many calls succeeded, how many times the tokens expired, and how many refresh tokens
// the provider redeemed: at most one per expiry, however many activities on however many workers
// met the 401.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { spawnTs, type ProviderStats } from '@tokenwarden/testkit';
import { startLocalStack } from './local-stack.ts';
import { DEFAULT_TASK_QUEUE, dataConverterFromEnv } from './worker.ts';
// Type only: workflow code runs in the worker's sandbox, never in this process.
import type { FanOutResult, fanOutWorkflow } from './workflows.ts';

export interface ExampleRunOptions {
  /** host:port of the Temporal frontend. */
  address: string;
  namespace?: string;
  /** Worker processes. Default 2. */
  workers?: number;
  /** API calls in total. Default 200. */
  calls?: number;
  /** Calls at once. Default 20. */
  concurrency?: number;
  /** Pause between two calls of a lane (workflow timer). Default 200 ms. */
  pauseBetweenCallsMs?: number;
  /** Every this often the provider expires every access token it issued. Default 700 ms. */
  expireEveryMs?: number;
  log?: (line: string) => void;
}

export interface ExampleRunReport {
  result: FanOutResult;
  /** Expiries that made a token stale. */
  expiries: number;
  provider: ProviderStats;
}

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url));

export async function runExample(options: ExampleRunOptions): Promise<ExampleRunReport> {
  const log = options.log ?? (() => undefined);
  const namespace = options.namespace ?? 'default';
  const taskQueue = `${DEFAULT_TASK_QUEUE}-${process.pid}-${Date.now()}`;
  const stack = await startLocalStack({ provider: { latencyMs: 50 } });
  const workers: ChildProcess[] = [];
  let connection: Connection | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const connectionId = await stack.importConnection({ expiresIn: 3600 });
    log(`Tokenwarden at ${stack.urls[0]}, connection ${connectionId}`);

    for (let i = 0; i < (options.workers ?? 2); i++) {
      const child = spawnTs(WORKER_SCRIPT, [], {
        TEMPORAL_ADDRESS: options.address,
        TEMPORAL_NAMESPACE: namespace,
        TASK_QUEUE: taskQueue,
        TOKENWARDEN_URL: stack.urls[0]!,
        TOKENWARDEN_API_KEY: stack.apiKey,
        RESOURCE_URL: stack.resourceUrl,
      });
      child.stderr?.pipe(process.stderr);
      workers.push(child);
    }
    await Promise.all(workers.map(ready));
    log(`${workers.length} workers ready on task queue ${taskQueue}`);

    connection = await Connection.connect({ address: options.address });
    const client = new Client({ connection, namespace, dataConverter: dataConverterFromEnv() });
    let expiries = 0;
    timer = setInterval(() => {
      if (stack.provider.expireAccessTokens() > 0) expiries++;
    }, options.expireEveryMs ?? 700);

    const result = await client.workflow.execute<typeof fanOutWorkflow>('fanOutWorkflow', {
      taskQueue,
      workflowId: `tokenwarden-example-${Date.now()}`,
      args: [
        {
          connectionId,
          calls: options.calls ?? 200,
          concurrency: options.concurrency ?? 20,
          pauseBetweenCallsMs: options.pauseBetweenCallsMs ?? 200,
        },
      ],
    });
    clearInterval(timer);
    const provider = stack.provider.stats();
    log(
      `${result.succeeded}/${result.calls} calls succeeded; tokens expired ${expiries} times; ` +
        `${provider.resourceRejections} calls met a 401; the provider redeemed ` +
        `${provider.redemptions} refresh tokens (reuse violations: ${provider.reuseViolations}).`,
    );
    return { result, expiries, provider };
  } finally {
    if (timer) clearInterval(timer);
    await Promise.all(workers.map(stop));
    await connection?.close();
    await stack.close();
  }
}

/** Resolves on the worker's WORKER_READY line; rejects if it exits first. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line === 'WORKER_READY') resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`a worker exited (${code}) before it was ready`)),
    );
  });
}

/** SIGINT: Worker.run() finishes its tasks and exits. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timeout);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    console.error(
      'Set TEMPORAL_ADDRESS to a Temporal server, e.g. `temporal server start-dev` and ' +
        'TEMPORAL_ADDRESS=localhost:7233 (see examples/temporal/README.md).',
    );
    process.exit(2);
  }
  const report = await runExample({
    address,
    namespace: process.env.TEMPORAL_NAMESPACE,
    workers: Number(process.env.WORKERS ?? 2),
    log: (line) => console.log(line),
  });
  process.exitCode = report.result.succeeded === report.result.calls ? 0 : 1;
}
