"""Seeded fleets, the /_emulator control routes, and the `nbkeeper emulator` command."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from nbkeeper.modelarts.schemas import NotebookPage, NotebookStatus
from nbkeeper_local.emulator import ActivityPattern, Emulator, FaultKind, FleetSpec
from nbkeeper_local.emulator.server import is_loopback, main, serve_in_thread
from tests.emulator_fixtures import (
    CREATE_BODY,
    EMULATOR_BASE_URL,
    NOTEBOOKS,
    PROJECT_ID,
    ApiCaller,
)

OTHER = "e" * 32
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the address the emulator must refuse


def test_fleet_is_reproducible_for_a_seed(emulator: Emulator) -> None:
    other = Emulator(clock=emulator.clock)
    first = emulator.seed_fleet(size=50, seed=3)
    again = other.seed_fleet(size=50, seed=3)
    assert [(r.name, r.status, r.flavor) for r in first] == [
        (r.name, r.status, r.flavor) for r in again
    ]


def test_fleet_spreads_over_projects_with_owners_and_tags(emulator: Emulator) -> None:
    records = emulator.seed_fleet(FleetSpec(size=400, projects=(PROJECT_ID, OTHER), users=10))
    assert Counter(r.project_id for r in records) == {PROJECT_ID: 200, OTHER: 200}
    assert all(r.tags["owner"] == r.user.user_name for r in records)
    assert len({r.user.user_id for r in records}) == 10
    statuses = Counter(r.status for r in records)
    assert statuses[NotebookStatus.RUNNING] > statuses[NotebookStatus.STOPPED] > 0
    patterns = Counter(r.jupyter.pattern for r in records if r.status is NotebookStatus.RUNNING)
    assert set(patterns) == set(ActivityPattern)


def test_all_running_fleet_for_keeper_benchmarks(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.seed_fleet(size=120, status_weights={NotebookStatus.RUNNING: 1.0})
    page = NotebookPage.model_validate(
        emulator_api("GET", f"{NOTEBOOKS}/all", params={"status": "RUNNING", "limit": 50}).json()
    )
    assert (page.total, page.pages, len(page.data)) == (120, 3, 50)


def test_seeded_leases_run_out_and_stop(emulator: Emulator) -> None:
    records = emulator.seed_fleet(size=50, status_weights={NotebookStatus.RUNNING: 1.0})
    emulator.advance(5 * 3600)
    assert {emulator.find(r.id).status for r in records} == {NotebookStatus.STOPPED}


def control(emulator: Emulator, *calls: tuple[str, str, dict[str, Any] | None]) -> list[Any]:
    async def go() -> list[Any]:
        async with httpx.AsyncClient(
            transport=emulator.asgi_transport(), base_url=EMULATOR_BASE_URL
        ) as client:
            replies = []
            for method, path, body in calls:
                response = await client.request(method, path, json=body)
                replies.append((response.status_code, response.json()))
            return replies

    return asyncio.run(go())


def test_control_routes_drive_clock_fleet_activity_and_status(emulator: Emulator) -> None:
    (_, fleet), (_, clock), (_, state) = control(
        emulator,
        ("POST", "/_emulator/fleet", {"size": 3, "status_weights": {"RUNNING": 1.0}}),
        ("POST", "/_emulator/clock", {"advance_s": 60}),
        ("GET", "/_emulator/state", None),
    )
    assert fleet["created"] == 3
    assert clock["now"] == "2024-03-04T09:01:00+00:00"
    assert state["notebooks"] == {PROJECT_ID: {"RUNNING": 3}}
    first = fleet["ids"][0]
    [(code, status), (_, forced)] = control(
        emulator,
        ("POST", f"/_emulator/notebooks/{first}/activity", {"pattern": "busy", "kernels": [{}]}),
        ("POST", f"/_emulator/notebooks/{first}/status", {"status": "FROZEN"}),
    )
    assert (code, status["kernels"], forced["status"]) == (200, 1, "FROZEN")


def test_control_routes_report_bad_input(emulator: Emulator) -> None:
    [(missing, _), (bad, _)] = control(
        emulator,
        ("POST", "/_emulator/notebooks/nope/status", {"status": "RUNNING"}),
        ("POST", "/_emulator/clock", {"advance_s": -5}),
    )
    assert (missing, bad) == (404, 400)


def test_control_routes_name_missing_or_malformed_fields(emulator: Emulator) -> None:
    [(_, fleet)] = control(emulator, ("POST", "/_emulator/fleet", {"size": 1}))
    first = fleet["ids"][0]
    replies = control(
        emulator,
        ("POST", f"/_emulator/notebooks/{first}/status", {}),
        ("POST", "/_emulator/faults", {"script": [{"count": 1}]}),
        ("POST", "/_emulator/faults", {"script": ["throttle"]}),
        ("POST", f"/_emulator/notebooks/{first}/activity", {"kernels": ["k1"]}),
    )
    assert replies == [
        (400, {"error": "status is required"}),
        (400, {"error": "kind is required"}),
        (400, {"error": "script must be a list of objects"}),
        (400, {"error": "kernels must be a list of objects"}),
    ]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        (ALL_INTERFACES, False),
        ("10.0.0.1", False),
    ],
)
def test_loopback_detection(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_command_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", ALL_INTERFACES]) == 2
    assert "not a loopback" in capsys.readouterr().err


def test_serve_in_thread_refuses_a_non_loopback_host(emulator: Emulator) -> None:
    with (
        pytest.raises(ValueError, match="non-loopback"),
        serve_in_thread(emulator, host=ALL_INTERFACES),
    ):
        pass


def test_real_http_drop_closes_the_socket_without_a_reply(
    emulator: Emulator, emulator_http: str
) -> None:
    emulator.inject(FaultKind.DROP)
    with httpx.Client(base_url=emulator_http) as client, pytest.raises(httpx.TransportError):
        client.get(NOTEBOOKS)
    with httpx.Client(base_url=emulator_http) as client:
        assert client.get("/_emulator/state").status_code == 200


def test_real_http_lost_reply_processes_the_request_then_closes_the_socket(
    emulator: Emulator, emulator_http: str, emulator_auth: httpx.Auth
) -> None:
    emulator.inject(FaultKind.REPLY_LOST, method="POST")
    with (
        httpx.Client(base_url=emulator_http, auth=emulator_auth) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.post(NOTEBOOKS, json=CREATE_BODY)
    with httpx.Client(base_url=emulator_http, auth=emulator_auth) as client:
        assert client.get(NOTEBOOKS).json()["total"] == 1
