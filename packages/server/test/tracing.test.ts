// Tracing on, as `tokenwarden serve` turns it on (the Node SDK through startTracing), recording
// with the SDK's in-memory exporter: the TypeScript SDK's traceparent is the parent of the
// server's spans, the protocol's spans nest under the request, log lines name their span, and
// no span or line holds a token, the client secret or the API key.
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { TokenwardenClient } from '@tokenwarden/client';
import { spawnTs, WebhookReceiver } from '@tokenwarden/testkit';
import { descendsFrom, memorySpans, type RecordedSpan } from '@tokenwarden/testkit/tracing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing } from '../src/tracing/sdk.ts';
import { tracingConfigured } from '../src/tracing/sdk.ts';
import { startTestServer, type TestServer } from './helpers.ts';
import { startProxySetup } from './proxy-helpers.ts';

const memory = memorySpans();
const logLines: string[] = [];
let tracing: Tracing;
let server: TestServer;
let baseUrl: string;

beforeAll(async () => {
  tracing = await startTracing({ spanProcessors: [memory.processor] });
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  server = await startTestServer({
    server: { tracing: true, logger: { level: 'info', stream } as never },
  });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
  await server.putProvider();
});
afterAll(async () => {
  await server?.close();
  await tracing?.shutdown();
});

