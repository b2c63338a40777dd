"""The errors the SDK raises.

Codes are the Tokenwarden HTTP API's (the registry in ``@tokenwarden/core``), the same strings as
the TypeScript client's ``ErrorCode``; two more only an SDK can see: the server could not be
reached (``network_error``), or answered something unreadable (``unexpected_response``). Catch
by class or match on ``code``, never on the message. Messages never contain a token or the key.
"""

from __future__ import annotations

NOT_FOUND = "not_found"
NEEDS_REAUTH = "needs_reauth"
REFRESH_UNAVAILABLE = "refresh_unavailable"
INVALID_REQUEST = "invalid_request"
INVALID_INPUT = "invalid_input"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
PAYLOAD_TOO_LARGE = "payload_too_large"
STORE_UNAVAILABLE = "store_unavailable"
INTERNAL_ERROR = "internal_error"
SHUTTING_DOWN = "shutting_down"
NETWORK_ERROR = "network_error"
UNEXPECTED_RESPONSE = "unexpected_response"

_RETRYABLE = frozenset({REFRESH_UNAVAILABLE, STORE_UNAVAILABLE, SHUTTING_DOWN, NETWORK_ERROR})


class TokenwardenError(Exception):
    """Base class of every error the SDK raises on purpose.

    ``code`` is stable: one of the constants above, or a code a newer server knows and this SDK
    does not yet. ``status`` is the HTTP status of the answer, when there was one.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        connection_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.connection_id = connection_id

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (the SDK has already retried within its
        bounds): ``refresh_unavailable``, ``store_unavailable``, ``shutting_down``, network errors."""
        return self.code in _RETRYABLE

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class NeedsReauthError(TokenwardenError):
    """409: only a new authorization by the connection's owner helps. ``reason`` says why
    (``invalid_grant``, ``refresh_in_doubt``, ``refresh_token_expired``, ``no_refresh_token``...)."""

    def __init__(self, message: str, reason: str, **details) -> None:
        super().__init__(NEEDS_REAUTH, message, **details)
        self.reason = reason


class RefreshUnavailableError(TokenwardenError):
    """503: the token could not be refreshed right now; the connection is still healthy.
    ``retry_after`` is how long, in seconds, the server asked to wait."""

    def __init__(self, message: str, retry_after: float, **details) -> None:
        super().__init__(REFRESH_UNAVAILABLE, message, **details)
        self.retry_after = retry_after


class NotFoundError(TokenwardenError):
    """404: no connection with this id (or the API key may not know it exists)."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(NOT_FOUND, message, **details)


class ForbiddenError(TokenwardenError):
    """403: the API key is valid but not granted this connection."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(FORBIDDEN, message, **details)


class UnauthorizedError(TokenwardenError):
    """401: the API key is missing, unknown or revoked."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(UNAUTHORIZED, message, **details)


class InvalidRequestError(TokenwardenError):
    """400 (and 413), or an argument this SDK refused before sending; ``code`` is what the server
    said (``invalid_request``, ``invalid_input``, ``payload_too_large``)."""

    def __init__(self, message: str, *, code: str = INVALID_REQUEST, **details) -> None:
        super().__init__(code, message, **details)


class NetworkError(TokenwardenError):
    """The server could not be reached, or did not answer within the timeout."""

    def __init__(self, message: str, *, timed_out: bool = False, **details) -> None:
        super().__init__(NETWORK_ERROR, message, **details)
        self.timed_out = timed_out


class TLSError(NetworkError):
    """The TLS handshake with the server failed: its certificate is not trusted here (give the
    client the CA that issued it: ``verify=``), or it required a client certificate that this
    client did not present (``cert=``). ``reason`` is OpenSSL's (``CERTIFICATE_VERIFY_FAILED``,
    ``TLSV13_ALERT_CERTIFICATE_REQUIRED``, ...). Not retried, and not ``retryable``: only a change
    of settings helps."""

    def __init__(self, message: str, *, reason: str, **details) -> None:
        super().__init__(message, **details)
        self.reason = reason

    @property
    def retryable(self) -> bool:
        return False
