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

/** The setting /readyz writes: inserted once, then each probe's insert finds it and does nothing. */
const WRITE_PROBE = 'readyz_write_probe';

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
        summary: 'The store answers and takes writes (503 store_unavailable if not)',
        description:
          'A read of the database clock and a write that changes nothing (an insert of a ' +
          'setting that exists): a read-only database is not ready, since no refresh, ' +
          'hand-out audit or import could be stored.',
        security: [],
        response: { 200: status, ...errorResponses(503) },
      },
    },
    async () => {
      try {
        await ctx.store.now();
        await ctx.service.setSettingIfAbsent(WRITE_PROBE, 'readyz');
      } catch (error) {
        throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError(error);
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
          summary: 'Prometheus metrics (text exposition format, or OpenMetrics when tracing)',
          security: [],
          response: {
            200: {
              description:
                'The metrics: in the text exposition format 0.0.4, or with tracing on in OpenMetrics 1.0.0, whose exemplars carry the trace and span ids of observed requests.',
              content: {
                'text/plain': { schema: { type: 'string' } },
                'application/openmetrics-text': { schema: { type: 'string' } },
              },
            },
          },
        },
      },
      async (_request, reply) => {
        const text = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(text);
      },
    );
  }
};
