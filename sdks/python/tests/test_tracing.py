"""W3C trace context on the API's requests: inside an OpenTelemetry span the request that hands
out the token carries the span's traceparent and tracestate (seen by the harness's recording
front, in front of the real server); outside one, none; a cache hit sends nothing."""

from __future__ import annotations

import asyncio
import threading

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from tokenwarden import AsyncClient, Client

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


def caller_span(span_id: int = SPAN_ID) -> NonRecordingSpan:
    """A span as an instrumented worker would have one current (the API alone can make it)."""
    return NonRecordingSpan(
        SpanContext(
            trace_id=TRACE_ID,
            span_id=span_id,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
            trace_state=TraceState([("worker", "eu-1")]),
        )
    )


def test_a_request_inside_a_span_carries_its_trace_context(harness):
    setup = harness.setup("min_ttl_refreshes")
    cid = setup["connection_id"]
    with Client(setup["recording_url"], setup["api_key"]) as client:
        client.get_access_token(cid)  # outside any span
        with trace.use_span(caller_span()):
            client.get_access_token(cid)  # the cache: no request
            client.get_access_token(cid, min_ttl=4000)  # a request, inside the span
    requests = harness.trace_headers("min_ttl_refreshes", cid)
    assert [(r["traceparent"], r["tracestate"]) for r in requests] == [
        (None, None),
        (TRACEPARENT, "worker=eu-1"),
    ]
    assert all(r["path"] == f"/v1/connections/{cid}/token" for r in requests)


def test_concurrent_callers_share_the_request_of_the_first(harness):
    setup = harness.setup("concurrent_callers")
    cid = setup["connection_id"]

    async def run() -> None:
        async with AsyncClient(setup["recording_url"], setup["api_key"]) as client:

            async def call(span_id: int):
                with trace.use_span(caller_span(span_id)):
                    return await client.get_access_token(cid)

            tokens = await asyncio.gather(*(call(SPAN_ID + n) for n in range(5)))
            assert len({token.access_token for token in tokens}) == 1

    asyncio.run(run())
    # One request for the five callers, in the first one's span (its task made the request).
    assert [r["traceparent"] for r in harness.trace_headers("concurrent_callers", cid)] == [TRACEPARENT]


def test_the_span_of_the_thread_that_asks_is_the_one_sent(harness):
    setup = harness.setup("rejected_then_success")
    cid = setup["connection_id"]
    with Client(setup["recording_url"], setup["api_key"]) as client:
        token = client.get_access_token(cid)
        harness.reject("rejected_then_success", cid)

        def report() -> None:
            with trace.use_span(caller_span(SPAN_ID + 7)):
                client.report_rejected(cid, token.version)

        thread = threading.Thread(target=report)
        thread.start()
        thread.join()
    sent = [r["traceparent"] for r in harness.trace_headers("rejected_then_success", cid)]
    assert sent == [None, f"00-{TRACE_ID:032x}-{SPAN_ID + 7:016x}-01"]
