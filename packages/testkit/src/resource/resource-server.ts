// A loopback resource server (a provider's API) for proxy tests and benchmarks: it accepts a
// bearer token only if `accepts` says so (the test provider knows which tokens it issued), and
// serves what a proxy must pass through untouched: exact bytes, headers, redirects, compressed
// bodies, uploads of any size, and answers that never come.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface ResourceServerOptions {
  /** Whether a bearer token is valid, e.g. `(token) => provider.isAccessTokenValid(token)`. */
  accepts: (token: string) => boolean;
}

/** One request as the resource server saw it (the bearer only as valid or not). */
export interface SeenRequest {
  method: string;
  /** The request target as it arrived: path and query. */
  url: string;
  host: string | undefined;
  tokenValid: boolean;
  headers: Record<string, string | string[] | undefined>;
}

/** The bytes `/bytes/{n}` sends: position i holds (i * 31 + 7) mod 251, so a shift shows. */
export function patternBytes(offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = ((offset + i) * 31 + 7) % 251;
  return out;
}

/** SHA-256 hex of the first `n` bytes of the pattern, computed piece by piece. */
export function patternSha256(n: number): string {
  const hash = createHash('sha256');
  for (let at = 0; at < n; at += CHUNK) hash.update(patternBytes(at, Math.min(CHUNK, n - at)));
  return hash.digest('hex');
}

const CHUNK = 64 * 1024;
/** One pattern period is 251 bytes: a chunk of a multiple of it is the same buffer every time. */
const PERIOD_CHUNK = patternBytes(0, 251 * 261);
const KEPT_REQUESTS = 1_000;

export class ResourceServer {
  readonly #server: Server;
  readonly #accepts: (token: string) => boolean;
  #url = '';
  /** The last 1,000 requests, oldest first. */
  readonly requests: SeenRequest[] = [];
  readonly stats = { requests: 0, rejected: 0 };
  /** Answers whose connection closed before their last byte was sent (the client went away). */
  cutOff = 0;
  /** Refusals held back until this many have gathered (`holdRejections`). */
  #hold = 0;
  #held: ServerResponse[] = [];

  private constructor(options: ResourceServerOptions) {
    this.#accepts = options.accepts;
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Held-open answers (hang, stall) must not keep close() waiting.
    this.#server.keepAliveTimeout = 5_000;
  }

  static async start(options: ResourceServerOptions): Promise<ResourceServer> {
    const server = new ResourceServer(options);
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.#server.address() as AddressInfo;
    server.#url = `http://127.0.0.1:${port}`;
    return server;
  }

  /** e.g. http://127.0.0.1:41234 */
  get url(): string {
    return this.#url;
  }

  /**
   * The next `count` refusals (401) are all answered together, once the last has arrived: every
   * one of `count` concurrent callers is refused the token it came with, none of them after a
   * refresh another one caused.
   */
  holdRejections(count: number): void {
    this.#hold = count;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    const tokenValid = bearer !== undefined && this.#accepts(bearer);
    this.stats.requests++;
    res.once('close', () => {
      if (!res.writableFinished) this.cutOff++;
    });
    this.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      host: req.headers.host,
      tokenValid,
      headers: { ...req.headers },
    });
    if (this.requests.length > KEPT_REQUESTS) this.requests.shift();
    if (!tokenValid) {
      this.stats.rejected++;
      req.resume();
      // `/forbidden-when-stale`: the refusal some APIs send, a 403 with RFC 6750's invalid_token.
      if (req.url?.startsWith('/forbidden-when-stale')) return refuse(res, 403);
      // The refusals a provider's settings name: Slack's 200 with {"ok":false,"error":...}
      // (`?chunked=1`: sent without a length), or a bare status.
      if (req.url?.startsWith('/ok-false-when-stale')) {
        return okFalse(res, req.url.includes('chunked=1'));
      }
      const bare = /^\/status-when-stale\/(\d{3})/.exec(req.url ?? '');
      if (bare) return json(res, Number(bare[1]), { message: 'refused' });
      if (this.#hold === 0) return refuse(res);
      this.#held.push(res);
      if (this.#held.length < this.#hold) return;
      this.#hold = 0;
      for (const held of this.#held.splice(0)) refuse(held);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://resource');
    const [, route = '', arg = ''] = url.pathname.split('/');
    switch (route) {
      case 'json':
        return json(res, 200, { ok: true, items: [1, 2, 3] });
      case 'bytes':
        return sendPattern(res, Number(arg), url.searchParams.has('chunked'));
      case 'upload':
        return void countUpload(req, res, url.searchParams.has('hash'));
      case 'redirect':
        res.writeHead(302, { location: 'https://elsewhere.example/landing' });
        return void res.end();
      case 'gzip': {
        const body = gzipSync(JSON.stringify({ compressed: true, pad: 'x'.repeat(1000) }));
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
          'content-length': body.length,
        });
        return void res.end(body);
      }
      case 'forbidden-when-stale':
      case 'ok-false-when-stale':
      case 'status-when-stale':
        return json(res, 200, { ok: true });
      case 'status':
        return json(res, Number(arg), { status: Number(arg) });
      case 'hang':
        // Never answers: the proxy's headers timeout.
        return;
      case 'stall':
        // Headers and a first piece, then nothing: the proxy's idle-body timeout. `/stall` is 1000
        // bytes announced, 10 sent; `/stall/<n>` n announced, half of them sent.
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': arg === '' ? 1000 : Number(arg),
        });
        return void res.write(Buffer.alloc(arg === '' ? 10 : Math.floor(Number(arg) / 2)));
      default:
        return void echo(req, res, url);
    }
  }
}

function refuse(res: ServerResponse, status = 401): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'www-authenticate': 'Bearer error="invalid_token"',
  });
  res.end('{"error":"invalid_token"}');
}

function okFalse(res: ServerResponse, chunked: boolean): void {
  const text = '{"ok":false,"error":"invalid_auth"}';
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    ...(chunked ? {} : { 'content-length': Buffer.byteLength(text) }),
  });
  res.end(text);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** `n` pattern bytes with headers to check, streamed with backpressure, never held whole. */
function sendPattern(res: ServerResponse, n: number, chunked: boolean): void {
  if (!Number.isSafeInteger(n) || n < 0) return json(res, 400, { error: 'bad length' });
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'x-resource': 'pattern',
    'set-cookie': ['a=1; Path=/', 'b=2; Path=/'],
    'cache-control': 'private, max-age=60',
    ...(chunked ? {} : { 'content-length': n }),
  });
  let at = 0;
  const pump = (): void => {
    while (at < n) {
      const size = Math.min(PERIOD_CHUNK.length, n - at);
      // The pattern repeats every 251 bytes: chunks starting at a multiple of it share one buffer.
      const chunk = PERIOD_CHUNK.subarray(0, size);
      at += size;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

/** Reads the whole upload, counting (and hashing, if asked) as it comes. */
async function countUpload(req: IncomingMessage, res: ServerResponse, hash: boolean) {
  const digest = hash ? createHash('sha256') : undefined;
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    digest?.update(chunk);
  }
  json(res, 200, { bytes, sha256: digest?.digest('hex') ?? null });
}

/** What arrived: method, target, headers (not the bearer) and the body's size and hash. */
async function echo(req: IncomingMessage, res: ServerResponse, url: URL) {
  const digest = createHash('sha256');
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    digest.update(chunk);
  }
  const { authorization: _bearer, ...headers } = req.headers;
  json(res, 200, {
    method: req.method,
    path: url.pathname,
    query: url.search,
    headers,
    bytes,
    sha256: digest.digest('hex'),
  });
}
