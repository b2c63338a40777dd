"""What the sync and the async client share about talking to the API, without doing any I/O:
the settings, the typed error an answer becomes, and whether (and how long) to wait before
retrying. Retried: ``refresh_unavailable`` (honouring Retry-After), 429/502/503/504 and network
errors, within ``Retry``'s bounds."""

from __future__ import annotations

import json
import random
import re
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable
from urllib.parse import quote, urlsplit

import httpx

from ._token import unexpected
from ._trace import with_trace_context
from .errors import (
    UNEXPECTED_RESPONSE,
    ForbiddenError,
    InvalidRequestError,
    NeedsReauthError,
    NetworkError,
    NotFoundError,
    RefreshUnavailableError,
    TLSError,
    TokenwardenError,
    UnauthorizedError,
)

#: Used when a 503 names no Retry-After: the server knows best, but said nothing.
DEFAULT_RETRY_AFTER = 1.0
#: The server's messages are safe, but a proxy's error page could be anything: keep it short.
MAX_MESSAGE_LENGTH = 300
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Retry:
    """Bounds on retrying. ``max_attempts`` counts the first. A retry is not started if it could
    not begin within ``max_elapsed`` seconds of the call's start: a Retry-After beyond that is
    handed to the caller at once."""

    max_attempts: int = 4
    max_elapsed: float = 30.0


@dataclass(frozen=True)
class RetryEvent:
    """Passed to ``on_retry`` before each retry. ``error`` carries no secret."""

    attempt: int
    delay: float
    error: TokenwardenError


@dataclass(frozen=True)
class Settings:
    base_url: str
    origin: str
    headers: dict[str, str]
    timeout: float
    skew: float
    retry: Retry
    on_retry: Callable[[RetryEvent], None] | None


def settings(
    base_url: object,
    api_key: object,
    *,
    expiry_skew: object,
    timeout: object,
    retry: object,
    on_retry: Callable[[RetryEvent], None] | None,
) -> Settings:
    if not isinstance(api_key, str) or api_key == "":
        raise InvalidRequestError("api_key must be a non-empty string")
    parts = urlsplit(str(base_url)) if isinstance(base_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError("base_url must be an absolute http(s) URL")
    if retry is None:
        retry = Retry()
    if not isinstance(retry, Retry):
        raise InvalidRequestError("retry must be a tokenwarden.Retry")
    _check("retry.max_attempts", retry.max_attempts, minimum=1)
    _check("retry.max_elapsed", retry.max_elapsed, minimum=0)
    return Settings(
        base_url=str(base_url).rstrip("/"),
        origin=f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}",
        headers={
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
            "accept": "application/json",
        },
        timeout=_check("timeout", timeout, minimum=0.001),
        skew=_check("expiry_skew", expiry_skew, minimum=0),
        retry=retry,
        on_retry=on_retry,
    )


def _check(name: str, value: object, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value < float("inf"):
        raise InvalidRequestError(f"{name} must be a number >= {minimum}")
    return float(value)


@dataclass(frozen=True)
class Failure:
    """A failed attempt: whether it may go away by itself, and the wait the server asked for."""

    error: TokenwardenError
    retryable: bool
    retry_after: float | None = None


def read_answer(response: httpx.Response, connection_id: str | None) -> object | Failure:
    """The parsed JSON of a 2xx answer, or the failure it is."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            return json.loads(response.content)
        except ValueError:
            return Failure(unexpected(status, connection_id), retryable=False)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    error = error_from_response(status, response.text, retry_after, connection_id)
    return Failure(error, retryable=status in RETRYABLE_STATUS, retry_after=retry_after)


def network_failure(cause: httpx.TransportError, settings: Settings, connection_id: str | None) -> Failure:
    tls = _tls_cause(cause)
    if tls is not None:
        return Failure(_tls_error(tls, settings, connection_id), retryable=False)
    timed_out = isinstance(cause, httpx.TimeoutException)
    # The exception's class (ConnectError, ReadTimeout...) says why; its text could hold a URL.
    why = f"no answer within {settings.timeout:g} s" if timed_out else type(cause).__name__
    error = NetworkError(
        f"Could not reach Tokenwarden at {settings.origin}: {why}",
        timed_out=timed_out,
        connection_id=connection_id,
    )
    return Failure(error, retryable=True)


def _tls_cause(error: BaseException) -> ssl.SSLError | None:
    """The ssl error under httpx's (and httpcore's) transport error, if the failure was TLS's."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _tls_error(cause: ssl.SSLError, settings: Settings, connection_id: str | None) -> TLSError:
    reason = cause.reason or type(cause).__name__
    where = f"Could not reach Tokenwarden at {settings.origin}"
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = (
            f"its TLS certificate is not trusted here ({cause.verify_message}); give the client the CA "
            "that issued it: verify='/path/to/ca.pem'"
        )
    elif "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
        why = (
            f"the server refused the TLS handshake ({reason}): it requires a client certificate; "
            "give it: cert=('client.pem', 'client.key')"
        )
    else:
        why = f"the TLS handshake failed ({reason})"
    return TLSError(f"{where}: {why}", reason=reason, connection_id=connection_id)


