// The transport of provider requests (undici's `request` behind the `fetch` signature) on real
// loopback HTTP: what it sends, what it returns, and that its failures keep the shapes
// `transportFailure` reads (never sent, in doubt, timeout). The broker's tests run on it too.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerFetch } from '../src/oauth/provider-transport.ts';
import { transportFailure } from '../src/oauth/token-endpoint.ts';

let server: Server;
let base: string;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] =
  [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/elsewhere' }).end();
      } else if (req.url === '/hang') {
        res.writeHead(200); // headers, then nothing
      } else if (req.url === '/reset') {
        req.socket.destroy();
      } else if (req.url === '/empty') {
        res.writeHead(204).end();
      } else {
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'at' }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('providerFetch', () => {
  it('sends a form with its content type and returns status, headers and body', async () => {
    const response = await providerFetch(`${base}/token?x=1`, {
      method: 'POST',
      headers: { authorization: 'Basic Yzpz' },
      body: new URLSearchParams({ grant_type: 'refresh_token' }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ access_token: 'at' });
    expect(seen.at(-1)).toMatchObject({
      method: 'POST',
      url: '/token?x=1',
      body: 'grant_type=refresh_token',
      headers: {
        authorization: 'Basic Yzpz',
        'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
      },
    });
  });

  it('returns a redirect as it is, and a 204 without a body', async () => {
    const redirect = await providerFetch(`${base}/redirect`);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/elsewhere');
    expect(seen.some((r) => r.url === '/elsewhere')).toBe(false);
    const empty = await providerFetch(`${base}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
  });

  it('refuses a URL with user info before anything is sent: not in doubt', async () => {
    const before = seen.length;
    const error = await providerFetch(base.replace('http://', 'http://u:secret@')).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(String(error)).not.toContain('secret');
    expect(seen.length).toBe(before);
    expect(transportFailure(error)).toMatchObject({
      error: 'provider_misconfigured',
      inDoubt: false,
    });
  });

  it('a refused connection was never sent; a reset after the request may have been', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await providerFetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    expect(transportFailure(refused)).toMatchObject({ error: 'network_error', inDoubt: false });
    const reset = await providerFetch(`${base}/reset`, { method: 'POST', body: 'x' }).catch(
      (e: unknown) => e,
    );
    expect(transportFailure(reset)).toMatchObject({ error: 'network_error', inDoubt: true });
  });

  it("a deadline ends the wait with the signal's reason: a timeout, in doubt", async () => {
    const error = await providerFetch(`${base}/hang`, {
      signal: AbortSignal.timeout(100),
    }).catch((e: unknown) => e);
    expect(transportFailure(error)).toMatchObject({ error: 'timeout', inDoubt: true });
  });
});
