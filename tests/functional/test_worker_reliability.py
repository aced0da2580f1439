"""The worker under faults, through its real handler and moto's FIFO queue (issue 10).

Order: commands on one notebook run in the order they were sent, whatever fails in between.
Ownership: one create makes at most one notebook, never one with a name already taken, and the
notebook is recorded as its author's before anything else can fail.
Time: no record is cut off by the function's timeout; the client's budget fits well inside it.
Credentials: no queue or DLQ body carries a response_url.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from samtranslator.yaml_helper import yaml_parse

from nbkeeper.commands import Requester, StartCommand, StopCommand, encode_command
from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.worker.config import REPORT_RESERVE_SECONDS
from nbkeeper_local.emulator import FaultKind
from nbkeeper_local.harness import FakeLambdaContext, sqs_event
from tests.functional.slack_world import MAX_RECEIVES, NOW, ROOT, World, create_running


def throttle_past_retries(world: World, method: str, path: str) -> None:
    """The next call of `method path` is throttled on every attempt the worker's client makes."""
    attempts = world.worker.wiring.command_retry.max_attempts
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
    assert f"failed after {MAX_RECEIVES} attempts" in told[0] and "throttl" in told[0].lower()
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
    assert f"failed after {MAX_RECEIVES} attempts" in told
    assert notebook["id"] in told and "recorded as yours" in told
    assert "Stopping" in world.slash("stop exp-1")["text"]


# ---------------------------------------------------------------------- time


@dataclass
class ContextWithTime(FakeLambdaContext):
    seconds_left: float = 60.0

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


def run_worker_with(world: World, seconds_left: float) -> list[str]:
    """One batch from the commands queue with `seconds_left` in the invocation; failed ids."""
    messages = world.receive(world.queue_url)
    event = sqs_event(world.queue_url, messages)
    result = world.worker.lambda_handler(event, ContextWithTime(seconds_left=seconds_left))
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    for m in messages:
        if m["MessageId"] in failed:
            world.sqs.change_message_visibility(
                QueueUrl=world.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            world.sqs.delete_message(QueueUrl=world.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return failed


def test_the_clients_budget_and_the_report_fit_in_the_workers_timeout(world: World) -> None:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    timeout = template["Resources"]["NotebookWorkerFunction"]["Properties"]["Timeout"]
    settings = world.worker.SETTINGS
    assert world.worker.wiring.command_retry.total_budget == settings.modelarts_retry_budget
    assert settings.worst_call_seconds + REPORT_RESERVE_SECONDS <= timeout


def test_the_worker_never_waits_past_its_clients_budget(world: World) -> None:
    notebook_id = create_running(world)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    world.worker.seams.modelarts_options = {"sleep": sleep}
    budget = world.worker.SETTINGS.modelarts_retry_budget
    world.emulator.faults.retry_after_s = int(budget) + 5  # ModelArts asks for a longer wait
    world.emulator.inject(FaultKind.THROTTLE, 1, method="GET", path=rf"/notebooks/{notebook_id}$")
    world.slash("keep exp-1 for 3h")

    assert len(run_worker_with(world, 60)) == 1  # gave up at once: SQS delivers it again
    assert all(wait <= budget for wait in waits)
    world.settle()
    assert "Keeping *exp-1* alive" in world.slack.texts()[-1]


def test_a_record_without_time_to_finish_is_not_started_and_its_author_is_told(
    world: World,
) -> None:
    world.slash("create exp-1")
    short = REPORT_RESERVE_SECONDS + world.worker.SETTINGS.worst_call_seconds - 1

    for _ in range(MAX_RECEIVES):
        assert len(run_worker_with(world, short)) == 1

    assert world.run_worker() == 0  # the next receive moves it to the DLQ
    assert world.notebooks() == []
    assert len(world.receive(world.dlq_url)) == 1
    told = world.slack.texts()[-1]
    assert "ran out of time" in told and "No notebook called *exp-1* was created" in told


def test_a_record_past_its_deadline_fails_and_runs_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook_id = create_running(world)
    world.slash("prolong exp-1 8")
    world.emulator.set_latency(1)  # every call yields to the event loop
    monkeypatch.setattr(world.worker.delivery, "budget", lambda seconds_left: 0.0)

    assert len(run_worker_with(world, 60)) == 1

    monkeypatch.undo()
    world.settle(advance_s=60)
    record = world.emulator.find(notebook_id)
    assert record.deadline_ms - int(world.emulator.now().timestamp() * 1000) > 7 * 3600 * 1000


# ---------------------------------------------------------------------- credentials


def test_queue_bodies_carry_no_response_url_and_results_still_reach_it(world: World) -> None:
    create_running(world)
    world.slash("stop exp-1")
    response_url = f"https://hooks.slack.com/commands/T0001/{world._trigger}/x"
    (message,) = world.receive(world.queue_url)
    world.sqs.change_message_visibility(
        QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    assert "hooks.slack.com" not in message["Body"]
    assert "response_url" not in json.loads(message["Body"])["requested_by"]

    world.settle()

    url, body, _ = world.slack.posts[-1]
    assert url == response_url and "is stopped" in body["text"]


def test_an_older_message_with_its_response_url_is_still_answered_there(world: World) -> None:
    notebook_id = create_running(world)
    response_url = "https://hooks.slack.com/commands/T0001/older/x"
    command = StopCommand(
        command_id="older.stop-1",
        requested_at=datetime.fromtimestamp(NOW, UTC),
        requested_by=Requester(user_id="U0001", response_url=response_url),
        notebook_id=notebook_id,
    )
    world.sqs.send_message(
        QueueUrl=world.queue_url,
        MessageBody=encode_command(command),
        MessageGroupId=f"nb.{notebook_id}",
        MessageDeduplicationId=command.command_id,
    )

    world.run_worker()
    (follow,) = world.receive(world.followup_url)
    assert "hooks.slack.com" not in follow["Body"]
    world.sqs.change_message_visibility(
        QueueUrl=world.followup_url, ReceiptHandle=follow["ReceiptHandle"], VisibilityTimeout=0
    )
    world.settle()

    url, body, _ = world.slack.posts[-1]
    assert url == response_url and "is stopped" in body["text"]