class Attempts:
    """The attempts of one API call: what each sends, and after a failed one, how long to wait
    before the next (``on_retry`` told), or the error raised once retrying is not allowed."""

    def __init__(self, settings: Settings, connection_id: str | None) -> None:
        self._settings = settings
        self._connection_id = connection_id
        self._started = time.monotonic()
        self._attempt = 0

    def request(self, method: str, path: str, body: object) -> dict:
        """The keyword arguments of ``httpx.Client.request`` (and ``AsyncClient``'s)."""
        self._attempt += 1
        return {
            "method": method,
            "url": self._settings.base_url + path,
            "content": None if body is None else json.dumps(body).encode(),
            "headers": with_trace_context(self._settings.headers),
            "timeout": self._settings.timeout,
            "auth": None,  # the API key is in the headers; an auth of the caller's client is not for us
            "follow_redirects": False,
        }

    def answer(self, response: httpx.Response) -> object | Failure:
        return read_answer(response, self._connection_id)

    def unreachable(self, cause: httpx.TransportError) -> Failure:
        return network_failure(cause, self._settings, self._connection_id)

    def wait_or_raise(self, failure: Failure) -> float:
        retry = self._settings.retry
        delay = None
        if failure.retryable and self._attempt < retry.max_attempts:
            delay = failure.retry_after if failure.retry_after is not None else backoff(self._attempt)
            if time.monotonic() - self._started + delay > retry.max_elapsed:
                delay = None
        if delay is None:
            raise failure.error from None
        if self._settings.on_retry is not None:
            try:
                self._settings.on_retry(RetryEvent(self._attempt, delay, failure.error))
            except Exception:  # noqa: BLE001 - a metrics hook must not change what the caller gets
                pass
        return delay


def backoff(attempt: int, base: float = 0.2, maximum: float = 5.0) -> float:
    """Exponential with jitter, capped; half fixed, half random, so that callers in many processes
    that failed together spread out and none retries at once."""
    ceiling = min(maximum, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.random() * ceiling / 2


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After (RFC 9110 §10.2.3) in seconds: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    try:
        date = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, date.timestamp() - datetime.now(timezone.utc).timestamp())


def error_from_response(
    status: int, text: str, retry_after: float | None, connection_id: str | None
) -> TokenwardenError:
    details = {"status": status, "connection_id": connection_id}
    body = _error_body(text)
    if body is None:
        # A load balancer's 502 or a wrong base_url's 404: not something the API said.
        return TokenwardenError(
            UNEXPECTED_RESPONSE,
            f"HTTP {status} without a Tokenwarden error body (is base_url right, is a proxy in the way?)",
            **details,
        )
    code = body["error"]
    message = body.get("message")
    message = (
        message[:MAX_MESSAGE_LENGTH]
        if isinstance(message, str) and message
        else f"Tokenwarden answered {code} (HTTP {status})"
    )
    if code == "needs_reauth":
        reason = body.get("reason")
        return NeedsReauthError(message, reason if isinstance(reason, str) else "unknown", **details)
    if code == "refresh_unavailable":
        return RefreshUnavailableError(
            message, retry_after if retry_after is not None else DEFAULT_RETRY_AFTER, **details
        )
    if code == "not_found":
        return NotFoundError(message, **details)
    if code == "forbidden":
        return ForbiddenError(message, **details)
    if code == "unauthorized":
        return UnauthorizedError(message, **details)
    if code in ("invalid_request", "invalid_input", "payload_too_large"):
        return InvalidRequestError(message, code=code, **details)
    return TokenwardenError(code, message, **details)


def _error_body(text: str) -> dict | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None  # not JSON: not an answer from the Tokenwarden API itself
    return body if isinstance(body, dict) and isinstance(body.get("error"), str) else None


def can_replay(request: httpx.Request) -> bool:
    """True when httpx can send the body again: bytes it holds, not an iterator the first attempt
    consumed."""
    return isinstance(request.stream, httpx.ByteStream)


def api_path(connection_id: str, action: str) -> str:
    return f"/v1/connections/{quote(connection_id, safe='')}{action}"
