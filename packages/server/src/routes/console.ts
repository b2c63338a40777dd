// The admin console's API under /v1/console: sign-in with the admin key for a session cookie,
// sign-out, the reads the pages make (console-connections.ts, console-overview.ts) and the admin
// API itself under /v1/console/api (console-admin.ts). Hidden from the OpenAPI document: it is
// the console's own interface, not the product's, and it is authenticated by cookie, not by API
// key. Every route but the sign-in needs the session; every write, its CSRF token too.
import type { SessionReply } from '@tokenwarden/console/api';
import type { KeyRing } from '@tokenwarden/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ADMIN } from '../auth/principal.ts';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
import {
  cookieValue,
  sameToken,
  SESSION_COOKIE,
  SESSION_TTL_MS,
  SessionSigner,
  type ConsoleSession,
} from '../auth/console-session.ts';
import { recordAudit, type ServerContext } from '../http/context.ts';
import { closedObject } from '../http/schemas.ts';
import { consoleAdminRoutes } from './console-admin.ts';
import { consoleAssets, securityHeaders } from './console-assets.ts';
import { consoleConnectionRoutes } from './console-connections.ts';
import { consoleOverviewRoutes } from './console-overview.ts';
import type { ServerWebhookOptions } from './webhooks.ts';

export interface ConsoleContext extends ServerContext {
  keyRing: KeyRing;
  /** The server's webhook settings: the console's endpoints check URLs as the API does. */
  webhooks: ServerWebhookOptions | undefined;
}

/** Methods that change nothing: the only ones allowed without the CSRF token. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

export const consoleRoutes: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  const signer = new SessionSigner(ctx.keyRing);
  app.addHook('onSend', securityHeaders);
  await app.register(consoleAssets);

  /** onRequest hook of the API routes: a valid session, and for writes its CSRF token. */
  const requireSession = async (request: FastifyRequest): Promise<void> => {
    const session = sessionOf(request);
    if (!session)
      throw new UnauthorizedError('Sign in to the console first (session missing or expired).');
    if (!SAFE_METHODS.has(request.method)) {
      const header = request.headers['x-csrf-token'];
      if (!sameToken(typeof header === 'string' ? header : undefined, session.csrfToken)) {
        throw new ForbiddenError("Send the session's CSRF token in the x-csrf-token header.");
      }
    }
    request.principal = ADMIN;
  };
  const sessionOf = (request: FastifyRequest): ConsoleSession | undefined =>
    signer.verify(cookieValue(request.headers.cookie, SESSION_COOKIE), Date.now());

  app.post<{ Body: { admin_key: string } }>(
    '/v1/console/session',
    {
      schema: {
        hide: true,
        body: closedObject({ admin_key: { type: 'string', minLength: 1, maxLength: 512 } }, [
          'admin_key',
        ]),
      },
      config: { auditAction: 'console.sign_in' },
    },
    async (request, reply) => {
      // The authenticator's own check: a rotated admin key counts here at once too.
      request.principal = await ctx.auth
        .authenticate(`Bearer ${request.body.admin_key}`, request.raw.socket)
        .catch(() => {
          throw new UnauthorizedError('That is not the admin key.');
        });
      if (request.principal.kind !== 'admin') {
        throw new UnauthorizedError('That is not the admin key.');
      }
      const { token, session } = signer.issue(Date.now());
      recordAudit(ctx, request, { action: 'console.sign_in', outcome: 'ok' });
      setSessionCookie(request, reply, token, SESSION_TTL_MS / 1000);
      return reply.code(201).send(sessionReply(session));
    },
  );

  app.get(
    '/v1/console/session',
    { schema: { hide: true }, onRequest: requireSession },
    // The page reads its CSRF token here after a reload: the cookie itself is out of its reach.
    async (request) => sessionReply(sessionOf(request)!),
  );

  app.delete(
    '/v1/console/session',
    { schema: { hide: true }, onRequest: requireSession },
    async (request, reply) => {
      setSessionCookie(request, reply, '', 0);
      return reply.code(204).send();
    },
  );

  await app.register(async (signedIn) => {
    signedIn.addHook('onRequest', requireSession);
    await signedIn.register(consoleConnectionRoutes, ctx);
    await signedIn.register(consoleOverviewRoutes, ctx);
    await signedIn.register(consoleAdminRoutes, ctx);
  });
};

function sessionReply(session: ConsoleSession): SessionReply {
  return {
    csrf_token: session.csrfToken,
    expires_at: new Date(session.expiresAtMs).toISOString(),
  };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Path=/v1/console (no
 * other route sees it), and Secure unless the console is reached on loopback: plain http there
 * is the one place a browser may keep a cookie without TLS.
 */
function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  value: string,
  maxAgeSeconds: number,
): void {
  const secure = !LOOPBACK.has(request.hostname.replace(/:\d+$/, ''));
  void reply.header(
    'set-cookie',
    `${SESSION_COOKIE}=${value}; Path=/v1/console; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict` +
      (secure ? '; Secure' : ''),
  );
}
