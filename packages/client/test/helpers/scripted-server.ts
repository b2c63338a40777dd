// A loopback node:http server whose answers each test scripts, so the SDK can be driven through
// exact status codes, headers, bodies, delays and broken connections. It stands in for nothing
// in the product: the real server is exercised by cluster.test.ts.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
  /** Parsed JSON body, or undefined. */
  json: unknown;
}

export interface Reply {
  status?: number;
  body?: unknown;
  /** Sent as is instead of JSON. */
  raw?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Close the socket without answering. */
  destroy?: boolean;
  /** Never answer. */
  hang?: boolean;
}

export type Handler = (req: Recorded) => Reply | Promise<Reply>;

export interface ScriptedServer {
  url: string;
  requests: Recorded[];
  /** Requests whose path ends with this. */
  count(pathSuffix: string): number;
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export async function startScriptedServer(handler: Handler = () => ({})): Promise<ScriptedServer> {
  let current = handler;
  const requests: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body === '' ? undefined : JSON.parse(body);
      } catch {
        json = undefined;
      }
      const recorded: Recorded = {
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization,
        body,
        json,
      };
      requests.push(recorded);
      void Promise.resolve(current(recorded)).then(async (reply) => {
        if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
        if (reply.hang) return;
        if (reply.destroy) return void res.socket?.destroy();
        const text = reply.raw ?? JSON.stringify(reply.body ?? {});
        res.writeHead(reply.status ?? 200, {
          'content-type': reply.raw === undefined ? 'application/json' : 'text/html',
          ...reply.headers,
        });
        res.end(text);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count: (suffix) => requests.filter((r) => r.path.endsWith(suffix)).length,
    handle(next) {
      current = next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function randomToken(): string {
  return `at_${randomBytes(12).toString('base64url')}`;
}

/** The API's token answer. */
export function tokenBody(
  version: number,
  ttlSeconds = 3600,
  accessToken = randomToken(),
): { access_token: string; token_type: string; expires_at: string; version: number } {
  return {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_at: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    version,
  };
}

export function apiError(
  status: number,
  error: string,
  extra: Record<string, unknown> = {},
  headers?: Record<string, string>,
): Reply {
  return { status, body: { error, message: `scripted ${error}`, ...extra }, headers };
}
