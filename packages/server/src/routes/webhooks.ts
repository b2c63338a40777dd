import {
  guardStore,
  LIFECYCLE_EVENT_TYPES,
  WebhookDelivery,
  WebhookEndpoints,
  type DeliveryLogEntry,
  type KeyRing,
  type WebhookDeliveryOptions,
  type WebhookEndpoint,
} from '@tokenwarden/core';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { authenticateAdmin, recordAudit, type ServerContext } from '../http/context.ts';
import {
  closedObject,
  errorResponses,
  idParams,
  idString,
  isoTime,
  limitQuery,
  listReply,
  nullableIsoTime,
  parseLimit,
} from '../http/schemas.ts';
import { iso, isoOrNull } from '../http/views.ts';

/** `buildServer`'s `webhooks` option. */
export interface ServerWebhookOptions extends Partial<
  Omit<WebhookDeliveryOptions, 'store' | 'keyRing'>
> {
  /** Run the delivery worker in this process. Default true (any replica may deliver). */
  deliver?: boolean;
  /** How long a rotated secret keeps signing, unless the request says. Default 24 h. */
  secretOverlapMs?: number;
}

export type WebhookRoutesOptions = ServerContext & {
  keyRing: KeyRing;
  webhooks: ServerWebhookOptions | undefined;
};

const eventTypes = {
  type: 'array',
  minItems: 1,
  maxItems: LIFECYCLE_EVENT_TYPES.length,
  uniqueItems: true,
  items: { type: 'string', enum: LIFECYCLE_EVENT_TYPES },
} as const;

const endpointProperties = {
  id: { type: 'string' },
  url: { type: 'string' },
  events: { type: ['array', 'null'], items: { type: 'string' }, description: 'Null: all.' },
  description: { type: ['string', 'null'] },
  previous_secret_until: {
    ...nullableIsoTime,
    description: 'Until then the secret before the last rotation signs too.',
  },
  created_at: isoTime,
  updated_at: isoTime,
} as const;
const endpointFields = [
  'id',
  'url',
  'events',
  'description',
  'previous_secret_until',
  'created_at',
  'updated_at',
] as const;
const endpointView = closedObject(endpointProperties, endpointFields);
const endpointWithSecret = closedObject(
  {
    ...endpointProperties,
    secret: {
      type: 'string',
      description: 'whsec_...: shown in this response only; stored encrypted.',
    },
  },
  [...endpointFields, 'secret'],
);

const deliveryView = closedObject(
  {
    id: { type: 'string', description: 'The event id, sent as webhook-id.' },
    event_type: { type: 'string' },
    connection_id: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    last_status: { type: ['integer', 'null'], description: "The receiver's last HTTP status." },
    last_error: { type: ['string', 'null'], description: 'Why the last attempt failed.' },
    last_attempt_at: nullableIsoTime,
    next_attempt_at: nullableIsoTime,
    delivered_at: nullableIsoTime,
    created_at: isoTime,
  },
  ['id', 'event_type', 'connection_id', 'status', 'attempts', 'created_at'],
);

const deliveryParams = closedObject({ id: idString, delivery: idString }, ['id', 'delivery']);

interface CreateBody {
  url: string;
  events?: string[];
  description?: string;
}

/**
 * Webhook endpoints (admin) and, unless `deliver` is false, this replica's share of delivering
 * the outbox to them (`WebhookDelivery`, started when the server is ready, stopped on close).
 */
