// The caller's trace, passed on to Tokenwarden as W3C `traceparent` (and `tracestate`), so that
// the server's spans for a hand-out are children of the worker's own span. Only for workers that
// use OpenTelemetry: `@opentelemetry/api` is an optional peer dependency, imported once, on the
// first request; without it, or without a propagator registered, nothing is added.

type OpenTelemetryApi = typeof import('@opentelemetry/api');

let api: Promise<OpenTelemetryApi | undefined> | undefined;

/** The trace headers of the active context, or undefined when there is none to pass on. */
export async function traceHeaders(): Promise<Record<string, string> | undefined> {
  const otel = await (api ??= import('@opentelemetry/api').catch(() => undefined));
  if (!otel) return undefined;
  const carrier: Record<string, string> = {};
  otel.propagation.inject(otel.context.active(), carrier);
  return carrier.traceparent === undefined ? undefined : carrier;
}
