import * as oauth from 'oauth4webapi';
import type { ResolvedProvider } from '../provider/settings.ts';
import { exchange, type GrantOptions, type TokenOutcome } from './token-endpoint.ts';

export type { GrantOptions } from './token-endpoint.ts';
export { retryAfter } from './token-endpoint.ts';
export { normaliseTokenResponse } from './token-response.ts';

/** What became of one refresh-token redemption. */
export type RefreshOutcome = TokenOutcome;

/**
 * The refresh token grant through oauth4webapi, with the provider's quirks normalised first
 * (see `normaliseTokenResponse`). Never throws for provider behaviour: every answer, or the
 * lack of one, becomes a `RefreshOutcome`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 */
export function refreshTokenGrant(
  provider: ResolvedProvider,
  refreshToken: string,
  options: GrantOptions = {},
): Promise<RefreshOutcome> {
  return exchange(provider, options, ({ as, client, auth, requestOptions }) =>
    oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, requestOptions),
  );
}
