import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyWebhook } from '@tokenwarden/client';
import { KeyRing } from '@tokenwarden/core';
import { WebhookReceiver } from '@tokenwarden/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { run } from './cli-process.ts';
import { ADMIN_KEY, call, serve, type Replica } from './serve-process.ts';

// `tokenwarden webhooks ...` against `tokenwarden serve --allow-private-webhooks`, both through
// the real binary (the compiled dist: run `npm run build` after changing the sources).

let replica: Replica | undefined;
let receiver: WebhookReceiver | undefined;
const dir = mkdtempSync(join(tmpdir(), 'tw-cli-webhooks-'));
afterEach(async () => {
  replica?.child.kill('SIGTERM');
  await replica?.exited;
  await receiver?.close();
  replica = receiver = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tokenwarden webhooks', () => {
  it('serve refuses TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS that is neither true nor false', async () => {
    const refused = await run(['serve', '--port', '0'], {
      cwd: dir,
      env: { TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS: 'yes' },
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'error: TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS must be true or false\n',
    );
  });

  it('adds, lists, shows the log of, rotates and removes an endpoint; serve says private is allowed', async () => {
    receiver = await WebhookReceiver.start();
    replica = await serve(
      {
        TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
        TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize(),
        TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS: 'true',
      },
      ['--db', join(dir, 'tokenwarden.sqlite')],
    );
    expect(replica.stderr()).toContain('webhooks to private addresses allowed');
    const env = { TOKENWARDEN_URL: replica.url, TOKENWARDEN_ADMIN_KEY: ADMIN_KEY };
    const cli = (...args: string[]) => run(['webhooks', ...args], { cwd: dir, env });

    const refused = await cli('add', receiver.url, '--event', 'connection.exploded');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/unknown event 'connection\.exploded'/);

    const added = await cli('add', receiver.url, '--event', 'connection.created', '--json');
    expect(added.code, added.stderr).toBe(0);
    const { id, secret } = JSON.parse(added.stdout) as { id: string; secret: string };
    expect(secret).toMatch(/^whsec_/);
    const listed = await cli('list');
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+${receiver.url}\\s+connection.created`));
    expect(listed.stdout).not.toContain(secret);

    const put = await call(replica, 'PUT', '/v1/providers/acme', {
      token_url: 'https://acme.example/token',
      client_id: 'c',
      client_secret: 's',
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const imported = await call(replica, 'POST', '/v1/connections', {
      provider: 'acme',
      owner: 'user-42',
      access_token: 'at-never-in-a-webhook',
      refresh_token: 'rt-never-in-a-webhook',
    });
    expect(imported.status, JSON.stringify(imported.body)).toBe(201);
    const [request] = await receiver.until((got) => got.length >= 1);
    const event = verifyWebhook(secret, request!.headers, request!.body);
    expect(event).toMatchObject({ type: 'connection.created', data: { owner: 'user-42' } });
    expect(request!.body).not.toContain('at-never-in-a-webhook');

    const log = await cli('deliveries', id);
    expect(log.stdout).toMatch(
      new RegExp(`${event.id}\\s+connection.created\\s+\\S+\\s+delivered\\s+1\\s+200`),
    );

    const rotated = await cli('rotate-secret', id, '--overlap', '0', '--json');
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({
      id,
      secret: expect.stringMatching(/^whsec_/),
    });
    expect((await cli('redeliver', id, event.id)).stdout).toBe(`redelivering ${event.id}\n`);
    const again = (await receiver.until((got) => got.length >= 2))[1]!;
    const fresh = JSON.parse(rotated.stdout) as { secret: string };
    expect(verifyWebhook(fresh.secret, again.headers, again.body).id).toBe(event.id);

    expect((await cli('remove', id)).stdout).toBe(`deleted ${id}\n`);
    const gone = await cli('show', id);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: not_found: /);
  });
});
