import * as oauth from 'oauth4webapi';
import { InvalidInputError } from '../errors.ts';
import type { ClientAuthMethod, ProviderConfig } from './settings.ts';
import { isLoopback, isSecureUrl } from './urls.ts';
import { MAX_RESPONSE_BYTES, readLimited } from '../oauth/token-response.ts';

export interface DiscoveryOptions {
  fetch?: typeof fetch;
  /** Default 10 s. */
  timeoutMs?: number;
  /** `oidc` (default): `/.well-known/openid-configuration`; `oauth2`: RFC 8414's well-known URI. */
  algorithm?: 'oidc' | 'oauth2';
}

/**
 * A provider configuration for any OpenID Connect (or RFC 8414) issuer, from its metadata:
 * endpoints, issuer (checked against the one asked for, as both specs require) and a client
 * authentication method the server supports. Merge the result with `name`, `clientId`,
 * `clientSecret` and any override. Throws InvalidInputError when the issuer cannot be
 * discovered; the message names the issuer, never a secret.
 *
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 */
export async function discoverProvider(
  issuer: string,
  options: DiscoveryOptions = {},
): Promise<Omit<ProviderConfig, 'name' | 'clientId'>> {
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(issuer);
  } catch {
    throw new InvalidInputError('issuer', 'is not a valid URL');
  }
  const insecure = isLoopback(issuerUrl.hostname);
  if (!isSecureUrl(issuerUrl)) {
    throw new InvalidInputError('issuer', 'must be https (plain http only on loopback)');
  }
  const fetchImpl = options.fetch ?? fetch;
  let as: oauth.AuthorizationServer;
  try {
    const response = await oauth.discoveryRequest(issuerUrl, {
      algorithm: options.algorithm ?? 'oidc',
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      [oauth.allowInsecureRequests]: insecure,
      [oauth.customFetch]: async (url, init) => {
        const answer = await fetchImpl(url, init as RequestInit);
        const text = await readLimited(answer, MAX_RESPONSE_BYTES);
        return new Response(text ?? '', {
          status: text === undefined ? 502 : answer.status,
          headers: answer.headers,
        });
      },
    });
    as = await oauth.processDiscoveryResponse(issuerUrl, response);
  } catch {
    throw new InvalidInputError('issuer', `metadata of ${issuerUrl.href} could not be discovered`);
  }
  if (typeof as.token_endpoint !== 'string') {
    throw new InvalidInputError('issuer', 'metadata has no token_endpoint');
  }
  const methods = Array.isArray(as.token_endpoint_auth_methods_supported)
    ? as.token_endpoint_auth_methods_supported
    : ['client_secret_basic']; // RFC 8414 §2: the default when the member is absent
  const clientAuth: ClientAuthMethod = methods.includes('client_secret_basic')
    ? 'client_secret_basic'
    : 'client_secret_post';
  return {
    issuer: as.issuer,
    tokenUrl: as.token_endpoint,
    authorizeUrl: as.authorization_endpoint,
    revocationUrl: as.revocation_endpoint,
    introspectionUrl: as.introspection_endpoint,
    clientAuth,
  };
}