export const webhookRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (app, options) => {
  const settings = options.webhooks ?? {};
  const store = guardStore(options.store.webhooks);
  const endpoints = new WebhookEndpoints({
    store,
    keyRing: options.keyRing,
    allowPrivate: settings.allowPrivate,
    secretOverlapMs: settings.secretOverlapMs,
  });
  if (settings.deliver !== false) {
    const delivery = new WebhookDelivery({
      ...settings,
      store,
      keyRing: options.keyRing,
      onError: (error) => app.log.warn({ err: error }, 'webhook delivery: store failed'),
    });
    app.addHook('onReady', async () => delivery.start());
    app.addHook('onClose', async () => delivery.stop());
  }
  app.addHook('onRequest', authenticateAdmin(options));

  const notFound = (reply: FastifyReply) =>
    reply.code(404).send({ error: 'not_found', message: 'No webhook endpoint with this id.' });

  app.post<{ Body: CreateBody }>(
    '/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Add a webhook endpoint; its signing secret is in this response only (admin)',
        body: closedObject(
          {
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            events: eventTypes,
            description: { type: 'string', minLength: 1, maxLength: 256 },
          },
          ['url'],
        ),
        response: { 201: endpointWithSecret, ...errorResponses(400, 401, 403, 413) },
      },
      config: { auditAction: 'webhook.create' },
    },
    async (request, reply) => {
      const { endpoint, secret } = await endpoints.create(request.body);
      recordAudit(options, request, {
        action: 'webhook.create',
        outcome: 'ok',
        detail: { webhook_id: endpoint.id, events: endpoint.events },
      });
      void reply.header('cache-control', 'no-store');
      return reply.code(201).send({ ...view(endpoint), secret });
    },
  );

  app.get(
    '/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Every webhook endpoint; never a secret (admin)',
        response: { 200: listReply('webhooks', endpointView), ...errorResponses(401, 403) },
      },
      config: { auditAction: 'webhook.list' },
    },
    async () => ({ webhooks: (await endpoints.list()).map(view) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'One webhook endpoint (admin)',
        params: idParams,
        response: { 200: endpointView, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'webhook.read' },
    },
    async (request, reply) => {
      const endpoint = await endpoints.get(request.params.id);
      return endpoint ? view(endpoint) : notFound(reply);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Remove a webhook endpoint and its pending deliveries (admin)',
        params: idParams,
        response: { 204: { type: 'null' }, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'webhook.delete' },
    },
    async (request, reply) => {
      const { id } = request.params;
      const deleted = await endpoints.delete(id);
      recordAudit(options, request, {
        action: 'webhook.delete',
        outcome: deleted ? 'ok' : 'not_found',
        detail: { webhook_id: id },
      });
      return deleted ? reply.code(204).send() : notFound(reply);
    },
  );

  app.post<{ Params: { id: string }; Body: { overlap_seconds?: number } | undefined }>(
    '/v1/webhooks/:id/secret',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Rotate the signing secret; the old one signs too for the overlap (admin)',
        params: idParams,
        body: closedObject({
          overlap_seconds: {
            type: 'integer',
            minimum: 0,
            maximum: 30 * 24 * 3600,
            description: 'How long the old secret keeps signing; default the server setting, 24 h.',
          },
        }),
        response: { 200: endpointWithSecret, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'webhook.rotate_secret' },
    },
    async (request, reply) => {
      const { id } = request.params;
      const seconds = request.body?.overlap_seconds;
      const rotated = await endpoints.rotateSecret(id, {
        ...(seconds !== undefined && { overlapMs: seconds * 1000 }),
      });
      recordAudit(options, request, {
        action: 'webhook.rotate_secret',
        outcome: rotated ? 'ok' : 'not_found',
        detail: { webhook_id: id },
      });
      if (!rotated) return notFound(reply);
      void reply.header('cache-control', 'no-store');
      return { ...view(rotated.endpoint), secret: rotated.secret };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { cursor?: string; limit?: string } }>(
    '/v1/webhooks/:id/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: "An endpoint's delivery log, newest first; never a payload (admin)",
        params: idParams,
        querystring: closedObject({
          cursor: { type: 'string', pattern: '^[1-9][0-9]{0,15}$', description: 'next_cursor.' },
          limit: { ...limitQuery, description: '1-200, default 50.' },
        }),
        response: {
          200: listReply('deliveries', deliveryView, { paged: true }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
      config: { auditAction: 'webhook.deliveries' },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await endpoints.get(id))) return notFound(reply);
      const limit = parseLimit(request.query.limit);
      const cursor = request.query.cursor;
      const page = await store.listDeliveries(id, {
        limit,
        ...(cursor !== undefined && { beforeSeq: Number(cursor) }),
      });
      const last = page.length === limit ? page[page.length - 1] : undefined;
      return { deliveries: page.map(deliveryLine), next_cursor: last ? String(last.seq) : null };
    },
  );

  app.post<{ Params: { id: string; delivery: string } }>(
    '/v1/webhooks/:id/deliveries/:delivery/redeliver',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Send a delivery again from now, with a fresh retry window (admin)',
        params: deliveryParams,
        response: { 202: deliveryView, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'webhook.redeliver' },
    },
    async (request, reply) => {
      const { id, delivery } = request.params;
      const done = await store.redeliver(id, delivery);
      recordAudit(options, request, {
        action: 'webhook.redeliver',
        outcome: done ? 'ok' : 'not_found',
        detail: { webhook_id: id, delivery },
      });
      const entry = done ? await store.getDelivery(id, delivery) : undefined;
      if (!entry) {
        return reply
          .code(404)
          .send({ error: 'not_found', message: 'No such delivery for this endpoint.' });
      }
      return reply.code(202).send(deliveryLine(entry));
    },
  );
};

function view(endpoint: WebhookEndpoint) {
  return {
    id: endpoint.id,
    url: endpoint.url,
    events: endpoint.events,
    description: endpoint.description,
    previous_secret_until: isoOrNull(endpoint.previousSecretUntil),
    created_at: iso(endpoint.createdAt),
    updated_at: iso(endpoint.updatedAt),
  };
}

function deliveryLine(entry: DeliveryLogEntry) {
  return {
    id: entry.eventId,
    event_type: entry.eventType,
    connection_id: entry.connectionId,
    status: entry.status,
    attempts: entry.attempts,
    last_status: entry.lastStatus,
    last_error: entry.lastError,
    last_attempt_at: isoOrNull(entry.lastAttemptAt),
    next_attempt_at: isoOrNull(entry.nextAttemptAt),
    delivered_at: isoOrNull(entry.deliveredAt),
    created_at: iso(entry.createdAt),
  };
}
