// oidc-provider on loopback for connect-flow tests, and a browser that follows its redirects:
//
//   const oidc = await startOidcServer({ redirectUri: callbackUrl });
//   const callback = await oidc.authorize(authorizeUrl); // the callback's query
//   await oidc.close();
export {
  browse,
  startOidcServer,
  type OidcServer,
  type StartOidcServerOptions,
} from './oidc-server.ts';
