import * as oauth from 'oauth4webapi';
import { InvalidInputError } from '../errors.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { endpointRequest, type EndpointFailure } from './endpoint-request.ts';
import type { GrantOptions } from './token-endpoint.ts';

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
  | EndpointFailure;

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
  return endpointRequest(
    provider,
    options,
    ({ as, client, auth, requestOptions }) =>
      oauth.introspectionRequest(as, client, auth, token, {
        ...requestOptions,
        additionalParameters: { token_type_hint: tokenTypeHint },
      }),
    async (response, { as, client }) => {
      const body = await oauth.processIntrospectionResponse(as, client, response);
      const result: IntrospectionResult = { active: body.active };
      if (typeof body.scope === 'string') result.scope = body.scope.slice(0, 4096);
      if (typeof body.client_id === 'string') result.clientId = body.client_id.slice(0, 256);
      if (typeof body.token_type === 'string') result.tokenType = body.token_type.slice(0, 64);
      if (typeof body.exp === 'number' && Number.isFinite(body.exp)) result.exp = body.exp;
      if (typeof body.iat === 'number' && Number.isFinite(body.iat)) result.iat = body.iat;
      if (typeof body.sub === 'string') result.sub = body.sub.slice(0, 256);
      return { kind: 'introspected', result } as const;
    },
    (status) => (status >= 200 && status < 300 ? 'malformed_response' : `http_${status}`),
  );
}
