// Which headers cross the proxy. RFC 9110 §7.6.1: hop-by-hop headers (and those a Connection
// header names) are for one connection only and are never forwarded; everything else passes
// unchanged, in both directions, except what is Tokenwarden's own.
import type { IncomingHttpHeaders } from 'node:http';
import { UPSTREAM_HEADER } from './target.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Never sent upstream: the caller's `Authorization` is its Tokenwarden API key; `host` is the
 * upstream's own (undici sets it from the origin, so a caller cannot pick another virtual host);
 * `expect` is answered by this server's side of the exchange.
 */
const REQUEST_ONLY = new Set(['authorization', 'host', 'expect', UPSTREAM_HEADER]);

/** Set by Tokenwarden on every answer; the upstream's value would hide which request it was. */
const RESPONSE_OWN = new Set(['x-request-id']);

export type HeaderMap = Record<string, string | string[]>;

/** The caller's headers as they go upstream, with `authorization` set to the connection's token. */
export function upstreamHeaders(incoming: IncomingHttpHeaders, authorization: string): HeaderMap {
  const out = passed(incoming, REQUEST_ONLY);
  out.authorization = authorization;
  return out;
}

/** The upstream's response headers as they go back to the caller. */
export function downstreamHeaders(
  incoming: Record<string, string | string[] | undefined>,
): HeaderMap {
  return passed(incoming, RESPONSE_OWN);
}

/** What crosses: neither hop-by-hop, nor named by `connection`, nor in `own`. */
function passed(
  incoming: Record<string, string | string[] | undefined>,
  own: ReadonlySet<string>,
): HeaderMap {
  const named =
    incoming.connection === undefined ? undefined : connectionNamed(incoming.connection);
  const out: HeaderMap = {};
  // On every proxied call, twice: a plain loop, no entry arrays.
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || HOP_BY_HOP.has(name) || own.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function connectionNamed(value: string | string[]): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : value;
  return new Set(text.split(',').map((name) => name.trim().toLowerCase()));
}

/** The headers announce a JSON body (`application/json`, `application/problem+json`...). */
export function isJson(headers: Record<string, string | string[] | undefined>): boolean {
  const type = headers['content-type'];
  return typeof type === 'string' && /\bjson\b/i.test(type);
}
