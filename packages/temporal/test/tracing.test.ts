// A workflow on the run's Temporal server (the testkit's dev server, a namespace of its own) whose
// activity, traced by Temporal's own OpenTelemetry interceptor
// (@temporalio/interceptors-opentelemetry) in a worker of this process, calls a real Tokenwarden
// server with tracing on: the activity's span is the ancestor of the hand-out and of the provider
// request, because the SDK the helpers use sends the active traceparent. Spans from the
// OpenTelemetry SDK's in-memory exporter.
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryActivityInboundInterceptor } from '@temporalio/interceptors-opentelemetry';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { TokenwardenClient } from '@tokenwarden/client';
import { KeyRing, openSqliteStore } from '@tokenwarden/core';
import { buildServer, generateApiKey, hashApiKey, startTracing } from '@tokenwarden/server';
import { createActivityHelpers } from '@tokenwarden/temporal';
import { TestProvider } from '@tokenwarden/testkit';
import { createTemporalNamespace, testTemporalAddress } from '@tokenwarden/testkit/temporal';
import { descendsFrom, memorySpans } from '@tokenwarden/testkit/tracing';
import { afterAll, expect, it } from 'vitest';
import { sourceConditionsHook } from '../../../examples/temporal/bundling.ts';

// One activity, `callApi(connectionId)`, called by the workflow `reauthFixture`.
const WORKFLOWS = fileURLToPath(new URL('./fixtures/reauth-workflow.ts', import.meta.url));
const TASK_QUEUE = 'traced';
// The worker's progress lines (bundling, state changes) would only interleave with the output.
Runtime.install({ logger: new DefaultLogger('WARN') });

const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

it("a traced activity's span is the ancestor of the hand-out and the provider request", async () => {
  const memory = memorySpans();
  const tracing = await startTracing({ spanProcessors: [memory.processor] });
  cleanup.push(() => tracing.shutdown());
  const dir = mkdtempSync(join(tmpdir(), 'tw-temporal-trace-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = openSqliteStore({ path: join(dir, 'tokenwarden.sqlite') });
  await store.migrate();
  cleanup.push(() => store.close());
  const provider = await TestProvider.start();
  cleanup.push(() => provider.close());
  const adminKey = generateApiKey();
  const app = await buildServer({
    store,
    keyRing: KeyRing.generate('k1'),
    adminKeyHash: hashApiKey(adminKey),
    logger: false,
    scheduler: false,
    tracing: true,
  });
  cleanup.push(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const admin = async (method: string, path: string, body: unknown) => {
    const response = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };
  await admin('PUT', '/v1/providers/test', {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
  });
  const grant = provider.issueGrant();
  const { id } = await admin('POST', '/v1/connections', {
    provider: 'test',
    owner: 'user-a',
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    expires_in: 0,
  });
  const { api_key: apiKey } = await admin('POST', '/v1/clients', {
    name: 'worker',
    grants: [{ owner: 'user-a', provider: 'test', actions: ['token.read'] }],
  });
  const helpers = createActivityHelpers(new TokenwardenClient({ baseUrl, apiKey: String(apiKey) }));
  memory.reset();

  const address = await testTemporalAddress();
  const namespace = await createTemporalNamespace(address);
  const workerConnection = await NativeConnection.connect({ address });
  cleanup.push(() => workerConnection.close());
  const worker = await Worker.create({
    connection: workerConnection,
    namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: WORKFLOWS,
    bundlerOptions: { webpackConfigHook: sourceConditionsHook },
    activities: {
      callApi: (connectionId: string) =>
        helpers.withAccessToken(connectionId, (token) => String(token.version)),
    },
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
    },
  });
  const clientConnection = await Connection.connect({ address });
  cleanup.push(() => clientConnection.close());
  const temporal = new Client({ connection: clientConnection, namespace });
  const version = await worker.runUntil(
    temporal.workflow.execute('reauthFixture', {
      taskQueue: TASK_QUEUE,
      workflowId: 'traced-activity',
      args: [String(id)],
    }),
  );
  expect(version).toBe('2');

  const spans = memory.spans();
  const activity = spans.find((s) => s.name === 'RunActivity:callApi')!;
  expect(activity).toBeDefined();
  for (const name of ['request', 'tokenwarden.hand_out', 'tokenwarden.provider_request']) {
    const span = spans.find((s) => s.name === name);
    expect(span, name).toBeDefined();
    expect(span!.traceId).toBe(activity.traceId);
    expect(descendsFrom(spans, span!, activity)).toBe(true);
  }
  expect(JSON.stringify(spans)).not.toMatch(/\b(?:at|rt)_[A-Za-z0-9_-]{32}/);
});
