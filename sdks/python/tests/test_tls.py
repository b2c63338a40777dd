"""TLS options beyond the scenarios' cases: bad files are typed errors when the client is made,
the TLS error says what to do and shows no secret, and the private CA is for the API's requests
only (``fetch`` keeps httpx's defaults)."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest

from tokenwarden import AsyncClient, Client, InvalidRequestError, TLSError


@pytest.fixture(scope="module")
def tls_case(harness):
    return harness.setup("tls_client_certificate_sha256")


def test_bad_tls_options_are_typed_errors_naming_the_file(tls_case, tmp_path):
    files = tls_case["tls"]
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate")
    cases = [
        ({"verify": str(tmp_path / "missing.pem")}, "missing.pem does not exist"),
        ({"verify": str(not_pem)}, "is not a PEM CA bundle"),
        ({"verify": False}, "not verifying is not offered"),
        ({"verify": 3}, "verify must be"),
        ({"cert": (files["cert_file"], str(tmp_path / "missing.key"))}, "missing.key does not exist"),
        ({"cert": (files["cert_file"], files["other_key_file"])}, "are not a PEM certificate and its"),
        ({"cert": str(not_pem)}, "not.pem are not a PEM certificate"),
        ({"cert": ("a", "b", "c")}, "cert must be"),
        ({"verify": files["ca_file"], "http_client": httpx.Client()}, "with http_client, set its TLS there"),
    ]
    for kwargs, message in cases:
        for cls in (Client, AsyncClient):
            if "http_client" in kwargs and cls is AsyncClient:
                kwargs = {**kwargs, "http_client": httpx.AsyncClient()}
            with pytest.raises(InvalidRequestError) as raised:
                cls(tls_case["base_url"], tls_case["api_key"], **kwargs)
            assert raised.value.code == "invalid_request" and message in str(raised.value), kwargs
            assert "PRIVATE KEY" not in str(raised.value)


def test_the_tls_error_says_what_to_give_and_is_not_retried(tls_case):
    files = tls_case["tls"]
    retries: list = []
    untrusting = Client(tls_case["base_url"], tls_case["api_key"], on_retry=retries.append)
    with untrusting, pytest.raises(TLSError) as raised:
        untrusting.get_access_token(tls_case["connection_id"])
    error = raised.value
    assert error.code == "network_error" and not error.retryable and retries == []
    assert error.reason == "CERTIFICATE_VERIFY_FAILED"
    assert "not trusted here" in error.message and "verify=" in error.message
    assert tls_case["api_key"] not in repr(error) + str(error)

    without_certificate = Client(tls_case["base_url"], tls_case["api_key"], verify=files["ca_file"])
    with without_certificate, pytest.raises(TLSError) as raised:
        without_certificate.get_access_token(tls_case["connection_id"])
    assert "CERTIFICATE_REQUIRED" in raised.value.reason
    assert "requires a client certificate" in raised.value.message and "cert=" in raised.value.message


def test_an_ssl_context_and_one_pem_file_with_both_work_too(tls_case, tmp_path):
    files = tls_case["tls"]
    both = tmp_path / "client-and-key.pem"
    both.write_text(open(files["cert_file"]).read() + open(files["key_file"]).read())
    context = ssl.create_default_context(cafile=files["ca_file"])
    context.load_cert_chain(files["cert_file"], files["key_file"])

    with Client(tls_case["base_url"], tls_case["api_key"], verify=context) as client:
        assert client.get_access_token(tls_case["connection_id"]).access_token

    async def run() -> None:
        async with AsyncClient(
            tls_case["base_url"], tls_case["api_key"], verify=files["ca_file"], cert=str(both)
        ) as client:
            assert (await client.get_access_token(tls_case["connection_id"])).access_token

    asyncio.run(run())


def test_the_private_ca_is_not_used_for_resource_servers(tls_case):
    files = tls_case["tls"]
    client = Client(
        tls_case["base_url"],
        tls_case["api_key"],
        verify=files["ca_file"],
        cert=(files["cert_file"], files["key_file"]),
    )
    with client:
        assert client.get_access_token(tls_case["connection_id"]).access_token
        # fetch reaches resource servers with httpx's defaults (the system's CAs): a server whose
        # certificate only the private CA vouches for, here Tokenwarden's own, is not trusted.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.fetch(tls_case["connection_id"], tls_case["base_url"] + "/healthz")
