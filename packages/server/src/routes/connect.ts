import { TokenwardenError, type ConnectResult } from '@tokenwarden/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { allows } from '../auth/principal.ts';
import { errorCodeOf, ForbiddenError } from '../errors.ts';
import {
  authenticate,
  recordAudit,
  type ConnectSettings,
  type ServerContext,
} from '../http/context.ts';
import {
  closedObject,
  errorResponses,
  idString,
  isoTime,
  nameString,
  providerName,
} from '../http/schemas.ts';
import { iso } from '../http/views.ts';
import { checkRedirect } from '../http/redirect-uri.ts';

interface StartBody {
  provider: string;
  owner: string;
  redirect_uri: string;
  scopes?: string[];
  connection_id?: string;
}

const startSchema = {
  tags: ['connect'],
  summary: 'Start a connect flow: the URL to send the user to',
  description:
    'Tokenwarden runs the OAuth handshake (state + PKCE S256) for the backend: send the ' +
    "user's browser to `authorize_url`; the provider sends it back to GET /v1/connect/callback, " +
    'which creates the connection (or re-authorizes `connection_id`, keeping its id) and ' +
    'redirects to `redirect_uri` with `connection_id=` or `error=`. The session is single-use ' +
    'and lives 10 minutes. Needs connections.write on the owner and provider. `redirect_uri` ' +
    'must be absolute https (http only on loopback), without a fragment or user info.',
  body: closedObject(
    {
      provider: providerName,
      owner: { ...nameString, pattern: '^(?!\\*$)\\S(.*\\S)?$' },
      redirect_uri: { type: 'string', minLength: 1, maxLength: 2048 },
      scopes: {
        type: 'array',
        maxItems: 100,
        items: { type: 'string', pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,256}$' },
        description: "Default: the provider's scopes.",
      },
      connection_id: {
        ...idString,
        description:
          'Re-authorize this connection (same owner and provider) instead of creating one.',
      },
    },
    ['provider', 'owner', 'redirect_uri'],
  ),
  response: {
    201: closedObject(
      {
        authorize_url: { type: 'string', description: "The provider's authorization URL." },
        expires_at: { ...isoTime, description: 'The callback is refused after this.' },
      },
      ['authorize_url', 'expires_at'],
    ),
    ...errorResponses(400, 401, 403, 404, 413),
  },
} as const;

/** A query parameter as the parser gives it: a string, or a list when it is repeated. */
function queryValue(description: string) {
  return {
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    description,
  } as const;
}

const callbackSchema = {
  tags: ['connect'],
  summary: 'Where the provider sends the browser back (no API key)',
  description:
    "Register this URL as the redirect URI at every provider. Answers 303 to the session's " +
    '`redirect_uri` with `connection_id=` (connected) or `error=` (the provider refused, or the ' +
    'code exchange failed). A state that matches no live session (unknown, expired, already ' +
    'used) has nowhere to go back to: 400 invalid_request, nothing stored.',
  security: [],
  // Providers add their own parameters (scope, authuser, session_state, ...): none is refused.
  // A parameter given twice arrives as a list; core refuses a repeated state itself (audited).
  querystring: {
    type: 'object',
    additionalProperties: true,
    properties: {
      state: queryValue('The session, as the authorization URL carried it.'),
      code: queryValue('The authorization code (RFC 6749 §4.1.2).'),
      error: queryValue('The provider refused (RFC 6749 §4.1.2.1).'),
      error_description: queryValue("The provider's words for error."),
      iss: queryValue('The issuer (RFC 9207), checked when the provider sends it.'),
    },
  },
  response: {
    303: { type: 'null', description: "Redirect to the session's redirect_uri." },
    ...errorResponses(400, 404, 500, 503),
  },
} as const;

/** The actor of audit rows written for the browser, which carries no API key. */
const BROWSER = 'browser';

