import type { AccessToken } from '@tokenwarden/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, type GrantTarget } from '../auth/principal.ts';
import { errorCodeOf } from '../errors.ts';
import { authenticate, type ServerContext } from '../http/context.ts';
import { closedObject, errorResponses, idParams, isoTime } from '../http/schemas.ts';
import { iso } from '../http/views.ts';
import { auditFailure, authorizedConnection, requireGrant } from './connection-access.ts';

/** The one response that carries a token. */
const tokenResponse = closedObject(
  {
    access_token: { type: 'string' },
    token_type: { type: 'string' },
    expires_at: isoTime,
    version: {
      type: 'integer',
      description:
        'Report this version to /token/rejected if the resource server refuses the token.',
    },
  },
  ['access_token', 'token_type', 'expires_at', 'version'],
);

const responses = { 200: tokenResponse, ...errorResponses(400, 401, 403, 404, 409, 413, 503) };

interface TokenBody {
  min_ttl?: number;
}

interface RejectedBody {
  version: number;
}

/** Access-token hand-outs: the hot path. Every hand-out is audited (never with the token). */
export const tokenRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.addHook('onRequest', authenticate(ctx));

  app.post<{ Params: { id: string }; Body: TokenBody | undefined }>(
    '/v1/connections/:id/token',
    {
      schema: {
        tags: ['tokens'],
        summary: 'A valid access token, refreshed first if it expires within min_ttl seconds',
        description: 'Needs token.read on the connection. The body may be omitted.',
        params: idParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            min_ttl: {
              type: 'number',
              minimum: 0,
              maximum: 86_400,
              description:
                "Seconds the token should still be valid for; a refresh happens first if it has less. A wish, not a guarantee: it is bounded by half the lifetime of the provider's tokens (a min_ttl no token can satisfy refreshes once, then the fresh token is handed out with its real expiry), and a refresh only a min_ttl asks for happens at most once per connection every 10 s. Check expires_at.",
            },
          },
        },
        response: responses,
      },
      config: { auditAction: 'token.read', accessLog: 'failures' },
    },
    (request, reply) => handOut(ctx, request, reply, 'token.read'),
  );

  app.post<{ Params: { id: string }; Body: RejectedBody }>(
    '/v1/connections/:id/token/rejected',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Report that a resource server refused the token of `version`; get a fresh one',
        description:
          'Refreshes only if `version` is still current (once, however many callers report it); ' +
          'otherwise answers the newer token at once. Needs token.read on the connection.',
        params: idParams,
        body: closedObject(
          {
            version: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
          },
          ['version'],
        ),
        response: responses,
      },
      config: { auditAction: 'token.rejected', accessLog: 'failures' },
    },
    (request, reply) => handOut(ctx, request, reply, 'token.rejected'),
  );
};

/**
 * The hand-out both token routes share. The hot path of the whole server: two awaits (the broker,
 * the audit's group commit), no per-request closures, the grant check synchronous when the
 * connection's owner is known.
 */
async function handOut(
  ctx: ServerContext,
  request: FastifyRequest<{ Params: { id: string }; Body: TokenBody | RejectedBody | undefined }>,
  reply: FastifyReply,
  action: 'token.read' | 'token.rejected',
) {
  const { id } = request.params;
  const actor = actorOf(request.principal);
  let info: GrantTarget | undefined;
  let token: AccessToken;
  try {
    info = ctx.owners.get(id) ?? (await authorizedConnection(ctx, request, id, 'token.read'));
    requireGrant(request, 'token.read', id, info);
    token =
      action === 'token.read'
        ? await brokerToken(ctx, request.id, actor, id, {
            minTtlSeconds: (request.body as TokenBody | undefined)?.min_ttl,
          })
        : await brokerToken(ctx, request.id, actor, id, {
            rejectedVersion: (request.body as RejectedBody).version,
          });
  } catch (error) {
    auditFailure(ctx, request, action, id, error, info);
    ctx.metrics?.countHandout(action === 'token.read' ? 'token' : 'rejected', errorCodeOf(error));
    throw error;
  }
  // Fail closed: the token leaves only once its audit row is stored (refused 503 otherwise).
  await ctx.audit.recordDurably({
    at: Date.now(),
    requestId: request.id,
    actor,
    action,
    connectionId: id,
    owner: info.owner,
    provider: info.provider,
    outcome: 'ok',
    // JSON of two integers, without JSON.stringify.
    detail:
      action === 'token.rejected'
        ? `{"version":${token.version},"reported_version":${(request.body as RejectedBody).version}}`
        : `{"version":${token.version}}`,
  });
  ctx.metrics?.countHandout(action === 'token.read' ? 'token' : 'rejected', 'ok');
  // RFC 6749 §5.1: responses carrying tokens must not be cached.
  void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  return {
    access_token: token.accessToken,
    token_type: token.tokenType,
    expires_at: expiresIso(token.expiresAt),
    version: token.version,
  };
}

/**
 * The connection's token from the broker for request `requestId` of `actor`: the current one
 * (refreshed first if it has less than `minTtlSeconds` left), or, given the `rejectedVersion` a
 * resource server refused, the one after it (invariant 9: refreshed once however many report
 * it). A refresh this request leads is audited under its request id and caller (see app.ts).
 */
export async function brokerToken(
  ctx: ServerContext,
  requestId: string,
  actor: string,
  id: string,
  want: { minTtlSeconds?: number | undefined } | { rejectedVersion: number },
): Promise<AccessToken> {
  ctx.handOuts.enter(id, { requestId, actor });
  try {
    return 'rejectedVersion' in want
      ? await ctx.broker.reportRejected(id, want.rejectedVersion)
      : await ctx.broker.getAccessToken(id, want);
  } finally {
    ctx.handOuts.leave(id);
  }
}

/**
 * `expires_at` strings by expiry (epoch ms): a token is handed out many times, and each time
 * its expiry is the same instant, so it is formatted once. Emptied when it grows past a bound.
 */
const isoByMs = new Map<number, string>();

function expiresIso(ms: number): string {
  let text = isoByMs.get(ms);
  if (text === undefined) {
    if (isoByMs.size >= 10_000) isoByMs.clear();
    text = iso(ms);
    isoByMs.set(ms, text);
  }
  return text;
}
