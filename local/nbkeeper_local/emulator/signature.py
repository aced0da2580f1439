"""Server-side check of SDK-HMAC-SHA256 signatures and IAM tokens, as the API gateway does."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from nbkeeper.modelarts.auth import (
    DATE_FORMAT,
    HEADER_AUTH_TOKEN,
    HEADER_CONTENT_SHA,
    HEADER_DATE,
    UNSIGNED_PAYLOAD,
    canonical_request,
    parse_authorization,
    signature,
    string_to_sign,
)

from .records import ApiError, Identity

MAX_SKEW_S = 15 * 60
CREDENTIAL_HEADERS = frozenset({"authorization", "x-security-token", "x-auth-token"})
ECHO_MASK = "***"


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs from a request, independent of the web framework."""

    method: str
    path: str  # raw (still percent-encoded) path
    query_pairs: list[tuple[str, str]]  # decoded, wire order
    headers: Mapping[str, str]  # lowercase names
    body: bytes


def unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


def verify(
    request: SignedRequest,
    keys: Mapping[str, tuple[str, Identity]],
    tokens: Mapping[str, Identity],
    now: datetime,
    max_skew_s: int = MAX_SKEW_S,
) -> Identity:
    """Return the caller's identity or raise a 401 ApiError with the gateway's codes."""
    token = request.headers.get(HEADER_AUTH_TOKEN.lower())
    if token is not None:
        identity = tokens.get(token)
        if identity is None:
            raise unauthorized(
                "APIG.0301", "Incorrect IAM authentication information: verify token failed"
            )
        return identity
    header = request.headers.get("authorization")
    if header is None:
        raise unauthorized(
            "APIG.0301",
            "Incorrect IAM authentication information: Authorization or X-Auth-Token not found",
        )
    parsed = parse_authorization(header)
    if parsed is None:
        raise unauthorized(
            "APIG.0303", "Incorrect app authentication information: Authorization header malformed"
        )
    entry = keys.get(parsed.access_key)
    if entry is None:
        raise unauthorized(
            "APIG.0303",
            # The key id is not echoed: replies reach people (and logs) that must not see it.
            "Incorrect app authentication information: access key not found",
        )
    secret, identity = entry
    if HEADER_DATE.lower() not in parsed.signed_headers:
        raise unauthorized(
            "APIG.0303", "Incorrect app authentication information: x-sdk-date must be signed"
        )
    _check_date(request.headers.get(HEADER_DATE.lower()), now, max_skew_s)
    canonical = canonical_request(
        request.method,
        request.path,
        request.query_pairs,
        request.headers,
        parsed.signed_headers,
        request.body,
    )
    declared = request.headers.get(HEADER_CONTENT_SHA.lower())
    if (
        declared
        and declared != UNSIGNED_PAYLOAD
        and request.body
        and not hmac.compare_digest(declared.lower(), hashlib.sha256(request.body).hexdigest())
    ):
        # The signature covers the declared hash, not the body: without this check a body
        # swapped in transit would pass.
        raise unauthorized(
            "APIG.0303",
            "Incorrect app authentication information: the payload does not match "
            f"{HEADER_CONTENT_SHA}",
        )
    expected = signature(secret, string_to_sign(canonical, request.headers[HEADER_DATE.lower()]))
    if not hmac.compare_digest(expected, parsed.signature):
        raise unauthorized(
            "APIG.0303",
            "Incorrect app authentication information: verify aksk signature fail, error: "
            f"Signature not matched. canonical request: {_echo(request, parsed.signed_headers)}",
        )
    return identity


def _echo(request: SignedRequest, signed_headers: list[str]) -> str:
    """The canonical request as the gateway echoes it, `|` for newlines, credentials masked.

    The real gateway echoes signed header values verbatim, so a signed X-Security-Token comes
    back in the error (the client redacts it). Error bodies end up in logs, so this emulator
    masks credential headers: the echo still shows which headers were signed and how.
    """
    masked = {
        name: ECHO_MASK if name.lower() in CREDENTIAL_HEADERS else value
        for name, value in request.headers.items()
    }
    canonical = canonical_request(
        request.method, request.path, request.query_pairs, masked, signed_headers, request.body
    )
    return canonical.replace("\n", "|")


def _check_date(value: str | None, now: datetime, max_skew_s: int) -> None:
    try:
        signed_at = datetime.strptime(value or "", DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise unauthorized(
            "APIG.0303",
            f"Incorrect app authentication information: X-Sdk-Date {value!r} is not like 20240102T030405Z",
        ) from None
    if abs((now - signed_at).total_seconds()) > max_skew_s:
        raise unauthorized(
            "APIG.0303",
            "Incorrect app authentication information: the request has expired "
            f"(X-Sdk-Date {value} is more than {max_skew_s // 60} minutes from server time "
            f"{now.strftime(DATE_FORMAT)})",
        )
