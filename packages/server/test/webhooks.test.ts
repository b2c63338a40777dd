import { setTimeout as sleep } from 'node:timers/promises';
import { verifyWebhook, WebhookVerificationError } from '@tokenwarden/client';
import { WebhookReceiver, type ReceivedRequest } from '@tokenwarden/testkit';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerWebhookOptions } from '../src/index.ts';
import { BACKENDS, startTestServer, type TestServer } from './helpers.ts';

// Every delivery here goes to a real HTTP receiver on loopback and is verified with the
// independent `standardwebhooks` package, on SQLite and on Postgres.

let server: TestServer | undefined;
let receiver: WebhookReceiver | undefined;
afterEach(async () => {
  await server?.close();
  await receiver?.close();
  server = receiver = undefined;
});

/** Quick enough for a test: polls every 20 ms, pauses of 100-400 ms between attempts. */
const FAST: ServerWebhookOptions = {
  allowPrivate: true,
  pollIntervalMs: 20,
  retryDelaysMs: [100, 200, 300, 400],
  timeoutMs: 500,
};

async function start(
  backend: (typeof BACKENDS)[number],
  webhooks: ServerWebhookOptions = FAST,
  broker: Record<string, unknown> = {},
): Promise<{ server: TestServer; receiver: WebhookReceiver }> {
  receiver = await WebhookReceiver.start();
  server = await startTestServer({ backend, server: { webhooks, broker } });
  await server.putProvider();
  await server.app.ready(); // starts the delivery worker
  return { server, receiver };
}

async function addEndpoint(
  s: TestServer,
  body: Record<string, unknown>,
): Promise<{ id: string; secret: string }> {
  const response = await s.admin('POST', '/v1/webhooks', body);
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}

/** Verified with standardwebhooks: the body's event, or a throw. */
function verified(secret: string, request: ReceivedRequest): Record<string, unknown> {
  return new Webhook(secret).verify(request.body, request.headers) as Record<string, unknown>;
}

async function deliveries(s: TestServer, endpoint: string) {
  const response = await s.admin('GET', `/v1/webhooks/${endpoint}/deliveries`);
  expect(response.statusCode).toBe(200);
  return response.json<{ deliveries: Record<string, unknown>[] }>().deliveries;
}

