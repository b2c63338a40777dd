// oidc-provider (an independent, certified OpenID Connect server) on loopback for the server's
// connect-flow tests: refresh token rotation, revocation and introspection on, and an
// interaction handler that logs the user in and consents at once, so a browser can be driven
// through it programmatically. The redirect URI is the Tokenwarden server's callback.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface OidcServer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** RFC 7662 straight at the provider (the test's own view, not Tokenwarden's). */
  isActive(token: string, hint: 'access_token' | 'refresh_token'): Promise<boolean>;
  /** RFC 7009 straight at the provider, behind Tokenwarden's back. */
  revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<void>;
  close(): Promise<void>;
}

export async function startOidcServer(options: {
  redirectUri: string;
  accountId?: string;
  accessTokenTtl?: number;
}): Promise<OidcServer> {
  const clientId = 'tokenwarden';
  const clientSecret = 'oidc-client-secret-0123456789abcdef';
  const accountId = options.accountId ?? 'user-42';
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    // Single-use refresh tokens; a consumed one presented again revokes the grant.
    rotateRefreshToken: true,
    ttl: {
      AccessToken: options.accessTokenTtl ?? 60,
      AuthorizationCode: 60,
      IdToken: 60,
      RefreshToken: 3600,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
    scopes: ['openid', 'offline_access'],
    cookies: { keys: ['oidc-test-cookie-key-not-a-secret'] },
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
  });
  const callback = provider.callback();

  /** Login and consent, answered at once for `accountId`. */
  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    let result: Record<string, unknown>;
    if (details.prompt.name === 'login') {
      result = { login: { accountId } };
    } else {
      const grant =
        (details.grantId && (await provider.Grant.find(details.grantId))) ||
        new provider.Grant({ accountId, clientId });
      const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/interaction/')) {
      interaction(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    } else {
      callback(req, res);
    }
  });

  const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
  const post = (path: string, token: string, hint: string) =>
    fetch(`${issuer}${path}`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: hint }),
    });

  return {
    issuer,
    clientId,
    clientSecret,
    async isActive(token, hint) {
      const res = await post('/token/introspection', token, hint);
      if (res.status !== 200) throw new Error(`introspection: HTTP ${res.status}`);
      return ((await res.json()) as { active: boolean }).active;
    },
    async revoke(token, hint) {
      const res = await post('/token/revocation', token, hint);
      await res.body?.cancel();
      if (res.status !== 200) throw new Error(`revocation: HTTP ${res.status}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
