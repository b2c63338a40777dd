"""W3C trace context on the API's requests: the current OpenTelemetry span's ``traceparent`` and
``tracestate`` headers (https://www.w3.org/TR/trace-context/), so that Tokenwarden's spans for a
hand-out are children of the caller's. Only when ``opentelemetry-api`` is installed (the extra
``otel``); without it, or outside a span, nothing is added. Always W3C trace context, whatever
global propagator the program set: it is what the server reads, and baggage is not sent."""

from __future__ import annotations

try:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the extra is not installed: no tracing to take part in
    _propagator = None
else:
    _propagator = TraceContextTextMapPropagator()


def with_trace_context(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the current span's trace context added (a new dict), or as they are."""
    if _propagator is None:
        return headers
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {**headers, **carrier} if carrier else headers
