import { InvalidRequestError, NetworkError } from './errors.ts';
import { parseRetryAfter } from './internal/backoff.ts';
import { errorFromResponse } from './internal/errors-from-response.ts';
import { ERROR_HEADER, proxyPath, UPSTREAM_HEADER } from './internal/proxy-path.ts';
import { canReplay, withBearer } from './internal/replay.ts';
import { Slot, TokenCache } from './internal/token-cache.ts';
import { Transport, unexpected } from './internal/transport.ts';
import type {
  AccessToken,
  ConnectionMetadata,
  FetchLike,
  GetAccessTokenOptions,
  TokenwardenClientOptions,
} from './types.ts';

const MAX_MIN_TTL_SECONDS = 86_400;
const MAX_CACHED_CONNECTIONS = 10_000;

/**
 * A Tokenwarden API client for workers. Keep one per process: its cache and single-flight are
 * what spare the server a request per call.
 */
export class TokenwardenClient {
  readonly #cache = new TokenCache(MAX_CACHED_CONNECTIONS);
  readonly #transport: Transport;
  readonly #fetch: FetchLike;
  readonly #skewMs: number;
  readonly #baseUrl: string;
  readonly #authorization: string;

  constructor(options: TokenwardenClientOptions) {
    const { baseUrl, apiKey } = options ?? {};
    if (typeof apiKey !== 'string' || apiKey === '') {
      throw new InvalidRequestError('apiKey must be a non-empty string');
    }
    let base: URL;
    try {
      base = new URL(String(baseUrl));
    } catch {
      throw new InvalidRequestError('baseUrl must be an absolute http(s) URL');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new InvalidRequestError('baseUrl must be an absolute http(s) URL');
    }
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#skewMs = nonNegative('expirySkewMs', options.expirySkewMs, 30_000);
    this.#baseUrl = base.href.replace(/\/+$/, '');
    this.#authorization = `Bearer ${apiKey}`;
    this.#transport = new Transport({
      baseUrl: this.#baseUrl,
      apiKey,
      fetch: this.#fetch,
      dispatcher: options.dispatcher,
      timeoutMs: positive('timeoutMs', options.timeoutMs, 30_000),
      maxAttempts: positive('retry.maxAttempts', options.retry?.maxAttempts, 4),
      maxElapsedMs: nonNegative('retry.maxElapsedMs', options.retry?.maxElapsedMs, 30_000),
      onRetry: options.onRetry,
    });
  }

  /**
   * A valid access token for the connection. Served from this process's cache while it has more
   * than the skew (and `minTtl`) left; otherwise one request to the API, shared by every
   * caller that asks meanwhile.
   *
   * @throws NeedsReauthError, RefreshUnavailableError (after retrying within the bounds),
   *   NotFoundError, ForbiddenError, UnauthorizedError, NetworkError, TokenwardenError
   */
  getAccessToken(connectionId: string, options?: GetAccessTokenOptions): Promise<AccessToken> {
    // The hit path: no async function, no allocation, one Map lookup and one clock read.
    const slot = this.#cache.slots.get(connectionId);
    if (slot !== undefined && slot.resolved !== undefined) {
      const now = Date.now();
      if (now < slot.usableUntil) {
        const minTtl = options?.minTtl;
        if (minTtl === undefined) return slot.resolved;
        if (minTtl >= 0 && now < slot.token!.expiresAt - minTtl * 1000) return slot.resolved;
      }
    }
    return this.#obtain(connectionId, options?.minTtl);
  }

  /**
   * Tells Tokenwarden that a resource server refused the token of this `version` (HTTP 401) and
   * returns a fresh one. It is refreshed only if `version` is still current, so however many
   * callers report the same version, in however many processes, it is refreshed once; here they
   * share one request.
   */
  reportRejected(connectionId: string, version: number): Promise<AccessToken> {
    try {
      checkId(connectionId);
      if (!Number.isSafeInteger(version) || version < 0) {
        throw new InvalidRequestError('version must be a non-negative integer', { connectionId });
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const slot = this.#cache.slot(connectionId);
    slot.reject(version);
    const newer = slot.usable(Date.now(), 0);
    if (newer !== undefined) return Promise.resolve(newer);
    if (slot.rejecting !== undefined && slot.rejecting.version >= version) {
      return slot.rejecting.promise;
    }
    const promise = this.#requestToken(slot, connectionId, '/token/rejected', { version }).finally(
      () => {
        if (slot.rejecting?.promise === promise) slot.rejecting = undefined;
      },
    );
    slot.rejecting = { version, promise };
    return promise;
  }

  /**
   * `fetch` with `Authorization: Bearer <access token>` for the connection. On a 401 the token's
   * version is reported (`reportRejected`) and the request is sent once more with the fresh token;
   * a second 401 is returned as it is.
   *
   * A body that can only be read once — a ReadableStream, an async iterable, or the body of a
   * `Request` passed as `input` — cannot be sent twice: the rejection is still reported, so the
   * next call gets the fresh token, but the 401 response is returned. Pass the body in `init` as
   * a string, Uint8Array, Blob, FormData or URLSearchParams to have it retried.
   */
  async fetch(
    connectionId: string,
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response> {
    const token = await this.getAccessToken(connectionId);
    const replayable = canReplay(input, init);
    const first = await this.#fetch(input, withBearer(input, init, token.accessToken));
    if (first.status !== 401) return first;
    let fresh: AccessToken;
    try {
      fresh = await this.reportRejected(connectionId, token.version);
    } catch (error) {
      await discard(first);
      throw error;
    }
    if (!replayable) return first;
    await discard(first);
    return this.#fetch(input, withBearer(input, init, fresh.accessToken));
  }

  /**
   * A request to the connection's provider API through Tokenwarden (proxy mode): the server adds
   * the token, so it never reaches this process, and on a 401 reports it and sends the request
   * once more itself (when the body is small enough to hold). Needs the `proxy` grant action,
   * not `token.read`.
   *
   * `path` is relative to the provider's first API base URL (`'chat.postMessage?x=1'`), or a
   * full URL under any of them (`'https://slack.com/api/chat.postMessage'`). The upstream's
   * answer is returned as it is, whatever its status. Tokenwarden's own refusals (no grant,
   * needs_reauth, a path leaving the base URL, upstream_unreachable, upstream_timeout) are
   * thrown as typed errors. A ReadableStream body needs `duplex: 'half'` in `init`, as for fetch.
   */
  async proxy(connectionId: string, path: string | URL, init: RequestInit = {}): Promise<Response> {
    checkId(connectionId);
    const { relative, upstream } = proxyPath(path, connectionId);
    const headers = new Headers(init.headers);
    headers.set('authorization', this.#authorization);
    if (upstream !== undefined) headers.set(UPSTREAM_HEADER, upstream);
    const prefix = `${this.#baseUrl}/v1/proxy/${encodeURIComponent(connectionId)}/`;
    // The URL parser resolves `..` and `%2e%2e` before anything is sent: out of the proxy's
    // prefix, the request would reach another route of the API instead of being refused.
    const url = new URL(prefix + relative).href;
    if (!url.startsWith(prefix)) {
      throw new InvalidRequestError('path must not climb out of the API base URL (. or ..)', {
        connectionId,
      });
    }
    let response: Response;
    try {
      response = await this.#fetch(url, { ...init, headers });
    } catch (cause) {
      if (cause instanceof Error && cause.name === 'AbortError') throw cause;
      throw new NetworkError(`Could not reach Tokenwarden at ${new URL(url).origin}`, {
        connectionId,
        cause,
      });
    }
    if (!response.headers.has(ERROR_HEADER)) return response;
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    throw errorFromResponse(response.status, await response.text(), retryAfterMs, connectionId);
  }

  /** The connection's metadata (status, provider, version, ...); never a token. */
  async getConnection(connectionId: string): Promise<ConnectionMetadata> {
    checkId(connectionId);
    const body = await this.#transport.request(
      'GET',
      `/v1/connections/${encodeURIComponent(connectionId)}`,
      undefined,
      connectionId,
    );
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw unexpected(200, connectionId);
    }
    return body as ConnectionMetadata;
  }

  async #obtain(connectionId: string, wanted: number | undefined): Promise<AccessToken> {
    checkId(connectionId);
    const minTtl = wanted ?? 0;
    if (typeof minTtl !== 'number' || !(minTtl >= 0) || minTtl > MAX_MIN_TTL_SECONDS) {
      throw new InvalidRequestError(`minTtl must be a number from 0 to ${MAX_MIN_TTL_SECONDS}`, {
        connectionId,
      });
    }
    const minTtlMs = minTtl * 1000;
    const slot = this.#cache.slot(connectionId);
    if (slot.rejecting !== undefined) {
      // The token being replaced was refused: wait for its successor instead of asking for the
      // current one, which the server may still hand out.
      const fresh = await slot.rejecting.promise;
      if (Date.now() < fresh.expiresAt - minTtlMs) return fresh;
    }
    const cached = slot.usable(Date.now(), minTtlMs);
    if (cached !== undefined) return cached;
    if (slot.flight !== undefined && slot.flightMinTtlMs >= minTtlMs) return slot.flight;

    const body = minTtl > 0 ? { min_ttl: minTtl } : {};
    const flight = this.#requestToken(slot, connectionId, '/token', body).finally(() => {
      if (slot.flight === flight) slot.flight = undefined;
    });
    slot.flight = flight;
    slot.flightMinTtlMs = minTtlMs;
    return flight;
  }

  async #requestToken(
    slot: Slot,
    connectionId: string,
    action: '/token' | '/token/rejected',
    body: object,
  ): Promise<AccessToken> {
    const answer = await this.#transport.request(
      'POST',
      `/v1/connections/${encodeURIComponent(connectionId)}${action}`,
      body,
      connectionId,
    );
    const token = parseToken(answer, connectionId);
    slot.store(token, Date.now(), this.#skewMs);
    return token;
  }
}

/** Unread, a response's body would hold its connection until it is garbage collected. */
async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

function parseToken(body: unknown, connectionId: string): AccessToken {
  const b = body as Record<string, unknown> | null;
  const expiresAt = typeof b?.expires_at === 'string' ? Date.parse(b.expires_at) : NaN;
  if (
    typeof b?.access_token !== 'string' ||
    b.access_token === '' ||
    Number.isNaN(expiresAt) ||
    !Number.isSafeInteger(b.version)
  ) {
    throw unexpected(200, connectionId);
  }
  return Object.freeze({
    connectionId,
    accessToken: b.access_token,
    tokenType: typeof b.token_type === 'string' ? b.token_type : 'Bearer',
    expiresAt,
    version: b.version as number,
  });
}

function checkId(connectionId: unknown): asserts connectionId is string {
  if (typeof connectionId !== 'string' || connectionId === '' || connectionId.length > 256) {
    throw new InvalidRequestError('connectionId must be a non-empty string');
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 1) || !Number.isFinite(value)) {
    throw new InvalidRequestError(`${name} must be a number >= 1`);
  }
  return value;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new InvalidRequestError(`${name} must be a non-negative number`);
  }
  return value;
}
