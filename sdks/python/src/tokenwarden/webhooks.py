"""Verifying Tokenwarden's lifecycle webhooks in a backend, as the Standard Webhooks
specification says (https://www.standardwebhooks.com): ``webhook-signature`` holds one or more
``v1,<base64>`` signatures, each the HMAC-SHA256 of ``<webhook-id>.<webhook-timestamp>.<body>``
under the endpoint's secret (``whsec_<base64>``); during a secret rotation, one per secret.
The same check as ``verifyWebhook`` in ``@tokenwarden/client``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from .errors import TokenwardenError

_TIMESTAMP = re.compile(r"^\d{1,12}$")


class WebhookVerificationError(TokenwardenError):
    """The delivery is not one Tokenwarden signed with this secret, or too old to trust."""

    def __init__(self, message: str) -> None:
        super().__init__("webhook_invalid", message)


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> dict[str, Any]:
    """Checks a delivery and returns its event (``{"type", "id", "timestamp", "data"}``).

    ``body`` must be the raw request body as received, not JSON parsed and serialised again;
    ``headers`` any mapping of the request's headers (names in any case). Raises
    ``WebhookVerificationError`` without quoting the secret or a signature.
    """
    key = _secret_key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not message_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not _TIMESTAMP.match(timestamp):
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds")
    current = time.time() if now is None else now
    if abs(int(current) - int(timestamp)) > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is more than {tolerance:g} s from now (a replay, or a clock off)"
        )
    raw = body.encode() if isinstance(body, str) else bytes(body)
    expected = hmac.new(key, f"{message_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    if not any(_matches(entry, expected) for entry in signatures.split(" ")):
        raise WebhookVerificationError("no signature matches this secret")
    try:
        event = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return event


def _matches(entry: str, expected: bytes) -> bool:
    version, _, signature = entry.partition(",")
    if version != "v1" or not signature:
        return False
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected)


def _secret_key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.startswith("whsec_") or len(secret) <= len("whsec_"):
        raise TypeError("secret must be the whsec_... secret the endpoint was created with")
    try:
        return base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise TypeError("secret must be the whsec_... secret the endpoint was created with") from None
