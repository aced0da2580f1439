"""AsyncModelArtsClient over httpx.MockTransport: retries, errors, paging, limits, redaction.

No test sleeps: the client gets a fake clock whose `sleep` only records and advances time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from nbkeeper.modelarts.auth import Credentials, SignerAuth, TokenAuth
from nbkeeper.modelarts.client import AsyncModelArtsClient, run_sync
from nbkeeper.modelarts.errors import (
    AmbiguousCreateError,
    ForbiddenError,
    InvalidRequestError,
    ModelArtsError,
    NotFoundError,
    QuotaError,
    ServerError,
    ThrottledError,
    TransportError,
    UnauthorizedError,
    WrongStateError,
    parse_error_body,
    redact,
)
from nbkeeper.modelarts.retry import NO_RETRY, RateLimiter, RetryPolicy, parse_retry_after
from nbkeeper.modelarts.schemas import (
    LeaseType,
    ListNotebooksQuery,
    Notebook,
    NotebookCreateRequest,
    NotebookStatus,
    NotebookUpdateRequest,
    UnreadableNotebook,
)

T = TypeVar("T")
PROJECT = "0123456789abcdef0123456789abcdef"
ENDPOINT = "https://modelarts.cn-north-4.myhuaweicloud.com"
AK = "AKEXAMPLEAK0000000001"
SK = "SK-SECRET-do-not-log-4f1c"
SECURITY_TOKEN = "ST-SECRET-do-not-log-77aa"
NOTEBOOK_TOKEN = "3eff13f2-SECRET-NOTEBOOK-TOKEN"
CREDS = Credentials(AK, SK)
FIXED_NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return run_sync(coro)


class FakeClock:
    """Monotonic clock whose sleep records the delay and advances time instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """Answers requests from a list of responses or exceptions, recording each request."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            if isinstance(step, httpx.RequestError):
                step.request = request
            raise step
        return step


def notebook_json(notebook_id: str = "nb-1", **extra: Any) -> dict[str, Any]:
    return {"id": notebook_id, "name": f"name-{notebook_id}", "status": "RUNNING", **extra}


def ok(body: Any = None, status: int = 200, **headers: str) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def error(status: int, code: str, msg: str = "failed", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error_code": code, "error_msg": msg}, headers=headers)


def make_client(
    handler: Handler,
    clock: FakeClock | None = None,
    auth: httpx.Auth | None = None,
    **options: Any,
) -> AsyncModelArtsClient:
    clock = clock or FakeClock()
    return AsyncModelArtsClient(
        ENDPOINT,
        PROJECT,
        auth or SignerAuth(CREDS, PROJECT, clock=lambda: FIXED_NOW),
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(7),
        **options,
    )


CREATE = NotebookCreateRequest.model_validate(
    {
        "name": "notebooks_test",
        "flavor": "modelarts.vm.cpu.2u",
        "image_id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
        "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 50},
    }
)


# ---------------------------------------------------------------- requests on the wire


def test_request_is_signed_and_id_percent_encoded() -> None:
    script = Script(ok(notebook_json("a/b c")))
    run(make_client(script).show_notebook("a/b c"))
    request = script.requests[0]
    assert request.method == "GET"
    assert request.url.raw_path == f"/v1/{PROJECT}/notebooks/a%2Fb%20c".encode()
    assert request.headers["X-Project-Id"] == PROJECT
    assert request.headers["Authorization"].startswith(f"SDK-HMAC-SHA256 Access={AK}, ")
    assert request.headers["X-Sdk-Date"] == "20240102T030405Z"


def test_query_is_sent_in_sorted_canonical_order() -> None:
    script = Script(ok({"total": 0, "data": []}))
    query = ListNotebooksQuery(status=NotebookStatus.RUNNING, name="my nb", limit=10)
    run(make_client(script).list_page(query, all_users=True))
    url = script.requests[0].url
    assert url.raw_path.startswith(f"/v1/{PROJECT}/notebooks/all?".encode())
    assert url.query == b"limit=10&name=my%20nb&status=RUNNING"


def test_endpoint_path_prefix_is_kept() -> None:
    script = Script(ok(notebook_json()))
    client = AsyncModelArtsClient(
        "http://127.0.0.1:8765/emulator/",
        PROJECT,
        TokenAuth("iam-token"),
        transport=httpx.MockTransport(script),
    )
    run(client.show_notebook("nb-1"))
    assert script.requests[0].url.raw_path == f"/emulator/v1/{PROJECT}/notebooks/nb-1".encode()
    assert script.requests[0].headers["X-Auth-Token"] == "iam-token"


def test_create_sends_json_body_and_parses_reply() -> None:
    script = Script(ok(notebook_json("new", status="CREATING", token=NOTEBOOK_TOKEN)))
    notebook = run(make_client(script).create_notebook(CREATE))
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", f"/v1/{PROJECT}/notebooks")
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.content)["volume"] == {
        "category": "EVS",
        "ownership": "MANAGED",
        "capacity": 50,
    }
    assert notebook.status is NotebookStatus.CREATING
    assert notebook.token is not None
    assert notebook.token.get_secret_value() == NOTEBOOK_TOKEN


def test_start_sends_duration_and_type_as_query() -> None:
    script = Script(ok(notebook_json(status="STARTING")))
    run(make_client(script).start_notebook("nb-1", duration_ms=7_200_000, lease_type="idle"))
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", f"/v1/{PROJECT}/notebooks/nb-1/start")
    assert request.url.query == b"duration=7200000&type=IDLE"
    assert request.content == b""


def test_stop_without_query() -> None:
    script = Script(ok(notebook_json(status="STOPPING")))
    notebook = run(make_client(script).stop_notebook("nb-1"))
    assert script.requests[0].url.raw_path.endswith(b"/notebooks/nb-1/stop")
    assert notebook.status is NotebookStatus.STOPPING


def test_renew_lease_patches_timing_body() -> None:
    lease = {"create_at": 1, "duration": 3_600_000, "enable": True, "type": "TIMING"}
    script = Script(ok(lease))
    result = run(make_client(script).renew_lease("nb-1", 3_600_000))
    request = script.requests[0]
    assert (request.method, request.url.path) == ("PATCH", f"/v1/{PROJECT}/notebooks/nb-1/lease")
    assert json.loads(request.content) == {"duration": 3_600_000, "type": "TIMING"}
    assert result is not None
    assert result.type is LeaseType.TIMING


def test_renew_lease_204_returns_none() -> None:
    assert run(make_client(Script(ok(status=204))).renew_lease("nb-1", 3_600_000)) is None


def test_show_lease() -> None:
    script = Script(ok({"create_at": 10, "duration": 20, "enable": True, "type": "timing"}))
    lease = run(make_client(script).show_lease("nb-1"))
    assert lease.deadline_ms == 30
    assert script.requests[0].url.path.endswith("/notebooks/nb-1/lease")


def test_update_fills_missing_id_from_path() -> None:
    # The documented example reply has no id.
    seed_reply = {
        "description": "test",
        "flavor": "modelarts.vm.cpu.8u",
        "name": "notebook-1111",
        "endpoints": [{"allowed_access_ips": ["1.1.1.1"]}],
    }
    script = Script(ok(seed_reply))
    notebook = run(
        make_client(script).update_notebook("nb-9", NotebookUpdateRequest(description="update"))
    )
    assert script.requests[0].method == "PUT"
    assert json.loads(script.requests[0].content) == {"description": "update"}
    assert notebook.id == "nb-9"
    assert notebook.flavor == "modelarts.vm.cpu.8u"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(ok(status=204), None), (ok(notebook_json("nb-1", status="DELETING")), "nb-1")],
)
def test_delete_accepts_204_and_200(reply: httpx.Response, expected: str | None) -> None:
    script = Script(reply)
    result = run(make_client(script).delete_notebook("nb-1"))
    assert script.requests[0].method == "DELETE"
    assert (result.id if result else None) == expected


def test_tags_calls() -> None:
    script = Script(ok(status=204))
    client = make_client(script)
    run(client.add_tags("nb-1", {"owner": "alice", "team": "ml"}, workspace_id="0"))
    run(client.delete_tags("nb-1", {"team": None}))
    add, delete = script.requests
    assert (add.method, add.url.path) == ("POST", f"/v1/{PROJECT}/notebooks/nb-1/tags/create")
    assert add.url.query == b"workspace_id=0"
    assert json.loads(add.content) == {
        "tags": [{"key": "owner", "value": "alice"}, {"key": "team", "value": "ml"}]
    }
    assert (delete.method, delete.url.path) == (
        "DELETE",
        f"/v1/{PROJECT}/notebooks/nb-1/tags/delete",
    )
    assert json.loads(delete.content) == {"tags": [{"key": "team"}]}


def test_tag_summary_and_flavors() -> None:
    script = Script(ok({"tags": [{"key": "owner", "values": ["alice", "bob"]}]}))
    summary = run(make_client(script).tag_summary())
    assert summary.tags[0].values == ["alice", "bob"]
    assert script.requests[0].url.path == f"/v1/{PROJECT}/notebooks/tags"
    script = Script(ok({"total": 1, "flavors": [{"id": "modelarts.vm.cpu.2u"}]}))
    flavors = run(make_client(script).list_flavors("nb-1", limit=10))
    assert flavors.flavors[0].id == "modelarts.vm.cpu.2u"
    assert (
        script.requests[0].url.raw_path == f"/v1/{PROJECT}/notebooks/nb-1/flavors?limit=10".encode()
    )


# ---------------------------------------------------------------- validation before sending


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_notebook({"name": "bad name!", "image_id": "x", "volume": {}}),
        lambda c: c.start_notebook("nb-1", duration_ms=60_000),
        lambda c: c.renew_lease("nb-1", 73 * 3_600_000),
        lambda c: c.show_notebook(""),
        lambda c: c.add_tags("nb-1", {"_sys_owner": "x"}),
        lambda c: c.update_notebook("nb-1", {}),
    ],
    ids=["create", "start-duration", "renew-duration", "empty-id", "reserved-tag", "empty-update"],
)
def test_invalid_requests_fail_before_any_network_call(
    call: Callable[[AsyncModelArtsClient], Coroutine[Any, Any, Any]],
) -> None:
    script = Script(ok(notebook_json()))
    with pytest.raises(InvalidRequestError):
        run(call(make_client(script)))
    assert script.requests == []


# ---------------------------------------------------------------- retries


def test_429_retry_after_is_honoured() -> None:
    clock = FakeClock()
    script = Script(
        error(429, "APIG.0308", "throttled", **{"Retry-After": "7"}), ok(notebook_json())
    )
    notebook = run(make_client(script, clock).show_notebook("nb-1"))
    assert notebook.id == "nb-1"
    assert clock.sleeps == [7.0]
    assert len(script.requests) == 2


def test_503_then_success_backs_off_with_jitter() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=10.0)
    script = Script(error(503, "ModelArts.0010", "busy"), ok(notebook_json()))
    run(make_client(script, clock, retry=policy).show_notebook("nb-1"))
    assert len(clock.sleeps) == 1
    assert 0.0 <= clock.sleeps[0] <= 0.5


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
    ids=["connect", "read-timeout", "dropped"],
)
def test_transport_errors_are_retried_for_reads(failure: Exception) -> None:
    clock = FakeClock()
    script = Script(failure, ok(notebook_json()))
    assert run(make_client(script, clock).show_notebook("nb-1")).id == "nb-1"
    assert len(script.requests) == 2


def test_attempts_are_bounded() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=1.0, total_budget=1000)
    script = Script(error(503, "ModelArts.0010", "busy", **{"X-Request-Id": "req-503"}))
    with pytest.raises(ServerError) as caught:
        run(make_client(script, clock, retry=policy).show_notebook("nb-1"))
    assert len(script.requests) == 4
    assert len(clock.sleeps) == 3
    assert caught.value.request_id == "req-503"
    assert "gave up after 4 attempt(s)" in str(caught.value)


def test_total_budget_is_bounded() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=10, total_budget=10.0)
    script = Script(error(429, "ModelArts.6101", "busy", **{"Retry-After": "30"}))
    with pytest.raises(ThrottledError) as caught:
        run(make_client(script, clock, retry=policy).show_notebook("nb-1"))
    assert caught.value.retry_after == 30.0
    assert clock.sleeps == []  # waiting 30 s would overrun the 10 s budget
    assert len(script.requests) == 1


def test_backoff_budget_counts_elapsed_time() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=100, base_delay=4.0, max_delay=4.0, total_budget=9.0)
    script = Script(error(429, "APIG.0308", "throttled", **{"Retry-After": "4"}))
    with pytest.raises(ThrottledError):
        run(make_client(script, clock, retry=policy).show_notebook("nb-1"))
    assert clock.sleeps == [4.0, 4.0]
    assert clock.now <= 9.0


def test_connection_errors_exhausted_become_transport_error() -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(TransportError, match="ConnectError"):
        run(make_client(script, retry=RetryPolicy(max_attempts=2)).list_page())
    assert len(script.requests) == 2


def test_non_retryable_status_is_not_retried() -> None:
    script = Script(error(400, "ModelArts.6305", "already running"))
    with pytest.raises(WrongStateError):
        run(make_client(script).start_notebook("nb-1"))
    assert len(script.requests) == 1


def test_retry_policy_full_jitter_bounds() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [policy.backoff(n, Top()) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, Top(), retry_after=12.0) == 12.0
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


# ---------------------------------------------------------------- create is never retried blindly


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no reply"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("reset"),
        error(502, "APIG.0202", "bad gateway"),
        error(504, "APIG.0203", "backend timeout"),
    ],
    ids=["read-timeout", "disconnected", "reset", "502", "504"],
)
def test_ambiguous_create_is_not_retried(failure: httpx.Response | Exception) -> None:
    clock = FakeClock()
    script = Script(failure, ok(notebook_json()))
    with pytest.raises(AmbiguousCreateError, match="look it up by name"):
        run(make_client(script, clock).create_notebook(CREATE))
    assert len(script.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        error(429, "APIG.0308", "throttled"),
        error(503, "ModelArts.0010", "unavailable"),
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no connection"),
    ],
    ids=["429", "503", "connect-refused", "connect-timeout"],
)
def test_create_refused_before_processing_is_retried(failure: httpx.Response | Exception) -> None:
    script = Script(failure, ok(notebook_json("new", status="CREATING")))
    assert run(make_client(script).create_notebook(CREATE)).id == "new"
    assert len(script.requests) == 2


# ---------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("response", "error_type", "code"),
    [
        (error(404, "ModelArts.6309", "gone"), NotFoundError, "ModelArts.6309"),
        (error(400, "ModelArts.6309", "gone"), NotFoundError, "ModelArts.6309"),
        (error(400, "ModelArts.6404", "gone"), NotFoundError, "ModelArts.6404"),
        (error(400, "ModelArts.6305", "running"), WrongStateError, "ModelArts.6305"),
        (error(400, "ModelArts.6357", "busy"), WrongStateError, "ModelArts.6357"),
        (error(400, "ModelArts.6327", "not running"), WrongStateError, "ModelArts.6327"),
        (error(400, "ModelArts.6302", "limit"), QuotaError, "ModelArts.6302"),
        (error(400, "ModelArts.0104", "bad param"), InvalidRequestError, "ModelArts.0104"),
        (error(401, "APIG.0303", "signature"), UnauthorizedError, "APIG.0303"),
        (error(429, "APIG.0308", "throttled"), ThrottledError, "APIG.0308"),
        (error(500, "ModelArts.0010", "internal"), ServerError, "ModelArts.0010"),
        (
            httpx.Response(403, json={"errorCode": "ModelArts.6407", "errorMsg": "denied"}),
            ForbiddenError,
            "ModelArts.6407",
        ),
        (
            httpx.Response(401, json={"code": "APIG.0301", "message": "bad token"}),
            UnauthorizedError,
            "APIG.0301",
        ),
        (
            httpx.Response(400, json={"error": {"error_code": "ModelArts.6309", "error_msg": "x"}}),
            NotFoundError,
            "ModelArts.6309",
        ),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), ServerError, None),
        (httpx.Response(404, text=""), NotFoundError, None),
    ],
)
def test_error_mapping(
    response: httpx.Response, error_type: type[ModelArtsError], code: str | None
) -> None:
    response.headers["x-request-id"] = "req-42"
    with pytest.raises(error_type) as caught:
        run(make_client(Script(response), retry=NO_RETRY).show_notebook("nb-1"))
    assert type(caught.value) is error_type
    assert caught.value.error_code == code
    assert caught.value.status_code == response.status_code
    assert caught.value.request_id == "req-42"


def test_non_json_error_body_becomes_the_message() -> None:
    response = httpx.Response(502, text="<html>Bad Gateway</html>")
    with pytest.raises(ServerError, match="Bad Gateway"):
        run(make_client(Script(response), retry=NO_RETRY).show_notebook("nb-1"))


def test_unreadable_success_body_is_a_server_error() -> None:
    with pytest.raises(ServerError, match="not JSON"):
        run(make_client(Script(httpx.Response(200, text="oops"))).show_notebook("nb-1"))
    with pytest.raises(ServerError, match="unexpected Notebook: lease: "):
        run(make_client(Script(ok({"id": "nb-1", "lease": "soon"}))).show_notebook("nb-1"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"error_code": "A.1", "error_msg": "m"}', ("A.1", "m")),
        ('{"errorCode": "A.2", "errorMsg": "m"}', ("A.2", "m")),
        ('{"code": "A.3", "message": "m"}', ("A.3", "m")),
        ('{"outer": {"inner": {"error_code": "A.4", "error_msg": "m"}}}', ("A.4", "m")),
        ('{"error_code": "A.5"}', ("A.5", "")),
        ("[1, 2]", (None, "[1, 2]")),
        ("plain text", (None, "plain text")),
    ],
)
def test_parse_error_body_variants(text: str, expected: tuple[str | None, str]) -> None:
    assert parse_error_body(text) == expected


# ---------------------------------------------------------------- pagination


class Fleet:
    """A list endpoint over `count` notebooks with knobs for trouble.

    `reading` is how it understands `offset`: "record" (the index of the first record, as
    documented) or "page" (a page number). It records every request's limit and offset.
    """

    def __init__(
        self,
        count: int,
        *,
        page_cap: int | None = None,
        total: int | None = -1,
        reading: str = "record",
        records: list[dict[str, Any] | None] | None = None,
    ) -> None:
        self.records: list[dict[str, Any] | None] = (
            records if records is not None else [notebook_json(f"nb-{i:03d}") for i in range(count)]
        )
        self.ids = [r["id"] for r in self.records if r is not None and isinstance(r.get("id"), str)]
        self.page_cap = page_cap
        self.total = len(self.records) if total == -1 else total
        self.reading = reading
        self.offsets: list[int] = []
        self.limits: list[int | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.shift_after_first = 0
        self.empty_offsets: set[int] = set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = int(params["limit"]) if "limit" in params else None
        offset = int(params.get("offset", "0"))
        self.offsets.append(offset)
        self.limits.append(limit)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        for _ in range(3):
            await asyncio.sleep(0)  # yield so that concurrent pages overlap
        self.in_flight -= 1
        size = min(limit or 10, self.page_cap or 1000)
        start = offset * size if self.reading == "page" else offset
        if offset > 0:
            # Notebooks were deleted meanwhile: records move up.
            start = max(start - self.shift_after_first, 0)
        data = [] if offset in self.empty_offsets else self.records[start : start + size]
        body: dict[str, Any] = {"data": data, "size": size}
        if self.total is not None:
            body["total"] = self.total
        return httpx.Response(200, json=body)


def listed(fleet: Fleet, query: ListNotebooksQuery | None = None, **options: Any) -> list[str]:
    notebooks = run(make_client(fleet, **options).list_notebooks(query))
    return [n.id for n in notebooks]


def test_lists_every_page() -> None:
    fleet = Fleet(45)
    assert listed(fleet, ListNotebooksQuery(limit=10)) == fleet.ids
    # The first page, the probe at offset 1 that tells how offset is read, then the rest.
    assert sorted(fleet.offsets) == [0, 1, 10, 20, 30, 40]


def test_default_page_size_and_offset() -> None:
    fleet = Fleet(120)
    assert len(listed(fleet)) == 120
    assert set(fleet.limits) == {50}
    assert sorted(fleet.offsets) == [0, 1, 50, 100]


def test_remaining_pages_are_fetched_concurrently_and_bounded() -> None:
    fleet = Fleet(100)
    assert len(listed(fleet, ListNotebooksQuery(limit=10), page_concurrency=3)) == 100
    assert fleet.max_in_flight == 3


def test_duplicates_across_pages_are_dropped() -> None:
    fleet = Fleet(30)
    fleet.shift_after_first = 2  # later pages repeat the last two items of the page before
    ids = listed(fleet, ListNotebooksQuery(limit=10))
    assert len(ids) == len(set(ids))
    assert set(ids) == set(fleet.ids)


def test_empty_page_stops_the_listing(caplog: pytest.LogCaptureFixture) -> None:
    fleet = Fleet(40, total=100)  # total promises more than the service has
    with caplog.at_level(logging.WARNING, "nbkeeper.modelarts"):
        ids = listed(fleet, ListNotebooksQuery(limit=10))
    assert len(ids) == 40
    assert "40 of 100" in caplog.text


def test_unknown_total_pages_until_empty() -> None:
    fleet = Fleet(25, total=None)
    assert len(listed(fleet, ListNotebooksQuery(limit=10))) == 25
    assert fleet.offsets == [0, 1, 10, 20, 30]


def test_capped_page_size_still_lists_everything() -> None:
    fleet = Fleet(45, page_cap=20)
    assert listed(fleet, ListNotebooksQuery(limit=50)) == fleet.ids
    assert sorted(fleet.offsets) == [0, 1, 20, 40]
    assert set(fleet.limits) == {50}  # never the length of the short page


def test_page_failure_propagates_as_typed_error() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["offset"] == "20":
            return error(400, "ModelArts.0104", "bad offset")
        return await Fleet(50)(request)

    with pytest.raises(InvalidRequestError):
        run(make_client(handler).list_notebooks(ListNotebooksQuery(limit=10)))


def test_listing_stops_at_max_pages() -> None:
    fleet = Fleet(1000, total=None)
    ids = listed(fleet, ListNotebooksQuery(limit=10), max_pages=3)
    assert len(fleet.offsets) == 3
    assert ids == fleet.ids[:20]  # first page, probe (one new record), one more page


def test_offset_read_as_a_page_number_still_lists_everything() -> None:
    fleet = Fleet(95, reading="page")
    assert listed(fleet, ListNotebooksQuery(limit=20)) == fleet.ids
    assert sorted(fleet.offsets) == [0, 1, 2, 3, 4]
    assert set(fleet.limits) == {20}


def test_a_listing_with_an_offset_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="offset"):
        listed(Fleet(5), ListNotebooksQuery(limit=10, offset=10))


@pytest.mark.parametrize("reading", ["record", "page"])
@pytest.mark.parametrize("total_known", [True, False])
@pytest.mark.parametrize(
    ("count", "limit", "cap"),
    [
        (0, 10, None),
        (1, 10, None),
        (7, 10, None),  # short first page
        (10, 10, None),  # exactly one page
        (45, 10, None),  # total not a multiple of the page size
        (101, 20, None),
        (137, 50, None),
        (45, 50, 20),  # the service serves fewer than asked for
        (23, 50, 7),  # ... a number that is no documented page size
        (9, 20, 1),  # ... one at a time: both readings agree
    ],
)
def test_every_path_sends_only_documented_page_sizes(
    reading: str, total_known: bool, count: int, limit: int, cap: int | None
) -> None:
    fleet = Fleet(count, reading=reading, page_cap=cap, total=-1 if total_known else None)
    assert listed(fleet, ListNotebooksQuery(limit=limit)) == fleet.ids
    assert set(fleet.limits) == {limit}
    assert len(fleet.offsets) <= count // (cap or limit) + 4  # no wasted requests


# ---------------------------------------------------------------- unreadable records


def broken_fleet() -> Fleet:
    records: list[dict[str, Any] | None] = [notebook_json(f"nb-{i:02d}") for i in range(30)]
    records[3] = {**notebook_json("nb-03"), "lease": "soon", "token": NOTEBOOK_TOKEN}
    records[12] = {"name": "no id", "token": NOTEBOOK_TOKEN}
    records[25] = None
    return Fleet(0, records=records)


def test_unreadable_records_are_reported_once_and_never_yielded() -> None:
    fleet = broken_fleet()
    reported: list[UnreadableNotebook] = []
    for reading in ("record", "page"):
        fleet.reading = reading
        reported.clear()
        client = make_client(fleet)
        notebooks = run(
            client.list_notebooks(ListNotebooksQuery(limit=10), on_unreadable=reported.append)
        )
        assert [n.id for n in notebooks] == [i for i in fleet.ids if i != "nb-03"]
        assert [(r.notebook_id, r.position) for r in reported] == [
            ("nb-03", 3),
            (None, 12),
            (None, 25),
        ]
    assert reported[0].reason == "lease: Input should be a valid dictionary or instance of Lease"
    assert reported[1].reason == "id: Field required"
    assert all(NOTEBOOK_TOKEN not in repr(r) for r in reported)


def test_unreadable_records_count_towards_the_total(caplog: pytest.LogCaptureFixture) -> None:
    fleet = broken_fleet()
    with caplog.at_level(logging.WARNING, "nbkeeper.modelarts"):
        ids = listed(fleet, ListNotebooksQuery(limit=10))
    assert len(ids) == 27
    assert "ended with" not in caplog.text  # 27 readable + 3 unreadable = the total of 30
    assert "skipped an unreadable notebook record: notebook nb-03: lease:" in caplog.text
    assert "record 12: id: Field required" in caplog.text
    assert NOTEBOOK_TOKEN not in caplog.text
    assert sorted(fleet.offsets) == [0, 1, 10, 20]


def test_list_page_keeps_unreadable_records_apart() -> None:
    fleet = broken_fleet()
    page = run(make_client(fleet).list_page(ListNotebooksQuery(limit=10)))
    assert len(page.data) == 9
    assert [(r.index, r.notebook_id) for r in page.unreadable] == [(3, "nb-03")]


# ---------------------------------------------------------------- rate and concurrency limits


def test_rate_limiter_reserves_in_order_with_frozen_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    assert [limiter.reserve() for _ in range(5)] == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_rate_limiter_spaces_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, burst=2.0, clock=clock, sleep=clock.sleep)
    times = []

    async def go() -> None:
        for _ in range(6):
            await limiter.acquire()
            times.append(clock.now)

    run(go())
    assert times[:2] == [0.0, 0.0]  # the burst
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert all(gap == pytest.approx(0.25) for gap in gaps)
    # Long-run rate: never more than burst + rate * elapsed.
    assert len(times) <= 2 + 4.0 * times[-1]


def test_rate_limiter_refills_up_to_burst_only() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, burst=3.0, clock=clock, sleep=clock.sleep)
    clock.now = 100.0
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_client_rate_limit_applies_to_requests() -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        return ok(notebook_json())

    client = make_client(handler, clock, rate_limit=2.0)

    async def go() -> None:
        await asyncio.gather(*(client.show_notebook("nb-1") for _ in range(4)))

    run(go())
    assert len(sent_at) == 4
    assert clock.sleeps  # the limiter waited instead of sending at once
    gaps = [b - a for a, b in itertools.pairwise(sorted(sent_at))]
    assert all(gap >= 0.5 - 1e-9 for gap in gaps)


def test_max_concurrency_bounds_in_flight_requests() -> None:
    fleet = Fleet(10)
    client = make_client(fleet, max_concurrency=2)

    async def go() -> None:
        await asyncio.gather(*(client.list_page() for _ in range(6)))

    run(go())
    assert fleet.max_in_flight == 2


# ---------------------------------------------------------------- redaction


def test_logs_and_errors_never_carry_secrets(caplog: pytest.LogCaptureFixture) -> None:
    seen_authorization: list[str] = []
    pages = {
        "0": {"total": 3, "data": [notebook_json("a", token=NOTEBOOK_TOKEN)] * 1},
        "1": {"total": 3, "data": [notebook_json("b", token=NOTEBOOK_TOKEN)]},
        "2": {"total": 3, "data": [notebook_json("c", token=NOTEBOOK_TOKEN)]},
    }
    echo = (
        "Incorrect IAM authentication information: verify aksk signature fail, "
        f"canonicalRequest: GET|/v1/|x-security-token:{SECURITY_TOKEN}|x-sdk-date:20240102T030405Z"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen_authorization.append(request.headers["Authorization"])
        path = request.url.path
        if path.endswith("/notebooks"):
            page = pages[request.url.params["offset"]]
            return httpx.Response(200, json=page, headers={"X-Request-Id": "req-list"})
        if path.endswith("/broken"):
            return error(401, "APIG.0303", echo, **{"X-Request-Id": "req-401"})
        if path.endswith("/busy"):
            return error(503, "ModelArts.0010", "busy")
        return ok({"error_code": "x", "token": NOTEBOOK_TOKEN}, status=400)

    auth = SignerAuth(Credentials(AK, SK, SECURITY_TOKEN), PROJECT, clock=lambda: FIXED_NOW)
    client = make_client(handler, auth=auth, retry=RetryPolicy(max_attempts=2))
    failures: list[ModelArtsError] = []

    async def go() -> list[Notebook]:
        notebooks = await client.list_notebooks(ListNotebooksQuery(limit=10))
        for target in ("broken", "busy", "other"):
            try:
                await client.show_notebook(target)
            except ModelArtsError as exc:
                failures.append(exc)
        return notebooks

    with caplog.at_level(logging.DEBUG):
        notebooks = run(go())
    assert [n.id for n in notebooks] == ["a", "b", "c"]
    assert len(failures) == 3
    assert {record.__dict__.get("request_id") for record in caplog.records} >= {
        "req-list",
        "req-401",
    }
    everything = "\n".join(
        [caplog.text, *(str(r.__dict__) for r in caplog.records)]
        + [str(exc) for exc in failures]
        + [repr(n) for n in notebooks]
        + [str(n.model_dump()) for n in notebooks]
    )
    secrets = [NOTEBOOK_TOKEN, SK, SECURITY_TOKEN, *seen_authorization]
    for secret in secrets:
        assert secret not in everything
    assert "x-security-token:***" in str(failures[0])


def test_redact_masks_known_secret_shapes() -> None:
    assert redact("x-auth-token: abc|host:h") == "x-auth-token: ***|host:h"
    assert redact('{"token": "abc", "name": "n"}') == '{"token": "***", "name": "n"}'
    assert redact("Authorization=SDK-HMAC-SHA256 Access=AK") == "Authorization=***"


# ---------------------------------------------------------------- lifecycle


def test_async_context_manager_closes_the_http_client() -> None:
    script = Script(ok(notebook_json()))

    async def go() -> AsyncModelArtsClient:
        async with make_client(script) as client:
            await client.show_notebook("nb-1")
        return client

    client = run(go())
    with pytest.raises(RuntimeError):
        run(client.show_notebook("nb-1"))


def test_constructor_rejects_bad_endpoint() -> None:
    with pytest.raises(ValueError, match="http"):
        AsyncModelArtsClient("modelarts.example.com", PROJECT, TokenAuth("t"))


def test_repr_shows_no_credentials() -> None:
    client = make_client(Script(ok()), auth=TokenAuth("iam-secret-token"))
    assert "iam-secret-token" not in repr(client)
    assert PROJECT in repr(client)


RETRY_NOW = datetime(2015, 10, 21, 7, 27, 50, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),  # IMF-fixdate, the preferred form
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 10.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:00 2015", 10.0),  # obsolete asctime form (GMT by definition)
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past: retry now
        ("  7 ", 7.0),
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ("soon", None),
        ("-3", None),
        ("", None),
    ],
)
def test_parse_retry_after_accepts_http_dates(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=RETRY_NOW) == expected


def test_429_retry_after_http_date_counts_from_the_reply_date() -> None:
    clock = FakeClock()
    throttled = error(
        429,
        "APIG.0308",
        "throttled",
        **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "Date": "Wed, 21 Oct 2015 07:27:55 GMT"},
    )
    script = Script(throttled, ok(notebook_json()))
    notebook = run(make_client(script, clock).show_notebook("nb-1"))
    assert notebook.id == "nb-1"
    assert clock.sleeps == [5.0]
