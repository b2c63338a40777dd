// The console's reads of connections: the table (filters, search, keyset pages), one connection
// with the service clients whose grants cover it, and its timeline. Metadata only: the row's
// sealed tokens never leave `recordView`.
import type {
  ConnectionDetail,
  ConnectionGrant,
  ConnectionPage,
  ConsoleConnection,
} from '@tokenwarden/console/api';
import {
  SERVICE_ACTIONS,
  type CredentialQuery,
  type CredentialRecord,
  type CredentialStatus,
} from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import { allows } from '../auth/principal.ts';
import type { ServerContext } from '../http/context.ts';
import {
  closedObject,
  idParams,
  idString,
  limitQuery,
  nameString,
  parseLimit,
  providerName,
} from '../http/schemas.ts';
import { isoOrNull, recordView } from '../http/views.ts';
import { connectionTimeline } from './console-timeline.ts';

export interface ConsoleListQuery {
  owner?: string;
  provider?: string;
  status?: CredentialStatus;
  search?: string;
  /** Seconds: connections that end within this long from now (or have ended). */
  ends_within?: string;
  cursor?: string;
  limit?: string;
}

const listQuery = closedObject({
  owner: nameString,
  provider: providerName,
  status: { type: 'string', enum: ['active', 'needs_reauth', 'revoked'] },
  search: { type: 'string', minLength: 1, maxLength: 128 },
  ends_within: { type: 'string', pattern: '^[0-9]{1,9}$' },
  cursor: idString,
  limit: limitQuery,
});

/** The audit action and outcome of a refresh that worked: "last refresh" in the table. */
const REFRESHED = { action: 'connection.refresh', outcome: 'ok' } as const;

export const consoleConnectionRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.get<{ Querystring: ConsoleListQuery }>(
    '/v1/console/connections',
    { schema: { hide: true, querystring: listQuery }, config: { auditAction: 'connection.list' } },
    async (request) => consolePage(ctx, request.query),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/console/connections/:id',
    { schema: { hide: true, params: idParams }, config: { auditAction: 'connection.read' } },
    async (request, reply): Promise<ConnectionDetail> => {
      const record = await ctx.store.getCredential(request.params.id);
      if (!record) {
        return reply.code(404).send({ error: 'not_found', message: 'No connection with this id.' });
      }
      const [connection] = await consoleRows(ctx, [record.record]);
      return { connection: connection!, grants: await grantsOn(ctx, connection!) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/console/connections/:id/timeline',
    { schema: { hide: true, params: idParams } },
    async (request) => ({ entries: await connectionTimeline(ctx, request.params.id) }),
  );
};

/** One page of the table, by id after the cursor: the first screen is one indexed read. */
export async function consolePage(
  ctx: ServerContext,
  query: ConsoleListQuery,
  nowMs = Date.now(),
): Promise<ConnectionPage> {
  const limit = parseLimit(query.limit);
  const filter: CredentialQuery = {
    owner: query.owner,
    provider: query.provider,
    status: query.status,
    search: query.search,
    endsBefore:
      query.ends_within === undefined ? undefined : nowMs + Number(query.ends_within) * 1000,
    afterId: query.cursor,
    limit,
  };
  const records = await ctx.service.listCredentials(filter);
  return {
    connections: await consoleRows(ctx, records),
    next_cursor: records.length === limit ? records[records.length - 1]!.id : null,
  };
}

/** The rows as the console shows them, with each one's last successful refresh (one query). */
export async function consoleRows(
  ctx: ServerContext,
  records: CredentialRecord[],
): Promise<ConsoleConnection[]> {
  const refreshed = await ctx.service.latestAudit({
    ...REFRESHED,
    connectionIds: records.map((record) => record.id),
  });
  return records.map((record) => {
    // The API's view without what the console does not show (the metadata may be large).
    const { version: _version, metadata: _metadata, ...view } = recordView(record);
    return { ...view, last_refresh_at: isoOrNull(refreshed.get(record.id) ?? null) };
  });
}

/** The live service clients whose grants cover this connection, with the actions they allow. */
async function grantsOn(
  ctx: ServerContext,
  target: { owner: string; provider: string },
): Promise<ConnectionGrant[]> {
  const grants: ConnectionGrant[] = [];
  for (const client of await ctx.service.listClients()) {
    if (client.revokedAt !== null) continue;
    const principal = { kind: 'client', clientId: client.id, grants: client.grants } as const;
    const actions = SERVICE_ACTIONS.filter((action) => allows(principal, action, target));
    if (actions.length > 0)
      grants.push({ client_id: client.id, client_name: client.name, actions });
  }
  return grants;
}
