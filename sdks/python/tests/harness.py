"""Starts the scenario harness (sdks/scenarios/harness.ts: a real Tokenwarden server on loopback)
and speaks its control API (sdks/scenarios/README.md). Used by the tests and by
bench/sdk-python.py."""

from __future__ import annotations

import json
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

REPO_ROOT = Path(__file__).resolve().parents[3]


class Harness:
    """The harness's control API."""

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

    def trace_headers(self, case: str, connection_id: str) -> list[dict]:
        """The trace context headers of each API request the recording front forwarded."""
        answer = self._http.get(f"/scenarios/{case}/trace_headers", params={"connection_id": connection_id})
        answer.raise_for_status()
        return answer.json()["requests"]

    def reject(self, case: str, connection_id: str) -> None:
        self._http.post(
            f"/scenarios/{case}/reject", params={"connection_id": connection_id}
        ).raise_for_status()


class HarnessFailed(RuntimeError):
    pass


@contextmanager
def running_harness() -> Iterator[Harness]:
    """The harness, stopped (by closing its stdin) on exit."""
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
                raise HarnessFailed(
                    f"the scenario harness exited before it was ready:\n{log.read().decode()[-4000:]}"
                )
            yield Harness(json.loads(line)["control"])
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
