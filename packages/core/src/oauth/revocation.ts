import * as oauth from 'oauth4webapi';
import { InvalidInputError } from '../errors.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { endpointRequest, type EndpointFailure } from './endpoint-request.ts';
import type { GrantOptions } from './token-endpoint.ts';

export type RevocationOutcome =
  | { kind: 'revoked' }
  /** The provider has no RFC 7009 endpoint configured: nothing was sent. */
  | { kind: 'unsupported' }
  | EndpointFailure;

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
  return endpointRequest(
    provider,
    options,
    ({ as, client, auth, requestOptions }) =>
      oauth.revocationRequest(as, client, auth, token, {
        ...requestOptions,
        additionalParameters: { token_type_hint: tokenTypeHint },
      }),
    async (response) => {
      await oauth.processRevocationResponse(response);
      return { kind: 'revoked' } as const;
    },
  );
}
