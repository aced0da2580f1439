"""Slack request signing: `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{raw body}`).

Checked over the raw bytes before any parsing, in constant time, within a symmetric five-minute
window (exactly 300 s off is accepted, 301 s is not, as slack_sdk does), with a body size cap.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

MAX_SKEW_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024  # slash commands and interaction payloads are a few KB


class SignatureError(Exception):
    """The request is not provably from Slack. The reason is for logs only; reply 401."""


def compute_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` value Slack would send for this timestamp and body."""
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (API Gateway lowercases, other callers may not)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_request(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Raise SignatureError unless `body` was signed by Slack with `secret` within the window."""
    if not secret.strip():
        raise SignatureError("no signing secret configured")
    if len(body) > max_body_bytes:
        raise SignatureError(f"body of {len(body)} bytes exceeds {max_body_bytes}")
    timestamp = header(headers, "X-Slack-Request-Timestamp")
    signature = header(headers, "X-Slack-Signature")
    if not timestamp or not signature:
        raise SignatureError("missing signature headers")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("malformed timestamp")
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        raise SignatureError("timestamp outside the five-minute window")
    expected = compute_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise SignatureError("signature mismatch")
