"""The synchronous client: for threads. Its cache and single flight are shared by every thread
that uses the same ``Client``; keep one per process."""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any, Generator

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


class Client(ClientBase):
    """A Tokenwarden API client for workers.

    ``get_access_token`` serves from this process's cache while the token has more than
    ``expiry_skew`` (and ``min_ttl``) seconds left; otherwise one request to the API, shared by
    every thread that asks meanwhile.

    Options: ``expiry_skew`` (seconds; a cached token is not handed out with less left, capped at
    half of what it had on arrival; default 30), ``timeout`` (per HTTP request, seconds; default
    30: the server may wait up to 20 s for a refresh), ``retry`` (``Retry``), ``on_retry`` (called
    before each retry, e.g. for metrics; must not raise), ``http_client`` (an ``httpx.Client``
    for the API and for ``fetch``; default: one made here, closed by ``close``).

    TLS of the API's requests (not ``fetch``'s): ``verify`` (True: the system's CAs; or the path of
    a PEM CA bundle to trust instead, e.g. a private CA's; or an ``ssl.SSLContext``) and ``cert``
    (a client certificate for a server that requires one: ``(cert_file, key_file)``, or one PEM
    file holding both). Bad files raise ``InvalidRequestError`` here. A handshake that fails
    raises ``TLSError`` (not retried), whose message says which of the two to give.

    Inside an OpenTelemetry span (with ``opentelemetry-api`` installed: the extra ``otel``), each
    request to the API carries the span's W3C ``traceparent`` and ``tracestate``.
    """

    _http_class = httpx.Client

    def get_access_token(self, connection_id: str, *, min_ttl: float | None = None) -> AccessToken:
        """A valid access token for the connection, with at least ``min_ttl`` seconds left (the
        server refreshes it first if needed).

        Raises NeedsReauthError, RefreshUnavailableError (after retrying within the bounds),
        NotFoundError, ForbiddenError, UnauthorizedError, NetworkError, TokenwardenError.
        """
        # The hit path: one dict lookup, one clock read, no lock.
        slot = self._cache.slots.get(connection_id)
        if slot is not None and (min_ttl is None or isinstance(min_ttl, (int, float)) and min_ttl >= 0):
            token = slot.usable(time.time(), min_ttl or 0.0)
            if token is not None:
                return token
        return self._obtain(connection_id, min_ttl)

    def report_rejected(self, connection_id: str, version: int) -> AccessToken:
        """Tells Tokenwarden that a resource server refused the token of this ``version`` (HTTP
        401) and returns a fresh one. It is refreshed only if ``version`` is still current, so
        however many callers report it, in however many processes, it is refreshed once; here
        they share one request."""
        check_connection_id(connection_id)
        check_version(version, connection_id)
        with self._cache.lock:
            slot = self._cache.slot(connection_id)
            slot.reject(version)
            newer = slot.usable(time.time(), 0.0)
            if newer is not None:
                return newer
            leader = slot.rejecting is None or slot.rejecting[0] < version
            if leader:
                slot.rejecting = (version, Future())
            flight = slot.rejecting[1]
        if leader:
            self._lead(slot, flight, connection_id, "/token/rejected", {"version": version})
        return flight.result()

    def auth(self, connection_id: str) -> httpx.Auth:
        """An ``httpx.Auth`` that adds the connection's bearer token; on a 401 it reports the
        token's version and sends the request once more with the fresh token (a second 401 is
        returned as it is). For any ``httpx.Client``: ``http.get(url, auth=tw.auth(id))``."""
        return BearerAuth(self, check_connection_id(connection_id))

    def fetch(self, connection_id: str, url: str, *, method: str = "GET", **kwargs: Any) -> httpx.Response:
        """``httpx.Client.request`` with ``auth(connection_id)``. A body that can only be read
        once (an iterator) is not sent twice: the rejection is still reported, so the next call
        gets the fresh token, but the 401 is returned."""
        return self._http.request(method, url, auth=self.auth(connection_id), **kwargs)

    def get_connection(self, connection_id: str) -> dict[str, Any]:
        """The connection's metadata (status, provider, version...); never a token."""
        check_connection_id(connection_id)
        body = self._request("GET", _wire.api_path(connection_id, ""), None, connection_id)
        if not isinstance(body, dict):
            raise unexpected(200, connection_id)
        return body

    def close(self) -> None:
        for http in self._http_clients():
            http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _obtain(self, connection_id: str, wanted: float | None) -> AccessToken:
        check_connection_id(connection_id)
        min_ttl = check_min_ttl(wanted, connection_id)
        with self._cache.lock:
            slot = self._cache.slot(connection_id)
            rejecting = slot.rejecting
        if rejecting is not None:
            # The token being replaced was refused: wait for its successor instead of asking for
            # the current one, which the server may still hand out.
            fresh = rejecting[1].result()
            if time.time() < fresh.expires_at.timestamp() - min_ttl:
                return fresh
        with self._cache.lock:
            cached = slot.usable(time.time(), min_ttl)
            if cached is not None:
                return cached
            if slot.flight is not None and slot.flight_min_ttl >= min_ttl:
                flight = slot.flight
                leader = False
            else:
                flight = slot.flight = Future()
                slot.flight_min_ttl = min_ttl
                leader = True
        if leader:
            self._lead(slot, flight, connection_id, "/token", {"min_ttl": min_ttl} if min_ttl > 0 else {})
        return flight.result()

    def _lead(self, slot: Slot, flight: Future, connection_id: str, action: str, body: dict) -> None:
        """Runs the request the other callers wait for, and hands them its outcome."""
        try:
            answer = self._request("POST", _wire.api_path(connection_id, action), body, connection_id)
            token = parse_token(answer, connection_id)
            with self._cache.lock:
                slot.store(token, time.time(), self._settings.skew)
            flight.set_result(token)
        except BaseException as error:
            flight.set_exception(error)
            if not isinstance(error, Exception):
                raise
        finally:
            with self._cache.lock:
                if slot.flight is flight:
                    slot.flight = None
                if slot.rejecting is not None and slot.rejecting[1] is flight:
                    slot.rejecting = None

    def _request(self, method: str, path: str, body: object, connection_id: str | None) -> object:
        attempts = _wire.Attempts(self._settings, connection_id)
        while True:
            try:
                outcome = attempts.answer(self._api_http.request(**attempts.request(method, path, body)))
            except httpx.TransportError as cause:
                outcome = attempts.unreachable(cause)
            if not isinstance(outcome, _wire.Failure):
                return outcome
            time.sleep(attempts.wait_or_raise(outcome))


class BearerAuth(httpx.Auth):
    """The ``httpx.Auth`` of ``Client.auth``."""

    def __init__(self, client: Client, connection_id: str) -> None:
        self._client = client
        self._connection_id = connection_id

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._client.get_access_token(self._connection_id)
        request.headers["authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = self._client.report_rejected(self._connection_id, token.version)
        if _wire.can_replay(request):
            request.headers["authorization"] = f"Bearer {fresh.access_token}"
            yield request

    async def async_auth_flow(self, request: httpx.Request):  # pragma: no cover - misuse
        raise TypeError(
            "tokenwarden.Client.auth is for httpx.Client; use AsyncClient.auth with httpx.AsyncClient"
        )
        yield request
