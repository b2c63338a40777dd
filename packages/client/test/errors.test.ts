import { createServer } from 'node:net';
import type { ErrorCode as CoreErrorCode } from '@tokenwarden/core';
import { ERROR_CODES } from '@tokenwarden/core';
import {
  ForbiddenError,
  InvalidRequestError,
  NeedsReauthError,
  NetworkError,
  NotFoundError,
  RefreshUnavailableError,
  TokenwardenClient,
  TokenwardenError,
  UnauthorizedError,
  type ErrorCode,
  type RetryEvent,
  type TokenwardenClientOptions,
} from '@tokenwarden/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  apiError,
  startScriptedServer,
  tokenBody,
  type Reply,
  type ScriptedServer,
} from './helpers/scripted-server.ts';

// Compile-time: every code of the registry in core is a code the SDK knows.
const mirrored: Exclude<CoreErrorCode, ErrorCode> extends never ? true : false = true;

const API_KEY = 'twk_secret_never_in_messages';
let server: ScriptedServer;
let retries: RetryEvent[];

beforeEach(async () => {
  retries = [];
  server = await startScriptedServer(() => ({ body: tokenBody(1) }));
});
afterEach(async () => {
  await server.close();
});

function client(options: Partial<TokenwardenClientOptions> = {}): TokenwardenClient {
  return new TokenwardenClient({
    baseUrl: server.url,
    apiKey: API_KEY,
    onRetry: (event) => retries.push(event),
    ...options,
  });
}

/** Answers with the scripted replies in order, then with a token. */
function script(...replies: Reply[]): void {
  let n = 0;
  server.handle(() => replies[n++] ?? { body: tokenBody(1) });
}

async function failure(promise: Promise<unknown>): Promise<TokenwardenError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenwardenError);
  return error as TokenwardenError;
}

function expectNoSecret(error: Error): void {
  for (const text of [error.message, String(error), JSON.stringify(error), error.stack ?? '']) {
    expect(text).not.toContain(API_KEY);
  }
}

describe('typed errors', () => {
  it('mirror the registry of core', () => {
    expect(mirrored).toBe(true);
    expect(Object.keys(ERROR_CODES).length).toBeGreaterThan(0);
  });

  it.each([
    ['needs_reauth', 409, NeedsReauthError],
    ['not_found', 404, NotFoundError],
    ['forbidden', 403, ForbiddenError],
    ['unauthorized', 401, UnauthorizedError],
    ['invalid_request', 400, InvalidRequestError],
    ['payload_too_large', 413, InvalidRequestError],
    ['unknown_provider', 400, TokenwardenError],
    ['internal_error', 500, TokenwardenError],
    ['a_code_from_the_future', 418, TokenwardenError],
  ] as const)('%s (HTTP %i) is a %o, not retried', async (code, status, type) => {
    script(apiError(status, code, code === 'needs_reauth' ? { reason: 'refresh_in_doubt' } : {}));
    const error = await failure(client().getAccessToken('conn_1'));
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({
      code,
      status,
      connectionId: 'conn_1',
      message: `scripted ${code}`,
      retryable: false,
    });
    expect(server.requests).toHaveLength(1);
    expect(retries).toEqual([]);
    expectNoSecret(error);
  });

  it('needs_reauth carries the reason', async () => {
    script(apiError(409, 'needs_reauth', { reason: 'refresh_token_expired' }));
    const error = await failure(client().getAccessToken('conn_1'));
    expect(error).toBeInstanceOf(NeedsReauthError);
    expect((error as NeedsReauthError).reason).toBe('refresh_token_expired');
  });

  it('one failing request is shared by concurrent callers, and not cached', async () => {
    script({ ...apiError(409, 'needs_reauth', { reason: 'invalid_grant' }), delayMs: 30 });
    const tw = client();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => tw.getAccessToken('conn_1')),
    );
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    expect(server.requests).toHaveLength(1);
    expect((await tw.getAccessToken('conn_1')).version).toBe(1);
    expect(server.requests).toHaveLength(2);
  });

  it('a 2xx the SDK cannot read is unexpected_response, not retried', async () => {
    for (const reply of [
      { raw: 'not json' },
      { body: { access_token: 'at_x', version: 1 } },
      { body: { ...tokenBody(1), expires_at: 'soon' } },
      { body: { ...tokenBody(1), version: '1' } },
    ]) {
      server.requests.length = 0;
      script(reply);
      const error = await failure(client().getAccessToken('conn_1'));
      expect(error).toMatchObject({ code: 'unexpected_response', status: 200 });
      expect(server.requests).toHaveLength(1);
    }
  });
});

