"""Tokenwarden's Python SDK: valid access tokens for workers, cached in the process, one
request per connection however many threads or tasks ask, refreshed once cluster-wide.

    from tokenwarden import Client, NeedsReauthError

    tokenwarden = Client("https://tokenwarden.internal", api_key=os.environ["TOKENWARDEN_API_KEY"])
    token = tokenwarden.get_access_token(connection_id, min_ttl=60)
    # Or let the SDK add the bearer, and on a 401 report the rejected token and retry once:
    response = tokenwarden.fetch(connection_id, "https://slack.com/api/conversations.list")

``AsyncClient`` is the same for asyncio. ``tokenwarden.temporal`` (extra ``temporal``) has
activity helpers for the Temporal Python SDK.
"""

from ._token import AccessToken
from ._wire import Retry, RetryEvent
from .aio import AsyncClient
from .client import Client
from .errors import (
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
from .webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "AccessToken",
    "AsyncClient",
    "Client",
    "ForbiddenError",
    "InvalidRequestError",
    "NeedsReauthError",
    "NetworkError",
    "NotFoundError",
    "RefreshUnavailableError",
    "Retry",
    "RetryEvent",
    "TLSError",
    "TokenwardenError",
    "UnauthorizedError",
    "WebhookVerificationError",
    "verify_webhook",
]
