"""Fixtures shared by the tests: the scenario harness (a real Tokenwarden server on loopback,
sdks/scenarios/harness.ts) and a Temporal server's address."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


class Harness:
    """The harness's control API (sdks/scenarios/README.md)."""

    def __init__(self, control: str) -> None:
        self.control = control
        self._http = httpx.Client(base_url=control, timeout=60)

    def setup(self, case: str) -> dict:
        answer = self._http.post(f"/scenarios/{case}")
        answer.raise_for_status()
        return answer.json()

    def stats(self, case: str, connection_id: str) -> dict:
        answer = self._http.get(f"/scenarios/{case}/stats", params={"connection_id": connection_id})
        answer.raise_for_status()
        return answer.json()

    def reject(self, case: str, connection_id: str) -> None:
        self._http.post(f"/scenarios/{case}/reject", params={"connection_id": connection_id}).raise_for_status()


@pytest.fixture(scope="session")
def harness():
    """One harness for the session: it stops when its stdin closes."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            ["node", "--conditions=tokenwarden-source", "--import", "tsx", "sdks/scenarios/harness.ts"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            line = process.stdout.readline()
            if not line:
                log.seek(0)
                pytest.fail(f"the scenario harness exited before it was ready:\n{log.read().decode()[-4000:]}")
            yield Harness(json.loads(line)["control"])
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
