"""The asyncio client. Its cache and single flight are shared by every task of one event loop
that uses the same ``AsyncClient``; keep one per process (per event loop). It behaves as the
synchronous ``Client`` does, call for call; ``client.py`` explains each."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncGenerator

import httpx

from . import _wire
from ._base import ClientBase
from ._token import (
    AccessToken,
    Slot,
    check_connection_id,
    check_min_ttl,
    check_version,
    parse_token,
    unexpected,
)


class AsyncClient(ClientBase):
    """A Tokenwarden API client for asyncio workers (see ``Client``)."""

    _http_class = httpx.AsyncClient

    async def get_access_token(self, connection_id: str, *, min_ttl: float | None = None) -> AccessToken:
        """See ``Client.get_access_token``."""
        slot = self._cache.slots.get(connection_id)
        if slot is not None and (min_ttl is None or isinstance(min_ttl, (int, float)) and min_ttl >= 0):
            token = slot.usable(time.time(), min_ttl or 0.0)
            if token is not None:
                return token
        return await self._obtain(connection_id, min_ttl)

    async def report_rejected(self, connection_id: str, version: int) -> AccessToken:
        """See ``Client.report_rejected``."""
        check_connection_id(connection_id)
        check_version(version, connection_id)
        slot = self._cache.slot(connection_id)
        slot.reject(version)
        newer = slot.usable(time.time(), 0.0)
        if newer is not None:
            return newer
        if slot.rejecting is None or slot.rejecting[0] < version:
            flight = self._lead(slot, connection_id, "/token/rejected", {"version": version})
            slot.rejecting = (version, flight)
        return await asyncio.shield(slot.rejecting[1])

    def auth(self, connection_id: str) -> httpx.Auth:
        """An ``httpx.Auth`` for ``httpx.AsyncClient`` (see ``Client.auth``)."""
        return AsyncBearerAuth(self, check_connection_id(connection_id))

    async def fetch(
        self, connection_id: str, url: str, *, method: str = "GET", **kwargs: Any
    ) -> httpx.Response:
        """See ``Client.fetch``."""
        return await self._http.request(method, url, auth=self.auth(connection_id), **kwargs)

    async def get_connection(self, connection_id: str) -> dict[str, Any]:
        """See ``Client.get_connection``."""
        check_connection_id(connection_id)
        body = await self._request("GET", _wire.api_path(connection_id, ""), None, connection_id)
        if not isinstance(body, dict):
            raise unexpected(200, connection_id)
        return body

    async def aclose(self) -> None:
        for http in self._http_clients():
            await http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _obtain(self, connection_id: str, wanted: float | None) -> AccessToken:
        check_connection_id(connection_id)
        min_ttl = check_min_ttl(wanted, connection_id)
        slot = self._cache.slot(connection_id)
        if slot.rejecting is not None:
            fresh = await asyncio.shield(slot.rejecting[1])
            if time.time() < fresh.expires_at.timestamp() - min_ttl:
                return fresh
        cached = slot.usable(time.time(), min_ttl)
        if cached is not None:
            return cached
        if slot.flight is None or slot.flight_min_ttl < min_ttl:
            slot.flight = self._lead(
                slot, connection_id, "/token", {"min_ttl": min_ttl} if min_ttl > 0 else {}
            )
            slot.flight_min_ttl = min_ttl
        # Shielded: a caller that is cancelled stops waiting, the others' request goes on.
        return await asyncio.shield(slot.flight)

    def _lead(self, slot: Slot, connection_id: str, action: str, body: dict) -> asyncio.Task[AccessToken]:
        """The request the callers share, as a task of its own."""

        async def request_token() -> AccessToken:
            answer = await self._request("POST", _wire.api_path(connection_id, action), body, connection_id)
            token = parse_token(answer, connection_id)
            slot.store(token, time.time(), self._settings.skew)
            return token

        flight = asyncio.get_running_loop().create_task(request_token())

        def settled(task: asyncio.Task[AccessToken]) -> None:
            if slot.flight is task:
                slot.flight = None
            if slot.rejecting is not None and slot.rejecting[1] is task:
                slot.rejecting = None
            if not task.cancelled():
                task.exception()  # every waiter may have been cancelled: retrieved, not logged

        flight.add_done_callback(settled)
        return flight

    async def _request(self, method: str, path: str, body: object, connection_id: str | None) -> object:
        attempts = _wire.Attempts(self._settings, connection_id)
        while True:
            try:
                outcome = attempts.answer(
                    await self._api_http.request(**attempts.request(method, path, body))
                )
            except httpx.TransportError as cause:
                outcome = attempts.unreachable(cause)
            if not isinstance(outcome, _wire.Failure):
                return outcome
            await asyncio.sleep(attempts.wait_or_raise(outcome))


class AsyncBearerAuth(httpx.Auth):
    """The ``httpx.Auth`` of ``AsyncClient.auth``."""

    def __init__(self, client: AsyncClient, connection_id: str) -> None:
        self._client = client
        self._connection_id = connection_id

    def sync_auth_flow(self, request: httpx.Request):  # pragma: no cover - misuse
        raise TypeError(
            "tokenwarden.AsyncClient.auth is for httpx.AsyncClient; use Client.auth with httpx.Client"
        )
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._client.get_access_token(self._connection_id)
        request.headers["authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = await self._client.report_rejected(self._connection_id, token.version)
        if _wire.can_replay(request):
            request.headers["authorization"] = f"Bearer {fresh.access_token}"
            yield request
