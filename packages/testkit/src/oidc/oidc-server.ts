// oidc-provider (an independent, certified OpenID Connect server) on loopback, with refresh
// token rotation, revocation and introspection on, short lifetimes, and an interaction handler
// that logs the user in and consents at once, so a browser can be driven through the
// authorization code flow programmatically.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface OidcServer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The client's one registered redirect URI. */
  redirectUri: string;
  /** Follows a browser through authorize → login → consent → back; returns the callback query. */
  authorize(url: string): Promise<URLSearchParams>;
  /** RFC 7662 straight at the provider (the test's own view, not Tokenwarden's). */
  isActive(token: string, hint: 'access_token' | 'refresh_token'): Promise<boolean>;
  /** RFC 7009 straight at the provider, behind Tokenwarden's back. */
  revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<void>;
  close(): Promise<void>;
}

export interface StartOidcServerOptions {
  /** The client's redirect URI; by default an app's callback where nothing listens. */
  redirectUri?: string;
  /** Who logs in at the interaction; `user-42` by default. */
  accountId?: string;
  /** Access token lifetime in seconds; 60 by default. */
  accessTokenTtl?: number;
}

export async function startOidcServer(options: StartOidcServerOptions = {}): Promise<OidcServer> {
  const clientId = 'tokenwarden';
  const clientSecret = 'oidc-client-secret-0123456789abcdef';
  const redirectUri = options.redirectUri ?? 'https://app.example/oauth/callback';
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
    redirectUri,
    async authorize(url) {
      return (await browse(url, redirectUri)).searchParams;
    },
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

/**
 * A browser: follows redirects (keeping cookies) from `url` until one points at `stopAt`, and
 * answers that URL. Every hop is a real HTTP request.
 */
export async function browse(url: string, stopAt: string): Promise<URL> {
  const cookies = new Map<string, string>();
  let next = url;
  for (let hop = 0; hop < 15; hop++) {
    if (next.startsWith(stopAt)) return new URL(next);
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
    const body = await res.text();
    const location = res.headers.get('location');
    if (!location) throw new Error(`browse: HTTP ${res.status} without a redirect: ${body}`);
    next = new URL(location, next).href;
  }
  throw new Error('browse: too many redirects');
}
