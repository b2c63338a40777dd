import type { FastifyInstance, RouteOptions } from 'fastify';
import { errorResponses } from './schemas.ts';

/**
 * Every route's error answers in its response schema, so the OpenAPI document lists each status a
 * route can give, with the `{error, message}` shape, and the serializer sends only that shape. A
 * route lists what is its own (409, a 404 from its body); what any route of its kind can answer
 * is added here, for routes registered after this runs (every plugin's):
 *
 * - any route: 400 (a query or URL that does not parse), 500 (a fault), 503 (the store is
 *   unavailable, the server is shutting down);
 * - with an API key: 401 and 403;
 * - with path parameters: 404 (nothing by that name) and 414 (a parameter over the limit);
 * - with a body: 413 (over the body limit).
 *
 * A route without a schema, or hidden from the document, is left alone: what it sends is its own.
 */
export function documentErrorResponses(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as
      (RouteOptions['schema'] & { hide?: boolean; security?: unknown[] }) | undefined;
    if (!schema || schema.hide) return;
    const statuses = [400, 500, 503];
    const open = Array.isArray(schema.security) && schema.security.length === 0;
    if (!open) statuses.push(401, 403);
    if (route.url.includes(':')) statuses.push(404, 414);
    if (takesBody(route.method)) statuses.push(413);
    const own = (schema.response ?? {}) as Record<string, unknown>;
    const missing = statuses.filter((status) => !(status in own)).sort((a, b) => a - b);
    schema.response = { ...own, ...errorResponses(...missing) };
  });
}

/** The methods Fastify reads a body for (and so refuses one over the limit). */
function takesBody(method: RouteOptions['method']): boolean {
  const methods = Array.isArray(method) ? method : [method];
  return methods.some((m) => ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].includes(m));
}
