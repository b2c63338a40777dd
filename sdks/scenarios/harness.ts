// The SDK scenario harness: a real Tokenwarden server on loopback and a control API that sets up
// each case of scenarios.json on it, so that the TypeScript, Python and Go SDKs run the same cases
// against the same server (README.md beside this file is the contract).
//
//   node --conditions=tokenwarden-source --import tsx sdks/scenarios/harness.ts
//
// prints one line, {"control":"http://127.0.0.1:<port>"}, and runs until its stdin closes or it is
// signalled. Each case gets a provider of its own (a fresh test provider), so the provider's
// counts are that case's alone. Besides the plain server, two replicas on the same database serve
// HTTPS (one with client certificates required), and a recording front forwards to the plain one.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import {
  createServer,
  request as forward,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestProvider } from '@tokenwarden/testkit';
import { startCluster } from '../../packages/client/test/helpers/cluster.ts';
import { readTls } from '../../packages/server/src/cli/tls.ts';
import { makeCertificates } from './certificates.ts';

interface Setup {
  /** Seconds left on the imported access token; 0 or less: expired already. */
  access_ttl?: number;
  state?: 'active' | 'needs_reauth';
  provider_failure?: { status: number; retry_after?: number; times?: number };
  connection?: 'unknown';
  /** HTTPS: `server` (a private CA's certificate) or `client_certificate` (and one required). */
  tls?: 'server' | 'client_certificate';
  /** The service client is bound to the client certificate, by fingerprint or subject CN. */
  certificate_binding?: 'sha256' | 'subject_cn';
}

/** The W3C trace context headers of one API request, as the recording front received them. */
interface TraceHeaders {
  method: string;
  path: string;
  traceparent: string | null;
  tracestate: string | null;
}

interface Case {
  name: string;
  setup: Setup;
}

interface Prepared {
  provider: TestProvider;
  connectionId: string;
}

