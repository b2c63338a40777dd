"""What ``Client`` and ``AsyncClient`` hold alike: the checked settings, the HTTP client, the
token cache. Each adds its own way of waiting (threads or asyncio)."""

from __future__ import annotations

from typing import Callable, ClassVar

import httpx

from . import _wire
from ._token import TokenCache
from ._wire import Retry, RetryEvent
from .errors import InvalidRequestError


class ClientBase:
    _http_class: ClassVar[type]  # httpx.Client or httpx.AsyncClient

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        expiry_skew: float = 30.0,
        timeout: float = 30.0,
        retry: Retry | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        http_client: httpx.Client | httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = _wire.settings(
            base_url, api_key, expiry_skew=expiry_skew, timeout=timeout, retry=retry, on_retry=on_retry
        )
        if http_client is not None and not isinstance(http_client, self._http_class):
            raise InvalidRequestError(f"http_client must be an httpx.{self._http_class.__name__}")
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else self._http_class()
        self._cache = TokenCache()
