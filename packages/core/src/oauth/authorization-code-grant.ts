import * as oauth from 'oauth4webapi';
import { InvalidInputError } from '../errors.ts';
import { checkScopes } from '../provider/setting-kinds.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { isLoopback } from '../provider/urls.ts';
import { exchange, safeCode, type GrantOptions, type TokenOutcome } from './token-endpoint.ts';

/** Where to send the user's browser, and what to keep (server-side) until the callback. */
export interface AuthorizationRequest {
  url: string;
  /** RFC 6749 §10.12: binds the callback to this request. Single use. */
  state: string;
  /** RFC 7636 §4.1: the secret half of PKCE. Never leaves the server until the code exchange. */
  codeVerifier: string;
}

/**
 * The authorization request with `state` and a PKCE S256 challenge, plus the provider's extra
 * parameters (`access_type=offline`, `audience=...`). Throws InvalidInputError if the provider
 * has no `authorizeUrl` or the redirect URI or scopes are unusable.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.3
 */
export async function createAuthorizationRequest(
  provider: ResolvedProvider,
  request: { redirectUri: string; scopes?: string[] },
): Promise<AuthorizationRequest> {
  if (provider.authorizeUrl === undefined) {
    throw new InvalidInputError('authorize_url', `is not configured for provider ${provider.name}`);
  }
  const redirectUri = checkRedirectUri(request.redirectUri);
  const scopes = request.scopes === undefined ? provider.scopes : checkScopes(request.scopes);
  const state = oauth.generateRandomState();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const url = new URL(provider.authorizeUrl);
  for (const [name, value] of Object.entries(provider.authorizeParams)) {
    url.searchParams.set(name, value);
  }
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', provider.clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  if (scopes.length > 0) url.searchParams.set('scope', scopes.join(' '));
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  return { url: url.href, state, codeVerifier };
}

/** What came back to the redirect URI. */
export type AuthorizationResponse =
  | { kind: 'code'; code: string }
  /** The provider said no (`access_denied`, ...), as RFC 6749 §4.1.2.1 error parameters. */
  | { kind: 'error'; error: string }
  /** Not a response to our request: wrong or missing state, wrong issuer, no code. */
  | { kind: 'invalid'; error: 'invalid_state' | 'invalid_response' };

/**
 * Checks the callback's parameters against the `state` kept for the session (and the issuer,
 * RFC 9207, when the provider's `issuer` is configured). The caller must already have consumed
 * the stored state so that it cannot be replayed.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 */
export function parseAuthorizationResponse(
  provider: ResolvedProvider,
  parameters: URLSearchParams,
  expectedState: string,
): AuthorizationResponse {
  if (parameters.getAll('state').length !== 1 || parameters.get('state') !== expectedState) {
    return { kind: 'invalid', error: 'invalid_state' };
  }
  const params = new URLSearchParams(parameters);
  if (provider.issuer === undefined) params.delete('iss');
  try {
    const { as, client } = minimalContext(provider);
    const valid = oauth.validateAuthResponse(as, client, params, expectedState);
    const code = valid.get('code');
    if (!code || code.length > 4096) return { kind: 'invalid', error: 'invalid_response' };
    return { kind: 'code', code };
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) {
      return { kind: 'error', error: safeCode(error.error) };
    }
    return { kind: 'invalid', error: 'invalid_response' };
  }
}

/**
 * Exchanges an authorization code, proving possession of the PKCE verifier. A refused code
 * (spent, expired, wrong verifier) comes back as `refused`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.5
 */
export async function authorizationCodeGrant(
  provider: ResolvedProvider,
  grant: { code: string; codeVerifier: string; redirectUri: string },
  options: GrantOptions = {},
): Promise<TokenOutcome> {
  if (typeof grant.code !== 'string' || grant.code === '' || grant.code.length > 4096) {
    throw new InvalidInputError('code', 'must be a non-empty string');
  }
  if (
    typeof grant.codeVerifier !== 'string' ||
    !/^[A-Za-z0-9._~-]{43,128}$/.test(grant.codeVerifier)
  ) {
    throw new InvalidInputError('code_verifier', 'must be 43-128 characters (RFC 7636 §4.1)');
  }
  const redirectUri = checkRedirectUri(grant.redirectUri);
  return exchange(provider, options, ({ as, client, auth, requestOptions }) => {
    // oauth4webapi takes the code from callback parameters it has validated itself; the state
    // was checked by parseAuthorizationResponse, so none is expected here.
    const callback = oauth.validateAuthResponse(
      as,
      client,
      new URLSearchParams({ code: grant.code }),
      oauth.expectNoState,
    );
    return oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      callback,
      redirectUri,
      grant.codeVerifier,
      requestOptions,
    );
  });
}

function minimalContext(provider: ResolvedProvider) {
  const as: oauth.AuthorizationServer = {
    issuer: provider.issuer ?? new URL(provider.tokenUrl).origin,
    token_endpoint: provider.tokenUrl,
  };
  return { as, client: { client_id: provider.clientId } satisfies oauth.Client };
}

/** RFC 6749 §3.1.2: absolute, no fragment; https, or http on loopback. */
export function checkRedirectUri(value: unknown): string {
  let url: URL;
  try {
    url = new URL(value as string);
  } catch {
    throw new InvalidInputError('redirect_uri', 'is not a valid URL');
  }
  if (url.hash !== '' || String(value).includes('#')) {
    throw new InvalidInputError('redirect_uri', 'must not have a fragment');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new InvalidInputError('redirect_uri', 'must be https (plain http only on loopback)');
  }
  if (url.href.length > 2048) throw new InvalidInputError('redirect_uri', 'is too long');
  return String(value);
}
