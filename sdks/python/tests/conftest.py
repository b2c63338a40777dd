"""Fixtures shared by the tests: the scenario harness (a real Tokenwarden server on loopback) and
a Temporal server's address."""

from __future__ import annotations

import os

import pytest

from harness import running_harness


@pytest.fixture(scope="session")
def harness():
    """One harness for the session."""
    with running_harness() as harness:
        yield harness


@pytest.fixture(scope="session")
def temporal_address() -> str:
    """TEMPORAL_ADDRESS (the suite's Temporal dev server). Run alone without it, the Temporal tests
    are skipped; under the suite (TOKENWARDEN_REQUIRE_TEMPORAL=1) its absence fails them."""
    address = os.environ.get("TEMPORAL_ADDRESS")
    if not address:
        if os.environ.get("TOKENWARDEN_REQUIRE_TEMPORAL") == "1":
            why = os.environ.get("TOKENWARDEN_TEMPORAL_UNAVAILABLE") or "TEMPORAL_ADDRESS is not set"
            pytest.fail(f"no Temporal server: {why}")
        pytest.skip("TEMPORAL_ADDRESS is not set (start `temporal server start-dev` and set it)")
    return address
