// A replica whose KMS cannot be reached at start: it listens anyway, answers /readyz 503 with the
// reason (so the orchestrator sees why, and routes nothing to it) and tries again, until the keys
// load; then the real API takes over the same port.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KeySourceUnavailableError } from '@tokenwarden/core';
import { setTimeout as sleep } from 'node:timers/promises';

const RETRY_MS = 2_000;

/**
 * `open()` until it no longer throws KeySourceUnavailableError, serving "not ready" meanwhile on
 * `host:port`. Returns what `open` returned and the port to listen on (the one bound, for port 0).
 */
export async function openWhenKeysReachable<T>(
  open: () => Promise<T>,
  listen: { host: string; port: number; https?: ServerOptions },
  stopped: Promise<unknown>,
  report: (message: string) => void,
): Promise<{ opened: T; port: number } | undefined> {
  let server: Server | undefined;
  let reason = '';
  let stop = false;
  void stopped.then(() => (stop = true));
  try {
    for (;;) {
      try {
        return { opened: await open(), port: server ? boundPort(server) : listen.port };
      } catch (error) {
        if (!(error instanceof KeySourceUnavailableError)) throw error;
        reason = error.message;
      }
      if (server === undefined) {
        server = await notReadyServer(listen, () => reason);
        report(
          `not ready on port ${boundPort(server)}: ${reason} Retrying every ${RETRY_MS / 1000} s; ` +
            '/readyz answers 503 meanwhile.',
        );
      }
      await Promise.race([sleep(RETRY_MS), stopped]);
      if (stop) return undefined;
    }
  } finally {
    if (server) await new Promise((done) => server!.close(done));
  }
}

function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}

async function notReadyServer(
  listen: { host: string; port: number; https?: ServerOptions },
  reason: () => string,
): Promise<Server> {
  const handler = (request: { url?: string }, response: import('node:http').ServerResponse) => {
    const live = request.url === '/healthz';
    response.writeHead(live ? 200 : 503, {
      'content-type': 'application/json',
      connection: 'close',
    });
    response.end(
      JSON.stringify(
        live
          ? { status: 'ok' }
          : {
              error: {
                code: 'key_ring_invalid',
                message: `Not ready: the keys could not be loaded. ${reason()}`,
                retryable: true,
              },
            },
      ),
    );
  };
  const server = listen.https
    ? (createHttpsServer(listen.https, handler) as unknown as Server)
    : createHttpServer(handler);
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(listen.port, listen.host, done);
  });
  return server;
}
