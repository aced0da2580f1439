"""A change ModelArts took whose reply was lost is done, not failed (reliability finding 1).

The emulator's REPLY_LOST fault applies the request, then drops the connection: the worker's
client sends the call again and ModelArts refuses it ("stopping", "starting", "in progress",
"storage can only grow") because the first one worked. The worker reads the notebook to judge:
in the state the change leads to, it is done; otherwise the refusal stands, and the author is
told the state that stopped it. Through the real handlers, moto's queues and the emulator.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nbkeeper.commands import Requester, UpdateCommand
from nbkeeper.modelarts.schemas import NotebookUpdateRequest
from nbkeeper.slack.buttons import CONFIRM_ACTION
from nbkeeper_local.emulator import FaultKind
from tests.functional.slack_world import NOW, World, create_running


def create_stopped(world: World, name: str = "exp-1") -> str:
    notebook_id = create_running(world, name)
    world.slash(f"stop {name}")
    world.settle()
    assert world.emulator.find(notebook_id).status == "STOPPED"
    return notebook_id


def lose_reply(world: World, method: str, path: str) -> None:
    """The next `method path` is applied by ModelArts, and its reply lost."""
    world.emulator.inject(FaultKind.REPLY_LOST, 1, method=method, path=path)


def told(world: World) -> str:
    return world.slack.texts()[-1]


def update(world: World, notebook_id: str, storage_gb: int) -> None:
    """An update queued as the webhook queues it (which refuses a shrink before queuing)."""
    world.commands.wiring.enqueue(
        UpdateCommand(
            command_id=f"ops.update-{storage_gb}",
            requested_at=datetime.fromtimestamp(NOW, UTC),
            requested_by=Requester(user_id="U0001"),
            notebook_id=notebook_id,
            notebook_name="exp-1",
            changes=NotebookUpdateRequest(storage_new_size=storage_gb),
        )
    )


# ---------------------------------------------------------------------- taken: done


def test_a_stop_whose_reply_was_lost_is_reported_stopped(world: World) -> None:
    notebook_id = create_running(world)
    lose_reply(world, "POST", rf"/notebooks/{notebook_id}/stop$")

    world.slash("stop exp-1")
    world.settle()

    assert world.emulator.find(notebook_id).status == "STOPPED"
    assert told(world) == ":white_check_mark: *exp-1* is stopped."
    assert not world.receive(world.dlq_url)


def test_a_start_whose_reply_was_lost_is_reported_running(world: World) -> None:
    notebook_id = create_stopped(world)
    lose_reply(world, "POST", rf"/notebooks/{notebook_id}/start$")

    world.slash("start exp-1")
    world.settle()

    assert world.emulator.find(notebook_id).status == "RUNNING"
    assert told(world).startswith(":white_check_mark: *exp-1* is running")


def test_a_delete_whose_reply_was_lost_is_reported_deleted(world: World) -> None:
    notebook_id = create_stopped(world)
    lose_reply(world, "DELETE", rf"/notebooks/{notebook_id}$")

    ask = world.slash("delete exp-1")
    world.click(ask, CONFIRM_ACTION)
    world.settle()

    assert [n for n in world.notebooks() if n["id"] == notebook_id] == []
    assert told(world) == ":white_check_mark: Deleted *exp-1*."


def test_a_delete_whose_stop_reply_was_lost_stops_then_deletes(world: World) -> None:
    notebook_id = create_running(world)
    lose_reply(world, "POST", rf"/notebooks/{notebook_id}/stop$")

    ask = world.slash("delete exp-1")
    world.click(ask, CONFIRM_ACTION)
    world.settle()

    assert [n for n in world.notebooks() if n["id"] == notebook_id] == []
    assert told(world) == ":white_check_mark: Deleted *exp-1*."


def test_an_update_whose_reply_was_lost_is_reported_updated(world: World) -> None:
    notebook_id = create_stopped(world)
    lose_reply(world, "PUT", rf"/notebooks/{notebook_id}$")

    world.slash("update exp-1 storage=50")
    world.settle()

    assert world.emulator.find(notebook_id).volume["capacity"] == 50
    assert told(world) == ":white_check_mark: Updated *exp-1* (storage_new_size)."


def test_an_update_whose_start_failed_is_not_refused_when_its_update_runs_again(
    world: World,
) -> None:
    # Stop, update, start: the start is throttled past the client's retries, so the follow-up
    # runs again and sends the update a second time ("storage can only grow").
    notebook_id = create_running(world)
    attempts = world.worker.wiring.command_retry.max_attempts
    world.emulator.inject(
        FaultKind.THROTTLE, attempts, method="POST", path=rf"/notebooks/{notebook_id}/start$"
    )

    ask = world.slash("update exp-1 storage=30")
    world.click(ask, CONFIRM_ACTION)
    world.settle()

    record = world.emulator.find(notebook_id)
    assert record.status == "RUNNING" and record.volume["capacity"] == 30
    assert "was updated and is running again" in told(world)


def test_an_update_whose_start_was_taken_but_not_answered_follows_the_start(
    world: World,
) -> None:
    # The start is applied, its reply lost, and every retry throttled: the follow-up comes
    # back to a notebook that is updated and starting, not the stopped one it waited for.
    notebook_id = create_running(world)
    attempts = world.worker.wiring.command_retry.max_attempts
    start = rf"/notebooks/{notebook_id}/start$"
    lose_reply(world, "POST", start)
    world.emulator.inject(FaultKind.THROTTLE, attempts - 1, method="POST", path=start)

    ask = world.slash("update exp-1 storage=30")
    world.click(ask, CONFIRM_ACTION)
    world.settle()

    record = world.emulator.find(notebook_id)
    assert record.status == "RUNNING" and record.volume["capacity"] == 30
    assert "was updated and is running again" in told(world)


# ---------------------------------------------------------------------- not taken: refused


def test_a_stop_refused_while_start_failed_is_reported_with_the_state(world: World) -> None:
    notebook_id = create_stopped(world)
    world.emulator.fail_next_start()
    world.slash("start exp-1")
    world.settle()
    assert world.emulator.find(notebook_id).status == "START_FAILED"

    world.slash("stop exp-1")
    world.settle()

    text = told(world)
    assert text.startswith(
        ":x: Could not stop *exp-1*: it is START_FAILED, which does not allow that. ModelArts said:"
    )
    assert "ModelArts.6357" in text
    assert world.emulator.find(notebook_id).status == "START_FAILED"


def test_a_start_refused_while_create_failed_is_reported_with_the_state(world: World) -> None:
    world.emulator.fail_next_create()
    world.slash("create exp-1")
    world.settle()

    world.slash("start exp-1")
    world.settle()

    assert told(world).startswith(":x: Could not start *exp-1*: it is CREATE_FAILED, which")


def test_an_update_that_would_shrink_the_storage_is_still_refused(world: World) -> None:
    notebook_id = create_stopped(world)
    update(world, notebook_id, 50)
    world.settle()
    update(world, notebook_id, 20)  # asked before the first grew it: smaller than it is now

    world.settle()

    assert world.emulator.find(notebook_id).volume["capacity"] == 50
    text = told(world)
    assert text.startswith(":x: Could not update *exp-1*: ModelArts said: storage can only grow")
    assert "ModelArts.6331" in text