const { cases } = JSON.parse(
  readFileSync(new URL('./scenarios.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

const dir = mkdtempSync(join(tmpdir(), 'tw-scenarios-'));
const certificates = makeCertificates(dir);
const serverTls = { cert: certificates.serverCertFile, key: certificates.serverKeyFile };
// The options `serve --tls-cert --tls-key [--tls-client-ca]` builds from the same files.
const cluster = await startCluster({
  dir,
  https: [
    readTls(serverTls).options,
    readTls({ ...serverTls, clientCa: certificates.caFile }).options,
  ],
});
const [baseUrl, httpsUrl, mutualTlsUrl] = cluster.urls as [string, string, string];
const tlsFiles = {
  ca_file: certificates.caFile,
  cert_file: certificates.clientCertFile,
  key_file: certificates.clientKeyFile,
  other_cert_file: certificates.otherCertFile,
  other_key_file: certificates.otherKeyFile,
};
// Port 1 (tcpmux): never handed out to a listener on port 0, so unlike a port that was free a
// moment ago, no server the suite starts meanwhile can take it and answer.
const closedUrl = 'http://127.0.0.1:1';
const prepared = new Map<string, Prepared>();
let providers = 0;

/** A case's own provider, connection and service client, set up through the HTTP API. */
async function prepare(scenario: Case) {
  const { setup } = scenario;
  const provider = await TestProvider.start();
  const name = `scenario-${++providers}`;
  await cluster.admin('PUT', `/v1/providers/${name}`, {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
    rotates_refresh_tokens: true,
    reuse_detection: true,
  });
  const binding = setup.certificate_binding;
  const client = (await cluster.admin('POST', '/v1/clients', {
    name: `${scenario.name}-${providers}`,
    grants: [{ owner: '*', provider: name, actions: ['token.read'] }],
    ...(binding === 'sha256' && { certificate: { sha256: certificates.clientSha256 } }),
    ...(binding === 'subject_cn' && { certificate: { subject_cn: certificates.clientSubjectCn } }),
  })) as { api_key: string };
  const answer = {
    base_url: { server: httpsUrl, client_certificate: mutualTlsUrl, none: baseUrl }[
      setup.tls ?? 'none'
    ],
    api_key: client.api_key,
    closed_url: closedUrl,
    recording_url: recordingUrl,
    ...(setup.tls && { tls: tlsFiles }),
  };
  const resourceUrl = `${provider.url}/resource`;
  if (setup.connection === 'unknown') {
    const connectionId = `conn_${randomBytes(15).toString('base64url')}`;
    prepared.set(connectionId, { provider, connectionId });
    return { ...answer, connection_id: connectionId, resource_url: resourceUrl };
  }

  const grant = provider.issueGrant();
  const created = (await cluster.admin('POST', '/v1/connections', {
    provider: name,
    owner: `${scenario.name}-owner-${providers}`,
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    expires_in: Math.max(0, setup.access_ttl ?? 3600),
  })) as { id: string };
  if (setup.state === 'needs_reauth')
    provider.injectFailures({ kind: 'invalid_grant', times: 1000 });
  const failure = setup.provider_failure;
  if (failure?.status === 429) {
    provider.injectFailures({
      kind: 'rate_limited',
      retryAfterSeconds: failure.retry_after ?? 1,
      times: failure.times,
    });
  } else if (failure) {
    provider.injectFailures({ kind: 'server_error', status: failure.status, times: failure.times });
  }
  prepared.set(created.id, { provider, connectionId: created.id });
  return { ...answer, connection_id: created.id, resource_url: resourceUrl };
}

/** Hand-outs of a connection: its token.read and token.rejected answers that gave a token. */
async function handOuts(connectionId: string): Promise<number> {
  let count = 0;
  let cursor: string | undefined;
  do {
    const page = (await cluster.admin(
      'GET',
      `/v1/audit?connection=${connectionId}&limit=200${cursor ? `&cursor=${cursor}` : ''}`,
      undefined,
    )) as { events: { action: string; outcome: string }[]; next_cursor?: string | null };
    count += page.events.filter(
      (event) =>
        (event.action === 'token.read' || event.action === 'token.rejected') &&
        event.outcome === 'ok',
    ).length;
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return count;
}

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const [, first, name, action] = url.pathname.split('/');
  const scenario = cases.find((candidate) => candidate.name === name);
  if (first !== 'scenarios' || !scenario) return reply(res, 404, { error: 'unknown scenario' });

  if (req.method === 'POST' && action === undefined)
    return reply(res, 200, await prepare(scenario));
  const known = prepared.get(url.searchParams.get('connection_id') ?? '');
  if (!known) return reply(res, 404, { error: 'unknown connection_id' });
  if (req.method === 'GET' && action === 'stats') {
    return reply(res, 200, {
      redemptions: known.provider.stats().redemptions,
      hand_outs: await handOuts(known.connectionId),
    });
  }
  if (req.method === 'GET' && action === 'trace_headers') {
    return reply(res, 200, { requests: traceHeaders.get(known.connectionId) ?? [] });
  }
  if (req.method === 'POST' && action === 'reject') {
    known.provider.expireAccessTokens();
    res.writeHead(204).end();
    return;
  }
  reply(res, 404, { error: 'unknown control endpoint' });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** The recording front's log, by connection id. */
const traceHeaders = new Map<string, TraceHeaders[]>();

/** Forwards every request to the plain server, noting an API request's trace context headers. */
function record(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', baseUrl);
  const id = /^\/v1\/connections\/([^/]+)/.exec(url.pathname)?.[1];
  if (id !== undefined) {
    const connectionId = decodeURIComponent(id);
    if (!traceHeaders.has(connectionId)) traceHeaders.set(connectionId, []);
    traceHeaders.get(connectionId)!.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      traceparent: req.headers.traceparent?.toString() ?? null,
      tracestate: req.headers.tracestate?.toString() ?? null,
    });
  }
  const upstream = forward(url, { method: req.method, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}

const front = createServer(record);
await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
const recordingUrl = `http://127.0.0.1:${(front.address() as { port: number }).port}`;

const control = createServer((req, res) => {
  // The control API is read by test code only; a failure is reported whole, to stderr too.
  route(req, res).catch((error: unknown) => {
    console.error(error);
    reply(res, 500, { error: error instanceof Error ? error.message : String(error) });
  });
});
await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
const address = control.address() as { port: number };

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  control.close();
  control.closeAllConnections();
  front.close();
  front.closeAllConnections();
  await Promise.allSettled([...prepared.values()].map(({ provider }) => provider.close()));
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

process.stdout.write(`${JSON.stringify({ control: `http://127.0.0.1:${address.port}` })}\n`);
