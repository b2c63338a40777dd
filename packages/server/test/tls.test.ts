// `serve` over TLS, as an operator runs it: certificates made by openssl, the compiled binary,
// the SDK with the CA, SIGHUP with a renewed certificate, and service clients bound to a client
// certificate.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { NetworkError, TokenwardenClient } from '@tokenwarden/client';
import { TestProvider } from '@tokenwarden/testkit';
// undici's own fetch, for its `dispatcher` option (Node's global fetch takes one too, untyped).
import { Agent, fetch as fetchWith } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneErrorLine, run, serve, SLOW, stop, type Server } from './cli-process.ts';

const ADMIN = 'an-operator-chosen-admin-key';
const KEYS = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

let dir: string;
let provider: TestProvider;
/** PEM files by name: ca, server, server2 (a renewal), worker1 and worker2 (client certificates). */
const pem = (name: string) => join(dir, `${name}.pem`);
const keyOf = (name: string) => join(dir, `${name}.key`);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A key and a certificate signed by the test CA, for a server (SAN 127.0.0.1) or a client. */
function issue(name: string, cn: string, usage: 'server' | 'client'): void {
  openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyOf(name),
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  );
  const ext =
    usage === 'server'
      ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
      : 'extendedKeyUsage=clientAuth\n';
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    pem('ca'),
    '-CAkey',
    keyOf('ca'),
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    pem(name),
    '-extfile',
    `${name}.ext`,
  );
}

function fingerprint(name: string): string {
  return new X509Certificate(readFileSync(pem(name))).fingerprint256;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-tls-'));
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyOf('ca'),
    '-out',
    pem('ca'),
    '-days',
    '2',
    '-subj',
    '/CN=Tokenwarden test CA',
  );
  issue('server', 'tokenwarden-1', 'server');
  issue('server2', 'tokenwarden-2', 'server');
  issue('worker1', 'worker-1', 'client');
  issue('worker2', 'worker-2', 'client');
  provider = await TestProvider.start();
});

