// The admin API itself, for the console: the same route plugins as /v1/*, registered once more
// under /v1/console/api, where the session cookie (and on writes its CSRF token) stands in for
// the admin key. One implementation of every admin action, so the console can do nothing the
// API cannot, and answers exactly as the API does. Hidden from the OpenAPI document: the
// product's interface is /v1/*; this is a door to it.
//
// Only routes an operator needs and none that hands out a token: no /token, /rejected or proxy.
import type { FastifyPluginAsync } from 'fastify';
import { ADMIN } from '../auth/principal.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { ServerContext } from '../http/context.ts';
import { clientRoutes } from './clients.ts';
import { connectRoutes } from './connect.ts';
import { connectionRoutes } from './connections.ts';
import { providerRoutes } from './providers.ts';
import { webhookRoutes, type WebhookRoutesOptions } from './webhooks.ts';

export const CONSOLE_API_PREFIX = '/v1/console/api';

/**
 * Registered inside the console's session scope: its onRequest hook has checked the session
 * and the CSRF token before the routes' own authentication hooks run, so this one only names
 * the caller.
 */
const sessionHolder = {
  authenticate: () => Promise.resolve(ADMIN),
} as unknown as Authenticator;

export const consoleAdminRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (
  app,
  options,
) => {
  app.addHook('onRoute', (route) => {
    // Without the response schemas: compiling their serializers a second time would cost every
    // server start about 30 ms of CPU (the validators are compiled once, shared with /v1), and
    // the handlers build every answer field by field already (the views), so the answers have
    // the same fields and values as at /v1 (console-api.test.ts compares them).
    const { response: _response, ...schema } = route.schema ?? {};
    route.schema = { ...schema, hide: true };
  });
  const ctx: ServerContext = { ...options, auth: sessionHolder };
  const prefix = CONSOLE_API_PREFIX;
  await app.register(providerRoutes, { ...ctx, prefix });
  await app.register(connectionRoutes, { ...ctx, prefix });
  await app.register(connectRoutes, { ...ctx, prefix });
  await app.register(clientRoutes, { ...ctx, prefix });
  // The endpoints only: the server's own registration runs the delivery worker.
  await app.register(webhookRoutes, {
    ...ctx,
    keyRing: options.keyRing,
    webhooks: { ...options.webhooks, deliver: false },
    prefix,
  });
};
