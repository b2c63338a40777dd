/** The subset of the WHATWG `fetch` the SDK needs; the global `fetch` and undici's both fit. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface RetryOptions {
  /** Attempts per call, the first included. Default 4. */
  maxAttempts?: number;
  /**
   * A retry is not started if it could not begin within this long of the call's start: a
   * `Retry-After` beyond this budget is handed to the caller at once. Default 30 s.
   */
  maxElapsedMs?: number;
}

export interface RetryEvent {
  /** The attempt that failed, 1-based. */
  attempt: number;
  /** How long the SDK waits before the next attempt (`Retry-After`, or backoff with jitter). */
  delayMs: number;
  error: Error;
}

export interface TokenwardenClientOptions {
  /** Where the Tokenwarden API is, e.g. `https://tokenwarden.internal`. */
  baseUrl: string | URL;
  /** This service client's API key, sent as `Authorization: Bearer`. */
  apiKey: string;
  /** Used for every request, the API's and `client.fetch`'s. Default: the global `fetch`. */
  fetch?: FetchLike;
  /**
   * How the API's requests (not `client.fetch`'s) connect, passed to fetch as its `dispatcher`:
   * for a server with a private CA, or one that asks for a client certificate, an undici
   * `Agent`: `new Agent({ connect: { ca, cert, key } })`. Default: fetch's own.
   */
  dispatcher?: unknown;
  /**
   * A cached token is not handed out once it has less than this left (capped at half of what it
   * had when it arrived, so that short-lived tokens are still cached). Default 30 s.
   */
  expirySkewMs?: number;
  /** Bounds on retrying `refresh_unavailable`, 502/503/504 and network errors. */
  retry?: RetryOptions;
  /** Per HTTP request to the API. Default 30 s (the server may wait up to 20 s for a refresh). */
  timeoutMs?: number;
  /** Called before each retry, e.g. for metrics. Must not throw. Errors carry no secret. */
  onRetry?: (event: RetryEvent) => void;
}

export interface GetAccessTokenOptions {
  /**
   * Seconds the token must stay valid at least; the server refreshes it first if needed (sent as
   * the API's `min_ttl`).
   */
  minTtl?: number;
}

/** An access token as the API hands it out. Frozen: one object is shared by every cache hit. */
export interface AccessToken {
  readonly connectionId: string;
  readonly accessToken: string;
  readonly tokenType: string;
  /** Epoch milliseconds, by the server's clock. */
  readonly expiresAt: number;
  /** Report this on a 401 (`reportRejected`) so that it is refreshed once, not once per caller. */
  readonly version: number;
}

/** Connection metadata from `GET /v1/connections/{id}`: no secret, safe to log. */
export interface ConnectionMetadata {
  id: string;
  provider: string;
  status: string;
  version: number;
  [field: string]: unknown;
}
