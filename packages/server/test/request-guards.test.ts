// What reaches the server before any route (bad URLs, oversized headers, garbage, odd bodies) is
// answered in the API's `{error, message}` shape, never echoing the path; part of it only shows
// on a real socket, where Node's HTTP parser answers before Fastify sees a request.
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpTables, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
let port: number;
let connectionId: string;

beforeAll(async () => {
  s = await startTestServer();
  await s.putProvider();
  connectionId = (await s.importGrant({ expiresIn: 3600 })).id;
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  port = (s.app.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await s?.close();
});

/** Sends `raw` on a fresh loopback connection; resolves with everything the server sent back. */
function rawRequest(raw: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(raw));
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body });
    });
  });
}

const MARKER = 'pasted-by-mistake-tw_secret';

describe('errors before any route', () => {
  it('answers headers over the limit with 431 headers_too_large, in the API shape', async () => {
    const answer = await rawRequest(
      `GET /v1/connections/${MARKER} HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(answer.status).toBe(431);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'headers_too_large' });
    expect(answer.body).not.toContain(MARKER);
  });

  it('answers a request Node cannot parse with 400 invalid_request, in the API shape', async () => {
    const answer = await rawRequest(`GET /${MARKER} NOT-HTTP\r\n\r\n`);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({
      error: 'invalid_request',
      message: 'The HTTP request was malformed.',
    });
  });

  it('answers a path that does not decode with 400 invalid_request, without echoing it', async () => {
    const response = await s.admin('GET', `/v1/connections/${MARKER}%E0%A4%A`);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: 'invalid_request',
      message: 'The URL path is not validly percent-encoded UTF-8.',
    });
    expect(response.body).not.toContain(MARKER);
  });

  it('answers a path parameter over the limit with 414 uri_too_long, without echoing it', async () => {
    const response = await s.admin('GET', `/v1/connections/${MARKER}${'x'.repeat(300)}`);
    expect(response.statusCode).toBe(414);
    expect(response.json()).toMatchObject({ error: 'uri_too_long' });
    expect(response.body).not.toContain(MARKER);
  });
});

describe('JSON bodies', () => {
  it('refuses a lone surrogate anywhere in the body, naming the field, storing nothing', async () => {
    const before = await dumpTables(s, ['credentials']);
    const base = '"provider": "test", "access_token": "at-1"';
    for (const [body, field] of [
      [`{${base}, "owner": "user-\\ud800"}`, 'body.owner'],
      [`{${base}, "owner": "u", "metadata": {"team": ["ok", "\\udc00"]}}`, 'body.metadata.team[1]'],
      [`{${base}, "owner": "u", "metadata": {"\\ud800": 1}}`, 'body.metadata (a field name)'],
    ] as const) {
      const response = await s.call({
        method: 'POST',
        url: '/v1/connections',
        body,
        contentType: 'application/json',
        key: s.adminKey,
      });
      expect(response.statusCode, body).toBe(400);
      expect(response.json()).toEqual({
        error: 'invalid_request',
        message: `${field}: must be valid UTF-16 (it holds a lone surrogate)`,
      });
    }
    expect(await dumpTables(s, ['credentials'])).toEqual(before);
    // A surrogate pair is a character like any other.
    const paired = await s.admin('POST', '/v1/connections', {
      provider: 'test',
      owner: 'user-😀',
      access_token: 'at-2',
    });
    expect(paired.statusCode).toBe(201);
    const listed = await s.admin('GET', `/v1/connections?owner=${encodeURIComponent('user-😀')}`);
    expect(listed.json().connections).toHaveLength(1);
  });

  it('takes an empty application/json body as no body where the body may be omitted', async () => {
    const token = await s.call({
      method: 'POST',
      url: `/v1/connections/${connectionId}/token`,
      body: '',
      contentType: 'application/json',
      key: s.adminKey,
    });
    expect(token.statusCode).toBe(200);
    expect(token.json()).toMatchObject({ version: 1, token_type: 'Bearer' });
    // Where a body is required, an empty one is still refused.
    const imported = await s.call({
      method: 'POST',
      url: '/v1/connections',
      body: '',
      contentType: 'application/json',
      key: s.adminKey,
    });
    expect(imported.statusCode).toBe(400);
    expect(imported.json()).toMatchObject({ error: 'invalid_request' });
  });
});
