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

export type RevocationOutcome =
  | { kind: 'revoked' }
  /** The provider has no RFC 7009 endpoint configured: nothing was sent. */
  | { kind: 'unsupported' }
  | { kind: 'failed'; error: string; retryAfterMs: number | undefined };

/**
 * Asks the provider to revoke a token (revoking a refresh token revokes its grant, §2.1). An
 * unknown or already invalid token is a success (§2.2). Never throws for provider behaviour.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2
 */
export async function revokeToken(
  provider: ResolvedProvider,
  token: string,
  tokenTypeHint: 'refresh_token' | 'access_token',
  options: GrantOptions = {},
): Promise<RevocationOutcome> {
  if (typeof token !== 'string' || token === '') {
    throw new InvalidInputError('token', 'must be a non-empty string');
  }
  if (provider.revocationUrl === undefined) return { kind: 'unsupported' };
  const { as, client, auth, requestOptions } = endpointContext(provider, options);
  let response: Response;
  try {
    response = await oauth.revocationRequest(as, client, auth, token, {
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
    await oauth.processRevocationResponse(response);
    return { kind: 'revoked' };
  } catch (error) {
    const code =
      error instanceof oauth.ResponseBodyError
        ? safeCode(error.error)
        : response.status === 401
          ? 'invalid_client'
          : `http_${response.status}`;
    return { kind: 'failed', error: code, retryAfterMs: undefined };
  }
}
