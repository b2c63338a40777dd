// `tokenwarden dev-provider`, `connections reauthorize` and `connections connect-link`, end to
// end through real child processes: the compiled CLI, a server on SQLite in a temporary
// directory, and the dev provider the CLI starts, driven only by what it prints.
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RemoteTestProvider } from '@tokenwarden/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generatedAdminKey,
  expectOneErrorLine,
  printedCommands,
  run,
  serve,
  shell,
  SLOW,
  start,
  stop,
  type Running,
  type Server,
} from './cli-process.ts';

/** A port nobody listens on right now, for a server that must know its URL before it starts. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function startDevProvider(cwd: string, args: string[] = []): Promise<Running> {
  return start(['dev-provider', '--port', '0', ...args], {
    cwd,
    ready: (out) => out.stderr().includes('Ctrl-C stops it'),
  });
}

/** Is the access token accepted by the provider's protected resource? */
async function accepted(providerUrl: string, token: string): Promise<boolean> {
  const response = await fetch(`${providerUrl}/resource`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return response.ok;
}

describe('tokenwarden dev-provider, connections reauthorize and connect-link', () => {
  let dir: string;
  let server: Server;
  let dev: Running;
  let providerUrl: string;
  let admin: Record<string, string>;
  let worker: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-dev-provider-'));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    server = await serve(dir, {}, ['--port', String(port), '--public-url', url]);
    const adminKey = generatedAdminKey(server.stderr());
    admin = { TOKENWARDEN_URL: server.url, TOKENWARDEN_ADMIN_KEY: adminKey };
    dev = await startDevProvider(dir);
    providerUrl = /Test OAuth provider on (http:\/\/\S+) /.exec(dev.stdout())![1]!;
  }, 120_000);
  afterAll(async () => {
    for (const child of [server, dev]) if (child?.child.exitCode === null) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a providers put line that works and a token pair to import', SLOW, async () => {
    const [put, importLine, ...rest] = printedCommands(dev.stdout());
    expect(rest).toEqual([]);
    expect(put).toMatch(/^TOKENWARDEN_CLIENT_SECRET=\S+ npx tokenwarden providers put dev /);
    expect(importLine).toMatch(/--access-token-file at\.txt --refresh-token-file rt\.txt/);
    for (const file of ['at.txt', 'rt.txt']) {
      expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    }
    const accessToken = readFileSync(join(dir, 'at.txt'), 'utf8').trim();

    const configured = await shell(put!, { cwd: dir, env: admin });
    expect(configured.stderr).toBe('');
    expect(configured.code).toBe(0);
    const imported = await shell(importLine!, { cwd: dir, env: admin });
    expect(imported.code).toBe(0);
    const id = imported.stdout.trim();
    expect(id).toMatch(/^conn_/);

    const created = await run(
      ['clients', 'create', '--name', 'worker', '--grant', 'dev:*:token.read', '--json'],
      { cwd: dir, env: admin },
    );
    worker = {
      TOKENWARDEN_URL: server.url,
      TOKENWARDEN_API_KEY: (JSON.parse(created.stdout) as { api_key: string }).api_key,
    };
    const token = await run(['token', id], { cwd: dir, env: worker });
    expect(token.code).toBe(0);
    expect(token.stdout.trim() === accessToken).toBe(true);
    expect(await accepted(providerUrl, accessToken)).toBe(true);

    // The client secret in the put line is the provider's: a refresh goes through.
    const remote = new RemoteTestProvider(providerUrl);
    const grant = await remote.issueGrant();
    const expired = await run(
      ['connections', 'import', '--provider', 'dev', '--owner', 'me', '--file', '-'],
      {
        cwd: dir,
        env: admin,
        input: JSON.stringify({
          access_token: grant.access_token,
          refresh_token: grant.refresh_token,
          expires_in: 0,
        }),
      },
    );
    const refreshed = await run(['token', expired.stdout.trim()], { cwd: dir, env: worker });
    expect(refreshed.code).toBe(0);
    expect(refreshed.stdout.trim() === grant.access_token).toBe(false);
    expect(await accepted(providerUrl, refreshed.stdout.trim())).toBe(true);
    expect((await remote.stats()).redemptions).toBe(1);
  });

  it('re-authorizes a needs_reauth connection from token files', SLOW, async () => {
    const remote = new RemoteTestProvider(providerUrl);
    // A refresh token the provider never issued: the first hand-out ends in needs_reauth.
    writeFileSync(join(dir, 'dead-rt.txt'), 'rt_never_issued\n');
    writeFileSync(join(dir, 'old-at.txt'), 'at_expired\n');
    const imported = await run(
      [
        'connections',
        'import',
        '--provider',
        'dev',
        '--owner',
        'reauth-user',
        '--access-token-file',
        'old-at.txt',
        '--refresh-token-file',
        'dead-rt.txt',
        '--expires-in',
        '0',
      ],
      { cwd: dir, env: admin },
    );
    const id = imported.stdout.trim();
    expectOneErrorLine(await run(['token', id], { cwd: dir, env: worker }), 1, /needs_reauth/);
    const before = await run(['connections', 'show', id, '--json'], { cwd: dir, env: admin });
    expect(JSON.parse(before.stdout)).toMatchObject({ status: 'needs_reauth', version: 2 });

    // Bad files are refused before anything is sent, naming the file, never quoting it.
    const grant = await remote.issueGrant();
    writeFileSync(join(dir, 'empty.txt'), '\n');
    writeFileSync(join(dir, 'both.txt'), `${grant.access_token}\n${grant.refresh_token}\n`);
    const reauthorize = (args: string[], input?: string) =>
      run(['connections', 'reauthorize', ...args], { cwd: dir, env: admin, input });
    const failures: Array<[string[], number, RegExp]> = [
      [
        [id, '--access-token-file', 'missing.txt'],
        1,
        /cannot read the access token from missing\.txt \(ENOENT\)/,
      ],
      [[id, '--access-token-file', 'empty.txt'], 1, /the access token file empty\.txt is empty/],
      [
        [id, '--access-token-file', 'both.txt'],
        1,
        /the access token file both\.txt holds more than one word/,
      ],
      [
        [id, '--access-token-file', '-', '--refresh-token-file', '-'],
        2,
        /only one option can read stdin/,
      ],
      [[id, '--refresh-token-file', 'rt.txt'], 2, /missing --access-token-file/],
      [[], 2, /missing connection id/],
      [['conn_nope', '--access-token-file', 'at.txt'], 1, /^error: not_found: /],
    ];
    for (const [args, code, pattern] of failures) {
      const result = await reauthorize(args);
      expectOneErrorLine(result, code, pattern);
      // As booleans: a failed assertion must not print the tokens either.
      expect(result.stderr.includes(grant.access_token)).toBe(false);
      expect(result.stderr.includes(grant.refresh_token)).toBe(false);
    }
    const unchanged = await run(['connections', 'show', id, '--json'], { cwd: dir, env: admin });
    expect(JSON.parse(unchanged.stdout)).toMatchObject({ status: 'needs_reauth', version: 2 });

    writeFileSync(join(dir, 'new-at.txt'), `${grant.access_token}\n`);
    const done = await reauthorize(
      [
        id,
        '--access-token-file',
        'new-at.txt',
        '--refresh-token-file',
        '-',
        '--expires-in',
        '3600',
      ],
      `${grant.refresh_token}\n`,
    );
    expect(done.code).toBe(0);
    expect(done.stdout.trim()).toBe(id);
    expect(done.stderr).toMatch(/Re-authorized conn_\S+: active, version 3, recovered/);
    const after = await run(['connections', 'show', id, '--json'], { cwd: dir, env: admin });
    expect(JSON.parse(after.stdout)).toMatchObject({ status: 'active', version: 3 });
    const token = await run(['token', id], { cwd: dir, env: worker });
    expect(token.stdout.trim() === grant.access_token).toBe(true);
    // The new refresh token is the one stored: the next refresh redeems it.
    const fresh = await run(['token', id, '--min-ttl', '4000'], { cwd: dir, env: worker });
    expect(fresh.code).toBe(0);
    expect(fresh.stdout.trim() === grant.access_token).toBe(false);
    expect(await accepted(providerUrl, fresh.stdout.trim())).toBe(true);
  });

  it('prints an authorize URL whose session ends in a connection', SLOW, async () => {
    const link = await run(
      ['connections', 'connect-link', '--provider', 'dev', '--owner', 'browser-user'],
      { cwd: dir, env: admin },
    );
    expect(link.code).toBe(0);
    const authorizeUrl = link.stdout.trim();
    expect(authorizeUrl.startsWith(`${providerUrl}/authorize?`)).toBe(true);
    expect(link.stderr).toContain(`comes back to ${server.url}/healthz with connection_id=`);

    // The browser: the provider approves at once and sends it to the callback, which creates the
    // connection and sends it on to the redirect URI.
    const approved = await fetch(authorizeUrl, { redirect: 'manual' });
    expect(approved.status).toBe(302);
    const callback = approved.headers.get('location')!;
    expect(callback.startsWith(`${server.url}/v1/connect/callback?`)).toBe(true);
    const back = await fetch(callback, { redirect: 'manual' });
    expect(back.status).toBe(303);
    const landing = new URL(back.headers.get('location')!);
    expect(`${landing.origin}${landing.pathname}`).toBe(`${server.url}/healthz`);
    const id = landing.searchParams.get('connection_id')!;
    const shown = await run(['connections', 'show', id, '--json'], { cwd: dir, env: admin });
    expect(JSON.parse(shown.stdout)).toMatchObject({
      owner: 'browser-user',
      provider: 'dev',
      status: 'active',
    });
    // The session was single-use.
    expect((await fetch(callback, { redirect: 'manual' })).status).toBe(400);

    const json = await run(
      [
        'connections',
        'connect-link',
        '--provider',
        'dev',
        '--owner',
        'browser-user',
        '--connection',
        id,
        '--scope',
        'read write',
        '--redirect-uri',
        'http://127.0.0.1:9/done',
        '--json',
      ],
      { cwd: dir, env: admin },
    );
    expect(json.code).toBe(0);
    const session = JSON.parse(json.stdout) as { authorize_url: string };
    const query = new URL(session.authorize_url).searchParams;
    expect(query.get('scope')).toBe('read write');

    expectOneErrorLine(
      await run(['connections', 'connect-link', '--provider', 'dev'], { cwd: dir, env: admin }),
      2,
      /missing --owner/,
    );
    expectOneErrorLine(
      await run(['connections', 'connect-link', '--provider', 'nope', '--owner', 'o'], {
        cwd: dir,
        env: admin,
      }),
      1,
      /^error: unknown_provider: /,
    );
  });

  it('refuses a host that is not loopback, a bad knob and a port in use', SLOW, async () => {
    expectOneErrorLine(
      await run(['dev-provider', '--host', '0.0.0.0'], { cwd: dir }),
      2,
      /--host must be a loopback address/,
    );
    expectOneErrorLine(
      await run(['dev-provider', '--rotation', 'maybe'], { cwd: dir }),
      2,
      /--rotation must be yes or no, got 'maybe'/,
    );
    const port = new URL(providerUrl).port;
    expectOneErrorLine(
      await run(['dev-provider', '--port', port, '--out', 'nowhere'], { cwd: dir }),
      1,
      new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`),
    );
    const help = await run(['dev-provider', '--help'], { cwd: dir });
    expect(help.stdout).toMatch(/^Usage: tokenwarden dev-provider/);
  });

  it('names the package to install when the testkit is missing', SLOW, async () => {
    // The server as installed without its optional peer: its bin and dist in a project of their
    // own, where nothing resolves @tokenwarden/testkit.
    const project = mkdtempSync(join(tmpdir(), 'tw-no-testkit-'));
    try {
      const installed = join(project, 'node_modules', '@tokenwarden', 'server');
      mkdirSync(installed, { recursive: true });
      const server = fileURLToPath(new URL('..', import.meta.url));
      for (const part of ['bin', 'dist', 'package.json']) {
        cpSync(join(server, part), join(installed, part), { recursive: true });
      }
      // Its dependency, core, is there as in any install.
      symlinkSync(
        join(server, '..', 'core'),
        join(project, 'node_modules', '@tokenwarden', 'core'),
      );
      const result = await run([join(installed, 'bin', 'tokenwarden.js'), 'dev-provider'], {
        cwd: project,
        command: process.execPath,
      });
      expectOneErrorLine(
        result,
        1,
        /dev-provider needs the package @tokenwarden\/testkit .*npm install @tokenwarden\/testkit/,
      );
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('stops on Ctrl-C', SLOW, async () => {
    expect(await stop(dev, 'SIGINT')).toBe(0);
    expect(dev.stderr()).toContain('Stopped.');
    await expect(fetch(`${providerUrl}/token`, { method: 'POST' })).rejects.toThrow();
  });
});