/** The connect flow over HTTP: a thin layer over core's ConnectFlow. */
export const connectRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.post<{ Body: StartBody }>(
    '/v1/connect/sessions',
    {
      schema: startSchema,
      onRequest: authenticate(ctx),
      config: { auditAction: 'connect.start' },
    },
    async (request, reply) => {
      const connect = enabled(ctx);
      const body = request.body;
      const target = { owner: body.owner, provider: body.provider };
      const action = 'connect.start';
      const audit = (outcome: string, detail?: Record<string, unknown>) =>
        recordAudit(ctx, request, {
          action,
          outcome,
          connectionId: body.connection_id,
          ...target,
          detail,
        });
      if (!allows(request.principal, 'connections.write', target)) {
        audit('forbidden');
        throw new ForbiddenError(
          'This API key has no connections.write grant for this owner and provider.',
        );
      }
      let started;
      try {
        const redirectUri = checkRedirect(body.redirect_uri, connect.redirectOrigins);
        started = await connect.flow.start({
          provider: body.provider,
          owner: body.owner,
          scopes: body.scopes,
          redirectUri,
          connectionId: body.connection_id,
        });
      } catch (error) {
        audit(errorCodeOf(error));
        throw error;
      }
      // Never the authorization URL: it carries the state.
      audit('ok', {
        redirect_to: redirectTarget(body.redirect_uri),
        reauthorize: body.connection_id !== undefined,
        expires_at: iso(started.expiresAt),
      });
      void reply.header('cache-control', 'no-store');
      return reply
        .code(201)
        .send({ authorize_url: started.authorizeUrl, expires_at: iso(started.expiresAt) });
    },
  );

  app.get(
    '/v1/connect/callback',
    {
      schema: callbackSchema,
      config: { auditAction: 'connect.callback' },
      // Taking the session is a side effect: a HEAD (a link scanner, a prefetch) must not use it up.
      exposeHeadRoute: false,
    },
    async (request, reply) => {
      const connect = enabled(ctx);
      // The raw query, so that a repeated state is seen as such (core refuses it).
      const query = request.url.indexOf('?');
      const parameters = new URLSearchParams(query < 0 ? '' : request.url.slice(query + 1));
      let result: ConnectResult;
      try {
        result = await connect.flow.complete(parameters);
      } catch (error) {
        browserAudit(ctx, request, { outcome: errorCodeOf(error), detail: stateProblem(error) });
        throw error;
      }
      if (result.kind === 'connected') {
        const { connection } = result;
        ctx.owners.set(connection.id, connection);
        browserAudit(ctx, request, {
          outcome: 'ok',
          connectionId: connection.id,
          owner: connection.owner,
          provider: connection.provider,
          detail: {
            reauthorized: result.reauthorized,
            version: connection.version,
            has_refresh_token: connection.hasRefreshToken,
            ...('recovered' in connection ? { recovered: connection.recovered } : {}),
          },
        });
      } else {
        // The provider refused (access_denied, ...) or the code exchange failed: nothing stored.
        browserAudit(ctx, request, { outcome: 'connect_failed', detail: { error: result.error } });
      }
      return redirect(reply, result.redirectTo);
    },
  );
};

function enabled(ctx: ServerContext): ConnectSettings {
  if (!ctx.connect) {
    throw new NotEnabledError();
  }
  return ctx.connect;
}

/** The connect flow needs the server's public callback URL, which this server was not given. */
class NotEnabledError extends TokenwardenError {
  constructor() {
    super(
      'not_found',
      'The connect flow is not enabled on this server: start it with its public callback URL.',
    );
    this.name = 'NotEnabledError';
  }
}

/** 303 (RFC 9110 §15.4.4): the browser follows with a GET; nothing about the flow is cached. */
function redirect(reply: FastifyReply, location: string) {
  return reply
    .code(303)
    .header('location', location)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send();
}

/** Where the browser is sent, for the audit: origin and path, never the query. */
function redirectTarget(uri: string): string {
  const url = new URL(uri);
  return url.origin + url.pathname;
}

/** Which rule a refused callback broke, from core's field name; never a value. */
function stateProblem(error: unknown): Record<string, unknown> | undefined {
  const field = (error as { field?: unknown }).field;
  return typeof field === 'string' ? { field } : undefined;
}

function browserAudit(
  ctx: ServerContext,
  request: FastifyRequest,
  fields: {
    outcome: string;
    connectionId?: string;
    owner?: string;
    provider?: string;
    detail?: Record<string, unknown>;
  },
): void {
  ctx.audit.record({
    requestId: request.id,
    actor: BROWSER,
    action: 'connect.callback',
    connectionId: fields.connectionId ?? null,
    owner: fields.owner ?? null,
    provider: fields.provider ?? null,
    outcome: fields.outcome,
    detail: fields.detail ? JSON.stringify(fields.detail) : null,
  });
}
