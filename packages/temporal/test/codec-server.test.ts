import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  CodecKeyRing,
  createCodecServerHandler,
  EncryptionCodec,
  KEY_ID_METADATA_KEY,
} from '@tokenwarden/temporal';
import { afterEach, describe, expect, it } from 'vitest';

const SECRET = 'refresh-token-in-history';
const UI = 'http://localhost:8233';
const codec = new EncryptionCodec({ keys: new CodecKeyRing([{ id: 'k1', key: randomBytes(32) }]) });
let server: Server | undefined;
let url = '';
let authorized: string[] = [];

afterEach(async () => {
  const running = server;
  server = undefined;
  if (running) {
    const closed = new Promise((resolve) => running.close(resolve));
    running.closeAllConnections();
    await closed;
  }
  authorized = [];
});

async function start(options: { namespaces?: string[]; maxBodyBytes?: number } = {}) {
  server = createServer(
    createCodecServerHandler({
      codec,
      allowedOrigins: [UI],
      authorize: (req) => {
        authorized.push(String(req.headers['x-namespace']));
        return req.headers.authorization === 'Bearer ui-user';
      },
      ...options,
    }),
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server!.address() as AddressInfo).port}/codec`;
}

const json = (payload: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v!).toString('base64')]),
  ),
  data: Buffer.from(payload.data ?? []).toString('base64'),
});

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url + path, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-namespace': 'default',
      authorization: 'Bearer ui-user',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('codec server', () => {
  it('decodes what the workers encoded, and encodes for the UI', async () => {
    await start();
    const [encrypted] = await codec.encode([defaultPayloadConverter.toPayload({ token: SECRET })!]);
    const res = await post('/decode', { payloads: [json(encrypted!)] });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { payloads } = (await res.json()) as {
      payloads: { metadata: Record<string, string>; data: string }[];
    };
    expect(payloads).toHaveLength(1);
    expect(Buffer.from(payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(payloads[0]!.data, 'base64').toString())).toEqual({
      token: SECRET,
    });

    const encoded = await post('/encode', { payloads: payloads });
    const back = (await encoded.json()) as { payloads: { metadata: Record<string, string> }[] };
    expect(Buffer.from(back.payloads[0]!.metadata[KEY_ID_METADATA_KEY]!, 'base64').toString()).toBe(
      'k1',
    );
    expect(authorized).toEqual(['default', 'default']);
  });

  it('refuses callers it cannot authorize, other origins, namespaces and methods', async () => {
    await start({ namespaces: ['payments'] });
    expect(
      (await post('/decode', { payloads: [] }, { authorization: 'Bearer someone' })).status,
    ).toBe(401);
    expect((await post('/decode', { payloads: [] }, { 'x-namespace': 'default' })).status).toBe(
      403,
    );
    expect((await post('/decode', { payloads: [] }, { 'x-namespace': 'payments' })).status).toBe(
      200,
    );
    expect(
      (await post('/decode', { payloads: [] }, { origin: 'https://evil.example' })).status,
    ).toBe(403);
    expect((await fetch(`${url}/decode`)).status).toBe(405);
    expect((await post('/other', { payloads: [] })).status).toBe(404);
  });

  it('answers the browser preflight for allowed origins without asking for credentials', async () => {
    await start();
    const res = await fetch(`${url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI, 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    expect(res.headers.get('access-control-allow-headers')).toContain('X-Namespace');
    expect(authorized).toEqual([]);
  });

  it('bad input gets a 4xx that names the problem, never a payload or key', async () => {
    await start({ maxBodyBytes: 1024 });
    const [encrypted] = await codec.encode([defaultPayloadConverter.toPayload(SECRET)!]);
    const tampered = json(encrypted!);
    tampered.data = Buffer.from(
      Buffer.from(tampered.data, 'base64').map((b, i) => (i === 20 ? b ^ 1 : b)),
    ).toString('base64');
    const res = await post('/decode', { payloads: [tampered] });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; failure: string; message: string };
    expect(body).toMatchObject({ error: 'decryption_failed', failure: 'authentication_failed' });
    expect(JSON.stringify(body)).not.toContain(SECRET);

    for (const bad of ['not json', '{}', '{"payloads":[1]}', '{"payloads":[{"data":"***"}]}']) {
      const answer = await post('/decode', bad);
      expect(answer.status, bad).toBe(400);
      expect(((await answer.json()) as { error: string }).error).toBe('invalid_request');
    }
    expect((await post('/decode', { payloads: [{ data: 'A'.repeat(2048) }] })).status).toBe(413);
  });

  it('needs an authorize function', () => {
    expect(() =>
      createCodecServerHandler({ codec } as unknown as Parameters<
        typeof createCodecServerHandler
      >[0]),
    ).toThrow(/authorize/);
  });
});
