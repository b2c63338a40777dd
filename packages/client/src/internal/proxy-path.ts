// How `client.proxy` names the upstream: a path relative to the provider's first API base URL,
// or a full URL, sent as its origin (the `tokenwarden-upstream` header) and its path.
import { InvalidRequestError } from '../errors.ts';

export const UPSTREAM_HEADER = 'tokenwarden-upstream';
/** Set on the errors the proxy itself answers, as opposed to the upstream API's own answers. */
export const ERROR_HEADER = 'tokenwarden-error';

export interface ProxyPath {
  /** Appended to `/v1/proxy/{id}/`: percent-encoded path and query, no leading slash. */
  relative: string;
  /** The origin of a full URL; undefined for a relative path (the first base URL). */
  upstream: string | undefined;
}

export function proxyPath(path: string | URL, connectionId: string): ProxyPath {
  if (path instanceof URL || /^https?:\/\//i.test(path)) {
    let url: URL;
    try {
      url = new URL(path);
    } catch {
      throw new InvalidRequestError('path is not a valid URL', { connectionId });
    }
    return { relative: `${url.pathname.slice(1)}${url.search}`, upstream: url.origin };
  }
  if (typeof path !== 'string') {
    throw new InvalidRequestError('path must be a string or a URL', { connectionId });
  }
  return { relative: path.replace(/^\//, ''), upstream: undefined };
}
