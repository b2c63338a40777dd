import { NeedsReauthError, TokenwardenClient } from '@tokenwarden/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  apiError,
  startScriptedServer,
  tokenBody,
  type Recorded,
  type Reply,
  type ScriptedServer,
} from './helpers/scripted-server.ts';

// One scripted server plays both parts: the Tokenwarden API (/v1/...) and a resource server
// (/resource) that accepts only the newest token the "API" handed out, unless it went stale.
let server: ScriptedServer;
let version: number;
let current: string;
let stale: boolean;
let resourceBodies: string[];
/** When set, the resource server refuses every token. */
let refuseAll: boolean;

function api(req: Recorded): Reply {
  if (req.path.endsWith('/token/rejected')) {
    const reported = (req.json as { version: number }).version;
    // Invariant 9: only a report of the current version replaces the token.
    if (reported === version) {
      const body = tokenBody(++version);
      current = body.access_token;
      stale = false;
      return { body, delayMs: 30 };
    }
  }
  return { body: tokenBody(version, 3600, current), delayMs: 10 };
}

beforeEach(async () => {
  version = 1;
  current = tokenBody(1).access_token;
  stale = false;
  resourceBodies = [];
  refuseAll = false;
  server = await startScriptedServer((req) => {
    if (!req.path.startsWith('/resource')) return api(req);
    resourceBodies.push(req.body);
    if (!refuseAll && !stale && req.authorization === `Bearer ${current}`) {
      return { body: { ok: true }, delayMs: 5 };
    }
    return { status: 401, body: { error: 'invalid_token' }, delayMs: 5 };
  });
});
afterEach(async () => {
  await server.close();
});

const client = () => new TokenwardenClient({ baseUrl: server.url, apiKey: 'twk_test_fetch' });
/** The resource server stops accepting the current token (revoked, expired early). */
function rotateBehindTheSdksBack(): void {
  stale = true;
}