describe.each(BACKENDS)('webhooks on %s', (backend) => {
  it('a revoked family yields exactly one verified connection.needs_reauth, no token in it', async () => {
    const { server: s, receiver: r } = await start(backend);
    const { id: endpoint, secret } = await addEndpoint(s, {
      url: r.url,
      events: ['connection.needs_reauth'],
    });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const grant = await s.importGrant({ expiresIn: 0 });
    s.provider.revoke(grant.refreshToken); // the user disconnected the app at the provider
    const token = await s.admin('POST', `/v1/connections/${grant.id}/token`);
    expect(token.json()).toMatchObject({ error: 'needs_reauth', reason: 'invalid_grant' });

    const [request] = await r.until((got) => got.length >= 1);
    const event = verified(secret, request!);
    expect(event).toMatchObject({
      type: 'connection.needs_reauth',
      id: request!.headers['webhook-id'],
      data: {
        connection_id: grant.id,
        owner: 'user-a',
        provider: 'test',
        status: 'needs_reauth',
        version: 2,
        reason: 'invalid_grant',
        error: 'invalid_grant',
      },
    });
    // Our own verifier agrees with the independent one.
    expect(verifyWebhook(secret, request!.headers, request!.body)).toEqual(event);
    const everything = JSON.stringify(request);
    for (const secretValue of [grant.accessToken, grant.refreshToken, secret.slice(6)]) {
      expect(everything).not.toContain(secretValue);
    }
    await sleep(200); // ten polls: nothing more comes
    expect(r.requests).toHaveLength(1);
    expect(await deliveries(s, endpoint)).toEqual([
      expect.objectContaining({ status: 'delivered', attempts: 1, last_status: 200 }),
    ]);
  });

  it('500 three times, a timeout, then 200: one delivery, five attempts, pauses and Retry-After honoured', async () => {
    const { server: s, receiver: r } = await start(backend);
    r.script(
      { status: 500 },
      { status: 500 },
      { status: 503, headers: { 'retry-after': '1' } },
      'hang',
      { status: 200 },
    );
    const { id: endpoint, secret } = await addEndpoint(s, {
      url: r.url,
      events: ['connection.created'],
    });
    await s.importGrant();
    const got = await r.until((requests) => requests.length >= 5);
    expect(new Set(got.map((g) => g.headers['webhook-id'])).size).toBe(1);
    for (const request of got) expect(verified(secret, request).type).toBe('connection.created');
    const gaps = got.slice(1).map((g, i) => g.receivedAt - got[i]!.receivedAt);
    // Lower bounds only: the pauses (100, 200, then Retry-After's 1 s over 300, then 400 after
    // the 500 ms timeout), never less; a loaded machine may take longer.
    expect(gaps[0]).toBeGreaterThanOrEqual(100);
    expect(gaps[1]).toBeGreaterThanOrEqual(200);
    expect(gaps[2]).toBeGreaterThanOrEqual(1_000);
    expect(gaps[3]).toBeGreaterThanOrEqual(500 + 400);
    await sleep(200);
    expect(r.requests).toHaveLength(5);
    const [log] = await deliveries(s, endpoint);
    expect(log).toMatchObject({
      status: 'delivered',
      attempts: 5,
      last_status: 200,
      last_error: null,
      next_attempt_at: null,
    });
  });

  it('during a rotation both secrets verify; after the overlap only the new one', async () => {
    const { server: s, receiver: r } = await start(backend);
    const { id: endpoint, secret: old } = await addEndpoint(s, {
      url: r.url,
      events: ['connection.created'],
    });
    const rotated = await s.admin('POST', `/v1/webhooks/${endpoint}/secret`, {
      overlap_seconds: 1,
    });
    expect(rotated.statusCode).toBe(200);
    const { secret: fresh, previous_secret_until } = rotated.json<{
      secret: string;
      previous_secret_until: string;
    }>();
    expect(fresh).not.toBe(old);

    await s.importGrant();
    const [during] = await r.until((got) => got.length >= 1);
    expect(during!.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(verified(old, during!).type).toBe('connection.created');
    expect(verified(fresh, during!).type).toBe('connection.created');

    await sleep(Math.max(0, Date.parse(previous_secret_until) - Date.now() + 50));
    await s.importGrant();
    const after = (await r.until((got) => got.length >= 2))[1]!;
    expect(after.headers['webhook-signature']!.split(' ')).toHaveLength(1);
    expect(verified(fresh, after).type).toBe('connection.created');
    expect(() => verified(old, after)).toThrow();
    expect(() => verifyWebhook(old, after.headers, after.body)).toThrow(WebhookVerificationError);
  });

  it('refuses a URL that is not http(s) or on a private address, and a name resolving to loopback', async () => {
    const { server: s, receiver: r } = await start(backend, { ...FAST, allowPrivate: false });
    for (const url of [
      'ftp://example.com/hooks',
      'http://example.com/hooks',
      'https://10.1.2.3/hooks',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/hooks',
      'https://[::ffff:127.0.0.1]/hooks',
      'https://user:pw@example.com/hooks',
      'not a url',
    ]) {
      const response = await s.admin('POST', '/v1/webhooks', { url });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().error, url).toBe('webhook_url_refused');
    }
    // A name is checked on what it resolves to, when the delivery connects.
    const { id: endpoint } = await addEndpoint(s, {
      url: `https://localhost:${r.port}/hooks`,
      events: ['connection.created'],
    });
    await s.importGrant();
    await expect
      .poll(async () => (await deliveries(s, endpoint))[0]?.last_error)
      .toBe('address_refused');
    expect(r.requests).toHaveLength(0);
  });

  it('does not follow a redirect: the delivery fails saying so, and can be redelivered by hand', async () => {
    const { server: s, receiver: r } = await start(backend, { ...FAST, maxRetryMs: 0 });
    r.script({ status: 302, headers: { location: '/elsewhere' } });
    const { id: endpoint, secret } = await addEndpoint(s, {
      url: r.url,
      events: ['connection.created'],
    });
    await s.importGrant();
    await expect.poll(async () => (await deliveries(s, endpoint))[0]?.status).toBe('failed');
    const [failed] = await deliveries(s, endpoint);
    expect(failed).toMatchObject({
      attempts: 1,
      last_status: 302,
      last_error: 'redirect_not_followed',
    });
    expect(r.requests.map((q) => q.path)).toEqual(['/hooks']);

    const again = await s.admin(
      'POST',
      `/v1/webhooks/${endpoint}/deliveries/${String(failed!.id)}/redeliver`,
    );
    expect(again.statusCode).toBe(202);
    const got = await r.until((requests) => requests.length >= 2);
    expect(got[1]!.headers['webhook-id']).toBe(failed!.id);
    expect(verified(secret, got[1]!).type).toBe('connection.created');
    await expect
      .poll(async () => (await deliveries(s, endpoint))[0])
      .toMatchObject({
        status: 'delivered',
        attempts: 2,
      });
    const missing = await s.admin('POST', `/v1/webhooks/${endpoint}/deliveries/msg_nope/redeliver`);
    expect(missing.statusCode).toBe(404);
  });

  it('a provider outage past the threshold: refresh_failing, then refresh_recovered, no needs_reauth', async () => {
    const { server: s, receiver: r } = await start(backend, FAST, {
      refreshFailingAfterMs: 300,
      breaker: { threshold: 1_000 },
      maxWaitMs: 300, // each call answers refresh_unavailable soon
    });
    const { secret } = await addEndpoint(s, {
      url: r.url,
      events: [
        'connection.needs_reauth',
        'connection.refresh_failing',
        'connection.refresh_recovered',
      ],
    });
    const grant = await s.importGrant({ expiresIn: 0 });
    s.provider.injectFailures({ kind: 'server_error', status: 503, times: 10_000 });
    const started = Date.now();
    let failing: ReceivedRequest[] = [];
    for (let i = 0; failing.length === 0 && i < 200; i++) {
      const answer = await s.admin('POST', `/v1/connections/${grant.id}/token`);
      expect(answer.json().error).toBe('refresh_unavailable');
      await sleep(50);
      failing = r.requests;
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    s.provider.clearFailures();
    await sleep(250); // past the last backoff
    const token = await s.admin('POST', `/v1/connections/${grant.id}/token`);
    expect(token.statusCode, token.body).toBe(200);
    const got = await r.until((requests) => requests.length >= 2);
    await sleep(200);
    const events = r.requests.map((request) => verified(secret, request));
    expect(events.map((e) => e.type)).toEqual([
      'connection.refresh_failing',
      'connection.refresh_recovered',
    ]);
    expect(events[0]).toMatchObject({
      data: { connection_id: grant.id, status: 'active', error: 'server_error' },
    });
    expect(got).toHaveLength(2);
  });

  it('the API: list, show, delete, unknown ids and bad input', async () => {
    const { server: s, receiver: r } = await start(backend);
    const { id } = await addEndpoint(s, { url: r.url, description: 'billing backend' });
    const listed = await s.admin('GET', '/v1/webhooks');
    expect(listed.json()).toEqual({
      webhooks: [expect.objectContaining({ id, url: r.url, events: null })],
    });
    expect(listed.body).not.toContain('whsec_');
    expect((await s.admin('GET', `/v1/webhooks/${id}`)).json()).toMatchObject({
      description: 'billing backend',
    });
    for (const body of [
      { url: r.url, events: ['connection.exploded'] },
      { url: r.url, events: [] },
      { url: r.url, secret: 'mine' },
      {},
    ]) {
      const response = await s.admin('POST', '/v1/webhooks', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().error).toBe('invalid_request');
    }
    const rotateBad = await s.admin('POST', `/v1/webhooks/${id}/secret`, { overlap_seconds: -1 });
    expect(rotateBad.statusCode).toBe(400);
    expect((await s.admin('DELETE', `/v1/webhooks/${id}`)).statusCode).toBe(204);
    for (const [method, url] of [
      ['GET', `/v1/webhooks/${id}`],
      ['DELETE', `/v1/webhooks/${id}`],
      ['POST', `/v1/webhooks/${id}/secret`],
      ['GET', `/v1/webhooks/${id}/deliveries`],
    ] as const) {
      const response = await s.admin(method, url, method === 'POST' ? {} : undefined);
      expect(response.statusCode, url).toBe(404);
    }
    const client = await s.createClient([
      { owner: '*', provider: '*', actions: ['connections.write'] },
    ]);
    const forbidden = await s.call({ method: 'GET', url: '/v1/webhooks', key: client.apiKey });
    expect(forbidden.statusCode).toBe(403);
  });
});
