// The upstream side of the proxy: one undici Agent per server (keep-alive pools per origin), its
// timeouts, and its errors as the API's typed ones.
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { UpstreamTimeoutError, UpstreamUnreachableError } from '../errors.ts';
import { upstreamSpan } from '../tracing/http.ts';

export interface UpstreamTimeouts {
  /** Until the TCP (and TLS) connection is up. Default 10 s. */
  connectTimeoutMs?: number;
  /** Until the response headers have arrived, once the request is sent. Default 30 s. */
  headersTimeoutMs?: number;
  /** The longest pause between two pieces of the response body. Default 30 s. */
  idleTimeoutMs?: number;
}

export interface UpstreamRequest {
  origin: string;
  path: string;
  method: string;
  headers: Record<string, string | string[]>;
  body: Buffer | Readable | undefined;
  signal: AbortSignal;
}

export type UpstreamAnswer = Dispatcher.ResponseData;

export class Upstream {
  readonly #agent: Agent;
  readonly #timeouts: Required<UpstreamTimeouts>;

  constructor(timeouts: UpstreamTimeouts = {}) {
    this.#timeouts = {
      connectTimeoutMs: timeouts.connectTimeoutMs ?? 10_000,
      headersTimeoutMs: timeouts.headersTimeoutMs ?? 30_000,
      idleTimeoutMs: timeouts.idleTimeoutMs ?? 30_000,
    };
    this.#agent = new Agent({
      connect: { timeout: this.#timeouts.connectTimeoutMs },
      headersTimeout: this.#timeouts.headersTimeoutMs,
      bodyTimeout: this.#timeouts.idleTimeoutMs,
    });
  }

  /**
   * Sends the request; resolves with the status, headers and the body as a stream once the
   * headers are in. Redirects are not followed (undici's `request` never does): they are the
   * caller's to follow, through the proxy again. Throws UpstreamTimeoutError or
   * UpstreamUnreachableError; an abort (the caller went away) is rethrown as it is.
   */
  async send(request: UpstreamRequest): Promise<UpstreamAnswer> {
    try {
      return await upstreamSpan(request, () =>
        this.#agent.request({
          origin: request.origin,
          path: request.path,
          method: request.method as Dispatcher.HttpMethod,
          headers: request.headers,
          body: request.body,
          signal: request.signal,
        }),
      );
    } catch (error) {
      throw this.typed(error);
    }
  }

  /** The API's error for what undici (or the socket under it) threw; an abort stays as it is. */
  typed(error: unknown): unknown {
    const code = (error as { code?: unknown } | null)?.code;
    switch (code) {
      case 'UND_ERR_CONNECT_TIMEOUT':
        return new UpstreamTimeoutError('connect', this.#timeouts.connectTimeoutMs, {
          cause: error,
        });
      case 'UND_ERR_HEADERS_TIMEOUT':
        return new UpstreamTimeoutError('headers', this.#timeouts.headersTimeoutMs, {
          cause: error,
        });
      case 'UND_ERR_BODY_TIMEOUT':
        return new UpstreamTimeoutError('body', this.#timeouts.idleTimeoutMs, { cause: error });
      case 'UND_ERR_ABORTED':
      case 'ABORT_ERR':
        return error;
      default:
        // A code only (ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET): undici's messages are safe, but a
        // code is all the caller needs and cannot carry a URL.
        return new UpstreamUnreachableError(typeof code === 'string' ? code : 'request failed', {
          cause: error,
        });
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
