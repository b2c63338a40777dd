import { InvalidRequestError, TokenwardenClient } from '@tokenwarden/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startScriptedServer, tokenBody, type ScriptedServer } from './helpers/scripted-server.ts';

const API_KEY = 'twk_test_0123456789abcdef';
let server: ScriptedServer;
let version: number;

beforeEach(async () => {
  version = 0;
  server = await startScriptedServer((req) => {
    const minTtl = (req.json as { min_ttl?: number } | undefined)?.min_ttl ?? 0;
    return { body: tokenBody(++version, Math.max(3600, minTtl * 2)), delayMs: 20 };
  });
});
afterEach(async () => {
  vi.useRealTimers();
  await server.close();
});

function client(options: Partial<ConstructorParameters<typeof TokenwardenClient>[0]> = {}) {
  return new TokenwardenClient({ baseUrl: server.url, apiKey: API_KEY, ...options });
}

describe('getAccessToken', () => {
  it('asks the API once with the API key, then serves the cache', async () => {
    const tw = client();
    const first = await tw.getAccessToken('conn_1');
    const second = await tw.getAccessToken('conn_1');
    expect(second).toBe(first);
    // A hit allocates nothing: every call hands out the one promise made when the token came.
    const hit = tw.getAccessToken('conn_1');
    expect(tw.getAccessToken('conn_1')).toBe(hit);
    expect(tw.getAccessToken('conn_1', { minTtl: 60 })).toBe(hit);
    expect(first).toMatchObject({ connectionId: 'conn_1', tokenType: 'Bearer', version: 1 });
    expect(first.accessToken).toMatch(/^at_/);
    expect(first.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
    expect(Object.isFrozen(first)).toBe(true);
    expect(server.requests).toEqual([
      {
        method: 'POST',
        path: '/v1/connections/conn_1/token',
        authorization: `Bearer ${API_KEY}`,
        body: '{}',
        json: {},
      },
    ]);
  });

  it('keeps one cache entry per connection and escapes the id in the path', async () => {
    const tw = client();
    const a = await tw.getAccessToken('conn_a');
    const b = await tw.getAccessToken('conn/b?x');
    expect(a.accessToken).not.toBe(b.accessToken);
    expect(await tw.getAccessToken('conn_a')).toBe(a);
    expect(server.requests.map((r) => r.path)).toEqual([
      '/v1/connections/conn_a/token',
      '/v1/connections/conn%2Fb%3Fx/token',
    ]);
  });

  it('keeps a baseUrl path prefix', async () => {
    const tw = new TokenwardenClient({ baseUrl: `${server.url}/tw/`, apiKey: API_KEY });
    await tw.getAccessToken('conn_1');
    expect(server.requests[0]!.path).toBe('/tw/v1/connections/conn_1/token');
  });

  it('100 concurrent callers share one request (single-flight)', async () => {
    const tw = client();
    const tokens = await Promise.all(
      Array.from({ length: 100 }, () => tw.getAccessToken('conn_1')),
    );
    expect(server.requests).toHaveLength(1);
    expect(new Set(tokens).size).toBe(1);
  });

  it('asks again once the token is within the skew of its expiry', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const tw = client({ expirySkewMs: 30_000 });
    const first = await tw.getAccessToken('conn_1');
    vi.setSystemTime(first.expiresAt - 31_000);
    expect(await tw.getAccessToken('conn_1')).toBe(first);
    vi.setSystemTime(first.expiresAt - 29_000);
    const second = await tw.getAccessToken('conn_1');
    expect(second.version).toBe(2);
    expect(server.requests).toHaveLength(2);
  });

  it('caches a token shorter-lived than twice the skew for half its remaining life', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    server.handle(() => ({ body: tokenBody(++version, 20) }));
    const tw = client({ expirySkewMs: 30_000 });
    const first = await tw.getAccessToken('conn_1');
    expect(await tw.getAccessToken('conn_1')).toBe(first);
    vi.setSystemTime(first.expiresAt - 9_000);
    expect((await tw.getAccessToken('conn_1')).version).toBe(2);
    expect(server.requests).toHaveLength(2);
  });

  it('never caches a token that arrives already expired', async () => {
    server.handle(() => ({ body: tokenBody(++version, -1) }));
    const tw = client();
    await tw.getAccessToken('conn_1');
    await tw.getAccessToken('conn_1');
    expect(server.requests).toHaveLength(2);
  });

  it('minTtl: a cached token with less left is replaced, with min_ttl sent', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    server.handle((req) => {
      const minTtl = (req.json as { min_ttl?: number }).min_ttl;
      return { body: tokenBody(++version, minTtl === undefined ? 600 : 3600) };
    });
    const tw = client();
    const short = await tw.getAccessToken('conn_1');
    expect(await tw.getAccessToken('conn_1', { minTtl: 500 })).toBe(short);
    const long = await tw.getAccessToken('conn_1', { minTtl: 900 });
    expect(long.version).toBe(2);
    expect(server.requests.map((r) => r.json)).toEqual([{}, { min_ttl: 900 }]);
    // The longer-lived token now serves both kinds of caller.
    expect(await tw.getAccessToken('conn_1', { minTtl: 900 })).toBe(long);
    expect(await tw.getAccessToken('conn_1')).toBe(long);
    expect(server.requests).toHaveLength(2);
  });

  it('minTtl: callers join a flight that asked for at least as much', async () => {
    const tw = client();
    const [a, b, c] = await Promise.all([
      tw.getAccessToken('conn_1', { minTtl: 600 }),
      tw.getAccessToken('conn_1'),
      tw.getAccessToken('conn_1', { minTtl: 300 }),
    ]);
    expect(server.requests).toHaveLength(1);
    expect(b).toBe(a);
    expect(c).toBe(a);

    const other = client();
    await Promise.all([
      other.getAccessToken('conn_1'),
      other.getAccessToken('conn_1', { minTtl: 600 }),
    ]);
    // The second could not be served by the first flight's answer, which may be too short-lived.
    expect(server.requests.slice(1).map((r) => r.json)).toEqual([{}, { min_ttl: 600 }]);
  });

  it('rejects bad arguments without a request (as a rejected promise, never a throw)', async () => {
    const tw = client();
    const bad = [
      () => tw.getAccessToken(''),
      () => tw.getAccessToken(42 as unknown as string),
      () => tw.getAccessToken('conn_1', { minTtl: -1 }),
      () => tw.getAccessToken('conn_1', { minTtl: Number.NaN }),
      () => tw.getAccessToken('conn_1', { minTtl: 86_401 }),
      () => tw.reportRejected('conn_1', -1),
      () => tw.reportRejected('conn_1', 1.5),
    ];
    for (const call of bad) {
      const promise = call();
      await expect(promise).rejects.toBeInstanceOf(InvalidRequestError);
      await expect(promise).rejects.toMatchObject({ code: 'invalid_request' });
    }
    // A cached token does not let a bad minTtl through either.
    await tw.getAccessToken('conn_1');
    await expect(tw.getAccessToken('conn_1', { minTtl: -5 })).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
    expect(server.requests).toHaveLength(1);
  });

  it('validates its options and keeps the API key out of sight', () => {
    expect(() => new TokenwardenClient({ baseUrl: server.url, apiKey: '' })).toThrow(
      InvalidRequestError,
    );
    expect(() => new TokenwardenClient({ baseUrl: 'not a url', apiKey: API_KEY })).toThrow(
      /baseUrl/,
    );
    expect(() => new TokenwardenClient({ baseUrl: 'ftp://x', apiKey: API_KEY })).toThrow(/baseUrl/);
    expect(() => client({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => client({ retry: { maxAttempts: 0 } })).toThrow(/maxAttempts/);
    const tw = client();
    expect(JSON.stringify(tw)).not.toContain(API_KEY);
    expect(Object.values(tw)).toEqual([]);
  });

  it('getConnection returns the metadata', async () => {
    server.handle(() => ({ body: { id: 'conn_1', provider: 'p', status: 'active', version: 3 } }));
    const tw = client();
    expect(await tw.getConnection('conn_1')).toEqual({
      id: 'conn_1',
      provider: 'p',
      status: 'active',
      version: 3,
    });
    expect(server.requests[0]).toMatchObject({ method: 'GET', path: '/v1/connections/conn_1' });
  });
});
