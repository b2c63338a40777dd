import * as oauth from 'oauth4webapi';
import type { ResolvedProvider } from '../provider/settings.ts';

/**
 * RFC 6749 §2.3.1 client authentication as an oauth4webapi `ClientAuth`. `client_secret_json`
 * authenticates like `client_secret_post` (id and secret as body members); `jsonBodyFetch`
 * then sends that body as JSON, for providers that want one (Atlassian).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 */
export function clientAuthentication(provider: ResolvedProvider): oauth.ClientAuth {
  const secret = provider.clientSecret ?? '';
  return provider.clientAuth === 'client_secret_basic'
    ? oauth.ClientSecretBasic(secret)
    : oauth.ClientSecretPost(secret);
}

/**
 * The seam for JSON-body providers: oauth4webapi builds the form (parameters and client
 * credentials) as for any provider, and this `fetch` re-encodes that same form as a JSON object
 * on its way out. The protocol code is not forked; only the encoding of the body changes.
 */
export function jsonBodyFetch(fetchImpl: typeof fetch): typeof fetch {
  return (input, init) => {
    const body = init?.body;
    if (!(body instanceof URLSearchParams) && typeof body !== 'string') {
      return fetchImpl(input, init);
    }
    const form = body instanceof URLSearchParams ? body : new URLSearchParams(body);
    const headers = new Headers(init?.headers);
    headers.set('content-type', 'application/json');
    return fetchImpl(input, {
      ...init,
      headers,
      body: JSON.stringify(Object.fromEntries(form)),
    });
  };
}
