import * as oauth from 'oauth4webapi';
import type { ResolvedProvider } from '../provider/settings.ts';
import {
  safeCode,
  sendRequest,
  tryAgainLater,
  type EndpointContext,
  type GrantOptions,
} from './token-endpoint.ts';

/** A token-management call (introspection, revocation) that did not get its answer. */
export interface EndpointFailure {
  kind: 'failed';
  error: string;
  retryAfterMs: number | undefined;
}

/**
 * Sends one request to a token-management endpoint (`send` builds it with oauth4webapi) and
 * hands a non-throttled answer to `process`. What goes wrong becomes an {@link EndpointFailure},
 * never a throw: a request that never left (`provider_misconfigured`), a transport error
 * (`timeout`, `network_error`), 429 or 5xx (`rate_limited`, `server_error`, with the
 * Retry-After), an OAuth error body (its code), 401 (`invalid_client`), anything else
 * `unexpected(status)`, by default `http_<status>`.
 */
export async function endpointRequest<T>(
  provider: ResolvedProvider,
  options: GrantOptions,
  send: (ctx: EndpointContext) => Promise<Response>,
  process: (response: Response, ctx: EndpointContext) => Promise<T>,
  unexpected: (status: number) => string = (status) => `http_${status}`,
): Promise<T | EndpointFailure> {
  const sent = await sendRequest(provider, options, send);
  if ('kind' in sent) return { kind: 'failed', error: sent.error, retryAfterMs: undefined };
  const { ctx, response } = sent;
  const busy = await tryAgainLater(response);
  if (busy) return { kind: 'failed', ...busy };
  try {
    return await process(response, ctx);
  } catch (error) {
    const code =
      error instanceof oauth.ResponseBodyError
        ? safeCode(error.error)
        : response.status === 401
          ? 'invalid_client'
          : unexpected(response.status);
    return { kind: 'failed', error: code, retryAfterMs: undefined };
  }
}
