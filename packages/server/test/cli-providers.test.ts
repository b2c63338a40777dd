// Day two with the real binary against a real `tokenwarden serve` child: one provider setting
// changed without losing the secret, a put that would drop it refused, the settings checked
// against the token endpoint, both keys exported at once, and messages that say what exists.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRESET_NAMES } from '@tokenwarden/core';
import { TestProvider } from '@tokenwarden/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generatedAdminKey,
  expectOneErrorLine,
  run,
  serve,
  SLOW,
  stop,
  type Server,
} from './cli-process.ts';
import { closedPort } from './helpers.ts';

describe('providers on day two, from the CLI', () => {
  let dir: string;
  let provider: TestProvider;
  let server: Server;
  let admin: Record<string, string>;
  /** A plain HTTP server that is not Tokenwarden: 404 and an HTML page for everything. */
  let stranger: HttpServer;
  let strangerUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-cli-providers-'));
    provider = await TestProvider.start();
    server = await serve(dir);
    admin = {
      TOKENWARDEN_URL: server.url,
      TOKENWARDEN_ADMIN_KEY: generatedAdminKey(server.stderr()),
    };
    stranger = createServer((_, res) => {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not Found</h1>');
    });
    await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve));
    strangerUrl = `http://127.0.0.1:${(stranger.address() as { port: number }).port}`;
  }, SLOW.timeout);
  afterAll(async () => {
    if (server.child.exitCode === null) await stop(server);
    await provider.close();
    await new Promise((resolve) => stranger.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (args: string[], env = admin, input?: string) => run(args, { cwd: dir, env, input });
  /** `providers put acme` at the test provider, as `clientId`, without a secret. */
  const putArgs = (clientId: string) =>
    `providers put acme --token-url ${provider.tokenUrl} --client-id ${clientId}`.split(' ');
  const putAcme = () =>
    cli([...putArgs(provider.clientId), '--client-secret-file', '-'], admin, provider.clientSecret);

  it(
    'updates one setting and keeps the secret; put refuses to drop it unless told',
    SLOW,
    async () => {
      expect((await putAcme()).code).toBe(0);
      const updated = await cli(['providers', 'update', 'acme', '--rotation', 'no']);
      expect(updated.stderr).toBe('');
      expect(updated.code).toBe(0);
      expect(updated.stdout).toMatch(/client secret:\s+stored \(encrypted\)/);
      expect(updated.stdout).toMatch(/rotates refresh tokens:\s+false/);

      const bare = putArgs('c');
      expectOneErrorLine(
        await cli(bare),
        1,
        /^error: provider acme has a stored client secret that this put would drop: give it again \(--client-secret-file\), pass --drop-client-secret, or change single settings with 'tokenwarden providers update acme'$/,
      );
      const shown = await cli(['providers', 'show', 'acme', '--json']);
      expect(JSON.parse(shown.stdout)).toMatchObject({
        client_id: provider.clientId,
        has_client_secret: true,
        rotates_refresh_tokens: false,
      });
      // Told to drop it, the put still needs one: every client authentication method sends it.
      expectOneErrorLine(
        await cli([...bare, '--drop-client-secret']),
        1,
        /^error: invalid_request: client_secret: is required for client_auth /,
      );

      expectOneErrorLine(
        await cli(['providers', 'update', 'acme', '--unset', 'client-idd']),
        2,
        /--unset client-idd: not a setting that can be removed; one of preset, param, issuer, token-url, client-secret/,
      );
    },
  );

  it(
    'tests the settings against the token endpoint: accepted, client rejected, unreachable',
    SLOW,
    async () => {
      expect((await putAcme()).code).toBe(0);
      provider.reset();
      const accepted = await cli(['providers', 'test', 'acme']);
      expect(accepted.code).toBe(0);
      expect(accepted.stdout).toMatch(
        /^accepted: http:\/\/127\.0\.0\.1:\d+ is reachable and accepts client /,
      );
      expect(provider.stats()).toMatchObject({ tokenRequests: 1, redemptions: 0 });

      const wrong = await cli(
        ['providers', 'update', 'acme', '--client-secret-file', '-'],
        admin,
        'wrong-secret',
      );
      expect(wrong.code).toBe(0);
      const rejected = await cli(['providers', 'test', 'acme']);
      expect(rejected.code).toBe(1);
      expect(rejected.stdout).toMatch(
        /^client_rejected: .* rejected client tw-test-client \(invalid_client\)/,
      );
      expect(rejected.stdout + rejected.stderr).not.toContain('wrong-secret');

      const away = await cli([
        'providers',
        'update',
        'acme',
        '--token-url',
        `http://127.0.0.1:${await closedPort()}/token`,
      ]);
      expect(away.code).toBe(0);
      const unreachable = await cli(['providers', 'test', 'acme', '--json']);
      expect(unreachable.code).toBe(1);
      expect(JSON.parse(unreachable.stdout)).toMatchObject({
        verdict: 'unreachable',
        code: 'network_error',
      });
    },
  );

  it(
    'sends the admin key for admin commands and the API key for token when both are set',
    SLOW,
    async () => {
      expect((await putAcme()).code).toBe(0);
      const created = await cli([
        'clients',
        'create',
        '--name',
        'worker',
        '--grant',
        'acme:*:token.read',
        '--json',
      ]);
      const client = JSON.parse(created.stdout) as { id: string; api_key: string };
      const grant = provider.issueGrant();
      const imported = await cli(
        ['connections', 'import', '--provider', 'acme', '--owner', 'u', '--access-token-file', '-'],
        admin,
        grant.access_token,
      );
      const id = imported.stdout.trim();

      const both = { ...admin, TOKENWARDEN_API_KEY: client.api_key };
      for (const command of [['providers', 'list'], ['clients', 'list'], ['audit']]) {
        const result = await cli(command, both);
        expect(result.stderr, command.join(' ')).toBe('');
        expect(result.code, command.join(' ')).toBe(0);
      }
      const token = await cli(['token', id], both);
      expect(token.code).toBe(0);
      expect(token.stdout.trim()).toBe(grant.access_token);
      // The hand-out was the service client's, not the admin's.
      const audit = await cli(['audit', '--connection', id], both);
      expect(audit.stdout).toMatch(new RegExp(`${client.id}\\s+token.read\\s+${id}\\s+ok`));
    },
  );

  it(
    'says which presets and grant actions exist, and that a --url is not Tokenwarden',
    SLOW,
    async () => {
      const presets = await run(['presets'], { cwd: dir });
      expect(presets.code).toBe(0);
      const lines = presets.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME\s+TOKEN URL\s+PARAMS$/);
      expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual([...PRESET_NAMES, 'oidc']);
      expect(presets.stdout).toMatch(
        /\nokta\s+https:\/\/\{domain\}\/oauth2\/\{authorizationServer\}\/v1\/token\s+domain=<domain> authorizationServer=default\n/,
      );
      expect(presets.stdout).toMatch(/\noidc\s+discovered from --issuer/);

      expectOneErrorLine(
        await cli(['providers', 'put', 'x', '--preset', 'gogle', '--client-id', 'c']),
        1,
        new RegExp(
          `^error: invalid_request: body/preset must be one of ${PRESET_NAMES.join(', ')}, oidc$`,
        ),
      );
      expectOneErrorLine(
        await cli(['clients', 'create', '--name', 'w', '--grant', 'acme:*:token.raed']),
        2,
        /^error: --grant 'acme:\*:token.raed': unknown action 'token.raed'; actions are token.read, proxy, connections.read, connections.write/,
      );
      expectOneErrorLine(
        await cli(['providers', 'list'], { ...admin, TOKENWARDEN_URL: strangerUrl }),
        1,
        new RegExp(
          `^error: ${strangerUrl} does not look like a Tokenwarden server: GET /v1/providers answered HTTP 404 Not Found \\(text/html\\), not the API's JSON; check --url or TOKENWARDEN_URL$`,
        ),
      );
    },
  );
});
