// A Tokenwarden server listening on loopback, a test provider, and a resource server that
// accepts only the tokens the provider issued: the three parties of a proxied call.
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ResourceServer } from '@tokenwarden/testkit';
import { request, type Dispatcher } from 'undici';
import {
  startTestServer,
  type Backend,
  type TestServer,
  type TestServerOptions,
} from './helpers.ts';

export interface ProxySetup {
  s: TestServer;
  resource: ResourceServer;
  /** http://127.0.0.1:<port> of the Tokenwarden server. */
  base: string;
  /** Every bearer token the resource server was shown, valid or not. */
  tokensSeen: Set<string>;
  /** A service client with only the proxy action on provider `test`. */
  worker: { id: string; apiKey: string };
  /** An imported connection of provider `test`. */
  connection: { id: string; accessToken: string; refreshToken: string };
  /** A raw request to the server: the path exactly as given, the body as given. */
  call(
    path: string,
    options?: {
      method?: Dispatcher.HttpMethod;
      key?: string;
      headers?: Record<string, string>;
      body?: Dispatcher.DispatchOptions['body'];
    },
  ): Promise<Answer>;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export async function startProxySetup(
  options: {
    backend?: Backend;
    expiresIn?: number;
    server?: TestServerOptions['server'];
    /** More settings of provider `test` (`rejected_token_errors`...). */
    provider?: Record<string, unknown>;
  } = {},
): Promise<ProxySetup> {
  const s = await startTestServer({ backend: options.backend, server: options.server });
  const tokensSeen = new Set<string>();
  const resource = await ResourceServer.start({
    accepts: (token) => {
      tokensSeen.add(token);
      return s.provider.isAccessTokenValid(token);
    },
  });
  await putProvider(s, [resource.url], 'test', options.provider);
  const worker = await s.createClient([{ owner: '*', provider: 'test', actions: ['proxy'] }]);
  const connection = await s.importGrant({ expiresIn: options.expiresIn ?? 3600 });
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  return {
    s,
    resource,
    base,
    tokensSeen,
    worker,
    connection,
    async call(path, { method = 'GET', key = worker.apiKey, headers = {}, body } = {}) {
      const answer = await request(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...headers },
        body,
      });
      const bytes = Buffer.from(await answer.body.arrayBuffer());
      return {
        status: answer.statusCode,
        headers: answer.headers,
        body: bytes,
        text: bytes.toString('utf8'),
      };
    },
    async close() {
      await s.close();
      await resource.close();
    },
  };
}

/** Provider `test` (the test provider's endpoints) with these API base URLs. */
export async function putProvider(
  s: TestServer,
  apiBaseUrls: string[],
  name = 'test',
  settings: Record<string, unknown> = {},
) {
  const response = await s.admin('PUT', `/v1/providers/${name}`, {
    token_url: s.provider.tokenUrl,
    client_id: s.provider.clientId,
    client_secret: s.provider.clientSecret,
    api_base_urls: apiBaseUrls,
    ...settings,
  });
  if (response.statusCode !== 200) throw new Error(`putProvider: ${response.body}`);
}

/**
 * A request with the target sent exactly as given (`fetch` and undici would resolve `..` or
 * refuse an absolute form first): what a hostile caller can put on the wire.
 */
export function rawRequest(
  base: string,
  target: string,
  {
    method = 'GET',
    headers,
    body,
  }: { method?: string; headers: Record<string, string>; body?: Buffer },
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: target, method, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
