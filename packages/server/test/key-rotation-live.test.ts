// Key rotation with replicas serving, file key rings: `keys add` reaches a running replica on
// SIGHUP or when it meets a ciphertext under the new key id (no restart, no `decrypt_failed`),
// and `keys rotate` refuses to start while a live replica cannot open the new key.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { TestProvider } from '@tokenwarden/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, serve, SLOW, stop, type Server } from './cli-process.ts';
import { ADMIN_KEY, call, importTestConnection } from './serve-process.ts';

// Only SIGHUP and unknown key ids reload keys in this test, never the heartbeat's timer.
const BASE_ENV = { TOKENWARDEN_ADMIN_KEY: ADMIN_KEY, TOKENWARDEN_KEY_HEARTBEAT_MS: '600000' };

let dir: string;
let provider: TestProvider;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-rotate-live-'));
  provider = await TestProvider.start();
});

afterAll(async () => {
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function handOut(server: Server, connection: { id: string; accessToken: string }) {
  const token = await call(server, 'POST', `/v1/connections/${connection.id}/token`, {});
  expect(token.body).toMatchObject({ access_token: connection.accessToken });
}

/** The key ids a replica published with its last heartbeat. */
function heldBy(server: Server): string[] {
  const sqlite = new Database(join(dir, 'tokenwarden.sqlite'), { readonly: true });
  try {
    const row = sqlite
      .prepare('select key_ids from key_holders where process_id like ?')
      .get(`${server.child.pid}-%`) as { key_ids: string } | undefined;
    return row ? (JSON.parse(row.key_ids) as string[]) : [];
  } finally {
    sqlite.close();
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let tries = 0; !condition(); tries += 1) {
    if (tries > 300) throw new Error('condition not met');
    await sleep(50);
  }
}

describe('keys add + keys rotate with replicas serving', () => {
  it('new keys reach running replicas; rotate waits for every live replica', SLOW, async () => {
    const a = await serve(dir, BASE_ENV);
    const keyFile = join(dir, 'tokenwarden.keys');
    const firstKey = readFileSync(keyFile, 'utf8')
      .split('\n')
      .find((line) => line !== '' && !line.startsWith('#'))!;
    // b holds the first key inline: nothing can give it a new one.
    const b = await serve(dir, { ...BASE_ENV, TOKENWARDEN_KEYS: firstKey });
    const c = await serve(dir, BASE_ENV);
    try {
      const put = await call(a, 'PUT', '/v1/providers/test', {
        token_url: provider.tokenUrl,
        client_id: provider.clientId,
        client_secret: provider.clientSecret,
      });
      expect(put.status).toBeLessThan(300);
      const old = await importTestConnection(a, provider);

      const added = await run(['keys', 'add', '--id', 'k2', '--json'], { cwd: dir });
      expect(added.code, added.stderr).toBe(0);
      a.child.kill('SIGHUP');
      await until(() => heldBy(a).includes('k2'));
      // a seals under k2 now; c was told nothing, and opens it when it meets it.
      const sealedUnderNew = await importTestConnection(a, provider);
      await handOut(c, sealedUnderNew);
      expect(heldBy(c)).toContain('k2');

      const refused = await run(['keys', 'rotate', '--wait', '2'], { cwd: dir });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/1 running Tokenwarden process\(es\) do not hold key k2/);
      expect(refused.stderr).toContain(`${b.child.pid}-`);
      const material = readFileSync(keyFile, 'utf8')
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .flatMap((line) => line.split(',').map((entry) => entry.split(':')[1]!));
      expect(material).toHaveLength(2);
      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      for (const key of material) {
        for (const text of [refused.stderr, metrics, a.stderr(), a.stdout(), c.stderr()]) {
          expect(text).not.toContain(key);
        }
      }

      await stop(b);
      const rotated = await run(['keys', 'rotate', '--json'], { cwd: dir });
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(JSON.parse(rotated.stdout)).toMatchObject({ active_key_id: 'k2', resealed: 1 });
      for (const replica of [a, c]) {
        await handOut(replica, old);
        await handOut(replica, sealedUnderNew);
      }
    } finally {
      await Promise.all([stop(a), stop(b), stop(c)]);
    }
  });
});
