import { once } from 'node:events';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { WebhookDelivery, WebhookEndpoints } from '@tokenwarden/core';
import { CRASH_WORKER, fixtureEnv, onLines, spawnTs, WebhookReceiver } from '@tokenwarden/testkit';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

// The outbox across real processes: a replica SIGKILLed at the crash-point seam right after
// committing `needs_reauth`, and two replicas sharing one endpoint's deliveries.

const workers = join(import.meta.dirname, 'workers');
let s: Scenario | undefined;
let receiver: WebhookReceiver | undefined;
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.stdin?.end();
      await exited;
    }
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await receiver?.close();
  await s?.cleanup();
  s = receiver = undefined;
});

async function setUp(backend: 'sqlite' | 'postgres', events?: string[]) {
  s = await scenario({ backend });
  receiver = await WebhookReceiver.start();
  const endpoints = new WebhookEndpoints({
    store: s.store.webhooks,
    keyRing: s.keyRing,
    allowPrivate: true,
  });
  const { secret } = await endpoints.create({ url: receiver.url, events });
  return { s, receiver, webhook: new Webhook(secret) };
}

/** A child that asks for the token of `id` and is SIGKILLed right after the commit. */
async function crashAfterCommit(fixture: Scenario['fixture'], id: string): Promise<void> {
  const child = spawnTs(CRASH_WORKER, [id], {
    ...fixtureEnv(fixture),
    TW_CRASH_AT: 'committed',
  });
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  expect(signal).toBe('SIGKILL');
}

/** A replica delivering webhooks in its own process, ready when this resolves. */
async function deliveringReplica(fixture: Scenario['fixture']): Promise<ChildProcess> {
  const child = spawnTs(join(workers, 'webhook-worker.ts'), [], fixtureEnv(fixture));
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    onLines(child.stdout!, (line) => line === 'TW_READY' && resolve());
    child.once('exit', (code) => reject(new Error(`webhook worker exited (${code})`)));
  });
  return child;
}

describe.each(['sqlite', 'postgres'] as const)('webhooks across processes on %s', (backend) => {
  it('a replica SIGKILLed right after committing needs_reauth: the other replica delivers it', async () => {
    const { s, receiver, webhook } = await setUp(backend, ['connection.needs_reauth']);
    // This process is the other replica.
    const delivery = new WebhookDelivery({
      store: s.store.webhooks,
      keyRing: s.keyRing,
      allowPrivate: true,
      pollIntervalMs: 20,
    });
    delivery.start();
    cleanups.push(() => delivery.stop());
    const { id, refreshToken } = await s.importGrant();
    await s.expire(id);
    s.provider.revoke(refreshToken);

    await crashAfterCommit(s.fixture, id);
    const [request] = await receiver.until((got) => got.length >= 1);
    expect(webhook.verify(request!.body, request!.headers)).toMatchObject({
      type: 'connection.needs_reauth',
      data: { connection_id: id, reason: 'invalid_grant', version: 2 },
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.requests).toHaveLength(1);
  });

  it('the only replica SIGKILLed right after the commit: restarted, it delivers the event', async () => {
    const { s, receiver, webhook } = await setUp(backend, ['connection.needs_reauth']);
    const { id, refreshToken } = await s.importGrant();
    await s.expire(id);
    s.provider.revoke(refreshToken);

    await crashAfterCommit(s.fixture, id);
    expect((await s.broker.getConnection(id)).status).toBe('needs_reauth');
    expect(receiver.requests).toHaveLength(0); // nobody was delivering
    await deliveringReplica(s.fixture); // the process, started again
    const [request] = await receiver.until((got) => got.length >= 1);
    expect(webhook.verify(request!.body, request!.headers)).toMatchObject({
      type: 'connection.needs_reauth',
      data: { connection_id: id },
    });
  });

  it('two replicas, 200 connections to needs_reauth at once: every event once, in order per connection', async () => {
    const { s, receiver, webhook } = await setUp(backend);
    await Promise.all([deliveringReplica(s.fixture), deliveringReplica(s.fixture)]);
    const grants = [];
    for (let batch = 0; batch < 10; batch++) {
      grants.push(...(await Promise.all(Array.from({ length: 20 }, () => s.importGrant()))));
    }
    const ids = grants.map((grant) => grant.id);
    await Promise.all(ids.map((id) => s.expire(id)));
    for (const grant of grants) s.provider.revoke(grant.refreshToken);
    const outcomes = await Promise.allSettled(ids.map((id) => s.broker.getAccessToken(id)));
    const codes = outcomes.map((o) => (o.status === 'rejected' ? o.reason?.code : 'handed out'));
    expect(codes).toEqual(ids.map(() => 'needs_reauth'));

    const got = await receiver.until((requests) => requests.length >= 400, 150_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests).toHaveLength(400);
    expect(new Set(got.map((request) => request.headers['webhook-id'])).size).toBe(400);
    const byConnection = new Map<string, string[]>();
    for (const request of got) {
      const event = webhook.verify(request.body, request.headers) as {
        type: string;
        data: { connection_id: string };
      };
      const seen = byConnection.get(event.data.connection_id) ?? [];
      byConnection.set(event.data.connection_id, [...seen, event.type]);
    }
    expect(byConnection.size).toBe(200);
    for (const types of byConnection.values()) {
      expect(types).toEqual(['connection.created', 'connection.needs_reauth']);
    }
  }, 180_000);
});
