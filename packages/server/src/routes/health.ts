import { StoreUnavailableError } from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import type { ServerContext } from '../http/context.ts';
import { errorResponses } from '../http/schemas.ts';

const status = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { type: 'string' } },
} as const;

/** Liveness, readiness and Prometheus metrics: no API key, nothing secret. */
export const healthRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'The process is up',
        security: [],
        response: { 200: status },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'The store answers (503 store_unavailable if not)',
        security: [],
        response: { 200: status, ...errorResponses(503) },
      },
    },
    async () => {
      try {
        await ctx.store.now();
      } catch (error) {
        throw new StoreUnavailableError(error);
      }
      return { status: 'ready' };
    },
  );

  const metrics = ctx.metrics;
  if (metrics) {
    app.get(
      '/metrics',
      {
        schema: {
          tags: ['health'],
          summary: 'Prometheus metrics (text exposition format)',
          security: [],
        },
      },
      async (_request, reply) => {
        const text = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(text);
      },
    );
  }
};
