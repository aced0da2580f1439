"""The documented AK/SK test vector (api-facts.md, section C)."""

from datetime import UTC, datetime

import httpx
import pytest

from nbkeeper.modelarts.auth import Credentials, sign_request

VECTOR_URL = (
    "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
    "?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
)
VECTOR_CREDENTIALS = Credentials("QTWAOYTTINDUT2QVKYUC", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc")


@pytest.mark.parametrize(
    ("headers", "signed", "expected"),
    [
        (
            {"Content-Type": "application/json"},
            "content-type;host;x-sdk-date",
            "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
        ),
        ({}, "host;x-sdk-date", "faafba090046ef84c81ca330e77576d8746733ddfcf0317aaeb59cff50da39a7"),
    ],
)
def test_documented_vector(headers: dict[str, str], signed: str, expected: str) -> None:
    request = httpx.Request(
        "GET", VECTOR_URL, headers={**headers, "X-Sdk-Date": "20191115T033655Z"}
    )
    sign_request(request, VECTOR_CREDENTIALS, None, datetime.now(UTC))
    assert request.headers["Authorization"] == (
        f"SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders={signed}, Signature={expected}"
    )
