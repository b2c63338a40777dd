import * as oauth from 'oauth4webapi';
import { InvalidInputError } from '../errors.ts';
import type { ResolvedProvider } from './provider.ts';
import {
  endpointContext,
  retryAfter,
  safeCode,
  transportFailure,
  type GrantOptions,
} from './token-endpoint.ts';

/** The RFC 7662 §2.2 members Tokenwarden passes on; never the token itself. */
export interface IntrospectionResult {
  active: boolean;
  scope?: string;
  clientId?: string;
  tokenType?: string;
  /** Epoch seconds. */
  exp?: number;
  iat?: number;
  sub?: string;
}

export type IntrospectionOutcome =
  | { kind: 'introspected'; result: IntrospectionResult }
  /** No RFC 7662 endpoint is configured for the provider: nothing was sent. */
  | { kind: 'unsupported' }
  | { kind: 'failed'; error: string; retryAfterMs: number | undefined };

/**
 * Asks the provider whether a token is active. Only the standard members come back, type
 * checked; anything else the provider says is dropped. Never throws for provider behaviour.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 */
export async function introspectToken(
  provider: ResolvedProvider,
  token: string,
  tokenTypeHint: 'refresh_token' | 'access_token',
  options: GrantOptions = {},
): Promise<IntrospectionOutcome> {
  if (typeof token !== 'string' || token === '') {
    throw new InvalidInputError('token', 'must be a non-empty string');
  }
  if (provider.introspectionUrl === undefined) return { kind: 'unsupported' };
  const { as, client, auth, requestOptions } = endpointContext(provider, options);
  let response: Response;
  try {
    response = await oauth.introspectionRequest(as, client, auth, token, {
      ...requestOptions,
      additionalParameters: { token_type_hint: tokenTypeHint },
    });
  } catch (error) {
    const failed = transportFailure(error);
    return {
      kind: 'failed',
      error: failed.kind === 'failed' ? failed.error : 'network_error',
      retryAfterMs: undefined,
    };
  }
  if (response.status === 429 || response.status >= 500) {
    await response.body?.cancel().catch(() => undefined);
    return {
      kind: 'failed',
      error: response.status === 429 ? 'rate_limited' : 'server_error',
      retryAfterMs: retryAfter(response),
    };
  }
  try {
    const body = await oauth.processIntrospectionResponse(as, client, response);
    const result: IntrospectionResult = { active: body.active };
    if (typeof body.scope === 'string') result.scope = body.scope.slice(0, 4096);
    if (typeof body.client_id === 'string') result.clientId = body.client_id.slice(0, 256);
    if (typeof body.token_type === 'string') result.tokenType = body.token_type.slice(0, 64);
    if (typeof body.exp === 'number' && Number.isFinite(body.exp)) result.exp = body.exp;
    if (typeof body.iat === 'number' && Number.isFinite(body.iat)) result.iat = body.iat;
    if (typeof body.sub === 'string') result.sub = body.sub.slice(0, 256);
    return { kind: 'introspected', result };
  } catch (error) {
    const code =
      error instanceof oauth.ResponseBodyError
        ? safeCode(error.error)
        : response.status === 401
          ? 'invalid_client'
          : response.status >= 200 && response.status < 300
            ? 'malformed_response'
            : `http_${response.status}`;
    return { kind: 'failed', error: code, retryAfterMs: undefined };
  }
}
