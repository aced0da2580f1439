"""JupyterProber: the calls it makes, how replies become Activity, failures, and the fallback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nbkeeper.jupyter import JupyterProber, probe_transport
from nbkeeper.keeper.activity import (
    Activity,
    UnknownActivity,
    activity_from_replies,
    parse_jupyter_time,
)
from nbkeeper.modelarts.schemas import Notebook
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import EMULATOR_BASE_URL, EMULATOR_START

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOKEN = "s3cret-notebook-token"


def notebook(url: str | None = "https://nb.example/p/nb1/lab", **lease: Any) -> Notebook:
    return Notebook.model_validate(
        {"id": "nb1", "status": "RUNNING", "url": url, "token": TOKEN, "lease": lease or None}
    )


Handler = Callable[[httpx.Request], httpx.Response]


def probe(
    handler: Handler, nb: Notebook | None = None, idle_after: datetime | None = None
) -> tuple[Activity | UnknownActivity, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def go() -> Activity | UnknownActivity:
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
            return await JupyterProber(http).probe(nb or notebook(), idle_after)

    return asyncio.run(go()), seen


def jupyter(status: dict[str, Any], kernels: list[dict[str, Any]] | None = None) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/status"):
            return httpx.Response(200, json=status)
        if request.url.path.endswith("/api/kernels"):
            return httpx.Response(200, json=kernels or [])
        return httpx.Response(404)

    return handle


STATUS = {
    "connections": 1,
    "kernels": 1,
    "last_activity": "2026-11-23T09:00:00.123456Z",
    "started": "2026-11-23T07:00:00Z",
}
IDLE_KERNEL = {
    "id": "k1",
    "name": "python3",
    "last_activity": "2026-11-23T08:30:00Z",
    "execution_state": "idle",
    "connections": 1,
}


def test_calls_status_and_kernels_at_the_server_base_with_the_token_header() -> None:
    result, seen = probe(jupyter(STATUS, [IDLE_KERNEL]))
    assert [r.url.path for r in seen] == ["/p/nb1/api/status", "/p/nb1/api/kernels"]
    assert all(r.headers["authorization"] == f"token {TOKEN}" for r in seen)
    assert all(r.url.host == "nb.example" and r.method == "GET" for r in seen)
    # Listing kernels must not itself count as activity.
    assert seen[1].url.params["no_track_activity"] == "1"
    assert "token" not in seen[0].url.params
    assert result == Activity(
        last_activity=datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC),
        kernels=1,
        busy_kernels=0,
        connections=1,
        started=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
    )


def test_busy_kernel_is_found_even_when_status_looks_idle() -> None:
    busy = {**IDLE_KERNEL, "execution_state": "busy"}
    result, _ = probe(jupyter(STATUS, [busy]), idle_after=NOW - timedelta(minutes=30))
    assert isinstance(result, Activity)
    assert result.busy_kernels == 1


@pytest.mark.parametrize(
    ("state", "busy"),
    [("idle", 0), ("dead", 0), ("busy", 1), ("starting", 1), ("restarting", 1), ("weird", 1)],
)
def test_only_idle_and_dead_kernels_are_not_busy(state: str, busy: int) -> None:
    activity = activity_from_replies(STATUS, [{**IDLE_KERNEL, "execution_state": state}])
    assert activity.busy_kernels == busy


def test_recent_status_activity_skips_the_kernel_listing() -> None:
    result, seen = probe(jupyter(STATUS, [IDLE_KERNEL]), idle_after=NOW - timedelta(hours=2))
    assert [r.url.path for r in seen] == ["/p/nb1/api/status"]
    assert isinstance(result, Activity)


def test_no_kernels_skips_the_kernel_listing() -> None:
    status = {**STATUS, "kernels": 0, "connections": 0}
    result, seen = probe(jupyter(status), idle_after=NOW)
    assert len(seen) == 1
    assert isinstance(result, Activity) and result.kernels == 0


def test_kernel_activity_newer_than_status_counts() -> None:
    newer = {**IDLE_KERNEL, "last_activity": "2026-11-23T09:45:00Z"}
    activity = activity_from_replies(STATUS, [newer])
    assert activity.last_activity == datetime(2026, 11, 23, 9, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("handler", "why"),
    [
        (
            lambda r: httpx.Response(403, text="403: Forbidden"),
            "/p/nb1/api/status answered HTTP 403",
        ),
        (lambda r: httpx.Response(503), "answered HTTP 503"),
        (lambda r: httpx.Response(200, text="<html>login</html>"), "did not return JSON"),
        (lambda r: httpx.Response(200, json=[1, 2]), "did not return a JSON object"),
    ],
)
def test_unreadable_jupyter_without_lease_is_unknown(handler: Handler, why: str) -> None:
    result, _ = probe(handler)
    assert isinstance(result, UnknownActivity)
    assert why in result.reason
    assert TOKEN not in result.reason


def test_transport_errors_and_timeouts_are_unknown() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    refused, _ = probe(refuse)
    timed_out, _ = probe(slow)
    assert isinstance(refused, UnknownActivity) and "ConnectError" in refused.reason
    assert isinstance(timed_out, UnknownActivity) and "timed out" in timed_out.reason


def test_kernels_failure_is_unknown_not_idle() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/status"):
            return httpx.Response(200, json=STATUS)
        return httpx.Response(500)

    result, _ = probe(handle, idle_after=NOW)
    assert isinstance(result, UnknownActivity)


def test_lease_update_at_is_the_weaker_fallback() -> None:
    update_at = int((NOW - timedelta(minutes=7)).timestamp() * 1000)
    nb = notebook(create_at=0, duration=1, update_at=update_at)
    result, _ = probe(lambda r: httpx.Response(502), nb)
    assert isinstance(result, Activity)
    assert result.source == "lease"
    assert not result.from_jupyter
    assert result.last_activity == NOW - timedelta(minutes=7)
    assert result.note is not None and "HTTP 502" in result.note


def test_notebook_without_url_is_not_probed() -> None:
    result, seen = probe(jupyter(STATUS), notebook(url=None))
    assert seen == []
    assert isinstance(result, UnknownActivity)
    assert "no Jupyter URL" in result.reason


def test_probe_many_bounds_concurrency() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, json={**STATUS, "kernels": 0})

    notebooks = [
        Notebook.model_validate(
            {"id": f"nb{i}", "status": "RUNNING", "url": f"https://x/{i}/lab", "token": "t"}
        )
        for i in range(40)
    ]

    async def go() -> dict[str, Activity | UnknownActivity]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await JupyterProber(http, concurrency=3).probe_many(notebooks)

    results = asyncio.run(go())
    assert len(results) == 40
    assert all(isinstance(r, Activity) for r in results.values())
    assert 1 <= peak <= 3


def test_parse_jupyter_time() -> None:
    assert parse_jupyter_time("2026-11-23T09:00:00Z") == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert parse_jupyter_time("garbage") is None
    assert parse_jupyter_time(None) is None


@pytest.mark.parametrize("through", ["client", "bare transport"])
def test_against_the_emulator(
    emulator: Emulator, emulator_transport: httpx.AsyncBaseTransport, through: str
) -> None:
    """The prober reads the emulated Jupyter Server and does not count as activity there, through
    a client or handed a bare transport (whose replies arrive as unread streams)."""
    records = emulator.seed_fleet(
        size=6,
        status_weights={"RUNNING": 1.0},  # type: ignore[dict-item]
        activity_weights={ActivityPattern.IDLE: 1.0},
    )
    busy, idle, down = records[0].id, records[1].id, records[2].id
    emulator.set_activity(busy, pattern=ActivityPattern.BUSY)
    emulator.set_activity(idle, pattern=ActivityPattern.IDLE, kernels=[])
    emulator.set_activity(down, pattern=ActivityPattern.UNREACHABLE)

    async def go() -> dict[str, Activity | UnknownActivity]:
        from nbkeeper.modelarts.auth import Credentials, SignerAuth
        from nbkeeper.modelarts.client import AsyncModelArtsClient
        from tests.emulator_fixtures import ACCESS_KEY, PROJECT_ID, SECRET_KEY

        auth = SignerAuth(Credentials(ACCESS_KEY, SECRET_KEY), PROJECT_ID)
        async with AsyncModelArtsClient(
            EMULATOR_BASE_URL, PROJECT_ID, auth, transport=emulator_transport
        ) as client:
            notebooks = await client.list_notebooks(all_users=True)
        if through == "bare transport":
            return await JupyterProber(emulator_transport).probe_many(notebooks)
        async with httpx.AsyncClient(transport=emulator_transport) as http:
            # No idle_after: kernels are listed for every notebook (no_track_activity checked).
            return await JupyterProber(http).probe_many(notebooks)

    before = emulator.find(idle).jupyter.last_activity_ms
    results = asyncio.run(go())
    assert isinstance(results[busy], Activity) and results[busy].busy_kernels == 1
    idle_result = results[idle]
    assert isinstance(idle_result, Activity) and idle_result.from_jupyter
    assert idle_result.busy_kernels == 0 and idle_result.kernels == 0
    assert idle_result.started is not None and idle_result.started <= EMULATOR_START
    assert emulator.find(idle).jupyter.last_activity_ms == before  # probing is not activity
    down_result = results[down]
    assert isinstance(down_result, Activity) and down_result.source == "lease"


# ---------------------------------------------------------------- ProbeTransport over real HTTP


class JupyterStub:
    """A tiny HTTP/1.1 server on 127.0.0.1 answering `/api/status` with keep-alive.

    `hang`: never answer. `drop_reused`: on a connection's second request, close it without a
    reply (the race where a server drops an idle keep-alive connection as the client reuses it).
    """

    def __init__(self, *, hang: bool = False, drop_reused: bool = False) -> None:
        self.hang = hang
        self.drop_reused = drop_reused
        self.connections = 0
        self.requests: list[bytes] = []
        self.in_flight = 0
        self.peak = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                if self.hang or (self.drop_reused and served):
                    if self.hang:
                        await asyncio.sleep(3600)
                    return
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                await asyncio.sleep(0.01)
                self.in_flight -= 1
                body = json.dumps({**STATUS, "kernels": 0}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def stub_notebooks(base: str, count: int) -> list[Notebook]:
    return [
        Notebook.model_validate(
            {"id": f"nb{i}", "status": "RUNNING", "url": f"{base}/p/nb{i}/lab", "token": TOKEN}
        )
        for i in range(count)
    ]


def test_probe_transport_keeps_connections_alive_and_bounded() -> None:
    stub = JupyterStub()

    async def go() -> dict[str, Activity | UnknownActivity]:
        async with stub as base, probe_transport(3) as transport:
            prober = JupyterProber(transport, concurrency=10)
            return await prober.probe_many(stub_notebooks(base, 30), idle_after=NOW)

    results = asyncio.run(go())
    assert all(isinstance(r, Activity) and r.from_jupyter for r in results.values())
    assert len(stub.requests) == 30
    assert stub.connections <= 3 and stub.peak <= 3  # reused, never more than the limit
    head = stub.requests[0].decode().lower()
    assert head.startswith("get /p/nb")
    assert f"authorization: token {TOKEN}".lower() in head
    assert "token" not in head.split("\r\n", 1)[0]  # never in the URL


def test_probe_transport_resends_a_get_when_a_reused_connection_was_closed() -> None:
    stub = JupyterStub(drop_reused=True)

    async def go() -> dict[str, Activity | UnknownActivity]:
        async with stub as base, probe_transport(1) as transport:
            prober = JupyterProber(transport, concurrency=1)
            return await prober.probe_many(stub_notebooks(base, 3), idle_after=NOW)

    results = asyncio.run(go())
    assert all(isinstance(r, Activity) for r in results.values())
    assert stub.connections == 3  # each reuse was dropped, then sent on a new connection


def test_probe_transport_timeouts_and_refusals_are_unknown() -> None:
    stub = JupyterStub(hang=True)

    async def go() -> list[Activity | UnknownActivity]:
        async with stub as base, probe_transport(2) as transport:
            prober = JupyterProber(transport, timeout=0.2)
            hung = await prober.probe(stub_notebooks(base, 1)[0])
        closed = stub_notebooks(base, 1)[0]  # the stub is gone: nothing listens there now
        async with probe_transport(2) as transport:
            refused = await JupyterProber(transport).probe(closed)
        return [hung, refused]

    hung, refused = asyncio.run(go())
    assert isinstance(hung, UnknownActivity) and "/p/nb0/api/status timed out" in hung.reason
    assert isinstance(refused, UnknownActivity) and "ConnectError" in refused.reason
    assert TOKEN not in hung.reason + refused.reason


def test_a_transport_can_be_given_instead_of_a_client() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return jupyter(STATUS, [IDLE_KERNEL])(request)

    result = asyncio.run(JupyterProber(httpx.MockTransport(handle)).probe(notebook()))
    assert [r.url.path for r in seen] == ["/p/nb1/api/status", "/p/nb1/api/kernels"]
    assert all(r.headers["authorization"] == f"token {TOKEN}" for r in seen)
    assert seen[1].url.params["no_track_activity"] == "1"
    assert isinstance(result, Activity) and result.kernels == 1


def test_probe_transport_against_the_emulator_over_http(
    emulator: Emulator, emulator_http: str, emulator_transport: httpx.AsyncBaseTransport
) -> None:
    """Over real HTTP the lean transport reads what an httpx client reads in-process."""
    records = emulator.seed_fleet(size=12, status_weights={"RUNNING": 1.0})
    emulator.set_activity(records[0].id, pattern=ActivityPattern.BUSY)
    emulator.set_activity(records[1].id, pattern=ActivityPattern.UNREACHABLE)

    async def go() -> tuple[dict[str, Activity | UnknownActivity], ...]:
        from nbkeeper.modelarts.auth import Credentials, SignerAuth
        from nbkeeper.modelarts.client import AsyncModelArtsClient
        from tests.emulator_fixtures import ACCESS_KEY, PROJECT_ID, SECRET_KEY

        auth = SignerAuth(Credentials(ACCESS_KEY, SECRET_KEY), PROJECT_ID)
        async with AsyncModelArtsClient(emulator_http, PROJECT_ID, auth) as client:
            notebooks = await client.list_notebooks(all_users=True)
        async with probe_transport(4) as transport:
            over_http = await JupyterProber(transport).probe_many(notebooks)
        in_process = [
            nb.model_copy(update={"url": nb.url.replace(emulator_http, EMULATOR_BASE_URL)})
            for nb in notebooks
            if nb.url
        ]
        async with httpx.AsyncClient(transport=emulator_transport) as http:
            reference = await JupyterProber(http).probe_many(in_process)
        return over_http, reference

    over_http, reference = asyncio.run(go())
    assert len(over_http) == 12 and over_http == reference
    busy, down = over_http[records[0].id], over_http[records[1].id]
    assert isinstance(busy, Activity) and busy.busy_kernels == 1
    assert not isinstance(down, Activity) or down.source == "lease"


@pytest.mark.parametrize("last_activity", [None, "", "yesterday", 1_700_000_000, ["2026-11-23"]])
def test_status_without_a_readable_last_activity_is_unknown_not_idle(last_activity: Any) -> None:
    # A reply of an odd shape is not proof of idleness: without a busy kernel it is unreadable.
    status: dict[str, Any] = {"kernels": 1, "connections": 0}
    if last_activity is not None:
        status["last_activity"] = last_activity
    result, _ = probe(jupyter(status, [{"id": "k1", "execution_state": "idle"}]), idle_after=NOW)
    assert isinstance(result, UnknownActivity)
    assert "last_activity" in result.reason


def test_status_without_last_activity_but_a_busy_kernel_is_active() -> None:
    status = {"kernels": 1, "connections": 0}
    result, _ = probe(jupyter(status, [{"id": "k1", "execution_state": "busy"}]), idle_after=NOW)
    assert isinstance(result, Activity) and result.busy_kernels == 1
