import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the receiver got it. */
export interface ReceivedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
  /** `Date.now()` when the body had arrived. */
  receivedAt: number;
}

/** How the receiver answers one request: a status (and headers), or never (a timeout). */
export type ReceiverAnswer = { status: number; headers?: Record<string, string> } | 'hang';

/**
 * A webhook receiver on loopback, for tests: records every request and answers from a script
 * (then 200). What a backend runs, minus the verification, which the test does on what it got.
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #waiters = new Set<() => void>();
  #script: ReceiverAnswer[] = [];

  private constructor(server: Server) {
    this.#server = server;
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    server.on('request', (req, res) => void this.#handle(req, res));
  }

  static async start(): Promise<WebhookReceiver> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new WebhookReceiver(server);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks`;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The next requests are answered so, in order; after them, 200. */
  script(...answers: ReceiverAnswer[]): void {
    this.#script.push(...answers);
  }

  /** Resolves once `done(requests)` holds; rejects after `timeoutMs`, saying what arrived. */
  async until(
    done: (requests: readonly ReceivedRequest[]) => boolean,
    timeoutMs = 15_000,
  ): Promise<ReceivedRequest[]> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.requests)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `webhook receiver: condition not met; got ${this.requests.length} request(s)`,
        );
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 200));
        this.#waiters.add(wake);
      });
    }
    return [...this.requests];
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers[name] = value;
    }
    this.requests.push({
      path: req.url ?? '/',
      headers,
      body: Buffer.concat(chunks).toString('utf8'),
      receivedAt: Date.now(),
    });
    for (const wake of [...this.#waiters]) wake();
    const answer = this.#script.shift() ?? { status: 200 };
    if (answer === 'hang') return; // the socket is destroyed on close
    res.writeHead(answer.status, answer.headers).end('{"ok":true}');
  }
}
