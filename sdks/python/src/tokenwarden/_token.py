"""An access token as the API hands it out, and what this process keeps per connection."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import UNEXPECTED_RESPONSE, InvalidRequestError, TokenwardenError

MAX_MIN_TTL = 86_400


@dataclass(frozen=True)
class AccessToken:
    """One hand-out. ``access_token`` is left out of ``repr`` so that logging it leaks nothing."""

    connection_id: str
    access_token: str = field(repr=False)
    token_type: str
    expires_at: datetime
    #: Report this on a 401 (``report_rejected``) so that it is refreshed once, not once per caller.
    version: int

    @property
    def expires_in(self) -> float:
        """Seconds left, by this machine's clock."""
        return self.expires_at.timestamp() - datetime.now(timezone.utc).timestamp()


@dataclass(frozen=True)
class _Entry:
    """A cached token with the times derived from it, swapped as one reference: a reader in
    another thread never sees one token's expiry beside another's token."""

    token: AccessToken
    expires: float  # epoch seconds
    usable_until: float  # epoch seconds: the expiry minus the skew


class Slot:
    """The cached token of one connection, its requests in flight and the newest version a
    resource server refused here. Flights are whatever the client awaits: a
    ``concurrent.futures.Future`` (sync) or an ``asyncio.Task`` (async)."""

    __slots__ = ("entry", "flight", "flight_min_ttl", "rejecting", "rejected_version")

    def __init__(self) -> None:
        self.entry: _Entry | None = None
        self.flight: Any = None
        self.flight_min_ttl = 0.0
        self.rejecting: tuple[int, Any] | None = None
        self.rejected_version = -1

    def usable(self, now: float, min_ttl: float) -> AccessToken | None:
        entry = self.entry
        if entry is None or now >= entry.usable_until or now >= entry.expires - min_ttl:
            return None
        return entry.token

    def store(self, token: AccessToken, now: float, skew: float) -> None:
        """Caches a token unless a newer one is cached or it was refused here."""
        if token.version <= self.rejected_version:
            return
        if self.entry is not None and self.entry.token.version > token.version:
            return
        expires = token.expires_at.timestamp()
        # A token that arrives with less than twice the skew left is kept for half its remaining
        # life instead of not at all, so short-lived tokens do not send every call to the server.
        self.entry = _Entry(token, expires, expires - min(skew, (expires - now) / 2))

    def reject(self, version: int) -> None:
        """Forgets the token if it is ``version`` or older (a resource server refused it)."""
        self.rejected_version = max(self.rejected_version, version)
        if self.entry is not None and self.entry.token.version <= version:
            self.entry = None

    @property
    def idle(self) -> bool:
        return self.flight is None and self.rejecting is None


class TokenCache:
    """Slots by connection id, at most ``limit``; the oldest idle ones are dropped first."""

    def __init__(self, limit: int = 10_000) -> None:
        self.slots: dict[str, Slot] = {}
        # Guards the slots' bookkeeping (which flight is on) when threads share the cache (the
        # sync Client); never held during a request.
        self.lock = threading.Lock()
        self._limit = limit

    def slot(self, connection_id: str) -> Slot:
        slot = self.slots.get(connection_id)
        if slot is None:
            if len(self.slots) >= self._limit:
                self._evict()
            slot = self.slots[connection_id] = Slot()
        return slot

    def _evict(self) -> None:
        # Insertion order stands in for recency; a slot with a request in flight stays, so that
        # its callers' single flight is not split in two.
        for connection_id, slot in self.slots.items():
            if slot.idle:
                del self.slots[connection_id]
                return


def check_connection_id(connection_id: object) -> str:
    if not isinstance(connection_id, str) or connection_id == "" or len(connection_id) > 256:
        raise InvalidRequestError("connection_id must be a non-empty string of at most 256 characters")
    return connection_id


def check_min_ttl(min_ttl: object, connection_id: str) -> float:
    if min_ttl is None:
        return 0.0
    if isinstance(min_ttl, bool) or not isinstance(min_ttl, (int, float)) or not 0 <= min_ttl <= MAX_MIN_TTL:
        raise InvalidRequestError(
            f"min_ttl must be a number of seconds from 0 to {MAX_MIN_TTL}", connection_id=connection_id
        )
    return float(min_ttl)


def check_version(version: object, connection_id: str) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidRequestError("version must be a non-negative integer", connection_id=connection_id)
    return version


def parse_token(body: object, connection_id: str) -> AccessToken:
    """The token in a 200 answer of ``/token`` or ``/token/rejected``."""
    b = body if isinstance(body, dict) else {}
    access_token, expires_at, version = b.get("access_token"), b.get("expires_at"), b.get("version")
    expiry = _parse_time(expires_at) if isinstance(expires_at, str) else None
    if (
        not isinstance(access_token, str)
        or access_token == ""
        or expiry is None
        or isinstance(version, bool)
        or not isinstance(version, int)
    ):
        raise unexpected(200, connection_id)
    token_type = b.get("token_type")
    return AccessToken(
        connection_id=connection_id,
        access_token=access_token,
        token_type=token_type if isinstance(token_type, str) else "Bearer",
        expires_at=expiry,
        version=version,
    )


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def unexpected(status: int, connection_id: str | None) -> TokenwardenError:
    return TokenwardenError(
        UNEXPECTED_RESPONSE,
        f"Tokenwarden answered HTTP {status} with a body this SDK cannot read",
        status=status,
        connection_id=connection_id,
    )
