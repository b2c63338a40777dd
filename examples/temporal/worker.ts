// The example worker: one TokenwardenClient and one set of activity helpers per process, shared by
// every activity the worker runs. Run several of these (on one machine or many): each connection
// is still refreshed once.
//
//   TEMPORAL_ADDRESS=localhost:7233 TOKENWARDEN_URL=http://127.0.0.1:8080 \
//   TOKENWARDEN_API_KEY=tw_... RESOURCE_URL=http://127.0.0.1:9000/resource \
//   node --conditions=tokenwarden-source --import tsx examples/temporal/worker.ts
//
// Optional: TEMPORAL_NAMESPACE (default `default`), TASK_QUEUE (default `tokenwarden-example`),
// TOKENWARDEN_CODEC_KEYS to encrypt every payload (the client starting workflows needs the same),
// WORKFLOW_BUNDLE: the workflows already bundled (bundling.ts's writeWorkflowBundle) instead of
// bundling them at start-up.
import { pathToFileURL } from 'node:url';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { TokenwardenClient } from '@tokenwarden/client';
import { createActivityHelpers, EncryptionCodec } from '@tokenwarden/temporal';
import { createExampleActivities } from './activities.ts';
import { sourceConditionsHook, workflowsPath } from './bundling.ts';

export const DEFAULT_TASK_QUEUE = 'tokenwarden-example';

export interface ExampleWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  tokenwardenUrl: string;
  apiKey: string;
  resourceUrl: string;
  dataConverter?: DataConverter;
  /** A file written by `writeWorkflowBundle`; by default the worker bundles the workflows itself. */
  workflowBundlePath?: string;
}

export async function createExampleWorker(options: ExampleWorkerOptions): Promise<Worker> {
  const tokenwarden = new TokenwardenClient({
    baseUrl: options.tokenwardenUrl,
    apiKey: options.apiKey,
  });
  const helpers = createActivityHelpers(tokenwarden);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    ...(options.workflowBundlePath
      ? { workflowBundle: { codePath: options.workflowBundlePath } }
      : { workflowsPath, bundlerOptions: { webpackConfigHook: sourceConditionsHook } }),
    activities: createExampleActivities({ helpers, resourceUrl: options.resourceUrl }),
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
  });
}

/** `{ payloadCodecs: [EncryptionCodec] }` when TOKENWARDEN_CODEC_KEYS is set. */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter {
  return env.TOKENWARDEN_CODEC_KEYS
    ? { payloadCodecs: [EncryptionCodec.fromEnv('TOKENWARDEN_CODEC_KEYS', env)] }
    : {};
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see examples/temporal/README.md)`);
  return value;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const connection = await NativeConnection.connect({ address: required('TEMPORAL_ADDRESS') });
  const worker = await createExampleWorker({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE,
    taskQueue: process.env.TASK_QUEUE,
    tokenwardenUrl: required('TOKENWARDEN_URL'),
    apiKey: required('TOKENWARDEN_API_KEY'),
    resourceUrl: required('RESOURCE_URL'),
    dataConverter: dataConverterFromEnv(),
    workflowBundlePath: process.env.WORKFLOW_BUNDLE || undefined,
  });
  // run.ts waits for this line before it starts the workflow.
  process.stdout.write('WORKER_READY\n');
  // Worker.run() shuts down gracefully on SIGINT and SIGTERM.
  await worker.run();
  await connection.close();
}
