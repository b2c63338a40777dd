import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { PayloadDecryptionError } from './encryption-codec.ts';

export interface CodecServerOptions {
  /** The codec the workers and clients use (an EncryptionCodec). */
  codec: PayloadCodec;
  /**
   * Whether this request may see decrypted payloads. Required: a codec server without
   * authentication hands every secret in workflow history to anyone who can reach it. The Web UI
   * and the CLI can forward the user's access token (`Authorization`) to check here.
   */
  authorize: (request: IncomingMessage) => boolean | Promise<boolean>;
  /**
   * Origins allowed to call from a browser (CORS), e.g. `['http://localhost:8233']` for the
   * `temporal server start-dev` UI. Default: none, so only non-browser callers (the CLI).
   */
  allowedOrigins?: readonly string[];
  /** Namespaces served (the `X-Namespace` header); default every namespace. */
  namespaces?: readonly string[];
  /** Largest request body in bytes. Default 4 MiB. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

class BadRequest extends Error {}

/**
 * A Node `http` request listener implementing Temporal's codec server protocol — `POST …/encode`
 * and `POST …/decode` with `{"payloads": [{"metadata": {...}, "data": "<base64>"}]}` — so that the
 * Temporal Web UI and `temporal workflow show --codec-endpoint` can display encrypted payloads.
 * Mount it anywhere: only the last path segment is matched.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * const codec = EncryptionCodec.fromEnv();
 * createServer(
 *   createCodecServerHandler({
 *     codec,
 *     allowedOrigins: ['https://temporal-ui.internal'],
 *     authorize: (req) => verifySsoToken(req.headers.authorization),
 *   }),
 * ).listen(8888);
 * ```
 */
export function createCodecServerHandler(
  options: CodecServerOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  if (typeof options?.authorize !== 'function') {
    throw new TypeError('createCodecServerHandler needs an authorize function');
  }
  const origins = new Set(options.allowedOrigins ?? []);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  return (request, response) => {
    handle(request, response).catch(() => {
      // Never the error itself: it may come from the codec and describe a payload.
      send(response, 500, { error: 'internal_error', message: 'The codec server failed.' });
    });
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const origin = request.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin)) {
        return send(response, 403, { error: 'forbidden', message: 'Origin not allowed.' });
      }
      response.setHeader('Access-Control-Allow-Origin', origin);
      response.setHeader('Access-Control-Allow-Credentials', 'true');
      response.setHeader('Vary', 'Origin');
    }
    const operation = new URL(request.url ?? '/', 'http://codec').pathname
      .replace(/\/+$/, '')
      .split('/')
      .pop();
    if (operation !== 'encode' && operation !== 'decode') {
      return send(response, 404, { error: 'not_found', message: 'Use POST /encode or /decode.' });
    }
    if (request.method === 'OPTIONS') {
      response.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      response.setHeader(
        'Access-Control-Allow-Headers',
        'Content-Type, X-Namespace, Authorization',
      );
      response.setHeader('Access-Control-Max-Age', '600');
      response.writeHead(204).end();
      return;
    }
    if (request.method !== 'POST') {
      response.setHeader('Allow', 'POST, OPTIONS');
      return send(response, 405, { error: 'method_not_allowed', message: 'Use POST.' });
    }
    if (!(await options.authorize(request))) {
      return send(response, 401, {
        error: 'unauthorized',
        message: 'Not allowed to use the codec.',
      });
    }
    const namespace = request.headers['x-namespace'];
    if (options.namespaces !== undefined && !options.namespaces.includes(String(namespace))) {
      return send(response, 403, { error: 'forbidden', message: 'Namespace not served here.' });
    }

    const text = await readBody(request, maxBodyBytes);
    if (text === undefined) {
      return send(response, 413, { error: 'payload_too_large', message: 'Body too large.' });
    }
    let payloads: Payload[];
    try {
      payloads = parsePayloads(text);
    } catch (error) {
      const message = error instanceof BadRequest ? error.message : 'Malformed body.';
      return send(response, 400, { error: 'invalid_request', message });
    }
    let result: Payload[];
    try {
      result =
        operation === 'encode'
          ? await options.codec.encode(payloads)
          : await options.codec.decode(payloads);
    } catch (error) {
      if (error instanceof PayloadDecryptionError) {
        // Its message names a key id at most, never a key or payload content.
        return send(response, 400, {
          error: 'decryption_failed',
          failure: error.failure,
          message: error.message,
        });
      }
      throw error;
    }
    send(response, 200, { payloads: result.map(payloadToJson) });
  }
}

function parsePayloads(text: string): Payload[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest('The body is not JSON.');
  }
  const list = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) throw new BadRequest('Expected {"payloads": [...]}.');
  return list.map((item: unknown, index) => {
    if (typeof item !== 'object' || item === null) {
      throw new BadRequest(`payloads[${index}] is not an object.`);
    }
    const { metadata, data } = item as { metadata?: unknown; data?: unknown };
    const payload: Payload = {};
    if (metadata !== undefined && metadata !== null) {
      if (typeof metadata !== 'object' || Array.isArray(metadata)) {
        throw new BadRequest(`payloads[${index}].metadata is not an object.`);
      }
      payload.metadata = Object.fromEntries(
        Object.entries(metadata).map(([key, value]) => [
          key,
          bytes(value, `payloads[${index}].metadata`),
        ]),
      );
    }
    if (data !== undefined && data !== null) payload.data = bytes(data, `payloads[${index}].data`);
    return payload;
  });
}

function bytes(value: unknown, where: string): Uint8Array {
  if (typeof value !== 'string' || !BASE64.test(value)) {
    throw new BadRequest(`${where} holds a value that is not base64.`);
  }
  return Buffer.from(value, 'base64');
}

function payloadToJson(payload: Payload): { metadata: Record<string, string>; data?: string } {
  const metadata = Object.fromEntries(
    Object.entries(payload.metadata ?? {}).map(([key, value]) => [
      key,
      Buffer.from(value ?? new Uint8Array(0)).toString('base64'),
    ]),
  );
  return payload.data == null
    ? { metadata }
    : { metadata, data: Buffer.from(payload.data).toString('base64') };
}

async function readBody(request: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
  }
  return tooLarge ? undefined : Buffer.concat(chunks).toString('utf8');
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  response.end(text);
}
