"""Our SDK-HMAC-SHA256 signatures equal huaweicloudsdkcore's Signer for the same requests.

Each case builds one httpx request (what our client sends) and hands the SDK the same method,
host, raw path, query pairs, headers and body. The SDK sorts (key, value) tuples and encodes with
quote(safe='~'); our signer re-reads the query from the httpx URL, so both must canonicalise to
the same string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbkeeper.modelarts.auth import Credentials, canonical_query, sign_request
from nbkeeper.modelarts.client import AsyncModelArtsClient, run_sync
from nbkeeper.modelarts.schemas import ListNotebooksQuery

AK = "QTWAOYTTINDUT2QVKYUC"
SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
SDK_DATE = "20191115T033655Z"
NOW = datetime(2019, 11, 15, 3, 36, 55, tzinfo=UTC)
RESERVED_SAFE = "!$&'()*+,;=:@"


class SdkCredentials:
    """What Signer reads from BasicCredentials."""

    def __init__(self, ak: str, sk: str) -> None:
        self.ak = ak
        self.sk = sk


def ours(
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    body: bytes,
    security_token: str | None = None,
    project_id: str | None = None,
) -> tuple[str, httpx.Request]:
    request = httpx.Request(method, url, headers={**headers, "X-Sdk-Date": SDK_DATE}, content=body)
    sign_request(request, Credentials(AK, SK, security_token), project_id, NOW)
    return request.headers["Authorization"], request


def sdk(
    method: str,
    host: str,
    raw_path: str,
    query: list[tuple[str, object]],
    unsigned: httpx.Request,
    body: bytes,
    security_token: str | None = None,
    project_id: str | None = None,
) -> str:
    """Sign with the SDK, giving it the headers httpx put on the request (original case)."""
    headers = {key.decode(): value.decode() for key, value in unsigned.headers.raw}
    if security_token:
        headers["X-Security-Token"] = security_token
    if project_id:
        headers["X-Project-Id"] = project_id
    request = SdkRequest(
        method=method,
        schema="https",
        host=host,
        resource_path=raw_path,
        query_params=query,
        header_params=headers,
        body=body,
    )
    Signer(SdkCredentials(AK, SK)).sign(request)
    return str(request.header_params["Authorization"])


def both(
    method: str,
    host: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    security_token: str | None = None,
    project_id: str | None = None,
) -> tuple[str, str]:
    url = httpx.URL(f"https://{host}").copy_with(raw_path=raw_path.encode("ascii"))
    url = url.copy_with(params=query)
    unsigned = httpx.Request(method, url, headers={**headers, "X-Sdk-Date": SDK_DATE}, content=body)
    mine, _ = ours(method, url, headers, body, security_token, project_id)
    theirs = sdk(method, host, raw_path, list(query), unsigned, body, security_token, project_id)
    return mine, theirs


# ---------------------------------------------------------------- the documented vector


@pytest.mark.parametrize("headers", [{"Content-Type": "application/json"}, {}])
def test_documented_vector_matches_sdk(headers: dict[str, str]) -> None:
    mine, theirs = both(
        "GET",
        "service.region.example.com",
        "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
        [("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")],
        headers,
        b"",
    )
    assert mine == theirs
    expected = {
        True: "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
        False: "faafba090046ef84c81ca330e77576d8746733ddfcf0317aaeb59cff50da39a7",
    }[bool(headers)]
    assert mine.endswith(f"Signature={expected}")


def test_temporary_credentials_and_project_id_match_sdk() -> None:
    mine, theirs = both(
        "POST",
        "modelarts.cn-north-4.myhuaweicloud.com",
        "/v1/p1/notebooks",
        [],
        {"Content-Type": "application/json"},
        b'{"name":"nb"}',
        security_token="temporary-token",
        project_id="p1",
    )
    assert mine == theirs
    assert "x-project-id;x-sdk-date;x-security-token" in mine


def test_sdk_list_valued_and_boolean_params_match_repeated_pairs() -> None:
    host = "modelarts.cn-north-4.myhuaweicloud.com"
    url = httpx.URL(f"https://{host}/v1/p/notebooks").copy_with(
        params=[("tags", "b|2"), ("tags", "a|1"), ("all", "true")]
    )
    mine, unsigned = ours("GET", url, {}, b"")
    unsigned = httpx.Request("GET", url, headers={"X-Sdk-Date": SDK_DATE})
    theirs = sdk(
        "GET", host, "/v1/p/notebooks", [("tags", ["b|2", "a|1"]), ("all", True)], unsigned, b""
    )
    assert mine == theirs


def test_client_wire_query_is_the_sdk_canonical_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": []})

    client = AsyncModelArtsClient(
        "https://modelarts.cn-north-4.myhuaweicloud.com",
        "p1",
        httpx.Auth(),
        transport=httpx.MockTransport(handler),
    )
    query = ListNotebooksQuery(name="été nb+1", limit=10, offset=0, sort_dir="ASC")
    run_sync(client.list_page(query))
    pairs: list[tuple[str, object]] = list(query.to_params())
    expected = Signer.process_canonical_query_string(SdkRequest(query_params=pairs))
    assert seen[0].url.query.decode() == expected


# ---------------------------------------------------------------- properties

METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)
SEGMENT = st.one_of(
    TEXT,
    st.text(alphabet="abc XYZ09-_.~!$&'()*+,;=:@%/?#[]", max_size=10),
).filter(lambda s: s not in {".", ".."})
QUERY_TEXT = st.one_of(
    TEXT, st.text(alphabet="ab =&+%#?/;,~ é", max_size=6), st.sampled_from(["", "0", "true"])
)
HEADER_NAME = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,15}\Z").filter(
    lambda name: (
        name.lower()
        not in {
            "host",
            "content-length",
            "content-type",
            "authorization",
            "x-sdk-date",
            "x-sdk-content-sha256",
            "transfer-encoding",
            "x-security-token",
            "x-project-id",
        }
    )
)
HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json;charset=UTF-8",
        "application/bson",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
    ]
)


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.lists(HEADER_NAME, max_size=5, unique_by=str.lower))
    headers = {name: draw(HEADER_VALUE) for name in names}
    content_type = draw(CONTENT_TYPES)
    if content_type:
        headers["Content-Type"] = content_type
    return headers


@st.composite
def raw_paths(draw: st.DrawFn) -> str:
    segments = draw(st.lists(SEGMENT, min_size=1, max_size=5))
    safe = draw(st.sampled_from(["", RESERVED_SAFE]))
    trailing = draw(st.booleans())
    path = "/" + "/".join(quote(segment, safe=safe) for segment in segments)
    return path + "/" if trailing and not path.endswith("/") else path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=METHODS,
    raw_path=raw_paths(),
    query=st.lists(st.tuples(QUERY_TEXT, QUERY_TEXT), max_size=6),
    headers=header_sets(),
    body=st.one_of(st.just(b""), st.binary(max_size=64), TEXT.map(str.encode)),
    security_token=st.one_of(st.none(), st.text(alphabet="abcXYZ019+/=", min_size=1, max_size=16)),
    host=st.sampled_from(["modelarts.cn-north-4.myhuaweicloud.com", "127.0.0.1:8765"]),
)
def test_signatures_equal_the_sdk(
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    security_token: str | None,
    host: str,
) -> None:
    mine, theirs = both(method, host, raw_path, query, headers, body, security_token, "p1")
    assert mine == theirs


@settings(max_examples=300, deadline=None)
@given(query=st.lists(st.tuples(QUERY_TEXT, QUERY_TEXT), max_size=8))
def test_canonical_query_equals_the_sdk(query: list[tuple[str, str]]) -> None:
    pairs: list[tuple[str, object]] = list(query)
    expected = Signer.process_canonical_query_string(SdkRequest(query_params=pairs))
    assert canonical_query(query) == expected


@settings(max_examples=200, deadline=None)
@given(query=st.lists(st.tuples(QUERY_TEXT, QUERY_TEXT), max_size=6), raw_path=raw_paths())
def test_client_style_canonical_wire_query_signs_like_the_sdk(
    query: list[tuple[str, str]], raw_path: str
) -> None:
    """The client sends the canonical query string itself; the signer must read it back."""
    host = "modelarts.cn-north-4.myhuaweicloud.com"
    wire = canonical_query(query)
    url = httpx.URL(f"https://{host}").copy_with(
        raw_path=(raw_path + ("?" + wire if wire else "")).encode("ascii")
    )
    mine, _ = ours("GET", url, {}, b"")
    unsigned = httpx.Request("GET", url, headers={"X-Sdk-Date": SDK_DATE})
    theirs = sdk("GET", host, raw_path, list(query), unsigned, b"")
    assert mine == theirs
