// oidc-provider (an independent, certified OpenID Connect server) on loopback, with refresh
// token rotation and short lifetimes, and an interaction handler that logs the user in and
// consents at once, so the authorization code flow can be driven programmatically.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface OidcServer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Follows a browser through authorize → login → consent → back; returns the callback query. */
  authorize(url: string): Promise<URLSearchParams>;
  close(): Promise<void>;
}

export async function startOidcServer(
  options: { accessTokenTtl?: number; accountId?: string } = {},
): Promise<OidcServer> {
  const clientId = 'tokenwarden';
  const clientSecret = 'oidc-client-secret-0123456789abcdef';
  const redirectUri = 'https://app.example/oauth/callback';
  const accountId = options.accountId ?? 'user-42';
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
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
      AccessToken: options.accessTokenTtl ?? 10,
      AuthorizationCode: 60,
      IdToken: 60,
      RefreshToken: 3600,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
    scopes: ['openid', 'offline_access'],
    cookies: { keys: ['oidc-test-cookie-key-not-a-secret'] },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub }),
    }),
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

  async function authorize(url: string): Promise<URLSearchParams> {
    const cookies = new Map<string, string>();
    let next = url;
    for (let hop = 0; hop < 12; hop++) {
      if (next.startsWith(redirectUri)) return new URL(next).searchParams;
      const res = await fetch(next, {
        redirect: 'manual',
        headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      for (const cookie of res.headers.getSetCookie()) {
        const [pair] = cookie.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) cookies.delete(name);
        else cookies.set(name, value);
      }
      await res.body?.cancel();
      const location = res.headers.get('location');
      if (!location) throw new Error(`authorize: HTTP ${res.status} without a redirect`);
      next = new URL(location, next).href;
    }
    throw new Error('authorize: too many redirects');
  }

  return {
    issuer,
    clientId,
    clientSecret,
    redirectUri,
    authorize,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
