// The whole example against a Temporal server (`temporal server start-dev`): the test provider and
// Tokenwarden on loopback, WORKERS worker processes, and one fan-out workflow whose activities
// call the protected API while its access tokens keep expiring under them.
//
//   npm run temporal:dev                 # in another terminal: `temporal server start-dev`
//   TEMPORAL_ADDRESS=localhost:7233 node --conditions=tokenwarden-source --import tsx examples/temporal/run.ts
//
// Prints how many calls succeeded, how many times the tokens expired, and how many refresh tokens
// the provider redeemed: at most one per expiry, however many activities on however many workers
// met the 401. `startExample` is the same set-up without the workflow, for the end-to-end tests.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import {
  spawnTs,
  TailBuffer,
  type ProviderStats,
  type TestProviderOptions,
} from '@tokenwarden/testkit';
import { startLocalStack, type LocalStack } from './local-stack.ts';
import { DEFAULT_TASK_QUEUE, dataConverterFromEnv } from './worker.ts';
// Type only: workflow code runs in the worker's sandbox, never in this process.
import type { FanOutInput, FanOutResult, fanOutWorkflow } from './workflows.ts';

export interface ExampleStartOptions {
  /** host:port of the Temporal frontend. */
  address: string;
  namespace?: string;
  /** Worker processes. Default 2. */
  workers?: number;
  /** TOKENWARDEN_CODEC_KEYS of the workers and the client: every payload is encrypted. */
  codecKeys?: string;
  /** The workflows bundled beforehand (`writeWorkflowBundle`), so the workers need not. */
  workflowBundlePath?: string;
  /** The test provider. Default: 50 ms latency. */
  provider?: TestProviderOptions;
}

/** The test provider, Tokenwarden, the worker processes, and a client to start workflows. */
export interface ExampleEnvironment {
  stack: LocalStack;
  /** With the codec when `codecKeys` is given. */
  client: Client;
  namespace: string;
  taskQueue: string;
  /** Starts the fan-out workflow on the workers' task queue. */
  startFanOut(input: FanOutInput): Promise<WorkflowHandle<typeof fanOutWorkflow>>;
  /** Stops the workers (gracefully), then the rest. */
  close(): Promise<void>;
}

export interface ExampleRunOptions extends ExampleStartOptions {
  /** API calls in total. Default 200. */
  calls?: number;
  /** Calls at once. Default 20. */
  concurrency?: number;
  /** Pause between two calls of a lane (workflow timer). Default 200 ms. */
  pauseBetweenCallsMs?: number;
  /** Every this often the provider expires every access token it issued; 0: never. Default 700 ms. */
  expireEveryMs?: number;
  /** Import the connection with its access token expired already. Default false. */
  connectionExpired?: boolean;
  log?: (line: string) => void;
}

export interface ExampleRunReport {
  result: FanOutResult;
  /** Expiries that made a token stale. */
  expiries: number;
  provider: ProviderStats;
  workflowId: string;
  connectionId: string;
}

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url));

export async function startExample(options: ExampleStartOptions): Promise<ExampleEnvironment> {
  const namespace = options.namespace ?? 'default';
  const taskQueue = `${DEFAULT_TASK_QUEUE}-${randomUUID()}`;
  const stack = await startLocalStack({ provider: options.provider ?? { latencyMs: 50 } });
  const workers: ChildProcess[] = [];
  let connection: Connection | undefined;
  const close = async () => {
    await Promise.all(workers.map(stop));
    await connection?.close();
    await stack.close();
  };
  try {
    const codecEnv: Record<string, string> = options.codecKeys
      ? { TOKENWARDEN_CODEC_KEYS: options.codecKeys }
      : {};
    for (let i = 0; i < (options.workers ?? 2); i++) {
      workers.push(
        spawnTs(WORKER_SCRIPT, [], {
          TEMPORAL_ADDRESS: options.address,
          TEMPORAL_NAMESPACE: namespace,
          TASK_QUEUE: taskQueue,
          TOKENWARDEN_URL: stack.urls[0]!,
          TOKENWARDEN_API_KEY: stack.apiKey,
          RESOURCE_URL: stack.resourceUrl,
          WORKFLOW_BUNDLE: options.workflowBundlePath ?? '',
          ...codecEnv,
        }),
      );
    }
    await Promise.all(workers.map(ready));
    connection = await Connection.connect({ address: options.address });
    await untilPolling(connection, namespace, taskQueue, workers.length);
    const client = new Client({
      connection,
      namespace,
      dataConverter: dataConverterFromEnv(codecEnv),
    });
    return {
      stack,
      client,
      namespace,
      taskQueue,
      startFanOut: (input) =>
        client.workflow.start<typeof fanOutWorkflow>('fanOutWorkflow', {
          taskQueue,
          workflowId: `tokenwarden-example-${randomUUID()}`,
          args: [input],
        }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

export async function runExample(options: ExampleRunOptions): Promise<ExampleRunReport> {
  const log = options.log ?? (() => undefined);
  const example = await startExample(options);
  let timer: NodeJS.Timeout | undefined;
  try {
    const { stack } = example;
    const connectionId = await stack.importConnection({
      expiresIn: options.connectionExpired ? 0 : 3600,
    });
    log(`Tokenwarden at ${stack.urls[0]}, connection ${connectionId}`);
    log(`${options.workers ?? 2} workers ready on task queue ${example.taskQueue}`);

    let expiries = 0;
    const expireEveryMs = options.expireEveryMs ?? 700;
    if (expireEveryMs > 0) {
      timer = setInterval(() => {
        if (stack.provider.expireAccessTokens() > 0) expiries++;
      }, expireEveryMs);
    }
    const handle = await example.startFanOut({
      connectionId,
      calls: options.calls ?? 200,
      concurrency: options.concurrency ?? 20,
      pauseBetweenCallsMs: options.pauseBetweenCallsMs ?? 200,
    });
    const result = await handle.result();
    clearInterval(timer);
    const provider = stack.provider.stats();
    log(
      `${result.succeeded}/${result.calls} calls succeeded; tokens expired ${expiries} times; ` +
        `${provider.resourceRejections} calls met a 401; the provider redeemed ` +
        `${provider.redemptions} refresh tokens (reuse violations: ${provider.reuseViolations}).`,
    );
    return { result, expiries, provider, workflowId: handle.workflowId, connectionId };
  } finally {
    clearInterval(timer);
    await example.close();
  }
}

/** Resolves on the worker's WORKER_READY line; rejects, with its last words, if it exits first. */
function ready(child: ChildProcess): Promise<void> {
  const stderr = new TailBuffer();
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line === 'WORKER_READY') resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`a worker exited (${code}) before it was ready:\n${stderr.toString()}`)),
    );
  });
}

/**
 * Resolves once the server has seen `count` workers poll the queue for activities, so that the
 * first activities of a workflow can go to any of them, not only to the first one up.
 */
async function untilPolling(
  connection: Connection,
  namespace: string,
  taskQueue: string,
  count: number,
): Promise<void> {
  for (const deadline = Date.now() + 60_000; ;) {
    const { pollers } = await connection.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    if (new Set(pollers?.map((poller) => poller.identity)).size >= count) return;
    if (Date.now() > deadline) throw new Error(`${count} workers did not poll ${taskQueue}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
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