describe('tracing on', () => {
  it("a worker's traceparent is the parent of the server's spans, down to the provider request", async () => {
    const { id, accessToken, refreshToken } = await server.importGrant({ expiresIn: 0 });
    const { apiKey } = await server.createClient([
      { owner: 'user-a', provider: 'test', actions: ['token.read'] },
    ]);
    memory.reset();
    logLines.length = 0;
    const client = new TokenwardenClient({ baseUrl, apiKey });
    const worker = trace.getTracer('worker');
    const { token, workerSpan } = await worker.startActiveSpan('worker.job', async (span) => {
      const got = await client.getAccessToken(id);
      // An answered hand-out is in the audit log, not the access log: a failed one is logged.
      await client.getAccessToken('conn_unknown').catch(() => undefined);
      span.end();
      return { token: got, workerSpan: span.spanContext() };
    });
    expect(token.version).toBe(2);

    const spans = memory.spans();
    const request = spans.find((s) => s.name === 'request')!;
    expect(request).toMatchObject({ traceId: workerSpan.traceId, parentSpanId: workerSpan.spanId });
    expect(request.attributes['url.path']).toBe(`/v1/connections/${id}/token`);
    const handOut = spans.find((s) => s.name === 'tokenwarden.hand_out')!;
    expect(descendsFrom(spans, handOut, request)).toBe(true);
    expect(handOut.attributes).toMatchObject({
      'tokenwarden.connection.id': id,
      'tokenwarden.provider': 'test',
      'tokenwarden.owner': 'user-a',
      'tokenwarden.version': 2,
      'tokenwarden.outcome': 'refreshed',
    });
    for (const step of [
      'tokenwarden.lease',
      'tokenwarden.intent',
      'tokenwarden.provider_request',
      'tokenwarden.commit',
    ]) {
      const span = spans.find((s) => s.name === step);
      expect(span, step).toBeDefined();
      expect(span!.traceId).toBe(workerSpan.traceId);
      expect(descendsFrom(spans, span!, handOut)).toBe(true);
    }

    // The failed request's log line names its trace and a span of it.
    const line = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.route === '/v1/connections/:id/token');
    expect(line).toMatchObject({ trace_id: workerSpan.traceId });
    expect(spans.map((s) => s.spanId)).toContain(line!.span_id);

    const exported = JSON.stringify(spans) + logLines.join('\n');
    for (const secret of [
      accessToken,
      refreshToken,
      token.accessToken,
      server.provider.clientSecret,
      apiKey,
      server.adminKey,
    ]) {
      expect(exported).not.toContain(secret);
    }
    expect(exported).not.toMatch(/\b(?:at|rt)_[A-Za-z0-9_-]{32}/);
  });

  it("metrics gain the protocol's histograms, with exemplars naming the trace (OpenMetrics)", async () => {
    const { id } = await server.importGrant({ expiresIn: 0 });
    const { apiKey } = await server.createClient([
      { owner: 'user-a', provider: 'test', actions: ['token.read'] },
    ]);
    memory.reset();
    await new TokenwardenClient({ baseUrl, apiKey }).getAccessToken(id);
    const handOut = memory.spans().find((s) => s.name === 'tokenwarden.hand_out')!;
    const response = await fetch(`${baseUrl}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^application\/openmetrics-text/);
    const text = await response.text();
    // The refresh just committed: observed in its hand-out's span, which the exemplar names.
    expect(text).toContain(`trace_id="${handOut.traceId}"`);
    expect(text).toMatch(
      /^tokenwarden_expiry_to_refresh_seconds_bucket\{le="0",provider="test"\} /m,
    );
    expect(text).toMatch(/^tokenwarden_circuit_breaker_open\{provider="test"\} 0$/m);
    expect(text).toContain('# TYPE tokenwarden_lease_wait_seconds histogram');
    expect(text).toContain('# TYPE tokenwarden_scheduler_lag_seconds histogram');
  });

  it('a proxied call: the upstream span, under the request, without path or query', async () => {
    const p = await startProxySetup({ server: { tracing: true } });
    try {
      memory.reset();
      const answer = await p.call(`/v1/proxy/${p.connection.id}/bytes/10?q=private-words`);
      expect(answer.status).toBe(200);
      const spans = memory.spans();
      const upstream = spans.find((s) => s.name === 'tokenwarden.proxy.upstream')!;
      expect(upstream.attributes).toMatchObject({
        'server.address': new URL(p.resource.url).origin,
        'http.request.method': 'GET',
        'http.response.status_code': 200,
      });
      expect(
        descendsFrom(
          spans,
          upstream,
          spans.find((s) => s.name === 'request')!,
        ),
      ).toBe(true);
      expect(JSON.stringify(spans)).not.toContain('private-words');
      expect(JSON.stringify(spans)).not.toContain(p.connection.accessToken);
    } finally {
      await p.close();
    }
  });

  it('a webhook delivery is a span of its own, without the signing secret', async () => {
    const receiver = await WebhookReceiver.start();
    const s = await startTestServer({
      server: { tracing: true, webhooks: { allowPrivate: true, pollIntervalMs: 20 } },
    });
    try {
      await s.putProvider();
      await s.app.ready(); // starts the delivery worker
      const created = await s.admin('POST', '/v1/webhooks', {
        url: receiver.url,
        events: ['connection.needs_reauth'],
      });
      const { secret } = created.json<{ secret: string }>();
      const grant = await s.importGrant({ expiresIn: 0 });
      s.provider.revoke(grant.refreshToken);
      memory.reset();
      await s.admin('POST', `/v1/connections/${grant.id}/token`);
      await receiver.until((got) => got.length >= 1);
      let delivery: RecordedSpan | undefined;
      while (!(delivery = memory.spans().find((x) => x.name === 'tokenwarden.webhook.deliver'))) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(delivery.parentSpanId).toBeUndefined();
      expect(delivery.attributes).toMatchObject({
        'tokenwarden.outcome': 'delivered',
        'http.response.status_code': 200,
        'tokenwarden.webhook.attempt': 1,
      });
      const commit = memory.spans().find((x) => x.name === 'tokenwarden.commit')!;
      expect(commit.attributes['tokenwarden.commit.kind']).toBe('needs_reauth');
      expect(JSON.stringify(memory.spans())).not.toContain(secret.slice(6));
    } finally {
      await s.close();
      await receiver.close();
    }
  });

  it('keeps the query string out of the request span', async () => {
    memory.reset();
    await fetch(`${baseUrl}/v1/connect/callback?code=the-code&state=the-state`);
    const request = memory.spans().find((s) => s.name === 'request')!;
    expect(request.attributes['url.path']).toBe('/v1/connect/callback');
    expect(JSON.stringify(memory.spans())).not.toContain('the-code');
  });
});

describe('tracing off', () => {
  it('loads nothing of the SDK or of @fastify/otel', async () => {
    const child = spawnTs(join(import.meta.dirname, 'fixtures', 'tracing-off.ts'));
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual([]);
  });
});

describe('tracingConfigured', () => {
  it('is on only when an OTEL_* variable asks for traces', () => {
    expect(tracingConfigured({})).toBe(false);
    expect(tracingConfigured({ OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingConfigured({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracingConfigured({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' })).toBe(
      false,
    );
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(true);
    expect(
      tracingConfigured({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_TRACES_EXPORTER: 'none',
      }),
    ).toBe(false);
  });
});
