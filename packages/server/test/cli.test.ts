// End to end through the real `tokenwarden` binary (the workspace bin link that `npm ci`
// creates): a server on the embedded default in a temporary directory, the admin commands against
// it, a token refreshed once at the test provider, key rotation, and a clean SIGTERM shutdown.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing, openEmbedded, openSqliteStore, sealProviderSecret } from '@tokenwarden/core';
import { TestProvider } from '@tokenwarden/testkit';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generatedAdminKey,
  GENERATED_ADMIN_KEY,
  BIN,
  expectOneErrorLine,
  run,
  serve,
  SLOW,
  stop,
  type Server,
} from './cli-process.ts';

describe('the tokenwarden CLI', () => {
  let dir: string;
  let provider: TestProvider;
  let server: Server | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-cli-'));
    provider = await TestProvider.start();
  });
  afterAll(async () => {
    if (server && server.child.exitCode === null) await stop(server);
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is linked as a workspace bin and prints help for every command', SLOW, async () => {
    expect(existsSync(BIN)).toBe(true);
    const top = await run(['--help'], { cwd: dir });
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^Usage: tokenwarden <command>/);
    expect((await run(['--version'], { cwd: dir })).stdout).toMatch(
      /^tokenwarden \d+\.\d+\.\d+\n$/,
    );
    const commands = [
      ['serve'],
      ['providers', 'put'],
      ['providers', 'list'],
      ['providers', 'show'],
      ['clients', 'create'],
      ['clients', 'list'],
      ['clients', 'revoke'],
      ['connections', 'list'],
      ['connections', 'show'],
      ['connections', 'import'],
      ['connections', 'delete'],
      ['token'],
      ['audit'],
      ['keys', 'add'],
      ['keys', 'rotate'],
      ['keys', 'rewrap'],
      ['keys'],
    ];
    const helps = await Promise.all(commands.map((c) => run([...c, '--help'], { cwd: dir })));
    helps.forEach((help, i) => {
      const command = commands[i]!.join(' ');
      expect(help.code, command).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: tokenwarden ${command}`));
    });
  });

  it(
    'serves, configures, hands out a token refreshed once, audits it and rotates keys',
    SLOW,
    async () => {
      server = await serve(dir);
      const adminKey = generatedAdminKey(server.stderr());
      const admin = { TOKENWARDEN_URL: server.url, TOKENWARDEN_ADMIN_KEY: adminKey };

      const put = await run(
        [
          'providers',
          'put',
          'acme',
          '--token-url',
          provider.tokenUrl,
          '--client-id',
          provider.clientId,
          '--client-secret-file',
          '-',
        ],
        { cwd: dir, env: admin, input: `${provider.clientSecret}\n` },
      );
      expect(put.stderr).toBe('');
      expect(put.code).toBe(0);
      expect(put.stdout).toMatch(/client secret:\s+stored \(encrypted\)/);
      expect(put.stdout).not.toContain(provider.clientSecret);

      const created = await run(
        ['clients', 'create', '--name', 'worker', '--grant', 'acme:*:token.read', '--json'],
        { cwd: dir, env: admin },
      );
      expect(created.code).toBe(0);
      const client = JSON.parse(created.stdout) as { id: string; api_key: string };
      expect(client.api_key).toMatch(/^tw_cli_/);
      const listed = await run(['clients', 'list'], { cwd: dir, env: admin });
      expect(listed.stdout).toMatch(new RegExp(`${client.id}\\s+worker`));
      expect(listed.stdout).not.toContain(client.api_key);

      // An expired access token: the first hand-out has to refresh it.
      const grant = provider.issueGrant();
      const imported = await run(
        [
          'connections',
          'import',
          '--provider',
          'acme',
          '--owner',
          'user-42',
          '--file',
          '-',
          '--expires-in',
          '0',
        ],
        {
          cwd: dir,
          env: admin,
          input: JSON.stringify({
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
          }),
        },
      );
      expect(imported.code).toBe(0);
      const id = imported.stdout.trim();
      expect(id).toMatch(/^conn_/);

      const worker = { TOKENWARDEN_URL: server.url, TOKENWARDEN_API_KEY: client.api_key };
      const first = await run(['token', id], { cwd: dir, env: worker });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const token = first.stdout.trim();
      expect(token).not.toBe(grant.access_token);
      expect(provider.isAccessTokenValid(token)).toBe(true);
      const again = await run(['token', id, '--json'], { cwd: dir, env: worker });
      expect(JSON.parse(again.stdout)).toMatchObject({ access_token: token, version: 2 });
      expect(provider.stats().redemptions).toBe(1);

      const shown = await run(['connections', 'show', id], { cwd: dir, env: admin });
      expect(shown.stdout).toMatch(/status:\s+active/);
      expect(shown.stdout).toMatch(/version:\s+2/);
      expect(shown.stdout).not.toContain(token);
      const connections = await run(['connections', 'list', '--owner', 'user-42'], {
        cwd: dir,
        env: admin,
      });
      expect(connections.stdout).toMatch(new RegExp(`${id}\\s+acme\\s+user-42\\s+active\\s+2`));

      const audit = await run(['audit', '--connection', id], { cwd: dir, env: admin });
      expect(audit.code).toBe(0);
      expect(audit.stdout).toMatch(new RegExp(`${client.id}\\s+token.read\\s+${id}\\s+ok`));
      expect(audit.stdout).toMatch(new RegExp(`admin\\s+connection.create\\s+${id}\\s+ok`));
      expect(audit.stdout).not.toContain(token);

      // A service client may not use admin commands; the API's error is one line.
      expectOneErrorLine(
        await run(['clients', 'list'], { cwd: dir, env: worker }),
        1,
        /^error: forbidden: /,
      );

      // SIGTERM: requests finish, the audit is flushed, the store closed, exit 0.
      expect(await stop(server)).toBe(0);
      expect(server.stderr()).toContain('Stopped.');
      expectOneErrorLine(
        await run(['token', id], { cwd: dir, env: worker }),
        1,
        new RegExp(`cannot connect to Tokenwarden at ${server.url} \\(connection refused\\)`),
      );

      // Rotation: a new active key in the key file, then every secret re-encrypted under it.
      const added = await run(['keys', 'add', '--id', 'k2', '--json'], { cwd: dir });
      expect(added.code).toBe(0);
      expect(JSON.parse(added.stdout)).toMatchObject({ active_key_id: 'k2' });
      expect(statSync(join(dir, 'tokenwarden.keys')).mode & 0o777).toBe(0o600);
      const rotated = await run(['keys', 'rotate', '--json'], { cwd: dir });
      expect(rotated.code).toBe(0);
      expect(JSON.parse(rotated.stdout)).toMatchObject({
        active_key_id: 'k2',
        resealed: 1,
        skipped: 0,
        provider_secrets: { resealed: 1, skipped: 0 },
      });
      expect(rotated.stderr).toMatch(/re-encrypting: 1\/1 \(100%\)/);
      const noop = await run(['keys', 'rotate'], { cwd: dir });
      expect(noop.stdout).toContain('re-encrypted 0 credentials under key k2');

      // With only the new key, the rotated secrets still open: the same token, no new refresh.
      const onlyNewKey = readFileSync(join(dir, 'tokenwarden.keys'), 'utf8')
        .split('\n')
        .find((line) => line.startsWith('k2:'))!;
      server = await serve(dir, { TOKENWARDEN_KEYS: onlyNewKey });
      expect(server.stderr()).not.toMatch(GENERATED_ADMIN_KEY);
      const afterRotation = await run(['token', id], {
        cwd: dir,
        env: { TOKENWARDEN_URL: server.url, TOKENWARDEN_API_KEY: client.api_key },
      });
      expect(afterRotation.stdout.trim()).toBe(token);
      expect(provider.stats().redemptions).toBe(1);
      expect(await stop(server)).toBe(0);
    },
  );

  it('reports bad usage as one line and a non-zero exit', SLOW, async () => {
    expectOneErrorLine(await run(['nope'], { cwd: dir }), 2, /unknown command 'nope'/);
    expectOneErrorLine(
      await run(['clients', 'create', '--bogus'], { cwd: dir }),
      2,
      /unknown option --bogus/,
    );
    expectOneErrorLine(await run(['token'], { cwd: dir }), 2, /missing connection id/);
    expectOneErrorLine(
      await run(['token', 'conn_x'], { cwd: dir }),
      2,
      /no API key: set TOKENWARDEN_API_KEY/,
    );
    expectOneErrorLine(
      await run(['serve', '--port', 'eighty'], { cwd: dir }),
      2,
      /--port must be an integer/,
    );
    expectOneErrorLine(
      await run(['clients', 'create', '--name', 'x', '--grant', 'acme'], {
        cwd: dir,
        env: { TOKENWARDEN_ADMIN_KEY: 'k' },
      }),
      2,
      /--grant 'acme' must look like <provider>:<owner>:<actions>/,
    );
    const empty = mkdtempSync(join(tmpdir(), 'tw-cli-empty-'));
    try {
      expectOneErrorLine(await run(['keys', 'rotate'], { cwd: empty }), 1, /no database at/);
      // A shared database is never given generated keys: refused before connecting.
      expectOneErrorLine(
        await run(['serve', '--db', 'postgres://tw@127.0.0.1:1/tw'], { cwd: empty }),
        1,
        /^error: key_ring_invalid: No encryption keys are configured/,
      );
      expect(readdirSync(empty)).toEqual([]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('serve from another working directory', () => {
  it(
    'keeps the key file beside the database and refuses keys that cannot open it',
    SLOW,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tw-cli-keys-'));
      const elsewhere = join(dir, 'elsewhere');
      mkdirSync(join(dir, 'data'));
      mkdirSync(elsewhere);
      const db = join(dir, 'data', 'tokenwarden.sqlite');
      const keyFile = join(dir, 'data', 'tokenwarden.keys');
      const env = { TOKENWARDEN_DB: db, TOKENWARDEN_ADMIN_KEY: 'an-operator-chosen-admin-key' };
      try {
        const first = await serve(elsewhere, env);
        expect(first.stderr()).toContain(`keys from ${keyFile}`);
        expect(await stop(first)).toBe(0);
        expect(statSync(keyFile).mode & 0o777).toBe(0o600);
        expect(readdirSync(elsewhere)).toEqual([]);

        // A secret in the database, as `providers put` would store it.
        const embedded = await openEmbedded({ env: { TOKENWARDEN_DB: db } });
        await embedded.store.service.putProvider({
          name: 'acme',
          config: '{}',
          clientSecret: sealProviderSecret(embedded.keyRing, 'client-secret', 'acme'),
        });
        await embedded.store.close();
        const keyId = embedded.keyRing.activeKeyId;

        unlinkSync(keyFile);
        expectOneErrorLine(
          await run(['serve', '--port', '0'], { cwd: elsewhere, env }),
          1,
          /^error: key_ring_invalid: The database .* holds encrypted secrets, but its key file .* does not exist/,
        );
        expect(existsSync(keyFile)).toBe(false);
        expect(readdirSync(elsewhere)).toEqual([]);

        const other = KeyRing.generate('other').serialize();
        expectOneErrorLine(
          await run(['serve', '--port', '0'], {
            cwd: elsewhere,
            env: { ...env, TOKENWARDEN_KEYS: other },
          }),
          1,
          new RegExp(
            `secrets sealed with key "${keyId}", which the key ring from TOKENWARDEN_KEYS`,
          ),
        );
        const sameId = KeyRing.generate(keyId).serialize();
        const impostor = await run(['serve', '--port', '0'], {
          cwd: elsewhere,
          env: { ...env, TOKENWARDEN_KEYS: sameId },
        });
        expectOneErrorLine(
          impostor,
          1,
          new RegExp(`Key "${keyId}" from TOKENWARDEN_KEYS is not the key`),
        );
        expect(impostor.stderr).not.toContain(sameId.split(':')[1]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('the generated admin key', () => {
  it(
    'is written on first start to a 0600 file beside the database, never printed; only its hash is stored',
    SLOW,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tw-cli-admin-'));
      const servers: Server[] = [];
      try {
        const first = await serve(dir);
        servers.push(first);
        // Written to the file, never to the output (generatedAdminKey checks both).
        const key = generatedAdminKey(first.stderr());
        expect(await stop(first)).toBe(0);

        const second = await serve(dir);
        servers.push(second);
        expect(second.stderr()).not.toMatch(GENERATED_ADMIN_KEY);
        const listed = await run(['clients', 'list', '--json'], {
          cwd: dir,
          env: { TOKENWARDEN_URL: second.url, TOKENWARDEN_ADMIN_KEY: key },
        });
        expect(listed.code).toBe(0);
        expect(JSON.parse(listed.stdout)).toEqual({ clients: [] });
        expect(await stop(second)).toBe(0);

        expect(statSync(join(dir, 'tokenwarden.admin-key')).mode & 0o777).toBe(0o600);
        for (const file of readdirSync(dir)) {
          if (file === 'tokenwarden.admin-key') continue;
          expect(readFileSync(join(dir, file)).includes(key), file).toBe(false);
        }
        const store = openSqliteStore({ path: join(dir, 'tokenwarden.sqlite') });
        try {
          expect(await store.service.getSetting('admin_key_hash')).toBe(
            createHash('sha256').update(key).digest('hex'),
          );
        } finally {
          await store.close();
        }
      } finally {
        for (const server of servers) if (server.child.exitCode === null) await stop(server);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('admin-key rotate', () => {
  it(
    'replaces the key on a running server at once; the old one works for the overlap only',
    SLOW,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tw-cli-admin-rotate-'));
      let server: Server | undefined;
      const keyFile = join(dir, 'tokenwarden.admin-key');
      const listClients = (env: Record<string, string>) =>
        run(['clients', 'list', '--json'], {
          cwd: dir,
          env: { TOKENWARDEN_URL: server!.url, ...env },
        });
      try {
        server = await serve(dir);
        const first = generatedAdminKey(server.stderr());

        const rotated = await run(['admin-key', 'rotate', '--overlap', '3600'], { cwd: dir });
        expect(rotated.code).toBe(0);
        expect(rotated.stderr).toMatch(
          /^Wrote the new admin key to .*tokenwarden\.admin-key \(mode 0600\)\. The old one is valid until \d{4}-/,
        );
        const second = readFileSync(keyFile, 'utf8').trim();
        expect(second).not.toBe(first);
        expect(rotated.stdout + rotated.stderr).not.toContain(second);
        expect(statSync(keyFile).mode & 0o777).toBe(0o600);

        // The running server takes the new key at once, the old one within its overlap, and the
        // admin commands read the key from its file.
        expect((await listClients({ TOKENWARDEN_ADMIN_KEY_FILE: keyFile })).code).toBe(0);
        expect((await listClients({ TOKENWARDEN_ADMIN_KEY: first })).code).toBe(0);

        // A second rotation with no overlap: only the newest key works.
        expect((await run(['admin-key', 'rotate', '--overlap', '0'], { cwd: dir })).code).toBe(0);
        const third = readFileSync(keyFile, 'utf8').trim();
        expect((await listClients({ TOKENWARDEN_ADMIN_KEY: third })).code).toBe(0);
        for (const old of [first, second]) {
          expectOneErrorLine(
            await listClients({ TOKENWARDEN_ADMIN_KEY: old }),
            1,
            /unauthorized: The API key is unknown or revoked/,
          );
        }
        expectOneErrorLine(
          await listClients({ TOKENWARDEN_ADMIN_KEY_FILE: join(dir, 'missing') }),
          1,
          /TOKENWARDEN_ADMIN_KEY_FILE .*missing could not be read \(ENOENT\)/,
        );
        expectOneErrorLine(
          await run(['admin-key', 'rotate', '--overlap', 'soon'], { cwd: dir }),
          2,
          /--overlap/,
        );
      } finally {
        if (server) await stop(server);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('refuses a database whose server takes its key from TOKENWARDEN_ADMIN_KEY', SLOW, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-cli-admin-env-'));
    try {
      const server = await serve(dir, { TOKENWARDEN_ADMIN_KEY: 'an-operator-chosen-admin-key' });
      await stop(server);
      expectOneErrorLine(
        await run(['admin-key', 'rotate'], { cwd: dir }),
        1,
        /this database holds no admin key \(the server takes it from TOKENWARDEN_ADMIN_KEY\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serve and keys rotate on Postgres', () => {
  it('needs keys and an admin key, never generates either, and rotates', SLOW, async () => {
    const database = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'tw-cli-pg-'));
    let server: Server | undefined;
    try {
      const db = ['--db', database.url];
      const k1 = KeyRing.generate('k1').serialize();
      expectOneErrorLine(
        await run(['serve', ...db], { cwd: dir, env: { TOKENWARDEN_KEYS: k1 } }),
        1,
        /^error: no admin key: set TOKENWARDEN_ADMIN_KEY/,
      );
      // An unreachable server is named without its password.
      const unreachable = await run(['serve', '--db', 'postgres://tw:hunter2@127.0.0.1:9/tw'], {
        cwd: dir,
        env: { TOKENWARDEN_KEYS: k1 },
      });
      expectOneErrorLine(
        unreachable,
        1,
        /cannot open the database postgres:\/\/tw:\*\*\*@127\.0\.0\.1:9/,
      );
      expect(unreachable.stderr).not.toContain('hunter2');

      expectOneErrorLine(
        await run(['serve', ...db], {
          cwd: dir,
          env: { TOKENWARDEN_KEYS: k1, TOKENWARDEN_ADMIN_KEY: 'two words' },
        }),
        1,
        /TOKENWARDEN_ADMIN_KEY must be 16 to 512 printable ASCII characters without spaces/,
      );
      const adminKey = 'an-operator-chosen-admin-key';
      server = await serve(dir, {
        TOKENWARDEN_DB: database.url,
        TOKENWARDEN_KEYS: k1,
        TOKENWARDEN_ADMIN_KEY: adminKey,
      });
      expect(server.stderr()).not.toMatch(GENERATED_ADMIN_KEY);
      const admin = { TOKENWARDEN_URL: server.url, TOKENWARDEN_ADMIN_KEY: adminKey };
      const put = await run(
        ['providers', 'put', 'acme', '--token-url', 'http://127.0.0.1:9/token', '--client-id', 'c'],
        { cwd: dir, env: { ...admin, TOKENWARDEN_CLIENT_SECRET: 'client-secret' } },
      );
      expect(put.stderr).toBe('');
      expect(put.code).toBe(0);
      const imported = await run(
        ['connections', 'import', '--provider', 'acme', '--owner', 'o', '--access-token-file', '-'],
        { cwd: dir, env: admin, input: 'at_pg_1' },
      );
      expect(imported.code).toBe(0);
      expect(await stop(server)).toBe(0);
      expect(readdirSync(dir)).toEqual([]);

      const k2 = KeyRing.parse(k1).withNewActiveKey('k2').serialize();
      const rotated = await run(['keys', 'rotate', ...db, '--json'], {
        cwd: dir,
        env: { TOKENWARDEN_KEYS: k2 },
      });
      expect(rotated.code).toBe(0);
      expect(JSON.parse(rotated.stdout)).toMatchObject({
        active_key_id: 'k2',
        resealed: 1,
        provider_secrets: { resealed: 1 },
      });
    } finally {
      // A failed assertion must not leave a server behind.
      if (server && server.child.exitCode === null) await stop(server);
      rmSync(dir, { recursive: true, force: true });
      await database.drop();
    }
  });
});
