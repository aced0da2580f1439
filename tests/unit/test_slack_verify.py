"""Slack request signing, checked against slack_sdk's SignatureVerifier as the oracle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from nbkeeper.slack.verify import (
    MAX_BODY_BYTES,
    SignatureError,
    compute_signature,
    verify_request,
)

SECRET = "test-signing-secret"
TIMESTAMP = "1700000000"
BODY = b"token=x&team_id=T1&user_id=U1&command=%2Fnb&text=start+nb1"
VECTOR = "v0=41323b7d062dfd5c41d65d4ddd10bbdcdca08c52d8fb7122849eec325b574d40"


class FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def headers(signature: str, timestamp: str = TIMESTAMP) -> dict[str, str]:
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}


def test_api_facts_vector() -> None:
    assert compute_signature(SECRET, TIMESTAMP, BODY) == VECTOR


@given(
    text=st.text(max_size=512),
    secret=st.text(min_size=1, max_size=40).filter(lambda s: bool(s.strip())),
)
def test_signature_matches_slack_sdk(text: str, secret: str) -> None:
    body = text.encode()  # slack_sdk decodes bodies as UTF-8, so feed it text
    oracle = SignatureVerifier(secret).generate_signature(timestamp=TIMESTAMP, body=body)
    assert compute_signature(secret, TIMESTAMP, body) == oracle


def test_valid_request_passes() -> None:
    verify_request(SECRET, headers(VECTOR), BODY, now=1700000000)


@pytest.mark.parametrize(
    ("skew", "accepted"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)]
)
def test_five_minute_window_is_symmetric_like_slack_sdk(skew: int, accepted: bool) -> None:
    now = int(TIMESTAMP) + skew
    oracle = SignatureVerifier(SECRET, clock=FixedClock(now)).is_valid(BODY, TIMESTAMP, VECTOR)  # type: ignore[arg-type]
    assert oracle is accepted
    if accepted:
        verify_request(SECRET, headers(VECTOR), BODY, now=now)
    else:
        with pytest.raises(SignatureError, match="window"):
            verify_request(SECRET, headers(VECTOR), BODY, now=now)


@pytest.mark.parametrize(
    ("hdrs", "body", "reason"),
    [
        (headers(VECTOR), BODY + b"x", "mismatch"),
        (headers(VECTOR.replace("4", "5")), BODY, "mismatch"),
        ({"x-slack-signature": VECTOR}, BODY, "missing"),
        ({"x-slack-request-timestamp": TIMESTAMP}, BODY, "missing"),
        (headers(VECTOR, timestamp="17e8"), BODY, "malformed"),
        (headers(VECTOR, timestamp="-1700000000"), BODY, "malformed"),
        (headers("v0=é"), BODY, "mismatch"),
    ],
)
def test_rejections(hdrs: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_request(SECRET, hdrs, body, now=1700000000)


def test_headers_are_case_insensitive() -> None:
    upper = {"X-Slack-Request-Timestamp": TIMESTAMP, "X-Slack-Signature": VECTOR}
    verify_request(SECRET, upper, BODY, now=1700000000)


def test_oversized_body_is_rejected_before_hashing() -> None:
    body = b"a" * (MAX_BODY_BYTES + 1)
    signature = compute_signature(SECRET, TIMESTAMP, body)
    with pytest.raises(SignatureError, match="exceeds"):
        verify_request(SECRET, headers(signature), body, now=1700000000)


def test_empty_secret_never_verifies() -> None:
    with pytest.raises(SignatureError):
        verify_request("", headers(compute_signature("", TIMESTAMP, BODY)), BODY, now=1700000000)
