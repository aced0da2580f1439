"""Huawei Cloud request authentication: SDK-HMAC-SHA256 signing (AK/SK) and IAM token auth.

The canonical-request functions are shared by the client (which signs) and the local emulator
(which verifies), so both sides agree by construction; the official huaweicloudsdkcore signer is
the independent oracle in tests/conformance.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import httpx

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
HEADER_DATE = "X-Sdk-Date"
HEADER_CONTENT_SHA = "X-Sdk-Content-Sha256"
HEADER_SECURITY_TOKEN = "X-Security-Token"
HEADER_PROJECT_ID = "X-Project-Id"
HEADER_AUTH_TOKEN = "X-Auth-Token"


def encode_component(value: str) -> str:
    """Percent-encode one path segment or query item, keeping only RFC 3986 unreserved chars."""
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Decode the path, re-encode each segment, and end with '/' (as the gateway does)."""
    uri = "/".join(encode_component(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sort decoded (key, value) pairs and encode them; repeated keys stay repeated."""
    return "&".join(f"{encode_component(k)}={encode_component(v)}" for k, v in sorted(pairs))


def signable_header_names(header_names: Iterable[str]) -> list[str]:
    """Every header without an underscore, lowercased and sorted (the SDK's rule)."""
    return sorted({name.lower() for name in header_names if "_" not in name})


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    """Hex SHA-256 of the body; empty body and UNSIGNED-PAYLOAD as the SDK treats them."""
    if not body:
        return EMPTY_BODY_SHA256
    declared = _get_ignore_case(headers, HEADER_CONTENT_SHA)
    if declared:
        return declared
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """Build the canonical request string that both signer and verifier hash."""
    lowered = {k.lower(): str(v).strip() for k, v in headers.items()}
    header_block = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query_pairs),
            header_block,
            ";".join(signed_headers),
            payload_hash(body, headers),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization_header(access_key: str, signed_headers: list[str], sig: str) -> str:
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed_headers)}, Signature={sig}"


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization | None:
    """Parse an `SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...` header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val
    try:
        return ParsedAuthorization(
            access_key=parts["Access"],
            signed_headers=[h for h in parts["SignedHeaders"].split(";") if h],
            signature=parts["Signature"],
        )
    except KeyError:
        return None


def query_pairs_from_url(url: httpx.URL) -> list[tuple[str, str]]:
    """Decoded query pairs in wire order (blank values kept)."""
    return list(httpx.QueryParams(url.query.decode("ascii")).multi_items())


def _get_ignore_case(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


@dataclass(frozen=True)
class Credentials:
    """AK/SK (optionally temporary, with a security token). Secrets never appear in repr."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


class SignerAuth(httpx.Auth):
    """httpx auth flow that signs each request with SDK-HMAC-SHA256.

    `clock` is injectable so tests can reproduce fixed vectors.
    """

    requires_request_body = True

    def __init__(
        self,
        credentials: Credentials,
        project_id: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._credentials = credentials
        self._project_id = project_id
        self._clock = clock or (lambda: datetime.now(UTC))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sign_request(request, self._credentials, self._project_id, self._clock())
        yield request


def sign_request(
    request: httpx.Request,
    credentials: Credentials,
    project_id: str | None,
    now: datetime,
) -> None:
    """Add the date, project, token and Authorization headers to `request` in place."""
    headers = request.headers
    content_type = headers.get("content-type", "")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        headers[HEADER_CONTENT_SHA] = UNSIGNED_PAYLOAD
    if HEADER_DATE not in headers:
        headers[HEADER_DATE] = now.astimezone(UTC).strftime(DATE_FORMAT)
    if project_id and HEADER_PROJECT_ID not in headers:
        headers[HEADER_PROJECT_ID] = project_id
    if credentials.security_token and HEADER_SECURITY_TOKEN not in headers:
        headers[HEADER_SECURITY_TOKEN] = credentials.security_token
    # httpx adds Host itself; it is signed like any other header.
    header_map = dict(headers.items())
    signed = signable_header_names(header_map)
    canonical = canonical_request(
        request.method,
        request.url.raw_path.split(b"?", 1)[0].decode("ascii"),
        query_pairs_from_url(request.url),
        header_map,
        signed,
        request.content,
    )
    sig = signature(credentials.secret_key, string_to_sign(canonical, headers[HEADER_DATE]))
    headers["Authorization"] = authorization_header(credentials.access_key, signed, sig)


class TokenAuth(httpx.Auth):
    """IAM token auth: `X-Auth-Token`, no signing."""

    def __init__(self, token: str, project_id: str | None = None) -> None:
        self._token = token
        self._project_id = project_id

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[HEADER_AUTH_TOKEN] = self._token
        if self._project_id:
            request.headers.setdefault(HEADER_PROJECT_ID, self._project_id)
        yield request

    def __repr__(self) -> str:
        return "TokenAuth(token=***)"
