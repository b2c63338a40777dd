import type { ConnectionInfo, CredentialStatus } from '@tokenwarden/core';
import type { FastifyPluginAsync, FastifyRequest, FastifySchema } from 'fastify';
import { listableGrants, allows, type GrantTarget } from '../auth/principal.ts';
import { errorCodeOf, ForbiddenError } from '../errors.ts';
import { authenticate, recordAudit, type ServerContext } from '../http/context.ts';
import {
  closedObject,
  errorResponses,
  idParams,
  idString,
  limitQuery,
  listReply,
  nameString,
  parseLimit,
  providerName,
  type TokensFields,
  tokensInput,
  tokensProperties,
} from '../http/schemas.ts';
import {
  connectionSummary,
  connectionSummarySchema,
  connectionView,
  connectionViewSchema,
  recordView,
  type ConnectionView,
} from '../http/views.ts';
import {
  auditedOnConnection,
  auditFailure,
  authorizedConnection,
  isRefusal,
} from './connection-access.ts';

/** "*" means every owner in a grant, so no connection may be owned by "*". */
const ownerField = {
  ...nameString,
  pattern: '^(?!\\*$)\\S(.*\\S)?$',
  description: 'Not "*": that means every owner in grants.',
} as const;

/** Whose connection to which provider, and the caller's notes: what every new connection has. */
const connectionFor = {
  provider: providerName,
  owner: ownerField,
  metadata: {
    type: 'object',
    maxProperties: 64,
    description: 'At most 8 KiB as JSON; never secret.',
  },
} as const;

interface NewConnectionFields {
  provider: string;
  owner: string;
  metadata?: Record<string, unknown>;
}

interface ImportBody extends TokensFields, NewConnectionFields {}

const importSchema = {
  tags: ['connections'],
  summary: 'Import the tokens of a finished OAuth handshake',
  description:
    'An access token that has already expired is a normal import: the first hand-out refreshes it. ' +
    'Needs connections.write on the owner and provider.',
  body: closedObject(
    {
      ...connectionFor,
      ...tokensProperties,
    },
    ['provider', 'owner', 'access_token'],
  ),
  response: { 201: connectionSummarySchema, ...errorResponses(400, 401, 403, 413) },
} as const;

interface MachineBody extends NewConnectionFields {
  scope?: string;
}

const machineSchema = {
  tags: ['connections'],
  summary: 'Create a machine-token connection (client_credentials grant)',
  description:
    'For a provider configured with grant_type client_credentials: Tokenwarden fetches the first ' +
    'access token now and every later one once cluster-wide, like a refresh. No user, no refresh ' +
    'token. Needs connections.write on the owner and provider.',
  body: closedObject(
    {
      ...connectionFor,
      scope: { type: 'string', minLength: 1, maxLength: 4096 },
    },
    ['provider', 'owner'],
  ),
  response: { 201: connectionSummarySchema, ...errorResponses(400, 401, 403, 413, 503) },
} as const;

export interface ListQuery {
  owner?: string;
  provider?: string;
  status?: CredentialStatus;
  cursor?: string;
  limit?: string;
}

export const listSchema = {
  tags: ['connections'],
  summary: 'List connections (metadata only), ordered by id',
  description:
    'A service client sees the connections its connections.read grants cover; asking for an owner ' +
    'or provider outside them is refused (403).',
  querystring: closedObject({
    owner: nameString,
    provider: providerName,
    status: { type: 'string', enum: ['active', 'needs_reauth', 'revoked'] },
    cursor: { ...idString, description: 'next_cursor of the previous page.' },
    limit: { ...limitQuery, description: '1-200, default 50.' },
  }),
  response: {
    200: listReply('connections', connectionViewSchema, { paged: true }),
    ...errorResponses(400, 401, 403),
  },
} as const;

