"""What the scenarios do not cover: bad input, secrets kept out of reprs and errors, a one-shot
body, a cancelled asyncio caller, a Retry-After past the retry budget."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tokenwarden import (
    AsyncClient,
    Client,
    InvalidRequestError,
    NeedsReauthError,
    NetworkError,
    RefreshUnavailableError,
    Retry,
    UnauthorizedError,
)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_url": "http://127.0.0.1:1", "api_key": ""}, "api_key"),
        ({"base_url": "ftp://example.test", "api_key": "k"}, "base_url"),
        ({"base_url": "not a url", "api_key": "k"}, "base_url"),
        ({"base_url": "http://127.0.0.1:1", "api_key": "k", "timeout": 0}, "timeout"),
        ({"base_url": "http://127.0.0.1:1", "api_key": "k", "expiry_skew": -1}, "expiry_skew"),
        ({"base_url": "http://127.0.0.1:1", "api_key": "k", "retry": Retry(max_attempts=0)}, "max_attempts"),
        ({"base_url": "http://127.0.0.1:1", "api_key": "k", "retry": 3}, "retry"),
        ({"base_url": "http://127.0.0.1:1", "api_key": "k", "http_client": object()}, "http_client"),
    ],
)
def test_bad_options_are_typed_errors(kwargs, message):
    for cls in (Client, AsyncClient):
        with pytest.raises(InvalidRequestError) as raised:
            cls(**kwargs)
        assert raised.value.code == "invalid_request" and message in str(raised.value)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.get_access_token(""), "connection_id"),
        (lambda c: c.get_access_token("x" * 257), "connection_id"),
        (lambda c: c.get_access_token(42), "connection_id"),
        (lambda c: c.get_access_token("conn", min_ttl=-1), "min_ttl"),
        (lambda c: c.get_access_token("conn", min_ttl=86_401), "min_ttl"),
        (lambda c: c.get_access_token("conn", min_ttl="60"), "min_ttl"),
        (lambda c: c.report_rejected("conn", -1), "version"),
        (lambda c: c.report_rejected("conn", True), "version"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(call, message):
    # Nothing listens on port 1: a request would be a network_error, not invalid_request.
    with Client("http://127.0.0.1:1", "k") as client:
        with pytest.raises(InvalidRequestError) as raised:
            call(client)
        assert message in str(raised.value)

    async def run():
        async with AsyncClient("http://127.0.0.1:1", "k") as client:
            with pytest.raises(InvalidRequestError):
                await call(client)

    asyncio.run(run())


def test_no_secret_in_reprs_or_errors(harness):
    setup = harness.setup("cache_hit")
    with Client(setup["base_url"], setup["api_key"]) as client:
        token = client.get_access_token(setup["connection_id"])
        assert token.access_token not in repr(token)
    with Client(setup["base_url"], "tw_wrong_key_do_not_print") as client:
        with pytest.raises(UnauthorizedError) as raised:
            client.get_access_token(setup["connection_id"])
        assert "tw_wrong_key" not in repr(raised.value) + str(raised.value)
    with Client(setup["closed_url"], setup["api_key"], retry=Retry(max_attempts=1)) as client:
        with pytest.raises(NetworkError) as raised:
            client.get_access_token(setup["connection_id"])
        assert setup["api_key"] not in str(raised.value) and raised.value.retryable


def test_a_one_shot_body_is_not_sent_twice(harness):
    setup = harness.setup("rejected_then_success")
    cid = setup["connection_id"]
    with Client(setup["base_url"], setup["api_key"]) as client:
        first = client.get_access_token(cid)
        harness.reject("rejected_then_success", cid)
        # An iterator is consumed by the first attempt: the 401 comes back, the rejection is
        # still reported, so the next call has the fresh token.
        response = client.fetch(cid, setup["resource_url"], method="POST", content=iter([b"once"]))
        assert response.status_code == 401
        assert client.get_access_token(cid).version > first.version
        assert client.fetch(cid, setup["resource_url"], method="POST", content=b"bytes").status_code == 200
    assert harness.stats("rejected_then_success", cid) == {"redemptions": 1, "hand_outs": 2}


def test_reports_of_the_same_version_share_one_request(harness):
    setup = harness.setup("rejected_then_success")
    cid = setup["connection_id"]

    async def run():
        async with AsyncClient(setup["base_url"], setup["api_key"]) as client:
            token = await client.get_access_token(cid)
            fresh = await asyncio.gather(*[client.report_rejected(cid, token.version) for _ in range(30)])
            assert {t.version for t in fresh} == {token.version + 1}
            # The refused version is never handed out again from the cache.
            assert (await client.get_access_token(cid)).version == token.version + 1

    asyncio.run(run())
    assert harness.stats("rejected_then_success", cid) == {"redemptions": 1, "hand_outs": 2}


def test_reports_of_the_same_version_from_threads_share_one_request(harness):
    setup = harness.setup("rejected_then_success")
    cid = setup["connection_id"]
    with Client(setup["base_url"], setup["api_key"]) as client:
        token = client.get_access_token(cid)
        start = threading.Barrier(30)

        def report(_):
            start.wait()
            return client.report_rejected(cid, token.version).version

        with ThreadPoolExecutor(30) as pool:
            assert set(pool.map(report, range(30))) == {token.version + 1}
    assert harness.stats("rejected_then_success", cid) == {"redemptions": 1, "hand_outs": 2}


def test_a_cancelled_caller_does_not_cancel_the_others_request(harness):
    setup = harness.setup("expired_refreshes_once")
    cid = setup["connection_id"]

    async def run():
        async with AsyncClient(setup["base_url"], setup["api_key"]) as client:
            cancelled = asyncio.ensure_future(client.get_access_token(cid))
            waiting = asyncio.ensure_future(client.get_access_token(cid))
            await asyncio.sleep(0)  # both are waiting on the one request
            cancelled.cancel()
            token = await waiting
            assert cancelled.cancelled() and token.expires_in > 3000

    asyncio.run(run())
    assert harness.stats("expired_refreshes_once", cid) == {"redemptions": 1, "hand_outs": 1}


def test_needs_reauth_carries_its_reason_and_is_not_retryable(harness):
    setup = harness.setup("needs_reauth")
    with Client(setup["base_url"], setup["api_key"]) as client:
        with pytest.raises(NeedsReauthError) as raised:
            client.get_access_token(setup["connection_id"])
    assert (
        raised.value.reason == "invalid_grant" and not raised.value.retryable and raised.value.status == 409
    )


def test_a_retry_after_past_the_budget_is_handed_over_at_once(harness):
    # The server passes on the rate-limited provider's Retry-After (120 s), past the 30 s retry
    # budget: the SDK does not retry (on_retry is never called) and the caller gets the figure.
    setup = harness.setup("refresh_unavailable")
    events = []
    with Client(setup["base_url"], setup["api_key"], on_retry=events.append) as client:
        with pytest.raises(RefreshUnavailableError) as raised:
            client.get_access_token(setup["connection_id"])
    assert events == [] and raised.value.retry_after >= 60 and raised.value.retryable
