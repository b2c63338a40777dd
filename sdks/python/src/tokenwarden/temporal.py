"""Temporal activity helpers (``pip install tokenwarden[temporal]``).

    tokenwarden = AsyncClient(base_url, api_key)
    helpers = ActivityHelpers(tokenwarden, min_ttl=60)

    @activity.defn
    async def list_channels(connection_id: str) -> dict:
        response = await helpers.fetch(connection_id, "https://slack.com/api/conversations.list")
        return response.json()

While they wait for Tokenwarden they heartbeat (when the activity has a heartbeat timeout), and
Tokenwarden's errors become ``ApplicationError``s whose ``type`` is the TypeScript package's
(``FailureTypes``), so one retry policy fits workers in both languages. Activities that are plain
``def`` (run in threads) use ``SyncActivityHelpers`` with a ``Client``.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ._token import AccessToken
from .aio import AsyncClient
from .client import Client
from .errors import NeedsReauthError, RefreshUnavailableError, TokenwardenError

T = TypeVar("T")


class FailureTypes:
    """The ``type`` of every ApplicationError raised here: the same strings as
    ``FailureTypes`` in ``@tokenwarden/temporal`` (packages/temporal/src/failure-types.ts)."""

    #: The owner must authorize again. Non-retryable. Details: ``{connection_id, reason}``.
    NEEDS_REAUTH = "TokenwardenNeedsReauth"
    #: Could not be refreshed right now. Retryable after Retry-After. ``{connection_id, retry_after_ms}``.
    REFRESH_UNAVAILABLE = "TokenwardenRefreshUnavailable"
    #: Tokenwarden unreachable or 5xx. Retryable. ``{connection_id, code}``.
    UNAVAILABLE = "TokenwardenUnavailable"
    #: No such connection (or the key cannot see it). Non-retryable.
    NOT_FOUND = "TokenwardenNotFound"
    #: The API key is refused or not granted this connection. Non-retryable.
    ACCESS_DENIED = "TokenwardenAccessDenied"
    #: Any other Tokenwarden error. Non-retryable.
    ERROR = "TokenwardenError"


def to_application_error(error: BaseException, connection_id: str) -> ApplicationError | None:
    """The ApplicationError a Tokenwarden SDK error becomes, or None when it is not one. Built from
    codes and ids only (never a token), with the details keyed as the TypeScript package's, so a
    workflow in either language reads them. Raise it ``from None``: a cause would go to history.

    ====================================== ================================ =================
    SDK error                              failure type                     retryable
    ====================================== ================================ =================
    ``needs_reauth``                       ``TokenwardenNeedsReauth``       no
    ``refresh_unavailable``                ``TokenwardenRefreshUnavailable`` after Retry-After
    ``store_unavailable``, network, 5xx    ``TokenwardenUnavailable``       yes
    ``not_found``                          ``TokenwardenNotFound``          no
    ``unauthorized``, ``forbidden``        ``TokenwardenAccessDenied``      no
    anything else                          ``TokenwardenError``             no
    ====================================== ================================ =================
    """
    if not isinstance(error, TokenwardenError):
        return None
    cid = error.connection_id or connection_id
    if isinstance(error, NeedsReauthError) or error.code == "needs_reauth":
        reason = error.reason if isinstance(error, NeedsReauthError) else "unknown"
        return ApplicationError(
            f'Connection "{cid}" needs its owner to authorize again ({reason}).',
            {"connectionId": cid, "reason": reason},
            type=FailureTypes.NEEDS_REAUTH,
            non_retryable=True,
        )
    if isinstance(error, RefreshUnavailableError):
        retry_after_ms = max(0, math.ceil(error.retry_after * 1000))
        return ApplicationError(
            f'Connection "{cid}" could not be refreshed right now; '
            f"retrying in {math.ceil(retry_after_ms / 1000)} s.",
            {"connectionId": cid, "retryAfterMs": retry_after_ms},
            type=FailureTypes.REFRESH_UNAVAILABLE,
            # Temporal needs a positive delay; None means "use the retry policy".
            next_retry_delay=timedelta(milliseconds=retry_after_ms) if retry_after_ms > 0 else None,
        )
    code = str(error.code)
    details = {"connectionId": cid, "code": code}
    if error.retryable or code == "internal_error" or (error.status or 0) >= 500:
        return ApplicationError(
            f'Tokenwarden is unavailable for connection "{cid}" ({code}).',
            details,
            type=FailureTypes.UNAVAILABLE,
        )
    if code == "not_found":
        return ApplicationError(
            f'Connection "{cid}" does not exist, or this API key cannot see it (not_found).',
            details,
            type=FailureTypes.NOT_FOUND,
            non_retryable=True,
        )
    if code in ("unauthorized", "forbidden"):
        message = (
            f'Tokenwarden refused the worker\'s API key for connection "{cid}" (unauthorized).'
            if code == "unauthorized"
            else f'The worker\'s API key is not granted connection "{cid}" (forbidden).'
        )
        return ApplicationError(message, details, type=FailureTypes.ACCESS_DENIED, non_retryable=True)
    return ApplicationError(
        f'Tokenwarden refused the request for connection "{cid}" ({code}).',
        details,
        type=FailureTypes.ERROR,
        non_retryable=True,
    )


class TokenRejectedError(Exception):
    """Raise it from a ``with_access_token`` callback when the resource server refused the token,
    if its client library does not raise an error with a 401 status of its own."""

    def __init__(self, message: str = "The resource server refused the access token (HTTP 401).") -> None:
        super().__init__(message)


def is_unauthorized_error(error: BaseException) -> bool:
    """The default ``is_rejected``: a TokenRejectedError, or an error whose ``status``,
    ``status_code`` or ``response.status_code`` is 401 (httpx's and requests' HTTPStatusError)."""
    if isinstance(error, TokenRejectedError):
        return True
    # Tokenwarden's own 401 (a bad API key) is not the resource server refusing a token.
    if isinstance(error, TokenwardenError):
        return False
    response = getattr(error, "response", None)
    candidates = (
        getattr(error, "status", None),
        getattr(error, "status_code", None),
        getattr(response, "status_code", None),
    )
    return 401 in candidates


@dataclass(frozen=True)
class _Options:
    min_ttl: float | None
    heartbeat_interval: float | None
    heartbeat_details: Callable[[], Sequence[Any]] | None
    is_rejected: Callable[[BaseException], bool]

    def interval(self) -> float | None:
        """Seconds between heartbeats: the option, else a third of the heartbeat timeout; None
        outside an activity, in a local activity, or without a heartbeat timeout."""
        if not activity.in_activity():
            return None
        info = activity.info()
        if info.is_local:
            return None
        if self.heartbeat_interval is not None:
            return self.heartbeat_interval
        timeout = info.heartbeat_timeout
        return (
            None
            if timeout is None or timeout.total_seconds() <= 0
            else max(0.05, timeout.total_seconds() / 3)
        )

    def beat(self) -> None:
        # Heartbeat details are the activity's checkpoint; by default the previous attempt's are
        # passed on. Never a token: the Temporal server stores them.
        details = self.heartbeat_details() if self.heartbeat_details else activity.info().heartbeat_details
        activity.heartbeat(*details)


def _options(
    min_ttl: float | None,
    heartbeat_interval: float | None,
    heartbeat_details: Callable[[], Sequence[Any]] | None,
    is_rejected: Callable[[BaseException], bool] | None,
) -> _Options:
    if heartbeat_interval is not None and not (0 < heartbeat_interval < math.inf):
        raise ValueError("heartbeat_interval must be a positive number of seconds")
    return _Options(min_ttl, heartbeat_interval, heartbeat_details, is_rejected or is_unauthorized_error)


class ActivityHelpers:
    """Helpers for ``async def`` activities, bound to one ``AsyncClient``. Make one client and one
    set of helpers per worker process: the client's cache and single flight are then shared by
    every activity the worker runs."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        min_ttl: float | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_details: Callable[[], Sequence[Any]] | None = None,
        is_rejected: Callable[[BaseException], bool] | None = None,
    ) -> None:
        if not isinstance(client, AsyncClient):
            raise TypeError(
                "ActivityHelpers needs a tokenwarden.AsyncClient (SyncActivityHelpers takes a Client)"
            )
        self._client = client
        self._options = _options(min_ttl, heartbeat_interval, heartbeat_details, is_rejected)

    async def get_access_token(self, connection_id: str) -> AccessToken:
        """A valid access token, heartbeating while it waits, errors mapped."""
        return await self._wait_for(
            connection_id, lambda: self._client.get_access_token(connection_id, min_ttl=self._options.min_ttl)
        )

    async def with_access_token(self, connection_id: str, fn: Callable[[AccessToken], Awaitable[T] | T]) -> T:
        """Runs ``fn`` with a valid access token. If ``fn`` raises an error ``is_rejected`` says is a
        refused token, the refusal is reported (refreshed once however many workers report it) and
        ``fn`` runs once more with the fresh token. Errors of ``fn`` pass through unchanged."""
        token = await self.get_access_token(connection_id)
        try:
            return await _result(fn(token))
        except Exception as error:
            if not self._options.is_rejected(error):
                raise
        fresh = await self._wait_for(
            connection_id, lambda: self._client.report_rejected(connection_id, token.version)
        )
        return await _result(fn(fresh))

    async def fetch(
        self, connection_id: str, url: str, *, method: str = "GET", **kwargs: Any
    ) -> httpx.Response:
        """``AsyncClient.fetch``: the bearer added, a 401 reported and retried once. It heartbeats
        until the response arrives; the activity's cancellation cancels the request."""
        return await self._wait_for(
            connection_id, lambda: self._client.fetch(connection_id, url, method=method, **kwargs)
        )

    async def _wait_for(self, connection_id: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            interval = self._options.interval()
            if interval is None:
                return await call()
            pending = asyncio.ensure_future(call())
            try:
                # A cache hit settles within one turn of the loop: no heartbeat for it.
                done, _ = await asyncio.wait({pending}, timeout=0)
                while not done:
                    self._options.beat()
                    done, _ = await asyncio.wait({pending}, timeout=interval)
            except asyncio.CancelledError:
                # The activity was cancelled: so is its request (a token request shared with other
                # callers goes on; the client shields it).
                pending.cancel()
                raise
            return pending.result()
        except TokenwardenError as error:
            raise to_application_error(error, connection_id) from None


class SyncActivityHelpers:
    """The same helpers for activities that are plain ``def`` (run by the worker's
    ``activity_executor`` threads), bound to one ``Client``."""

    def __init__(
        self,
        client: Client,
        *,
        min_ttl: float | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_details: Callable[[], Sequence[Any]] | None = None,
        is_rejected: Callable[[BaseException], bool] | None = None,
    ) -> None:
        if not isinstance(client, Client):
            raise TypeError(
                "SyncActivityHelpers needs a tokenwarden.Client (ActivityHelpers takes an AsyncClient)"
            )
        self._client = client
        self._options = _options(min_ttl, heartbeat_interval, heartbeat_details, is_rejected)

    def get_access_token(self, connection_id: str) -> AccessToken:
        return self._wait_for(
            connection_id, lambda: self._client.get_access_token(connection_id, min_ttl=self._options.min_ttl)
        )

    def with_access_token(self, connection_id: str, fn: Callable[[AccessToken], T]) -> T:
        token = self.get_access_token(connection_id)
        try:
            return fn(token)
        except Exception as error:
            if not self._options.is_rejected(error):
                raise
        fresh = self._wait_for(
            connection_id, lambda: self._client.report_rejected(connection_id, token.version)
        )
        return fn(fresh)

    def fetch(self, connection_id: str, url: str, *, method: str = "GET", **kwargs: Any) -> httpx.Response:
        return self._wait_for(
            connection_id, lambda: self._client.fetch(connection_id, url, method=method, **kwargs)
        )

    def _wait_for(self, connection_id: str, call: Callable[[], T]) -> T:
        try:
            interval = self._options.interval()
            if interval is None:
                return call()
            # The call runs in a thread of its own so that this one, the activity's, can heartbeat
            # (activity.heartbeat belongs to the activity's context) while it waits.
            pending: Future[T] = Future()
            threading.Thread(target=_settle, args=(pending, call), daemon=True).start()
            while True:
                try:
                    return pending.result(timeout=interval)
                except FutureTimeout:
                    self._options.beat()
        except TokenwardenError as error:
            raise to_application_error(error, connection_id) from None


def _settle(future: Future, call: Callable[[], Any]) -> None:
    try:
        future.set_result(call())
    except BaseException as error:  # noqa: BLE001 - handed to the waiting activity thread
        future.set_exception(error)


async def _result(value: Awaitable[T] | T) -> T:
    return await value if inspect.isawaitable(value) else value  # type: ignore[return-value]
