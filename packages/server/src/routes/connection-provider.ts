import { RefreshUnavailableError } from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import { InvalidRequestError } from '../errors.ts';
import { authenticate, type ServerContext } from '../http/context.ts';
import {
  closedObject,
  errorResponses,
  idParams,
  type TokensFields,
  tokensInput,
  tokensProperties,
} from '../http/schemas.ts';
import { connectionSummary, connectionSummarySchema } from '../http/views.ts';
import { auditedOnConnection } from './connection-access.ts';

interface IntrospectBody {
  token?: 'access_token' | 'refresh_token';
}

const tokensSchema = {
  tags: ['connections'],
  summary: 'Re-authorize a connection: new tokens from a new handshake, same id',
  description:
    'For a connection that needs_reauth (or any other: its tokens are replaced). It becomes ' +
    'active with a bumped version; callers waiting on it get the new token, and a refresh still ' +
    'redeeming the old refresh token cannot overwrite it. Audited as connection.reauthorize ' +
    '(`recovered: true` when it was not active). Needs connections.write on the connection.',
  params: idParams,
  body: closedObject(tokensProperties, ['access_token']),
  response: {
    200: {
      ...connectionSummarySchema,
      required: [...connectionSummarySchema.required, 'recovered'],
      properties: {
        ...connectionSummarySchema.properties,
        recovered: { type: 'boolean', description: 'It was not active before.' },
      },
    },
    ...errorResponses(400, 401, 403, 404, 413, 503),
  },
} as const;

const introspectSchema = {
  tags: ['connections'],
  summary: "RFC 7662: ask the provider whether the connection's token is still active",
  description:
    "The token never leaves Tokenwarden; the answer holds only RFC 7662's non-secret members. " +
    'Needs connections.read on the connection (it says whether a token works, never what it ' +
    'is). A provider without an introspection_url: 400 invalid_request; a provider that cannot ' +
    'answer now: 503 refresh_unavailable with Retry-After. The body may be omitted.',
  params: idParams,
  body: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      token: {
        type: 'string',
        enum: ['access_token', 'refresh_token'],
        description: 'Which token to ask about. Default access_token.',
      },
    },
  },
  response: {
    200: closedObject(
      {
        active: { type: 'boolean' },
        token: { type: 'string', description: 'Which token was introspected.' },
        scope: { type: 'string' },
        client_id: { type: 'string' },
        token_type: { type: 'string' },
        exp: { type: 'integer', description: 'Epoch seconds.' },
        iat: { type: 'integer', description: 'Epoch seconds.' },
        sub: { type: 'string' },
      },
      ['active', 'token'],
    ),
    ...errorResponses(400, 401, 403, 404, 413, 503),
  },
} as const;

/** A provider that could not answer an introspection request right now. */
class IntrospectionUnavailableError extends RefreshUnavailableError {
  constructor(id: string, retryAfterMs: number, lastError: string) {
    super(id, retryAfterMs, lastError);
    this.message =
      `The provider could not answer for connection "${id}" right now (${lastError}); ` +
      `retry in ${Math.ceil(retryAfterMs / 1000)} s.`;
    this.name = 'IntrospectionUnavailableError';
  }
}

/** What the provider is asked about a connection (RFC 7662), and re-authorization. */
export const connectionProviderRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.addHook('onRequest', authenticate(ctx));

  app.put<{ Params: { id: string }; Body: TokensFields }>(
    '/v1/connections/:id/tokens',
    { schema: tokensSchema, config: { auditAction: 'connection.reauthorize' } },
    async (request) => {
      const { id } = request.params;
      const after = await auditedOnConnection(
        ctx,
        request,
        id,
        'connection.reauthorize',
        'connections.write',
        () => ctx.broker.reauthorize(id, tokensInput(request.body)),
        (reauthorized, before) => ({
          version: reauthorized.version,
          recovered: reauthorized.recovered,
          previous_status: before.status,
          has_refresh_token: reauthorized.hasRefreshToken,
        }),
      );
      return { ...connectionSummary(after), recovered: after.recovered };
    },
  );

  app.post<{ Params: { id: string }; Body: IntrospectBody | undefined | null }>(
    '/v1/connections/:id/introspect',
    { schema: introspectSchema, config: { auditAction: 'connection.introspect' } },
    async (request, reply) => {
      const { id } = request.params;
      const which = request.body?.token ?? 'access_token';
      const result = await auditedOnConnection(
        ctx,
        request,
        id,
        'connection.introspect',
        'connections.read',
        async (info) => {
          const outcome = await ctx.broker.introspect(id, { token: which });
          if (outcome.kind === 'unsupported') {
            throw new InvalidRequestError(
              `introspection_url: is not configured for provider ${info.provider}`,
            );
          }
          if (outcome.kind === 'failed') {
            throw new IntrospectionUnavailableError(
              id,
              outcome.retryAfterMs ?? 1_000,
              outcome.error,
            );
          }
          return outcome.result;
        },
        (answer) => ({ token: which, active: answer.active }),
      );
      void reply.header('cache-control', 'no-store');
      return {
        active: result.active,
        token: which,
        scope: result.scope,
        client_id: result.clientId,
        token_type: result.tokenType,
        exp: result.exp === undefined ? undefined : Math.trunc(result.exp),
        iat: result.iat === undefined ? undefined : Math.trunc(result.iat),
        sub: result.sub,
      };
    },
  );
};