/** Import, read, list and delete connections. Token hand-outs live in `tokens.ts`. */
export const connectionRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.addHook('onRequest', authenticate(ctx));

  /** A route that makes a new connection: granted, audited and answered 201 alike. */
  const creating = <Body extends NewConnectionFields>(
    url: string,
    schema: FastifySchema,
    create: (body: Body) => Promise<ConnectionInfo>,
  ) =>
    app.post<{ Body: Body }>(
      url,
      { schema, config: { auditAction: 'connection.create' } },
      async (request, reply) => {
        // Fastify's route generics lose the body's type for a generic Body: it is the schema's.
        const body = request.body as Body;
        const info = await createConnection(ctx, request, body, () => create(body));
        return reply.code(201).send(connectionSummary(info));
      },
    );
  creating<ImportBody>('/v1/connections', importSchema, (body) =>
    ctx.broker.importCredential({
      provider: body.provider,
      owner: body.owner,
      ...tokensInput(body),
      metadata: body.metadata,
    }),
  );
  creating<MachineBody>('/v1/machine-connections', machineSchema, (body) =>
    ctx.broker.createMachineConnection(body),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/connections/:id',
    {
      schema: {
        tags: ['connections'],
        summary: 'One connection: metadata only, never a token',
        params: idParams,
        response: { 200: connectionViewSchema, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'connection.read' },
    },
    async (request) => {
      const { id } = request.params;
      try {
        return connectionView(await authorizedConnection(ctx, request, id, 'connections.read'));
      } catch (error) {
        // Reads are not audited, refusals are.
        if (isRefusal(error)) {
          auditFailure(ctx, request, 'connection.read', id, error);
        }
        throw error;
      }
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/v1/connections',
    { schema: listSchema, config: { auditAction: 'connection.list' } },
    async (request) => {
      const { owner, provider } = request.query;
      const grants = listableGrants(request.principal, { owner, provider });
      if (grants?.length === 0) {
        recordAudit(ctx, request, {
          action: 'connection.list',
          outcome: 'forbidden',
          owner,
          provider,
        });
        throw new ForbiddenError('This API key has no connections.read grant covering this query.');
      }
      return connectionPage(ctx, request.query, grants);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/connections/:id',
    {
      schema: {
        tags: ['connections'],
        summary: 'Delete a connection and its tokens, revoking them at the provider first',
        description:
          'When the provider has a revocation_url, its grant is revoked first (RFC 7009: the ' +
          'refresh token, or the access token when there is none). Best effort: a provider that ' +
          'cannot be reached or refuses does not keep the connection alive; the audit row says ' +
          'whether revocation succeeded. The provider is given at most its request_timeout_ms. ' +
          'Needs connections.write on the connection.',
        params: idParams,
        response: { 204: { type: 'null' }, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'connection.delete' },
    },
    async (request, reply) => {
      const { id } = request.params;
      await auditedOnConnection(
        ctx,
        request,
        id,
        'connection.delete',
        'connections.write',
        async () => {
          const revocation = await revokeAtProvider(ctx, id);
          await ctx.broker.deleteCredential(id);
          ctx.owners.delete(id);
          return revocation;
        },
        (revocation) => revocation,
      );
      return reply.code(204).send();
    },
  );
};

/** One page of the listing, by id after `cursor`; `grants` narrows it to what a client may read. */
export async function connectionPage(
  ctx: ServerContext,
  query: ListQuery,
  grants?: GrantTarget[],
): Promise<{ connections: ConnectionView[]; next_cursor: string | null }> {
  const limit = parseLimit(query.limit);
  const records = await ctx.service.listCredentials({
    owner: query.owner,
    provider: query.provider,
    status: query.status,
    afterId: query.cursor,
    limit,
    grants,
  });
  return {
    connections: records.map(recordView),
    next_cursor: records.length === limit ? records[records.length - 1]!.id : null,
  };
}

/**
 * RFC 7009 before a delete, best effort: whatever the provider does, the connection is deleted
 * after. Says what happened for the audit row (`revoked`, `unsupported` when the provider has
 * no revocation_url, `failed` with a code); never a token. Only a connection that is already
 * gone stops the delete (it answers not_found either way).
 */
async function revokeAtProvider(ctx: ServerContext, id: string): Promise<Record<string, unknown>> {
  try {
    const outcome = await ctx.broker.revokeAtProvider(id);
    if (outcome.kind === 'failed') return { revocation: 'failed', revocation_error: outcome.error };
    return { revocation: outcome.kind };
  } catch (error) {
    if (errorCodeOf(error) === 'not_found') throw error;
    return { revocation: 'failed', revocation_error: errorCodeOf(error) };
  }
}

/** Creates a connection if the grants allow it, auditing the attempt either way. */
async function createConnection(
  ctx: ServerContext,
  request: FastifyRequest,
  target: { owner: string; provider: string },
  create: () => Promise<ConnectionInfo>,
): Promise<ConnectionInfo> {
  const action = 'connection.create';
  const where = { owner: target.owner, provider: target.provider };
  if (!allows(request.principal, 'connections.write', where)) {
    recordAudit(ctx, request, { action, outcome: 'forbidden', ...where });
    throw new ForbiddenError(
      "This API key has no connections.write grant for this connection's owner and provider.",
    );
  }
  let info: ConnectionInfo;
  try {
    info = await create();
  } catch (error) {
    recordAudit(ctx, request, { action, outcome: errorCodeOf(error), ...where });
    throw error;
  }
  ctx.owners.set(info.id, info);
  recordAudit(ctx, request, {
    action,
    outcome: 'ok',
    connectionId: info.id,
    ...where,
    detail: { version: info.version, has_refresh_token: info.hasRefreshToken },
  });
  return info;
}
