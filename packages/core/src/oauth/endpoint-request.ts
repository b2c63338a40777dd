import * as oauth from 'oauth4webapi';
import { safeCode, transportFailure, tryAgainLater } from './token-endpoint.ts';

/** A token-management call (introspection, revocation) that did not get its answer. */
export interface EndpointFailure {
  kind: 'failed';
  error: string;
  retryAfterMs: number | undefined;
}

/**
 * Sends one request to a token-management endpoint and hands a non-throttled answer to
 * `process`. What goes wrong becomes an {@link EndpointFailure}, never a throw: a transport
 * error (`timeout`, `network_error`), 429 or 5xx (`rate_limited`, `server_error`, with the
 * Retry-After), an OAuth error body (its code), 401 (`invalid_client`), anything else
 * `unexpected(status)`, by default `http_<status>`.
 */
export async function endpointRequest<T>(
  send: () => Promise<Response>,
  process: (response: Response) => Promise<T>,
  unexpected: (status: number) => string = (status) => `http_${status}`,
): Promise<T | EndpointFailure> {
  let response: Response;
  try {
    response = await send();
  } catch (error) {
    return { kind: 'failed', error: transportFailure(error).error, retryAfterMs: undefined };
  }
  const busy = await tryAgainLater(response);
  if (busy) return { kind: 'failed', ...busy };
  try {
    return await process(response);
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
