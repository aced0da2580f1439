"""The worker under faults, through its real handler and moto's FIFO queue (issue 10).

Order: commands on one notebook run in the order they were sent, whatever fails in between.
Ownership: one create makes at most one notebook, never one with a name already taken, and the
notebook is recorded as its author's before anything else can fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nbkeeper.commands import Requester, StartCommand, StopCommand
from nbkeeper.dynamo import DynamoStateStore
from nbkeeper_local.emulator import FaultKind
from tests.functional.slack_world import MAX_RECEIVES, NOW, World


def create_running(world: World, name: str = "exp-1", user: str = "U0001") -> str:
    assert "Queued" in world.slash(f"create {name}", user)["text"]
    world.settle()
    (notebook,) = [n for n in world.notebooks() if n["name"] == name]
    assert notebook["status"] == "RUNNING"
    return str(notebook["id"])


def throttle_past_retries(world: World, method: str, path: str) -> None:
    """The next call of `method path` is throttled on every attempt the worker's client makes."""
    attempts = 4
    world.emulator.inject(FaultKind.THROTTLE, attempts, method=method, path=path)


def test_keep_1h_then_8h_ends_at_8h_when_the_first_is_throttled(world: World) -> None:
    notebook_id = create_running(world)
    world.slash("keep exp-1 for 1h")
    world.slash("keep exp-1 for 8h")
    throttle_past_retries(world, "GET", rf"/notebooks/{notebook_id}$")

    world.settle()

    store = DynamoStateStore(world.worker.wiring.state_table)
    now = datetime.fromtimestamp(NOW, UTC)
    state = store.load_project(world.worker.SETTINGS.project_id, now)
    assert state.reservations[notebook_id].until == now + timedelta(hours=8)


def test_prolong_1_then_8_ends_with_the_8h_lease(world: World) -> None:
    notebook_id = create_running(world)
    world.slash("prolong exp-1 1")
    world.slash("prolong exp-1 8")
    throttle_past_retries(world, "PATCH", rf"/notebooks/{notebook_id}/lease$")

    world.settle(advance_s=60)

    record = world.emulator.find(notebook_id)
    left = record.deadline_ms - int(world.emulator.now().timestamp() * 1000)
    assert left > 7 * 3600 * 1000


def test_stop_then_start_ends_running(world: World) -> None:
    notebook_id = create_running(world)
    requester = Requester(user_id="U0001")
    at = datetime.fromtimestamp(NOW, UTC)
    for command in (
        StopCommand(
            command_id="ops.stop-1",
            requested_at=at,
            requested_by=requester,
            notebook_id=notebook_id,
        ),
        StartCommand(
            command_id="ops.start-1",
            requested_at=at,
            requested_by=requester,
            notebook_id=notebook_id,
        ),
    ):
        world.commands.wiring.enqueue(command)
    throttle_past_retries(world, "POST", rf"/notebooks/{notebook_id}/stop$")

    world.settle()

    assert world.emulator.find(notebook_id).status == "RUNNING"
    assert not world.receive(world.dlq_url)


def test_a_command_held_back_to_its_last_receive_tells_its_author(world: World) -> None:
    notebook_id = create_running(world)
    world.slash("keep exp-1 for 1h")
    world.slash("prolong exp-1 8")
    for _ in range(MAX_RECEIVES):
        throttle_past_retries(world, "GET", rf"/notebooks/{notebook_id}$")
    before = len(world.slack.texts())

    world.settle()

    assert len(world.receive(world.dlq_url)) == 2
    told = world.slack.texts()[before:]
    assert len(told) == 2
    assert "failed after 3 attempts" in told[0] and "throttl" in told[0].lower()
    assert "held back to keep the order" in told[1]
    record = world.emulator.find(notebook_id)
    assert record.deadline_ms - int(world.emulator.now().timestamp() * 1000) < 2 * 3600 * 1000


# ---------------------------------------------------------------------- ownership


def owner_of(world: World, notebook_id: str) -> str | None:
    store = DynamoStateStore(world.worker.wiring.state_table)
    owner = store.get_owner(world.worker.SETTINGS.project_id, notebook_id)
    return owner.user_id if owner else None


@pytest.mark.parametrize("second", ["U0002", "U0001"], ids=["two people", "double enter"])
def test_two_creates_of_one_name_make_one_notebook_and_the_second_is_told(
    world: World, second: str
) -> None:
    world.slash("create exp-1", "U0001")
    world.slash("create exp-1", second)

    world.settle()

    (notebook,) = world.notebooks()
    assert notebook["status"] == "RUNNING" and owner_of(world, notebook["id"]) == "U0001"
    refusals = [t for t in world.slack.texts() if "already exists" in t]
    assert len(refusals) == 1 and "<@U0001>" in refusals[0] and notebook["id"] in refusals[0]


def test_redelivered_create_after_tagging_failed_keeps_one_notebook(world: World) -> None:
    # The webhook's clock (NOW, 2027) is years ahead of the emulator's: adoption must not
    # compare them.
    world.slash("create exp-1")
    world.emulator.inject(FaultKind.ERROR_500, 1, method="POST", path=r"/tags/create$")

    world.settle()

    (notebook,) = world.notebooks()
    assert notebook["status"] == "RUNNING" and owner_of(world, notebook["id"]) == "U0001"
    assert "is ready" in world.slack.texts()[-1]


def test_create_whose_tagging_always_fails_is_the_authors_and_they_are_told(
    world: World,
) -> None:
    world.slash("create exp-1")
    world.emulator.inject(FaultKind.ERROR_500, MAX_RECEIVES, method="POST", path=r"/tags/create$")

    world.settle()

    assert len(world.receive(world.dlq_url)) == 1
    (notebook,) = world.notebooks()
    assert owner_of(world, notebook["id"]) == "U0001"
    told = world.slack.texts()[-1]
    assert "failed after 3 attempts" in told
    assert notebook["id"] in told and "recorded as yours" in told
    assert "Stopping" in world.slash("stop exp-1")["text"]
