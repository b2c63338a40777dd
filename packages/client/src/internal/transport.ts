// One JSON request to the Tokenwarden API, with a timeout per attempt and bounded retries of what
// can go away by itself: refresh_unavailable (honouring Retry-After), 502/503/504, network errors.
import { NetworkError, TokenwardenError } from '../errors.ts';
import type { FetchLike, RetryEvent } from '../types.ts';
import { backoffMs, parseRetryAfter } from './backoff.ts';
import { errorFromResponse } from './errors-from-response.ts';
import { traceHeaders } from './trace-context.ts';

export interface TransportOptions {
  baseUrl: string;
  apiKey: string;
  fetch: FetchLike;
  /** Passed as fetch's `dispatcher` on every API request (see TokenwardenClientOptions). */
  dispatcher: unknown;
  timeoutMs: number;
  maxAttempts: number;
  maxElapsedMs: number;
  onRetry: ((event: RetryEvent) => void) | undefined;
}

/** A failed attempt and how long to wait before the next one; undefined delay: do not retry. */
interface Failure {
  error: Error;
  delayMs: number | undefined;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

export class Transport {
  readonly #options: TransportOptions;
  readonly #origin: string;
  readonly #headers: Record<string, string>;

  constructor(options: TransportOptions) {
    this.#options = options;
    this.#origin = new URL(options.baseUrl).origin;
    this.#headers = {
      authorization: `Bearer ${options.apiKey}`,
      'content-type': 'application/json',
      accept: 'application/json',
    };
  }

  /** The parsed JSON of a 2xx answer; a typed error once retrying is no longer allowed. */
  async request(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    connectionId: string | undefined,
  ): Promise<unknown> {
    const { maxAttempts, maxElapsedMs, onRetry } = this.#options;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt(method, path, body, connectionId, attempt);
      if (!('error' in outcome)) return outcome.value;
      const { error, delayMs } = outcome;
      if (
        delayMs === undefined ||
        attempt >= maxAttempts ||
        Date.now() + delayMs - started > maxElapsedMs
      ) {
        throw error;
      }
      try {
        onRetry?.({ attempt, delayMs, error });
      } catch {
        // a metrics hook must not change what the caller gets
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  async #attempt(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    connectionId: string | undefined,
    attempt: number,
  ): Promise<{ value: unknown } | Failure> {
    const { timeoutMs } = this.#options;
    const trace = await traceHeaders();
    let response: Response;
    let text: string;
    try {
      response = await this.#options.fetch(this.#options.baseUrl + path, {
        method,
        headers: trace ? { ...this.#headers, ...trace } : this.#headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
        ...(this.#options.dispatcher !== undefined && { dispatcher: this.#options.dispatcher }),
      } as RequestInit);
      text = await response.text();
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === 'TimeoutError';
      // The cause (e.g. ECONNREFUSED) says why; the URL holds no secret, the headers are not in it.
      const why = timedOut ? `no answer within ${timeoutMs} ms` : describe(cause);
      const error = new NetworkError(`Could not reach Tokenwarden at ${this.#origin}: ${why}`, {
        timedOut,
        connectionId,
        cause,
      });
      return { error, delayMs: backoffMs(attempt) };
    }

    if (response.ok) {
      try {
        return { value: JSON.parse(text) };
      } catch {
        return { error: unexpected(response.status, connectionId), delayMs: undefined };
      }
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    const error = errorFromResponse(response.status, text, retryAfterMs, connectionId);
    const delayMs = RETRYABLE_STATUS.has(response.status)
      ? (retryAfterMs ?? backoffMs(attempt))
      : undefined;
    return { error, delayMs };
  }
}

export function unexpected(status: number, connectionId: string | undefined): TokenwardenError {
  return new TokenwardenError(
    'unexpected_response',
    `Tokenwarden answered HTTP ${status} with a body this SDK cannot read`,
    { status, connectionId },
  );
}

/** Node's codes for a server certificate that does not chain to a trusted CA. */
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

function describe(cause: unknown): string {
  // undici says "fetch failed" and puts the reason (ECONNREFUSED, ...) in its own cause.
  const inner = (cause as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof inner?.code === 'string') {
    // A TLS failure's code alone (UNABLE_TO_VERIFY_LEAF_SIGNATURE) does not say what to do.
    if (TLS_TRUST_CODES.has(inner.code)) {
      return `${inner.code}: the server's TLS certificate is not trusted here (${String(inner.message)}); give the SDK its CA through the dispatcher option`;
    }
    return inner.code;
  }
  if (cause instanceof Error) return cause.message;
  return 'request failed';
}
