"""The shared SDK scenarios (sdks/scenarios/scenarios.json) against a real Tokenwarden server:
every case with the sync Client, the cases with concurrent callers with the AsyncClient too."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import REPO_ROOT
from tokenwarden import AccessToken, AsyncClient, Client, Retry, TLSError, TokenwardenError

CASES = json.loads((REPO_ROOT / "sdks" / "scenarios" / "scenarios.json").read_text())["cases"]
CONCURRENT = [case for case in CASES if any(step.get("concurrency", 1) > 1 for step in case["steps"])]
# The runners' one departure from the SDK's defaults (sdks/scenarios/README.md).
RETRY = Retry(max_attempts=2)


def check(expect: dict, outcome: AccessToken | BaseException, previous: AccessToken | None) -> None:
    """One caller's outcome of a get_token step against the step's expectations."""
    if "ok" in expect:
        assert isinstance(outcome, AccessToken) == expect["ok"], (
            f"expected ok={expect['ok']}, got {outcome!r}"
        )
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, TokenwardenError), f"not a typed error: {outcome!r}"
        if "error" in expect:
            assert outcome.code == expect["error"]
        if "reason" in expect:
            assert outcome.reason == expect["reason"]
        if "tls_error" in expect:
            assert isinstance(outcome, TLSError) == expect["tls_error"], repr(outcome)
        if "retry_after_at_least" in expect:
            assert outcome.retry_after >= expect["retry_after_at_least"]
        return
    if "expires_in_at_least" in expect:
        assert outcome.expires_in >= expect["expires_in_at_least"]
    if "same_token_as_previous" in expect:
        assert (outcome.access_token == previous.access_token) == expect["same_token_as_previous"]
    if "version_increased" in expect:
        assert (outcome.version > previous.version) == expect["version_increased"]


def client_kwargs(setup: dict, step: dict) -> dict:
    base_url = setup["closed_url"] if step.get("server") == "closed" else setup["base_url"]
    return {"base_url": base_url, "api_key": setup["api_key"], "retry": RETRY, **tls_kwargs(setup, step)}


def tls_kwargs(setup: dict, step: dict) -> dict:
    """The step's TLS choice (sdks/scenarios/README.md) as the client's verify and cert."""
    choice = step.get("tls", "none")
    if choice == "none":
        return {}
    files = setup["tls"]
    cert = {
        "ca": None,
        "ca_and_certificate": (files["cert_file"], files["key_file"]),
        "ca_and_other_certificate": (files["other_cert_file"], files["other_key_file"]),
    }[choice]
    return {"verify": files["ca_file"], "cert": cert}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_scenario_sync(harness, case):
    setup = harness.setup(case["name"])
    cid = setup["connection_id"]
    clients: dict[str, Client] = {}
    previous: AccessToken | None = None
    try:
        for step in case["steps"]:
            key = (step.get("server", "open"), step.get("tls", "none"))
            client = clients.get(key) or clients.setdefault(key, Client(**client_kwargs(setup, step)))
            if step["op"] == "get_token":
                outcomes = run_threads(client, cid, step)
                for outcome in outcomes:
                    check(step.get("expect", {}), outcome, previous)
                previous = next((o for o in outcomes if isinstance(o, AccessToken)), previous)
            elif step["op"] == "fetch":
                assert client.fetch(cid, setup["resource_url"]).status_code == step["expect"]["status"]
            elif step["op"] == "reject_current":
                harness.reject(case["name"], cid)
            else:
                pytest.fail(f"unknown op {step['op']}")
    finally:
        for client in clients.values():
            client.close()
    assert harness.stats(case["name"], cid) == case["expect"]


def run_threads(client: Client, cid: str, step: dict) -> list:
    """The step's callers, each in a thread of its own, released together."""
    n = step.get("concurrency", 1)
    start = threading.Barrier(n)

    def call():
        start.wait()
        try:
            return client.get_access_token(cid, min_ttl=step.get("min_ttl"))
        except Exception as error:  # noqa: BLE001 - checked against the expectations
            return error

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


@pytest.mark.parametrize("case", CONCURRENT, ids=[case["name"] for case in CONCURRENT])
def test_scenario_async(harness, case):
    setup = harness.setup(case["name"])
    cid = setup["connection_id"]

    async def run() -> None:
        async with AsyncClient(**client_kwargs(setup, {})) as client:
            previous = None
            for step in case["steps"]:
                assert step["op"] == "get_token", "the concurrent cases are get_token steps"
                coros = [
                    client.get_access_token(cid, min_ttl=step.get("min_ttl"))
                    for _ in range(step.get("concurrency", 1))
                ]
                outcomes = await asyncio.gather(*coros, return_exceptions=True)
                for outcome in outcomes:
                    check(step.get("expect", {}), outcome, previous)
                previous = next((o for o in outcomes if isinstance(o, AccessToken)), previous)

    asyncio.run(run())
    assert harness.stats(case["name"], cid) == case["expect"]
