import type { AuditRecord } from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import { authenticateAdmin, type ServerContext } from '../http/context.ts';
import {
  closedObject,
  errorResponses,
  idString,
  isoTime,
  limitQuery,
  listReply,
  parseLimit,
} from '../http/schemas.ts';
import { iso } from '../http/views.ts';

interface AuditQueryString {
  connection?: string;
  client?: string;
  since?: string;
  cursor?: string;
  limit?: string;
}

const eventView = closedObject(
  {
    seq: { type: 'integer' },
    at: isoTime,
    request_id: { type: 'string' },
    actor: { type: 'string', description: 'A client id, "admin", or "system" (the scheduler).' },
    action: { type: 'string' },
    connection_id: { type: ['string', 'null'] },
    owner: { type: ['string', 'null'] },
    provider: { type: ['string', 'null'] },
    outcome: { type: 'string', description: '"ok" or a stable error code.' },
    detail: { type: ['object', 'null'], additionalProperties: true },
  },
  ['seq', 'at', 'request_id', 'actor', 'action', 'outcome'],
);

/** The audit log (admin): who did what to which connection, when, with what outcome. */
export const auditRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.addHook('onRequest', authenticateAdmin(ctx));

  app.get<{ Querystring: AuditQueryString }>(
    '/v1/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'Audit events, newest first (admin)',
        querystring: closedObject({
          connection: { ...idString, description: 'Only events about this connection.' },
          client: { ...idString, description: 'Only events by this actor (client id or admin).' },
          since: { ...isoTime, description: 'Only events at or after this time.' },
          cursor: { type: 'string', pattern: '^[1-9][0-9]{0,15}$', description: 'next_cursor.' },
          limit: { ...limitQuery, description: '1-200, default 100.' },
        }),
        response: {
          200: listReply('events', eventView, { paged: true }),
          ...errorResponses(400, 401, 403),
        },
      },
      config: { auditAction: 'audit.read' },
    },
    async (request) => {
      const { connection, client, since, cursor } = request.query;
      const limit = parseLimit(request.query.limit, 100);
      // Events still in this replica's buffer belong in the answer.
      await ctx.audit.flush();
      const events = await ctx.service.listAudit({
        connectionId: connection,
        actor: client,
        since: since === undefined ? undefined : Date.parse(since),
        before: cursor === undefined ? undefined : Number(cursor),
        limit,
      });
      return {
        events: events.map(view),
        next_cursor: events.length === limit ? String(events[events.length - 1]!.seq) : null,
      };
    },
  );
};

function view(event: AuditRecord) {
  return {
    seq: event.seq,
    at: iso(event.at),
    request_id: event.requestId,
    actor: event.actor,
    action: event.action,
    connection_id: event.connectionId,
    owner: event.owner,
    provider: event.provider,
    outcome: event.outcome,
    detail: event.detail === null ? null : (JSON.parse(event.detail) as Record<string, unknown>),
  };
}
