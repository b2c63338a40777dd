/**
 * Traces and logs of the HTTP API when tracing is on: `@fastify/otel` (Fastify's official
 * instrumentation) makes each request a span, a child of the caller's W3C `traceparent`, and the
 * protocol's spans (core) nest under it; each log line names the span it was written in.
 */

import { trace } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';

/** Registers the request spans on `app`, before its routes. */
export async function registerRequestSpans(app: FastifyInstance): Promise<void> {
  const { FastifyOtelInstrumentation } = (await import('@fastify/otel')).default;
  const instrumentation = new FastifyOtelInstrumentation({
    // @fastify/otel writes `url.path` with the query: a connect callback's carries the
    // authorization code. The path alone names the route's target.
    requestHook: (span, request) => span.setAttribute('url.path', request.url.split('?', 1)[0]!),
  });
  await app.register(instrumentation.plugin());
}

/** pino's `mixin`: the trace and span a line was written in, so logs and traces join. */
export function traceIdsMixin(): Record<string, string> {
  const context = trace.getActiveSpan()?.spanContext();
  return context && trace.isSpanContextValid(context)
    ? { trace_id: context.traceId, span_id: context.spanId }
    : {};
}
