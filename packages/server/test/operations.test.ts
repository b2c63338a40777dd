import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

describe('health, readiness, metrics and docs', () => {
  it('answers /healthz and /readyz without a key, and /readyz 503 once the store is gone', async () => {
    s = await startTestServer();
    expect((await s.call({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await s.call({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
    await s.store.close();
    const down = await s.call({ method: 'GET', url: '/readyz' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ error: 'store_unavailable' });
    expect((await s.call({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('counts hand-outs and refreshes by outcome in /metrics', async () => {
    s = await startTestServer();
    await s.putProvider();
    const { id } = await s.importGrant({ expiresIn: 0 });
    await Promise.all(
      Array.from({ length: 5 }, () => s.admin('POST', `/v1/connections/${id}/token`, {})),
    );
    const dead = await s.importGrant({ expiresIn: 0 });
    s.provider.injectFailures({ kind: 'invalid_grant' });
    await s.admin('POST', `/v1/connections/${dead.id}/token`, {});
    const metrics = await s.call({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    const lines = metrics.body.split('\n');
    expect(lines).toContain('tokenwarden_token_handouts_total{route="token",outcome="ok"} 5');
    expect(lines).toContain(
      'tokenwarden_token_handouts_total{route="token",outcome="needs_reauth"} 1',
    );
    expect(lines).toContain('tokenwarden_refreshes_total{provider="test",outcome="refreshed"} 1');
    expect(lines).toContain(
      'tokenwarden_refreshes_total{provider="test",outcome="needs_reauth"} 1',
    );
    expect(metrics.body).toContain('tokenwarden_http_request_duration_seconds_bucket');
    // Two token requests reached the provider: one refresh, one refusal (400 invalid_grant).
    const host = new URL(s.provider.tokenUrl).host;
    expect(lines).toContain(
      `tokenwarden_provider_request_duration_seconds_count{host="${host}",status="200"} 1`,
    );
    expect(lines).toContain(
      `tokenwarden_provider_request_duration_seconds_count{host="${host}",status="400"} 1`,
    );
  });

  it('serves the OpenAPI document built from the route schemas, and Swagger UI', async () => {
    s = await startTestServer();
    const doc = await s.call({ method: 'GET', url: '/docs/json' });
    expect(doc.statusCode).toBe(200);
    const spec = doc.json<{
      openapi: string;
      paths: Record<
        string,
        Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>
      >;
    }>();
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining([
        '/v1/providers/{name}',
        '/v1/connections',
        '/v1/connections/{id}',
        '/v1/connections/{id}/token',
        '/v1/connections/{id}/token/rejected',
        '/v1/clients',
        '/v1/clients/{id}',
        '/v1/audit',
        '/v1/proxy/{id}/{*}',
        '/healthz',
        '/readyz',
        '/metrics',
      ]),
    );
    expect(Object.keys(spec.paths['/v1/connections/{id}/token']!.post!.responses)).toEqual(
      expect.arrayContaining(['200', '401', '403', '404', '409', '503']),
    );
    const ui = await s.call({ method: 'GET', url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toContain('text/html');
  });
});

describe('graceful shutdown', () => {
  it('stops accepting, finishes the request in flight, then writes its audit', async () => {
    s = await startTestServer({ provider: { latencyMs: 300 } });
    await s.putProvider();
    const { id } = await s.importGrant({ expiresIn: 0 });
    const address = await s.app.listen({ port: 0, host: '127.0.0.1' });
    const inFlight = fetch(`${address}/v1/connections/${id}/token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json' },
      body: '{}',
    });
    // With no scheduler, the provider's first request comes from this request's refresh.
    while (s.provider.stats().tokenRequests < 1) await sleep(5);
    const closed = s.app.close();
    const response = await inFlight;
    await closed;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { version: number }).version).toBe(2);
    await expect(fetch(`${address}/healthz`)).rejects.toThrow();
    const rows = await s.store.service.listAudit({ connectionId: id, limit: 100 });
    expect(rows.map((r) => r.action).sort()).toEqual(
      ['connection.create', 'connection.refresh', 'token.read'].sort(),
    );
  });

  it('lets the scheduler finish its refreshes on close: no lease left held', async () => {
    s = await startTestServer({
      provider: { latencyMs: 300 },
      server: { scheduler: { idleIntervalMs: 10 } },
    });
    await s.putProvider();
    const ids = [
      (await s.importGrant({ expiresIn: 0 })).id,
      (await s.importGrant({ expiresIn: 0 })).id,
    ];
    await s.app.ready();
    while (s.provider.stats().tokenRequests < 2) await sleep(5);
    await s.app.close();
    for (const id of ids) {
      const { record } = (await s.store.getCredential(id))!;
      expect(record).toMatchObject({ version: 2, leaseId: null, intentHash: null });
    }
    const requests = s.provider.stats().tokenRequests;
    await sleep(100);
    expect(s.provider.stats().tokenRequests).toBe(requests);
    // The scheduler's refreshes are audited as the system's.
    const rows = await s.store.service.listAudit({ actor: 'system', limit: 10 });
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([
      ['connection.refresh', 'ok'],
      ['connection.refresh', 'ok'],
    ]);
  });

  it('keeps audit events while the store refuses writes and writes them once it is back', async () => {
    s = await startTestServer({ server: { audit: { flushIntervalMs: 1 } } });
    await s.putProvider();
    const service = s.store.service;
    const append = service.appendAudit.bind(service);
    let down = true;
    let refused = 0;
    service.appendAudit = async (events) => {
      if (down) {
        refused += 1;
        throw new Error('database is down');
      }
      return append(events);
    };
    const { id } = await s.importGrant();
    for (let i = 0; i < 5; i++) await s.admin('POST', `/v1/connections/${id}/token`, {});
    while (refused < 2) await sleep(5);
    down = false;
    const rows = await auditRows(s, `&connection=${id}`);
    expect(rows.map((r) => r.action)).toEqual([
      'connection.create',
      ...Array(5).fill('token.read'),
    ]);
    expect(s.logLines.some((line) => line.includes('audit events not written yet'))).toBe(true);
  });
});