describe('fetch', () => {
  it('adds the bearer and keeps the caller’s method, headers and body', async () => {
    const sentHeaders: Headers[] = [];
    const tw = new TokenwardenClient({
      baseUrl: server.url,
      apiKey: 'twk_test_fetch',
      fetch: (input, init) => {
        if (String(input).endsWith('/resource')) sentHeaders.push(new Headers(init?.headers));
        return fetch(input, init);
      },
    });
    const res = await tw.fetch('conn_1', `${server.url}/resource`, {
      method: 'POST',
      headers: { 'x-trace': 'abc', authorization: 'Basic overridden' },
      body: 'hello',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    const sent = server.requests.find((r) => r.path === '/resource')!;
    expect(sent).toMatchObject({ method: 'POST', authorization: `Bearer ${current}` });
    expect(sentHeaders.map((h) => h.get('x-trace'))).toEqual(['abc']);
    expect(resourceBodies).toEqual(['hello']);
  });

  it('on a 401 reports the version, gets the fresh token and retries once', async () => {
    const tw = client();
    await tw.getAccessToken('conn_1');
    rotateBehindTheSdksBack();
    const res = await tw.fetch('conn_1', `${server.url}/resource`, {
      method: 'PUT',
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.status).toBe(200);
    expect(resourceBodies).toEqual(['{"a":1}', '{"a":1}']);
    const rejected = server.requests.filter((r) => r.path.endsWith('/token/rejected'));
    expect(rejected.map((r) => r.json)).toEqual([{ version: 1 }]);
    // The fresh token is cached: the next call goes straight through.
    expect((await tw.getAccessToken('conn_1')).version).toBe(2);
    expect(server.count('/token')).toBe(1);
  });

  it('100 concurrent callers that get a 401 with one version: one /rejected, all succeed', async () => {
    const tw = client();
    await tw.getAccessToken('conn_1');
    rotateBehindTheSdksBack();
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => tw.fetch('conn_1', `${server.url}/resource`)),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(server.count('/token/rejected')).toBe(1);
    expect(server.count('/token')).toBe(1);
    expect(resourceBodies).toHaveLength(200);
  });

  it('a late 401 with an old version uses the newer cached token without asking', async () => {
    const tw = client();
    const old = await tw.getAccessToken('conn_1');
    rotateBehindTheSdksBack();
    const fresh = await tw.reportRejected('conn_1', old.version);
    expect(await tw.reportRejected('conn_1', old.version)).toBe(fresh);
    expect(server.count('/token/rejected')).toBe(1);
  });

  it('callers asking for a token while a rejection is in flight wait for its result', async () => {
    const tw = client();
    const old = await tw.getAccessToken('conn_1');
    rotateBehindTheSdksBack();
    const rejecting = tw.reportRejected('conn_1', old.version);
    const during = await Promise.all([tw.getAccessToken('conn_1'), tw.getAccessToken('conn_1')]);
    const fresh = await rejecting;
    expect(during).toEqual([fresh, fresh]);
    expect(fresh.version).toBe(2);
    expect(server.count('/token')).toBe(1);
  });

  it('replays buffered bodies: Uint8Array, URLSearchParams, Blob', async () => {
    const tw = client();
    const bodies: NonNullable<RequestInit['body']>[] = [
      new TextEncoder().encode('bytes'),
      new URLSearchParams({ a: '1' }),
      new Blob(['blob']),
    ];
    for (const body of bodies) {
      await tw.getAccessToken('conn_1');
      rotateBehindTheSdksBack();
      const res = await tw.fetch('conn_1', `${server.url}/resource`, { method: 'POST', body });
      expect(res.status).toBe(200);
    }
    expect(resourceBodies).toEqual(['bytes', 'bytes', 'a=1', 'a=1', 'blob', 'blob']);
    expect(server.count('/token/rejected')).toBe(3);
  });

  it('a second 401 is returned as it is: one retry, never a loop', async () => {
    const tw = client();
    refuseAll = true;
    const res = await tw.fetch('conn_1', `${server.url}/resource`);
    expect(res.status).toBe(401);
    expect(resourceBodies).toHaveLength(2);
    expect(server.count('/token/rejected')).toBe(1);
  });

  it('a stream body is not replayed: the 401 is returned, the next call has the fresh token', async () => {
    const tw = client();
    await tw.getAccessToken('conn_1');
    rotateBehindTheSdksBack();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'));
        controller.close();
      },
    });
    const res = await tw.fetch('conn_1', `${server.url}/resource`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(401);
    expect(resourceBodies).toEqual(['streamed']);
    expect(server.count('/token/rejected')).toBe(1);
    const next = await tw.fetch('conn_1', `${server.url}/resource`, { method: 'POST', body: 'x' });
    expect(next.status).toBe(200);
  });

  it('a Request input keeps its headers; its body is not replayed', async () => {
    const tw = client();
    const get = await tw.fetch(
      'conn_1',
      new Request(`${server.url}/resource`, { headers: { 'x-kept': '1' } }),
    );
    expect(get.status).toBe(200);
    rotateBehindTheSdksBack();
    const post = await tw.fetch(
      'conn_1',
      new Request(`${server.url}/resource`, { method: 'POST', body: 'once' }),
    );
    expect(post.status).toBe(401);
    expect(resourceBodies).toEqual(['', 'once']);
  });

  it('throws the typed error when the rejected token cannot be replaced', async () => {
    const tw = client();
    await tw.getAccessToken('conn_1');
    rotateBehindTheSdksBack();
    server.handle((req) => {
      if (req.path.endsWith('/token/rejected')) {
        return apiError(409, 'needs_reauth', { reason: 'invalid_grant' });
      }
      return { status: 401, body: {} };
    });
    const error = await tw.fetch('conn_1', `${server.url}/resource`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect(error).toMatchObject({ reason: 'invalid_grant', connectionId: 'conn_1' });
  });
});
