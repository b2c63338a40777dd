// The upstream side of the proxy: one undici Agent per server (a keep-alive pool per origin), its
// timeouts, and its errors as the API's typed ones. Requests go through undici's `dispatch` with
// a handler of our own: a small answer is held as one Buffer (no stream, no async resource, no
// abort listener per call), a large one becomes a Readable with backpressure.
import { Readable } from 'node:stream';
import { Agent, errors, type Dispatcher } from 'undici';
import { UpstreamTimeoutError, UpstreamUnreachableError } from '../errors.ts';
import { traceUpstream } from '../tracing/http.ts';
import { isJson } from './headers.ts';

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
  /**
   * Hold JSON answers of up to HOLD_LIMIT bytes even when no `content-length` announces them
   * (the caller reads their error code). Announced ones up to HOLD_LIMIT are always held.
   */
  peekJson?: boolean;
}

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface UpstreamAnswer {
  statusCode: number;
  headers: UpstreamHeaders;
  /**
   * The whole body when it was held (announced by `content-length` as small, or peeked), else
   * a stream of it. `chunked` says whether the upstream sent it without a length.
   */
  body: Buffer | Readable;
  /** The upstream sent no `content-length`: the answer must not get one made up either. */
  chunked: boolean;
  /** Body bytes received so far. */
  received(): number;
  /** Set once a streamed body broke off (idle timeout, reset): the typed error. */
  failure(): unknown;
}

/** A request under way: its answer, and the way to give up on it (the caller went away). */
export interface UpstreamCall {
  answer: Promise<UpstreamAnswer>;
  abort(): void;
}

/** Announced bodies up to this size are read whole before the answer goes back: one write. */
export const HOLD_LIMIT = 64 * 1024;

const NO_BODY = Buffer.alloc(0);

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
   * Sends the request; the answer resolves with the status, headers and body once the headers
   * are in (a held body: once it is all in). Redirects are not followed (a bare dispatch never
   * does): they are the caller's to follow, through the proxy again. Rejects with
   * UpstreamTimeoutError or UpstreamUnreachableError; after `abort()` with undici's
   * RequestAbortedError.
   */
  send(request: UpstreamRequest): UpstreamCall {
    const handler = new AnswerHandler(request.method === 'HEAD', request.peekJson === true, this);
    const answer = new Promise<UpstreamAnswer>((resolve, reject) => {
      handler.settle = { resolve, reject };
    });
    try {
      this.#agent.dispatch(
        {
          origin: request.origin,
          path: request.path,
          method: request.method as Dispatcher.HttpMethod,
          headers: request.headers,
          body: request.body,
        },
        handler,
      );
    } catch (error) {
      handler.onResponseError(null, error as Error);
    }
    return { answer: traceUpstream(request, answer), abort: () => handler.abort() };
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

/**
 * undici's dispatch handler for one proxied request. It holds the body while it is announced
 * (or peeked) small, and otherwise hands a Readable out at once; `received` counts the bytes.
 */
class AnswerHandler implements Dispatcher.DispatchHandler {
  settle: { resolve: (answer: UpstreamAnswer) => void; reject: (error: unknown) => void } | null =
    null;
  #controller: Dispatcher.DispatchController | null = null;
  #aborted = false;
  #status = 0;
  #headers: UpstreamHeaders = {};
  #chunked = false;
  /** Held pieces while holding; null once streaming (or when done). */
  #held: Buffer[] | null = null;
  #stream: Readable | null = null;
  #received = 0;
  #complete = false;
  #failure: unknown = undefined;

  constructor(
    readonly head: boolean,
    readonly peekJson: boolean,
    readonly upstream: Upstream,
  ) {}

  abort(): void {
    this.#aborted = true;
    const reason = new errors.RequestAbortedError();
    if (this.#stream) this.#stream.destroy(reason);
    else this.#controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted) controller.abort(new errors.RequestAbortedError());
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: UpstreamHeaders,
  ): void {
    // 1xx (100 Continue, 103 Early Hints): interim, for this hop only.
    if (statusCode < 200) return;
    this.#status = statusCode;
    this.#headers = headers;
    const length = headers['content-length'];
    this.#chunked = length === undefined;
    const announced = typeof length === 'string' ? Number(length) : NaN;
    const json = this.peekJson && this.#chunked && isJson(headers);
    // No body whatever the headers say (RFC 9110 §6.4.1): answered now. A content-length sent
    // with a 204 would make undici fail the exchange afterwards; by then it has been answered.
    if (this.head || statusCode === 204 || statusCode === 304) return this.#answer(NO_BODY);
    if (!(announced <= HOLD_LIMIT || json)) return this.#startStream(controller, []);
    this.#held = [];
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#received += chunk.length;
    if (this.#held) {
      this.#held.push(chunk);
      // Longer than announced, or than a peek may hold: the rest streams behind what is held.
      if (this.#received > HOLD_LIMIT) this.#startStream(controller, this.#held);
    } else if (!this.#stream!.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#complete = true;
    if (this.#held) {
      const body =
        this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held, this.#received);
      this.#held = null;
      this.#answer(body);
    } else this.#stream?.push(null);
  }

  onResponseError(_controller: unknown, error: Error): void {
    const typed = this.upstream.typed(error);
    this.#held = null;
    if (this.settle) {
      const { reject } = this.settle;
      this.settle = null;
      reject(typed);
    } else if (this.#stream) {
      this.#failure = typed;
      this.#stream.destroy(typed as Error);
    }
  }

  #startStream(controller: Dispatcher.DispatchController, held: Buffer[]): void {
    this.#held = null;
    const stream = new Readable({
      // As much as one socket read brings: a pause and a resume per piece at most.
      highWaterMark: HOLD_LIMIT,
      read: () => controller.resume(),
      destroy: (error, callback) => {
        // Given up before the end (the caller went away): the upstream request is aborted.
        if (!this.#complete) controller.abort(error ?? new errors.RequestAbortedError());
        callback(error);
      },
    });
    for (const piece of held) stream.push(piece);
    this.#stream = stream;
    this.#answer(stream);
  }

  #answer(body: Buffer | Readable): void {
    if (!this.settle) return;
    const { resolve } = this.settle;
    this.settle = null;
    resolve({
      statusCode: this.#status,
      headers: this.#headers,
      body,
      chunked: this.#chunked,
      received: () => this.#received,
      failure: () => this.#failure,
    });
  }
}