afterAll(async () => {
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

const agent = (client?: string) =>
  new Agent({
    connect: {
      ca: readFileSync(pem('ca')),
      ...(client && { cert: readFileSync(pem(client)), key: readFileSync(keyOf(client)) }),
    },
  });

/** An admin call over TLS, with a client certificate when the server asks for one. */
async function admin(
  server: Server,
  method: string,
  path: string,
  body?: unknown,
  client?: string,
) {
  const response = await fetchWith(server.url + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    dispatcher: agent(client),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A provider and a connection, through the API; returns the connection id. */
async function connection(server: Server, client?: string): Promise<string> {
  await admin(
    server,
    'PUT',
    '/v1/providers/test',
    {
      token_url: provider.tokenUrl,
      client_id: provider.clientId,
      client_secret: provider.clientSecret,
    },
    client,
  );
  const grant = provider.issueGrant();
  const created = await admin(
    server,
    'POST',
    '/v1/connections',
    {
      provider: 'test',
      owner: `owner-${Math.random().toString(36).slice(2)}`,
      access_token: grant.access_token,
      refresh_token: grant.refresh_token,
      expires_in: 3600,
    },
    client,
  );
  expect(created.status).toBe(201);
  return created.body.id as string;
}

async function serviceClient(server: Server, extra: object = {}, client?: string): Promise<string> {
  const created = await admin(
    server,
    'POST',
    '/v1/clients',
    {
      name: 'worker',
      grants: [{ owner: '*', provider: 'test', actions: ['token.read'] }],
      ...extra,
    },
    client,
  );
  expect(created.status).toBe(201);
  return created.body.api_key as string;
}

function serveTls(cwd: string, extra: string[] = []): Promise<Server> {
  return serve(cwd, { TOKENWARDEN_ADMIN_KEY: ADMIN, TOKENWARDEN_KEYS: KEYS }, [
    '--tls-cert',
    pem('server'),
    '--tls-key',
    keyOf('server'),
    ...extra,
  ]);
}

/** The certificate a new TLS connection is served, and the open socket. */
function handshake(url: string): Promise<TLSSocket> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(pem('ca')) });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('serve --tls-cert --tls-key', () => {
  it(
    'serves HTTPS only: the SDK with the CA gets a token, without it the TLS error is clear',
    SLOW,
    async () => {
      const cwd = mkdtempSync(join(dir, 'one-'));
      const server = await serveTls(cwd);
      try {
        expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        expect(server.stderr()).toMatch(/TLS on: CN=tokenwarden-1, valid until \d{4}-/);
        const id = await connection(server);
        const apiKey = await serviceClient(server);

        const sdk = new TokenwardenClient({ baseUrl: server.url, apiKey, dispatcher: agent() });
        expect((await sdk.getAccessToken(id)).accessToken).toMatch(/^at_/);

        const untrusting = new TokenwardenClient({
          baseUrl: server.url,
          apiKey,
          retry: { maxAttempts: 1 },
        });
        const error = await untrusting.getAccessToken(id).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(NetworkError);
        expect((error as Error).message).toMatch(/certificate/i);
        expect((error as Error).message).not.toContain(apiKey);

        // Plain HTTP on the same port is not served.
        const plain = await fetch(server.url.replace('https:', 'http:') + '/healthz').catch(
          (caught: unknown) => caught,
        );
        expect(plain).toBeInstanceOf(Error);
      } finally {
        await stop(server);
      }
    },
  );

  it(
    'SIGHUP: new connections get the renewed certificate while an open one finishes on the old',
    SLOW,
    async () => {
      const cwd = mkdtempSync(join(dir, 'hup-'));
      const files = { cert: join(cwd, 'cert.pem'), key: join(cwd, 'cert.key') };
      copyFileSync(pem('server'), files.cert);
      copyFileSync(keyOf('server'), files.key);
      const server = await serve(cwd, { TOKENWARDEN_ADMIN_KEY: ADMIN, TOKENWARDEN_KEYS: KEYS }, [
        '--tls-cert',
        files.cert,
        '--tls-key',
        files.key,
      ]);
      try {
        const old = await handshake(server.url);
        expect(old.getPeerX509Certificate()?.fingerprint256).toBe(fingerprint('server'));

        copyFileSync(pem('server2'), files.cert);
        copyFileSync(keyOf('server2'), files.key);
        server.child.kill('SIGHUP');
        await expect
          .poll(() => server.stderr(), { timeout: 30_000 })
          .toMatch(/SIGHUP: new connections get/);

        const renewed = await handshake(server.url);
        expect(renewed.getPeerX509Certificate()?.fingerprint256).toBe(fingerprint('server2'));
        renewed.end();

        // The connection opened before the reload still works, on the certificate it began with.
        const answer = await new Promise<string>((resolve, reject) => {
          let text = '';
          old.on('data', (chunk: Buffer) => (text += chunk.toString()));
          old.on('end', () => resolve(text));
          old.on('error', reject);
          old.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
        });
        expect(answer).toMatch(/^HTTP\/1\.1 200/);

        // A file that does not check keeps the certificate in use, and says why.
        writeFileSync(files.key, 'not a key');
        server.child.kill('SIGHUP');
        await expect
          .poll(() => server.stderr(), { timeout: 30_000 })
          .toMatch(/SIGHUP: kept the certificate in use: --tls-key/);
        const still = await handshake(server.url);
        expect(still.getPeerX509Certificate()?.fingerprint256).toBe(fingerprint('server2'));
        still.end();
      } finally {
        await stop(server);
      }
    },
  );

  it(
    '--tls-client-ca: no certificate, no connection; a bound client needs its own certificate',
    SLOW,
    async () => {
      const cwd = mkdtempSync(join(dir, 'mtls-'));
      const server = await serveTls(cwd, ['--tls-client-ca', pem('ca')]);
      try {
        expect(server.stderr()).toMatch(/client certificates required/);
        const withoutCertificate = await fetchWith(server.url + '/healthz', {
          dispatcher: agent(),
        }).catch((caught: unknown) => caught);
        expect(withoutCertificate).toBeInstanceOf(Error);

        const id = await connection(server, 'worker1');
        const bound = await serviceClient(
          server,
          { certificate: { sha256: fingerprint('worker1') } },
          'worker1',
        );
        const byName = await serviceClient(
          server,
          { certificate: { subject_cn: 'worker-1' } },
          'worker1',
        );
        const listed = await admin(server, 'GET', '/v1/clients', undefined, 'worker1');
        expect(listed.body.clients).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ certificate: { subject_cn: 'worker-1' } }),
          ]),
        );

        for (const apiKey of [bound, byName]) {
          const right = new TokenwardenClient({
            baseUrl: server.url,
            apiKey,
            dispatcher: agent('worker1'),
          });
          expect((await right.getAccessToken(id)).accessToken).toMatch(/^at_/);

          // The key with another certificate of the same CA: the key alone is not enough.
          const response = await fetchWith(`${server.url}/v1/connections/${id}/token`, {
            method: 'POST',
            headers: { authorization: `Bearer ${apiKey}` },
            dispatcher: agent('worker2'),
          });
          expect(response.status).toBe(401);
          expect(await response.json()).toEqual({
            error: 'unauthorized',
            message:
              'This client is bound to a TLS client certificate, which the request did not present.',
          });
        }
      } finally {
        await stop(server);
      }
    },
  );

  it(
    'a client bound to a certificate is refused by a server that asks for none',
    SLOW,
    async () => {
      const cwd = mkdtempSync(join(dir, 'unasked-'));
      const server = await serveTls(cwd);
      try {
        const id = await connection(server);
        const apiKey = await serviceClient(server, { certificate: { subject_cn: 'worker-1' } });
        const sdk = new TokenwardenClient({
          baseUrl: server.url,
          apiKey,
          dispatcher: agent('worker1'),
        });
        await expect(sdk.getAccessToken(id)).rejects.toMatchObject({
          code: 'unauthorized',
          status: 401,
        });
      } finally {
        await stop(server);
      }
    },
  );

  it(
    'refuses bad TLS settings with one clear line, and warns of plain HTTP off loopback',
    SLOW,
    async () => {
      const cwd = mkdtempSync(join(dir, 'bad-'));
      const env = { TOKENWARDEN_ADMIN_KEY: ADMIN, TOKENWARDEN_KEYS: KEYS };
      const cases: [string[], RegExp][] = [
        [['--tls-cert', pem('server')], /--tls-cert needs --tls-key too/],
        [['--tls-key', keyOf('server')], /--tls-key needs --tls-cert too/],
        [['--tls-client-ca', pem('ca')], /--tls-client-ca needs --tls-cert and --tls-key/],
        [
          ['--tls-cert', pem('server'), '--tls-key', keyOf('worker1')],
          /is not the private key of --tls-cert/,
        ],
        [['--tls-cert', keyOf('server'), '--tls-key', keyOf('server')], /is not a PEM certificate/],
        [
          ['--tls-cert', join(cwd, 'missing.pem'), '--tls-key', keyOf('server')],
          /could not be read \(ENOENT\)/,
        ],
      ];
      for (const [args, message] of cases) {
        const result = await run(['serve', '--port', '0', ...args], { cwd, env });
        expectOneErrorLine(result, 1, message);
        expect(result.stderr).not.toContain('PRIVATE KEY');
      }

      const open = await serve(cwd, env, ['--host', '0.0.0.0']);
      try {
        expect(open.stderr()).toMatch(
          /warning: serving plain HTTP on 0\.0\.0\.0, not a loopback address/,
        );
      } finally {
        await stop(open);
      }
    },
  );
});
