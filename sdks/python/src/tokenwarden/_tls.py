"""The TLS settings of the client's requests to the Tokenwarden API (not ``fetch``'s: a resource
server is verified as httpx does by default): a CA bundle to trust instead of the system's, and a
client certificate for a server that asks for one. Checked when the client is made, so a wrong
path fails at start with the file's name, not at the first token request."""

from __future__ import annotations

import os
import ssl
from typing import Union

from .errors import InvalidRequestError

PathLike = Union[str, "os.PathLike[str]"]
#: ``verify``: True (the system's CAs), the path of a PEM CA bundle, or an ``ssl.SSLContext``.
Verify = Union[bool, PathLike, ssl.SSLContext]
#: ``cert``: a PEM file holding the certificate and its key, or ``(cert_file, key_file)``.
Cert = Union[PathLike, "tuple[PathLike, PathLike]"]


def ssl_context(verify: object, cert: object) -> ssl.SSLContext | None:
    """The context for the API's requests; None when both are the defaults (httpx's own)."""
    if verify is True and cert is None:
        return None
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is True:
        context = ssl.create_default_context()
    elif isinstance(verify, (str, os.PathLike)):
        context = _trusting(os.fspath(verify))
    else:
        # False (no verification) is refused: the API key would go to whoever answers.
        raise InvalidRequestError(
            "verify must be True, the path of a PEM CA bundle or an ssl.SSLContext "
            "(not verifying is not offered)"
        )
    if cert is not None:
        _load_client_certificate(context, cert)
    return context


def _trusting(ca_file: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError:
        raise InvalidRequestError(f"verify: the CA bundle {ca_file} does not exist") from None
    except (ssl.SSLError, OSError) as error:
        raise InvalidRequestError(f"verify: {ca_file} is not a PEM CA bundle ({_why(error)})") from None


def _load_client_certificate(context: ssl.SSLContext, cert: object) -> None:
    if isinstance(cert, (str, os.PathLike)):
        cert_file, key_file = os.fspath(cert), None
    elif (
        isinstance(cert, tuple)
        and len(cert) == 2
        and all(isinstance(part, (str, os.PathLike)) for part in cert)
    ):
        cert_file, key_file = os.fspath(cert[0]), os.fspath(cert[1])
    else:
        raise InvalidRequestError("cert must be a PEM file's path or a (cert_file, key_file) tuple")
    for path in (cert_file, key_file):
        # OpenSSL's FileNotFoundError does not say which of the two is missing.
        if path is not None and not os.path.exists(path):
            raise InvalidRequestError(f"cert: {path} does not exist")
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as error:
        # The key's contents never reach the message: only the files' names and OpenSSL's reason.
        files = cert_file if key_file is None else f"{cert_file} and {key_file}"
        raise InvalidRequestError(
            f"cert: {files} are not a PEM certificate and its unencrypted private key ({_why(error)})"
        ) from None


def _why(error: BaseException) -> str:
    return getattr(error, "reason", None) or type(error).__name__
