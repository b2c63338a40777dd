"""What ``Client`` and ``AsyncClient`` hold alike: the checked settings, the HTTP clients, the
token cache. Each adds its own way of waiting (threads or asyncio)."""

from __future__ import annotations

from typing import Callable, ClassVar

import httpx

from . import _tls, _wire
from ._tls import Cert, Verify
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
        verify: Verify = True,
        cert: Cert | None = None,
    ) -> None:
        self._settings = _wire.settings(
            base_url, api_key, expiry_skew=expiry_skew, timeout=timeout, retry=retry, on_retry=on_retry
        )
        if http_client is not None and not isinstance(http_client, self._http_class):
            raise InvalidRequestError(f"http_client must be an httpx.{self._http_class.__name__}")
        tls = _tls.ssl_context(verify, cert)
        if tls is not None and http_client is not None:
            raise InvalidRequestError(
                "verify and cert set up the HTTP client made here; with http_client, set its TLS there"
            )
        self._owns_http = http_client is None
        #: For ``fetch`` (and for the API too, unless TLS options are given).
        self._http = http_client if http_client is not None else self._http_class()
        #: For the API's requests: with ``verify``/``cert``, a client of their own, so that a
        #: private CA and a client certificate are not used with resource servers.
        self._api_http = self._http if tls is None else self._http_class(verify=tls)
        self._cache = TokenCache()

    def _http_clients(self) -> list:
        """The HTTP clients to close: those made here."""
        if not self._owns_http:
            return []
        return [self._http] if self._api_http is self._http else [self._http, self._api_http]
