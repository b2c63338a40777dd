import * as oauth from 'oauth4webapi';
import type { ResolvedProvider } from '../provider/settings.ts';
import { exchange, type GrantOptions, type TokenOutcome } from './token-endpoint.ts';

/**
 * The client credentials grant: a machine token for the client itself, no user and (RFC 6749
 * §4.4.3) no refresh token — a refresh token in the answer is ignored. `scope` defaults to the
 * provider's scopes. A refusal (`invalid_grant`, `invalid_scope`) is a configuration problem,
 * never a dead connection, so it comes back as `failed`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 */
export async function clientCredentialsGrant(
  provider: ResolvedProvider,
  options: GrantOptions & { scope?: string } = {},
): Promise<Exclude<TokenOutcome, { kind: 'refused' }>> {
  const scope = options.scope ?? provider.scopes.join(' ');
  const outcome = await exchange(provider, options, ({ as, client, auth, requestOptions }) =>
    oauth.clientCredentialsGrantRequest(
      as,
      client,
      auth,
      scope === '' ? {} : { scope },
      requestOptions,
    ),
  );
  switch (outcome.kind) {
    case 'tokens':
      return { ...outcome, refreshToken: undefined, refreshExpiresIn: undefined };
    case 'refused':
      return { kind: 'failed', error: outcome.error, inDoubt: false, retryAfterMs: undefined };
    default:
      return outcome;
  }
}
