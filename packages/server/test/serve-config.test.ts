// `tokenwarden serve`'s configuration through the real binary: flags over environment variables
// over defaults, the connect flow on by default on loopback, the redirect-origin allow-list, and
// a start-up line and a --help that name what the server runs on without a secret.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { KeyRing } from '@tokenwarden/core';
import { TestProvider } from '@tokenwarden/testkit';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, call, cleanEnv, serve, type Replica } from './serve-process.ts';

const BIN = fileURLToPath(new URL('../../../node_modules/.bin/tokenwarden', import.meta.url));
const SLOW = { timeout: 240_000 };

async function sql(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

async function stop(replica: Replica): Promise<number | null> {
  replica.child.kill('SIGTERM');
  return replica.exited;
}

describe('tokenwarden serve configuration', () => {
  it(
    'documents an environment variable for every flag, and no secret, in --help',
    SLOW,
    async () => {
      const keys = KeyRing.generate('k1').serialize();
      const { stdout } = await promisify(execFile)(BIN, ['serve', '--help'], {
        env: cleanEnv({ TOKENWARDEN_KEYS: keys, TOKENWARDEN_ADMIN_KEY: ADMIN_KEY }),
      });
      const flags = [...stdout.matchAll(/^ {2}(--[a-z-]+)/gm)].map((match) => match[1]);
      expect(flags).toEqual([
        '--db',
        '--port',
        '--host',
        '--public-url',
        '--redirect-origins',
        '--shutdown-grace',
        '--log-level',
        '--tls-cert',
        '--tls-client-ca',
        '--proxy-replay-limit',
        '--proxy-connect-timeout',
        '--allow-private-webhooks',
        '--opened-token-cache',
      ]);
      for (const name of [
        'TOKENWARDEN_DB',
        'TOKENWARDEN_PORT',
        'TOKENWARDEN_HOST',
        'TOKENWARDEN_PUBLIC_URL',
        'TOKENWARDEN_REDIRECT_ORIGINS',
        'TOKENWARDEN_SHUTDOWN_GRACE',
        'TOKENWARDEN_LOG_LEVEL',
        'TOKENWARDEN_TLS_CERT',
        'TOKENWARDEN_TLS_KEY',
        'TOKENWARDEN_TLS_CLIENT_CA',
        'TOKENWARDEN_PROXY_REPLAY_LIMIT',
        'TOKENWARDEN_PROXY_CONNECT_TIMEOUT',
        'TOKENWARDEN_PROXY_HEADERS_TIMEOUT',
        'TOKENWARDEN_PROXY_IDLE_TIMEOUT',
        'TOKENWARDEN_OPENED_TOKEN_CACHE',
        'TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS',
      ]) {
        expect(stdout).toContain(name);
      }
      expect(stdout).toContain('a flag wins over the variable');
      expect(stdout).not.toContain(ADMIN_KEY);
      expect(stdout).not.toContain(keys.split(':')[1]);
    },
  );

  it(
    'prints one start-up line without a secret, on Postgres with a password in its URL',
    SLOW,
    async () => {
      const database = await createTestDatabase();
      const dir = mkdtempSync(join(tmpdir(), 'tw-serve-config-'));
      const keys = KeyRing.generate('k1').serialize();
      // A role of its own, with a password no other text could contain.
      const role = `tw_role_${randomBytes(4).toString('hex')}`;
      const password = `pw-${randomBytes(12).toString('hex')}`;
      const url = new URL(database.url);
      let replica: Replica | undefined;
      try {
        await sql(database.url, [
          `create role ${role} login password '${password}'`,
          `alter database "${url.pathname.slice(1)}" owner to ${role}`,
          `alter schema public owner to ${role}`,
        ]);
        url.username = role;
        url.password = password;
        replica = await serve(
          {
            TOKENWARDEN_DB: url.href,
            TOKENWARDEN_KEYS: keys,
            TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
          },
          ['--host', '0.0.0.0', '--public-url', 'https://tokenwarden.example/'],
          { cwd: dir },
        );
        expect(await stop(replica)).toBe(0);
        // Plain HTTP on an address that is not loopback: a warning first, then the one line.
        const [warning, line] = replica.stderr().split('\n');
        expect(warning).toMatch(
          /^warning: serving plain HTTP on 0\.0\.0\.0, not a loopback address/,
        );
        expect(line).toMatch(
          /^Tokenwarden listening on http:\/\/0\.0\.0\.0:\d+ \(TLS off; store postgres postgres:\/\/[^@\s]+:\*\*\*@127\.0\.0\.1:\d+\/[\w-]+; keys from TOKENWARDEN_KEYS; public URL https:\/\/tokenwarden\.example; shutdown grace 10 s\)$/,
        );
        for (const secret of [password, ADMIN_KEY, keys.split(':')[1]!]) {
          expect(replica.stderr()).not.toContain(secret);
        }
      } finally {
        if (replica && replica.child.exitCode === null) replica.child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
        await database.drop();
        await sql(database.url.replace(/\/[^/]*$/, '/postgres'), [`drop role ${role}`]);
      }
    },
  );

  it(
    'takes a flag over its variable, turns the connect flow on on loopback, and checks redirect origins',
    SLOW,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tw-serve-config-'));
      const provider = await TestProvider.start();
      let replica: Replica | undefined;
      try {
        replica = await serve(
          {
            TOKENWARDEN_DB: join(dir, 'tokenwarden.sqlite'),
            TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize(),
            TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
            TOKENWARDEN_SHUTDOWN_GRACE: '7',
            TOKENWARDEN_REDIRECT_ORIGINS: 'https://app.example, http://127.0.0.1:9999',
          },
          ['--shutdown-grace', '3'],
          { cwd: dir },
        );
        const line = replica.stderr().split('\n')[0]!;
        expect(line).toContain(`public URL ${replica.url};`);
        expect(line).toContain('shutdown grace 3 s');
        expect(
          (
            await call(replica, 'PUT', '/v1/providers/test', {
              token_url: provider.tokenUrl,
              authorize_url: provider.authorizeUrl,
              client_id: provider.clientId,
              client_secret: provider.clientSecret,
            })
          ).status,
        ).toBe(200);
        const session = (redirectUri: string) =>
          call(replica!, 'POST', '/v1/connect/sessions', {
            provider: 'test',
            owner: 'user-1',
            redirect_uri: redirectUri,
          });
        const started = await session('https://app.example/done');
        expect(started.status).toBe(201);
        // The provider is sent back to this server itself: the loopback default public URL.
        const authorize = new URL(started.body.authorize_url as string);
        expect(authorize.searchParams.get('redirect_uri')).toBe(
          `${replica.url}/v1/connect/callback`,
        );
        expect((await session('http://127.0.0.1:9999/back')).status).toBe(201);
        const elsewhere = await session('https://elsewhere.example/done');
        expect(elsewhere.status).toBe(400);
        expect(elsewhere.body.error).toBe('invalid_request');
        expect(await stop(replica)).toBe(0);
      } finally {
        if (replica && replica.child.exitCode === null) replica.child.kill('SIGKILL');
        await provider.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('names the variable or flag a bad value came from', SLOW, async () => {
    const run = (args: string[], env: Record<string, string>) =>
      promisify(execFile)(BIN, ['serve', ...args], { env: cleanEnv(env) }).then(
        () => '',
        (error: { stderr: string }) => error.stderr,
      );
    expect(await run([], { TOKENWARDEN_SHUTDOWN_GRACE: 'soon' })).toMatch(
      /^error: TOKENWARDEN_SHUTDOWN_GRACE must be an integer from 0 to 3600, got 'soon'/,
    );
    expect(await run(['--shutdown-grace', '3601'], {})).toMatch(
      /^error: --shutdown-grace must be an integer from 0 to 3600, got '3601'/,
    );
    expect(await run([], { TOKENWARDEN_PROXY_IDLE_TIMEOUT: '5s' })).toMatch(
      /^error: TOKENWARDEN_PROXY_IDLE_TIMEOUT must be an integer from 0 to 3600000, got '5s'/,
    );
    expect(await run(['--proxy-replay-limit', '99999999999'], {})).toMatch(
      /^error: --proxy-replay-limit must be an integer from 0 to 67108864, got '99999999999'/,
    );
    expect(await run(['--log-level', 'loud'], { TOKENWARDEN_LOG_LEVEL: 'info' })).toMatch(
      /^error: --log-level must be one of fatal, error/,
    );
    expect(
      await run([], {
        TOKENWARDEN_REDIRECT_ORIGINS: 'https://app.example,https://app.example/path',
      }),
    ).toMatch(
      /^error: TOKENWARDEN_REDIRECT_ORIGINS: "https:\/\/app\.example\/path" is not an origin/,
    );
  });
});
