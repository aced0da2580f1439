"""JupyterProber: the calls it makes, how replies become Activity, failures, and the fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nbkeeper.activity import (
    Activity,
    JupyterProber,
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


def test_against_the_emulator(
    emulator: Emulator, emulator_transport: httpx.AsyncBaseTransport
) -> None:
    """The prober reads the emulated Jupyter Server and does not count as activity there."""
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
