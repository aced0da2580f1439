"""Emulator state machine and leases, through the HTTP API in-process, on a stepped clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbkeeper.modelarts.schemas import HOUR_MS, Lease, Notebook, NotebookStatus
from nbkeeper_local.emulator import Emulator, EmulatorConfig, SimClock, Timings
from tests.emulator_fixtures import (
    CREATE_BODY,
    EMULATOR_START,
    NOTEBOOKS,
    PROJECT_ID,
    ApiCaller,
)

S = NotebookStatus
TIMINGS = Timings()  # create 10 s, start 5 s, stop 5 s, delete 2 s


def create(api: ApiCaller, **overrides: Any) -> str:
    response = api("POST", NOTEBOOKS, json={**CREATE_BODY, **overrides})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def status(api: ApiCaller, notebook_id: str) -> str:
    return str(api("GET", f"{NOTEBOOKS}/{notebook_id}").json()["status"])


def running(api: ApiCaller, emulator: Emulator) -> str:
    notebook_id = create(api)
    emulator.advance(TIMINGS.create_s)
    return notebook_id


def stopped(api: ApiCaller, emulator: Emulator) -> str:
    notebook_id = running(api, emulator)
    api("POST", f"{NOTEBOOKS}/{notebook_id}/stop")
    emulator.advance(TIMINGS.stop_s)
    return notebook_id


def error_code(response: Any) -> str:
    return str(response.json()["error_code"])


def test_create_is_creating_until_the_delay_passes(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = create(emulator_api)
    emulator.advance(TIMINGS.create_s - 1)
    assert status(emulator_api, notebook_id) == "CREATING"
    emulator.advance(1)
    assert status(emulator_api, notebook_id) == "RUNNING"


def test_create_reply_matches_the_shared_notebook_model(emulator_api: ApiCaller) -> None:
    reply = emulator_api("POST", NOTEBOOKS, json=CREATE_BODY)
    notebook = Notebook.model_validate(reply.json())
    assert notebook.status is S.CREATING
    assert notebook.url is not None and notebook.url.endswith(f"/{notebook.id}/lab")
    assert notebook.token is not None and len(notebook.token.get_secret_value()) == 32
    assert notebook.lease is not None
    assert notebook.lease.create_at == int(EMULATOR_START.timestamp() * 1000)
    assert notebook.lease.duration == HOUR_MS


def test_injected_create_failure_ends_in_create_failed(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.fail_next_create(reason="no storage")
    notebook_id = create(emulator_api)
    emulator.advance(TIMINGS.create_s)
    body = emulator_api("GET", f"{NOTEBOOKS}/{notebook_id}").json()
    assert (body["status"], body["fail_reason"]) == ("CREATE_FAILED", "no storage")


def test_injected_start_failure_ends_in_start_failed_and_can_be_retried(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = stopped(emulator_api, emulator)
    emulator.fail_next_start()
    emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/start")
    emulator.advance(TIMINGS.start_s)
    assert status(emulator_api, notebook_id) == "START_FAILED"
    assert emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/start").status_code == 200
    emulator.advance(TIMINGS.start_s)
    assert status(emulator_api, notebook_id) == "RUNNING"


def test_stop_then_start_cycle(emulator_api: ApiCaller, emulator: Emulator) -> None:
    notebook_id = running(emulator_api, emulator)
    assert emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/stop").json()["status"] == "STOPPING"
    emulator.advance(TIMINGS.stop_s)
    assert status(emulator_api, notebook_id) == "STOPPED"
    assert emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/start").json()["status"] == "STARTING"
    emulator.advance(TIMINGS.start_s)
    assert status(emulator_api, notebook_id) == "RUNNING"


@pytest.mark.parametrize(
    ("setup", "op", "expected"),
    [
        ("running", "start", "ModelArts.6305"),
        ("starting", "start", "ModelArts.6306"),
        ("stopped", "stop", "ModelArts.6307"),
        ("stopping", "stop", "ModelArts.6308"),
        ("creating", "stop", "ModelArts.6357"),
        ("stopping", "start", "ModelArts.6357"),
        ("creating", "delete", "ModelArts.6357"),
        ("running", "update", "ModelArts.6347"),
        ("stopped", "show_lease", "ModelArts.6327"),
        ("stopped", "renew_lease", "ModelArts.6327"),
        ("creating", "show_lease", "ModelArts.6327"),
    ],
)
def test_illegal_transition_is_refused_with_the_documented_code(
    emulator_api: ApiCaller, emulator: Emulator, setup: str, op: str, expected: str
) -> None:
    notebook_id = create(emulator_api)
    if setup != "creating":
        emulator.advance(TIMINGS.create_s)
    if setup in ("stopped", "stopping", "starting"):
        emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/stop")
    if setup in ("stopped", "starting"):
        emulator.advance(TIMINGS.stop_s)
    if setup == "starting":
        emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/start")
    path = f"{NOTEBOOKS}/{notebook_id}"
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "start": ("POST", f"{path}/start", {}),
        "stop": ("POST", f"{path}/stop", {}),
        "delete": ("DELETE", path, {}),
        "update": ("PUT", path, {"json": {"name": "renamed"}}),
        "show_lease": ("GET", f"{path}/lease", {}),
        "renew_lease": ("PATCH", f"{path}/lease", {"json": {"duration": HOUR_MS}}),
    }
    method, url, kwargs = requests[op]
    response = emulator_api(method, url, **kwargs)
    assert response.status_code == 400
    assert error_code(response) == expected


def test_update_when_stopped_changes_the_notebook(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = stopped(emulator_api, emulator)
    reply = emulator_api(
        "PUT",
        f"{NOTEBOOKS}/{notebook_id}",
        json={"name": "renamed", "flavor": "modelarts.vm.cpu.8u", "storage_new_size": 10},
    )
    assert reply.status_code == 200
    body = reply.json()
    assert (body["name"], body["flavor"], body["volume"]["capacity"]) == (
        "renamed",
        "modelarts.vm.cpu.8u",
        10,
    )


def test_update_cannot_shrink_storage(emulator_api: ApiCaller, emulator: Emulator) -> None:
    notebook_id = stopped(emulator_api, emulator)
    reply = emulator_api("PUT", f"{NOTEBOOKS}/{notebook_id}", json={"storage_new_size": 5})
    assert error_code(reply) == "ModelArts.6331"


def test_delete_goes_through_deleting_then_show_is_not_found(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = running(emulator_api, emulator)
    assert emulator_api("DELETE", f"{NOTEBOOKS}/{notebook_id}").json()["status"] == "DELETING"
    assert status(emulator_api, notebook_id) == "DELETING"
    emulator.advance(TIMINGS.delete_s)
    reply = emulator_api("GET", f"{NOTEBOOKS}/{notebook_id}")
    # The documented error table: ModelArts.6309 comes with HTTP 400.
    assert (reply.status_code, error_code(reply)) == (400, "ModelArts.6309")
    assert reply.headers["X-Request-Id"]


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(not_found_status=404)])
def test_not_found_can_be_answered_with_404_as_also_seen(emulator_api: ApiCaller) -> None:
    reply = emulator_api("GET", f"{NOTEBOOKS}/no-such-notebook")
    assert (reply.status_code, error_code(reply)) == (404, "ModelArts.6309")


def test_not_found_status_is_400_or_404() -> None:
    with pytest.raises(ValueError, match="400 or 404"):
        EmulatorConfig(not_found_status=410)


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(require_stop_before_delete=True)])
def test_delete_of_a_running_notebook_can_require_a_stop_first(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = running(emulator_api, emulator)
    assert error_code(emulator_api("DELETE", f"{NOTEBOOKS}/{notebook_id}")) == "ModelArts.6304"


# ---------------------------------------------------------------- leases


def test_renew_recomputes_duration_from_create_at(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = running(emulator_api, emulator)
    emulator.advance(1800)
    reply = emulator_api(
        "PATCH",
        f"{NOTEBOOKS}/{notebook_id}/lease",
        json={"duration": 2 * HOUR_MS, "type": "timing"},
    )
    lease = Lease.model_validate(reply.json())
    elapsed_ms = (TIMINGS.create_s + 1800) * 1000
    assert lease.duration == elapsed_ms + 2 * HOUR_MS
    assert lease.update_at == lease.create_at + elapsed_ms  # type: ignore[operator]
    assert reply.json()["type"] == "TIMING"


def test_renew_query_duration_overrides_body_and_forces_timing(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = running(emulator_api, emulator)
    reply = emulator_api(
        "PATCH",
        f"{NOTEBOOKS}/{notebook_id}/lease",
        params={"duration": 3 * HOUR_MS},
        json={"duration": HOUR_MS, "type": "IDLE"},
    )
    assert reply.json()["duration"] == TIMINGS.create_s * 1000 + 3 * HOUR_MS
    assert reply.json()["type"] == "TIMING"


@pytest.mark.parametrize("duration", [HOUR_MS - 1, 72 * HOUR_MS + 1])
def test_renew_out_of_range_is_6349(
    emulator_api: ApiCaller, emulator: Emulator, duration: int
) -> None:
    notebook_id = running(emulator_api, emulator)
    reply = emulator_api("PATCH", f"{NOTEBOOKS}/{notebook_id}/lease", json={"duration": duration})
    assert error_code(reply) == "ModelArts.6349"


def test_renew_without_duration_is_6348(emulator_api: ApiCaller, emulator: Emulator) -> None:
    notebook_id = running(emulator_api, emulator)
    reply = emulator_api("PATCH", f"{NOTEBOOKS}/{notebook_id}/lease", json={"type": "TIMING"})
    assert error_code(reply) == "ModelArts.6348"


def test_start_with_duration_recomputes_lease(emulator_api: ApiCaller, emulator: Emulator) -> None:
    notebook_id = stopped(emulator_api, emulator)
    emulator.advance(600)
    reply = emulator_api(
        "POST",
        f"{NOTEBOOKS}/{notebook_id}/start",
        params={"duration": 4 * HOUR_MS, "type": "TIMING"},
    )
    since_create_ms = (TIMINGS.create_s + TIMINGS.stop_s + 600) * 1000
    assert reply.json()["lease"]["duration"] == since_create_ms + 4 * HOUR_MS


def test_start_with_out_of_range_duration_is_6349(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = stopped(emulator_api, emulator)
    reply = emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/start", params={"duration": 60_000})
    assert error_code(reply) == "ModelArts.6349"


def test_running_notebook_stops_by_itself_when_the_lease_runs_out(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = running(emulator_api, emulator)  # lease: 1 h from create_at
    emulator.advance(HOUR_MS / 1000 - TIMINGS.create_s - 1)
    assert status(emulator_api, notebook_id) == "RUNNING"
    emulator.advance(1)
    assert status(emulator_api, notebook_id) == "STOPPING"
    emulator.advance(TIMINGS.stop_s)
    assert status(emulator_api, notebook_id) == "STOPPED"


def test_renewal_postpones_the_auto_stop(emulator_api: ApiCaller, emulator: Emulator) -> None:
    notebook_id = running(emulator_api, emulator)
    emulator.advance(3000)
    emulator_api("PATCH", f"{NOTEBOOKS}/{notebook_id}/lease", json={"duration": HOUR_MS})
    emulator.advance(HOUR_MS / 1000 - 1)
    assert status(emulator_api, notebook_id) == "RUNNING"
    emulator.advance(1)
    assert status(emulator_api, notebook_id) == "STOPPING"


@settings(max_examples=30, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5400), st.booleans()), min_size=1, max_size=8
    )
)
def test_state_does_not_depend_on_when_anyone_looked(steps: list[tuple[int, bool]]) -> None:
    """Lazy evaluation is consistent: observing in between never changes the outcome."""
    from nbkeeper.modelarts.schemas import NotebookCreateRequest
    from nbkeeper_local.emulator.records import Identity

    outcomes = []
    for observe in (True, False):
        emulator = Emulator(clock=SimClock.stepped(EMULATOR_START))
        store = emulator.store
        user = Identity("u" * 32, "user")
        record = store.create("p", NotebookCreateRequest.model_validate(CREATE_BODY), user)
        for seconds, look in steps:
            emulator.clock.advance(seconds)
            if observe and look:
                store.get("p", record.id)
        final = store.get("p", record.id)
        outcomes.append((final.status, final.update_at, final.lease_duration))
    assert outcomes[0] == outcomes[1]


def test_name_lookups_do_not_grow_the_list_cache_without_bound(emulator: Emulator) -> None:
    from nbkeeper.modelarts.schemas import ListNotebooksQuery

    limit = 64  # the emulator's cap on cached list views
    store = emulator.store
    for index in range(3 * limit):
        store.list_notebooks(PROJECT_ID, ListNotebooksQuery(name=f"nb-{index}"), None)
        store.list_notebooks(PROJECT_ID, ListNotebooksQuery(id=f"id-{index}", name="x"), None)
    assert len(store.project(PROJECT_ID).views) <= limit


@pytest.mark.parametrize(
    "endpoint",
    [
        {"service": "ssh", "key_pair_names": ["kp-1"], "allowed_access_ips": ["1.1.1.1"]},
        # The update API documents dev_service / ssh_keys for the same two fields.
        {"dev_service": "SSH", "ssh_keys": ["kp-1"], "allowed_access_ips": ["1.1.1.1"]},
    ],
    ids=["response-spelling", "update-doc-spelling"],
)
def test_update_stores_endpoints_in_the_shape_create_does(
    emulator_api: ApiCaller, emulator: Emulator, endpoint: dict[str, Any]
) -> None:
    created = create(emulator_api, endpoints=[endpoint])
    emulator.advance(TIMINGS.create_s)
    as_created = emulator_api("GET", f"{NOTEBOOKS}/{created}").json()["endpoints"]
    notebook_id = stopped(emulator_api, emulator)
    reply = emulator_api("PUT", f"{NOTEBOOKS}/{notebook_id}", json={"endpoints": [endpoint]})
    assert reply.status_code == 200, reply.text
    shown = emulator_api("GET", f"{NOTEBOOKS}/{notebook_id}").json()["endpoints"]
    expected = [{"service": "SSH", "key_pair_names": ["kp-1"], "allowed_access_ips": ["1.1.1.1"]}]
    assert reply.json()["endpoints"] == shown == as_created == expected
    assert Notebook.model_validate(reply.json()).endpoints is not None


def test_update_with_only_allowed_ips_defaults_the_service_like_create(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    notebook_id = stopped(emulator_api, emulator)
    body = {"endpoints": [{"allowed_access_ips": ["1.1.1.1"]}]}  # the seeds' example
    shown = emulator_api("PUT", f"{NOTEBOOKS}/{notebook_id}", json=body).json()["endpoints"]
    assert shown == [
        {"service": "NOTEBOOK", "key_pair_names": [], "allowed_access_ips": ["1.1.1.1"]}
    ]
