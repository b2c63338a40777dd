import { lookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import { WebhookUrlError } from '../errors.ts';
import { checkWebhookUrl, isPrivateAddress, type UrlPolicy } from './url-policy.ts';

export interface SenderOptions extends UrlPolicy {
  /** An answer (headers and body) must come within this. */
  timeoutMs: number;
  /** The receiver's body is read up to this many bytes, then dropped: never stored or logged. */
  maxResponseBytes?: number;
}

/** How one attempt went. `error` says why it failed, as a code for the delivery log. */
export type SendResult =
  | { ok: true; status: number }
  | { ok: false; status: number | null; error: string; retryAfterMs?: number };

/**
 * Sends webhook requests: one POST, no redirect followed, a timeout, and — unless private
 * addresses are allowed — a connection only to a public address, checked on the address the name
 * resolves to as the connection is made (so DNS cannot point an endpoint inside the network).
 */
export class WebhookSender {
  readonly #agent: Agent;
  readonly #options: SenderOptions;

  constructor(options: SenderOptions) {
    this.#options = options;
    this.#agent = new Agent({
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: options.allowPrivate ? {} : { lookup: publicOnlyLookup },
    });
  }

  async send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    try {
      // Checked again at send time: the server may have been started without the flag since.
      checkWebhookUrl(url, this.#options);
      const { hostname } = new URL(url);
      const literal = hostname.replace(/^\[(.*)\]$/, '$1');
      // A literal address is connected to without a lookup: checked here instead.
      if (!this.#options.allowPrivate && isIP(literal) && isPrivateAddress(literal)) {
        return { ok: false, status: null, error: 'address_refused' };
      }
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      await drain(response.body, this.#options.maxResponseBytes ?? 4096);
      const status = response.statusCode;
      if (status >= 200 && status < 300) return { ok: true, status };
      const retryAfterMs = retryAfter(response.headers['retry-after']);
      return {
        ok: false,
        status,
        error: status >= 300 && status < 400 ? 'redirect_not_followed' : `http_${status}`,
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      };
    } catch (error) {
      return { ok: false, status: null, error: failureCode(error) };
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** Reads and drops up to `limit` bytes of a body; a longer one is cut off there. */
async function drain(body: AsyncIterable<Buffer> & { destroy(): void }, limit: number) {
  let read = 0;
  for await (const chunk of body) {
    read += chunk.length;
    if (read > limit) break; // leaving the loop destroys the stream
  }
}

/** Retry-After in seconds or as an HTTP date, in ms from now; at most a day. */
function retryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text.trim()) ? Number(text) * 1000 : Date.parse(text) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 24 * 3600_000) : undefined;
}

const ADDRESS_REFUSED = 'ERR_TOKENWARDEN_ADDRESS_REFUSED';

/** `dns.lookup`, refusing a name that resolves to any private, loopback or link-local address. */
function publicOnlyLookup(
  hostname: string,
  options: LookupOptions,
  callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
): void {
  lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    if (addresses.length === 0 || addresses.some((a) => isPrivateAddress(a.address))) {
      const refused = Object.assign(new Error(`${hostname} resolves to a private address`), {
        code: ADDRESS_REFUSED,
      });
      return callback(refused, []);
    }
    if (options.all) return callback(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

/** A failure as a code for the delivery log: never a message that could quote the receiver. */
function failureCode(error: unknown): string {
  if (error instanceof WebhookUrlError) return 'url_refused';
  for (let e = error as { code?: unknown; name?: unknown; cause?: unknown } | undefined; e;) {
    if (e.code === ADDRESS_REFUSED) return 'address_refused';
    if (
      e.name === 'TimeoutError' ||
      e.code === 'UND_ERR_HEADERS_TIMEOUT' ||
      e.code === 'UND_ERR_BODY_TIMEOUT'
    ) {
      return 'timeout';
    }
    if (e.code === 'ECONNREFUSED') return 'connection_refused';
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return 'dns_failed';
    if (
      typeof e.code === 'string' &&
      /^(EPROTO|ERR_TLS|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED)/.test(e.code)
    ) {
      return 'tls_failed';
    }
    e = e.cause as typeof e;
  }
  return 'connection_failed';
}
