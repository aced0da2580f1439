"""The emulator checks SDK-HMAC-SHA256 signatures and IAM tokens like the API gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nbkeeper.modelarts.auth import Credentials, SignerAuth, TokenAuth
from nbkeeper_local.emulator import (
    DEMO_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    SimClock,
)
from tests.emulator_fixtures import (
    ACCESS_KEY,
    EMULATOR_BASE_URL,
    EMULATOR_START,
    NOTEBOOKS,
    PROJECT_ID,
    SECRET_KEY,
)

SERVER_NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

Send = Callable[..., httpx.Response]


@pytest.fixture
def send() -> Send:
    emulator = Emulator(
        EmulatorConfig(), clock=SimClock.stepped(EMULATOR_START), realtime=lambda: SERVER_NOW
    )

    def call(
        auth: httpx.Auth | None, method: str = "GET", path: str = NOTEBOOKS, **kwargs: Any
    ) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=emulator.asgi_transport(), base_url=EMULATOR_BASE_URL, auth=auth
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    return call


def signer(
    sk: str = SECRET_KEY, skew: timedelta = timedelta(0), ak: str = ACCESS_KEY
) -> SignerAuth:
    return SignerAuth(Credentials(ak, sk), PROJECT_ID, clock=lambda: SERVER_NOW + skew)


def test_good_signature_is_accepted(send: Send) -> None:
    assert send(signer()).status_code == 200


def test_signed_post_with_query_and_body_is_accepted(send: Send) -> None:
    response = send(
        signer(),
        "POST",
        NOTEBOOKS,
        params={"b": "2 3", "a": "x/y"},
        json={
            "name": "n",
            "image_id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
            "flavor": "modelarts.vm.cpu.2u",
            "volume": {"category": "EVS", "ownership": "MANAGED"},
        },
    )
    assert response.status_code == 200, response.text


def test_wrong_secret_is_401_apig_0303_echoing_the_canonical_request(send: Send) -> None:
    response = send(signer(sk="wrong"), params={"limit": "10"})
    body = response.json()
    assert (response.status_code, body["error_code"]) == (401, "APIG.0303")
    assert f"GET|/v1/{PROJECT_ID}/notebooks/|limit=10|" in body["error_msg"]
    assert "\n" not in body["error_msg"]
    assert response.headers["X-Request-Id"]


def test_signature_echo_masks_the_security_token_and_authorization(send: Send) -> None:
    token = "temporary-security-token-value"
    signature = "5" * 64
    response = send(
        None,
        headers={
            "X-Sdk-Date": SERVER_NOW.strftime("%Y%m%dT%H%M%SZ"),
            "X-Security-Token": token,
            "Authorization": f"SDK-HMAC-SHA256 Access={ACCESS_KEY}, "
            f"SignedHeaders=authorization;x-sdk-date;x-security-token, Signature={signature}",
        },
    )
    message = response.json()["error_msg"]
    assert response.json()["error_code"] == "APIG.0303"
    assert "|authorization:***|x-sdk-date:" in message and "|x-security-token:***|" in message
    assert token not in message and signature not in message


def test_tampered_body_fails_the_signature(send: Send) -> None:
    request_body = b'{"duration": 3600000}'
    response = send(
        _Rewriting(signer(), b'{"duration": 7200000}'),
        "PATCH",
        f"{NOTEBOOKS}/x/lease",
        content=request_body,
        headers={"Content-Type": "application/json"},
    )
    assert response.json()["error_code"] == "APIG.0303"


class _Rewriting(httpx.Auth):
    """Signs, then swaps the body (as a man in the middle would)."""

    requires_request_body = True

    def __init__(self, inner: SignerAuth, new_body: bytes) -> None:
        self.inner = inner
        self.new_body = new_body

    def auth_flow(self, request: httpx.Request) -> Any:
        signed = next(self.inner.auth_flow(request))
        signed.stream = httpx.ByteStream(self.new_body)
        signed._content = self.new_body
        signed.headers["Content-Length"] = str(len(self.new_body))
        yield signed


@pytest.mark.parametrize("minutes", [14, -14])
def test_clock_skew_within_15_minutes_is_accepted(send: Send, minutes: int) -> None:
    assert send(signer(skew=timedelta(minutes=minutes))).status_code == 200


@pytest.mark.parametrize("minutes", [16, -16])
def test_clock_skew_beyond_15_minutes_is_refused(send: Send, minutes: int) -> None:
    response = send(signer(skew=timedelta(minutes=minutes)))
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0303")
    assert "expired" in response.json()["error_msg"]


def test_unknown_access_key_is_refused(send: Send) -> None:
    response = send(signer(ak="NOSUCHKEY"))
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0303")


def test_a_refusal_never_echoes_the_access_key_id(send: Send) -> None:
    for auth in (signer(ak="AKNOSUCHKEY0123"), signer(sk="wrong-secret")):
        message = send(auth).json()["error_msg"]
        assert "AKNOSUCHKEY0123" not in message and ACCESS_KEY not in message


class _DeclaredHash(httpx.Auth):
    """Declares a payload hash (signed, as the SDK may) that does not match the body."""

    requires_request_body = True

    def __init__(self, inner: SignerAuth, declared: str) -> None:
        self.inner = inner
        self.declared = declared

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["X-Sdk-Content-Sha256"] = self.declared
        yield next(self.inner.auth_flow(request))


def test_a_declared_payload_hash_must_match_the_body(send: Send) -> None:
    body = b'{"duration": 3600000}'
    response = send(
        _DeclaredHash(signer(), "0" * 64),
        "PATCH",
        f"{NOTEBOOKS}/x/lease",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0303")
    assert "payload" in response.json()["error_msg"]


def test_an_unsigned_payload_may_be_declared(send: Send) -> None:
    response = send(
        _DeclaredHash(signer(), "UNSIGNED-PAYLOAD"),
        "PATCH",
        f"{NOTEBOOKS}/x/lease",
        content=b'{"duration": 3600000}',
        headers={"Content-Type": "application/json"},
    )
    assert response.json().get("error_code") != "APIG.0303"


def test_missing_credentials_are_401(send: Send) -> None:
    response = send(None)
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0301")


def test_configured_token_is_accepted_without_signing(send: Send) -> None:
    assert send(TokenAuth(DEMO_AUTH_TOKEN, PROJECT_ID)).status_code == 200


def test_unknown_token_is_refused(send: Send) -> None:
    response = send(TokenAuth("stolen", PROJECT_ID))
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0301")


def test_unsigned_date_header_is_refused(send: Send) -> None:
    auth = signer()
    request = httpx.Request("GET", f"{EMULATOR_BASE_URL}{NOTEBOOKS}")
    signed = next(auth.auth_flow(request))
    header = signed.headers["Authorization"].replace("x-sdk-date", "x-other")
    response = send(None, headers={**dict(signed.headers), "Authorization": header})
    assert response.json()["error_code"] == "APIG.0303"