describe('retries', () => {
  const unavailable = (retryAfter: string): Reply =>
    apiError(
      503,
      'refresh_unavailable',
      { retry_after: Number(retryAfter) },
      {
        'retry-after': retryAfter,
      },
    );

  it('retries refresh_unavailable after Retry-After, then succeeds', async () => {
    script(unavailable('0'), unavailable('1'));
    const token = await client().getAccessToken('conn_1');
    expect(token.version).toBe(1);
    expect(server.requests).toHaveLength(3);
    expect(retries.map((r) => [r.attempt, r.delayMs, (r.error as TokenwardenError).code])).toEqual([
      [1, 0, 'refresh_unavailable'],
      [2, 1000, 'refresh_unavailable'],
    ]);
  });

  it('gives up after maxAttempts with the last RefreshUnavailableError', async () => {
    server.handle(() => unavailable('0'));
    const tw = client({ retry: { maxAttempts: 3 } });
    const error = await failure(tw.getAccessToken('conn_1'));
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect(error).toMatchObject({ retryAfterMs: 0, status: 503, retryable: true });
    expect(server.requests).toHaveLength(3);
    expect(retries).toHaveLength(2);
  });

  it('does not wait past maxElapsedMs: a long Retry-After goes straight to the caller', async () => {
    server.handle(() => unavailable('120'));
    const tw = client({ retry: { maxAttempts: 10, maxElapsedMs: 30_000 } });
    const error = await failure(tw.getAccessToken('conn_1'));
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect((error as RefreshUnavailableError).retryAfterMs).toBe(120_000);
    expect(server.requests).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it('reads Retry-After as an HTTP date too', async () => {
    const date = new Date(Date.now() + 600_000).toUTCString();
    script(apiError(503, 'refresh_unavailable', {}, { 'retry-after': date }));
    const error = await failure(client().getAccessToken('conn_1'));
    expect((error as RefreshUnavailableError).retryAfterMs).toBeGreaterThan(590_000);
    expect(server.requests).toHaveLength(1);
  });

  it('retries 502/504 from a proxy and a dropped connection; then succeeds', async () => {
    script({ status: 502, raw: '<html>bad gateway</html>' }, { destroy: true }, { status: 504 });
    const token = await client({ retry: { maxAttempts: 4 } }).getAccessToken('conn_1');
    expect(token.version).toBe(1);
    expect(server.requests).toHaveLength(4);
    expect(retries.map((r) => (r.error as TokenwardenError).code)).toEqual([
      'unexpected_response',
      'network_error',
      'unexpected_response',
    ]);
  });

  it('a server that is down is a NetworkError after maxAttempts attempts', async () => {
    const port = await closedPort();
    let attempts = 0;
    const tw = new TokenwardenClient({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: API_KEY,
      retry: { maxAttempts: 3 },
      fetch: (input, init) => {
        attempts++;
        return fetch(input, init);
      },
    });
    const error = await failure(tw.getAccessToken('conn_1'));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code: 'network_error', timedOut: false, retryable: true });
    expect(error.message).toContain('ECONNREFUSED');
    expect(attempts).toBe(3);
    expectNoSecret(error);
  });

  it('a server that does not answer is a NetworkError with timedOut', async () => {
    server.handle(() => ({ hang: true }));
    const tw = client({ timeoutMs: 100, retry: { maxAttempts: 2 } });
    const error = await failure(tw.getAccessToken('conn_1'));
    expect(error).toMatchObject({ code: 'network_error', timedOut: true });
    expect(server.requests).toHaveLength(2);
  });

  it('reportRejected is retried like /token', async () => {
    script(apiError(503, 'refresh_unavailable', {}, { 'retry-after': '0' }));
    const fresh = await client().reportRejected('conn_1', 1);
    expect(fresh.version).toBe(1);
    expect(server.requests.map((r) => r.path)).toEqual([
      '/v1/connections/conn_1/token/rejected',
      '/v1/connections/conn_1/token/rejected',
    ]);
    expect(server.requests[0]!.json).toEqual({ version: 1 });
  });
});

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
