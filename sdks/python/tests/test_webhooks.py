"""verify_webhook against the Standard Webhooks specification's own example and bad inputs."""

import base64
import hashlib
import hmac

import pytest

from tokenwarden import WebhookVerificationError, verify_webhook

# The specification's example (standardwebhooks.com, and its reference libraries' tests).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = SIGNATURE, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {"Webhook-Id": MSG_ID, "Webhook-Timestamp": str(timestamp), "Webhook-Signature": signature}


def test_accepts_the_specifications_example() -> None:
    assert verify_webhook(SECRET, headers(), BODY, now=TIMESTAMP + 10) == {"test": 2432232314}
    assert verify_webhook(SECRET, headers(), BODY.encode(), now=TIMESTAMP) == {"test": 2432232314}


def test_accepts_any_of_several_signatures_during_a_rotation() -> None:
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    assert verify_webhook(SECRET, headers(f"{other} {SIGNATURE}"), BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("hdrs", "body", "now", "message"),
    [
        (headers(), BODY + " ", TIMESTAMP, "no signature matches"),
        (headers("v2," + SIGNATURE[3:]), BODY, TIMESTAMP, "no signature matches"),
        (headers("v1,not base64!"), BODY, TIMESTAMP, "no signature matches"),
        (headers(), BODY, TIMESTAMP + 301, "more than 300 s from now"),
        (headers(), BODY, TIMESTAMP - 301, "more than 300 s from now"),
        (headers(timestamp=-1), BODY, TIMESTAMP, "not a number of seconds"),
        ({"webhook-id": MSG_ID}, BODY, TIMESTAMP, "missing webhook-id"),
    ],
)
def test_refuses(hdrs: dict[str, str], body: str, now: int, message: str) -> None:
    with pytest.raises(WebhookVerificationError, match=message) as caught:
        verify_webhook(SECRET, hdrs, body, now=now)
    assert caught.value.code == "webhook_invalid"
    assert SECRET not in str(caught.value) and SIGNATURE not in str(caught.value)


def test_refuses_a_body_that_is_not_a_json_object() -> None:
    key = base64.b64decode(SECRET[6:])
    for body, message in [("[1]", "not a JSON object"), ("{", "not JSON")]:
        digest = hmac.new(key, f"{MSG_ID}.{TIMESTAMP}.{body}".encode(), hashlib.sha256).digest()
        signature = "v1," + base64.b64encode(digest).decode()
        with pytest.raises(WebhookVerificationError, match=message):
            verify_webhook(SECRET, headers(signature), body, now=TIMESTAMP)


@pytest.mark.parametrize("secret", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!"])
def test_refuses_a_secret_that_is_not_whsec(secret: str) -> None:
    with pytest.raises(TypeError, match="whsec_"):
        verify_webhook(secret, headers(), BODY, now=TIMESTAMP)
