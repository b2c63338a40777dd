/**
 * The protocol's spans (docs/protocol.md, "Traces"). Core speaks only `@opentelemetry/api`: with
 * no SDK registered (the default) every call here is the API's no-op, a few property reads; a
 * process that registers one (the server's `OTEL_*` configuration, a worker's own set-up) gets
 * the spans. Attributes name connections, providers, owners, versions and outcomes, never a
 * token, a secret, a refresh-token hash or a URL with its query.
 */

import {
  context,
  createContextKey,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

export type { Span };

/**
 * The tracer of whichever provider is registered now. Looked up per span, not once at load: a
 * process may register its SDK after core was imported, through another copy of the API, whose
 * registration only the global lookup sees. The same provider keeps the same tracer.
 */
function tracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (provider !== current.provider) current = { provider, tracer: provider.getTracer(NAME) };
  return current.tracer;
}
const NAME = '@tokenwarden/core';
let current: { provider: TracerProvider | undefined; tracer: Tracer } = {
  provider: undefined,
  tracer: trace.getTracer(NAME),
};

/** Attribute names, one word for one concept across every span. */
export const ATTR = {
  connection: 'tokenwarden.connection.id',
  provider: 'tokenwarden.provider',
  owner: 'tokenwarden.owner',
  version: 'tokenwarden.version',
  outcome: 'tokenwarden.outcome',
  error: 'tokenwarden.error',
  retryAfterMs: 'tokenwarden.retry_after_ms',
  count: 'tokenwarden.count',
  httpStatus: 'http.response.status_code',
} as const;

/**
 * Runs `fn` inside a new span (the active one for everything `fn` calls), ended when it settles;
 * a throw is recorded by its error code only (messages may name inputs).
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  options: { kind?: SpanKind; links?: Link[]; root?: boolean } = {},
): Promise<T> {
  return tracer().startActiveSpan(name, { attributes, ...options }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A step with no children worth a context of its own: started now, ended by the caller. */
export function startSpan(name: string, attributes: Attributes, links?: Link[]): Span {
  return tracer().startSpan(name, { attributes, links });
}

/**
 * A span ended as soon as it is made: something seen (a lease held by someone else), or a step
 * recorded afterwards from `startTime` (epoch ms) once it proved worth a span.
 */
export function markSpan(name: string, attributes: Attributes, startTime?: number): void {
  tracer().startSpan(name, { attributes, startTime }).end();
}

/** Marks `span` failed with the error's stable code (never its message), and ends nothing. */
export function failed(span: Span, error: unknown): void {
  const code = (error as { code?: unknown } | undefined)?.code;
  const named = typeof code === 'string' ? code : 'internal_error';
  span.setAttribute(ATTR.error, named);
  span.setStatus({ code: SpanStatusCode.ERROR, message: named });
}

/**
 * The W3C `traceparent` of `span`, to be written beside what it commits (the credential row's
 * `commit_trace`), so that a waiter in another process can link to it. Null when not recording.
 */
export function traceparentOf(span: Span): string | null {
  const c = span.spanContext();
  if (!span.isRecording() || !trace.isSpanContextValid(c)) return null;
  return `00-${c.traceId}-${c.spanId}-${c.traceFlags.toString(16).padStart(2, '0')}`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A link to the span named by a stored `traceparent`, or none if it is absent or malformed. */
export function linkTo(traceparent: string | null | undefined): Link[] {
  const match = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!match) return [];
  const spanContext: SpanContext = {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: parseInt(match[3]!, 16),
    isRemote: true,
  };
  return trace.isSpanContextValid(spanContext) ? [{ context: spanContext }] : [];
}

/** The span of the call running now, to link a caller that joins it (single flight). */
export function activeSpanContext(): SpanContext | undefined {
  return trace.getActiveSpan()?.spanContext();
}

const PROVIDER_SPAN = createContextKey('tokenwarden.provider_request');

/**
 * The provider request span around one grant (refresh, client credentials): the answer's kind,
 * the provider's error code and Retry-After; the HTTP status is added by `recordProviderStatus`
 * from the broker's fetch, which sees the response.
 */
export function providerRequest<T extends ProviderOutcome>(
  provider: string,
  connectionId: string,
  send: () => Promise<T>,
): Promise<T> {
  return inSpan(
    'tokenwarden.provider_request',
    { [ATTR.provider]: provider, [ATTR.connection]: connectionId },
    async (span) => {
      const outcome = await context.with(context.active().setValue(PROVIDER_SPAN, span), send);
      span.setAttribute(ATTR.outcome, outcome.kind);
      if (outcome.kind !== 'tokens') span.setAttribute(ATTR.error, outcome.error);
      if (outcome.retryAfterMs !== undefined) {
        span.setAttribute(ATTR.retryAfterMs, outcome.retryAfterMs);
      }
      return outcome;
    },
    { kind: SpanKind.CLIENT },
  );
}

type ProviderOutcome =
  | { kind: 'tokens'; retryAfterMs?: undefined }
  | { kind: 'refused'; error: string; retryAfterMs?: undefined }
  | { kind: 'failed'; error: string; retryAfterMs: number | undefined };

/** Called by the broker's fetch with every provider response: its status, on the request span. */
export function recordProviderStatus(status: number): void {
  (context.active().getValue(PROVIDER_SPAN) as Span | undefined)?.setAttribute(
    ATTR.httpStatus,
    status,
  );
}

/**
 * A caller that joined another's call in this process (single flight): its hand-out says so,
 * and its wait links to the span of the call that does the work.
 */
export function joinFlight<T>(flight: Promise<T>, leader: SpanContext | undefined): Promise<T> {
  const handOut = trace.getActiveSpan();
  if (!handOut?.isRecording()) return flight;
  handOut.setAttribute(ATTR.outcome, 'single_flight');
  return inSpan('tokenwarden.single_flight', {}, () => flight, {
    links: leader ? [{ context: leader }] : [],
  });
}
