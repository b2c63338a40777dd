/**
 * Traces and logs of the HTTP API when tracing is on: `@fastify/otel` (Fastify's official
 * instrumentation) makes each request a span, a child of the caller's W3C `traceparent`, and the
 * protocol's spans (core) nest under it; each log line names the span it was written in.
 */

import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';

/** Registers the request spans on `app`, before its routes. */
export async function registerRequestSpans(app: FastifyInstance): Promise<void> {
  const { FastifyOtelInstrumentation } = (await import('@fastify/otel')).default;
  const instrumentation = new FastifyOtelInstrumentation({
    // One span per request: the protocol's spans say what happened inside it. A span per hook
    // and handler (about five more per request) cost more than the rest of tracing together.
    instrumentHooks: false,
    instrumentHandler: false,
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

/**
 * The proxied call to the provider's API: its origin and method, and the status it answered.
 * Never the path or query (they may carry what the caller sends the API), never a header.
 */
export function traceUpstream<T extends { statusCode: number }>(
  request: { origin: string; method: string },
  answer: Promise<T>,
): Promise<T> {
  const span = trace.getTracer('@tokenwarden/server').startSpan('tokenwarden.proxy.upstream', {
    kind: SpanKind.CLIENT,
    attributes: { 'server.address': request.origin, 'http.request.method': request.method },
  });
  return answer.then(
    (settled) => {
      span.setAttribute('http.response.status_code', settled.statusCode);
      span.end();
      return settled;
    },
    (error: unknown) => {
      const code = (error as { code?: unknown } | null)?.code;
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: typeof code === 'string' ? code : 'failed',
      });
      span.end();
      throw error;
    },
  );
}
