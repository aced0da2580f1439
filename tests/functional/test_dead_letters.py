"""The dead-letter reader through the worker's real handler and moto's queues (issue 11).

A command whose last receive died with its invocation before it ran reaches the DLQ untold; the
scheduled reader tells its author once, leaves the message in the DLQ, and stays silent for
messages whose author already heard (told on the last receive, or the command completed).
"""

from __future__ import annotations

import json
from typing import Any

from nbkeeper.worker.deadletters import DEAD_LETTER_SOURCE
from nbkeeper_local.emulator import FaultKind
from nbkeeper_local.harness import FakeLambdaContext, sqs_event
from tests.functional.slack_world import MAX_RECEIVES, World, create_running


def read_dead_letters(world: World) -> dict[str, int]:
    """One run of the scheduled reader (the template's DeadLetters event)."""
    event = {"source": DEAD_LETTER_SOURCE}
    result: dict[str, int] = world.worker.lambda_handler(event, FakeLambdaContext())
    return result


def receive_without_running(world: World, times: int) -> list[dict[str, Any]]:
    """Receive the commands queue's messages `times` times, each by an invocation that died
    before running them (nothing deleted, visible again at once); then let SQS move them."""
    for _ in range(times):
        for message in world.receive(world.queue_url):
            world.sqs.change_message_visibility(
                QueueUrl=world.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
    assert world.receive(world.queue_url) == []  # past maxReceiveCount: moved to the DLQ
    return world.receive(world.dlq_url)


def release(world: World, messages: list[dict[str, Any]], url: str) -> None:
    for message in messages:
        world.sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def test_a_stop_whose_every_receive_died_is_told_once_and_stays_in_the_dlq(
    world: World,
) -> None:
    notebook_id = create_running(world)
    assert "Stopping" in world.slash("stop exp-1")["text"]
    before = len(world.slack.texts())
    dead = receive_without_running(world, MAX_RECEIVES)
    assert [json.loads(m["Body"])["type"] for m in dead] == ["stop"]
    release(world, dead, world.dlq_url)

    first = read_dead_letters(world)
    second = read_dead_letters(world)

    told = world.slack.texts()[before:]
    assert len(told) == 1
    assert "cut short" in told[0] and "dead-letter queue" in told[0]
    assert first["read"] == 1 and first["response_url"] == 1
    assert second == {"read": 1, "already told": 1}
    # read, never deleted: the operator still finds it (and the alarm still sees it)
    assert [m["MessageId"] for m in world.receive(world.dlq_url)] == [dead[0]["MessageId"]]
    assert world.emulator.find(notebook_id).status.value == "RUNNING"  # the stop never ran


def test_an_author_told_on_the_last_receive_is_not_told_again(world: World) -> None:
    notebook_id = create_running(world)
    world.slash("prolong exp-1 8")
    attempts = world.worker.wiring.command_retry.max_attempts
    world.emulator.inject(
        FaultKind.THROTTLE,
        attempts * MAX_RECEIVES,
        method="PATCH",
        path=rf"/notebooks/{notebook_id}/lease$",
    )
    world.settle()
    told = world.slack.texts()
    assert f"failed after {MAX_RECEIVES} attempts" in told[-1]

    counts = read_dead_letters(world)

    assert counts == {"read": 1, "already told": 1}
    assert world.slack.texts() == told


def test_a_command_that_ran_but_was_not_deleted_is_not_reported_as_failed(
    world: World,
) -> None:
    """Its last receive ran it and told its author, then the invocation died before SQS
    deleted the message: Idempotency's record says it completed."""
    create_running(world)
    world.slash("keep exp-1 for 2h")
    for _ in range(MAX_RECEIVES - 1):  # invocations that died before running it
        release(world, world.receive(world.queue_url), world.queue_url)
    last = world.receive(world.queue_url)
    result = world.worker.lambda_handler(sqs_event(world.queue_url, last), FakeLambdaContext())
    assert result["batchItemFailures"] == []  # it ran; the kill comes before the delete
    release(world, last, world.queue_url)
    assert world.receive(world.queue_url) == []
    told = world.slack.texts()
    assert "Keeping *exp-1* alive" in told[-1]

    counts = read_dead_letters(world)

    assert counts == {"read": 1, "completed": 1}
    assert world.slack.texts() == told


def test_a_create_cut_short_is_settled_and_its_author_told(world: World) -> None:
    world.slash("create exp-2")
    before = len(world.slack.texts())
    release(world, receive_without_running(world, MAX_RECEIVES), world.dlq_url)

    counts = read_dead_letters(world)

    assert counts == {"read": 1, "response_url": 1}, counts
    (told,) = world.slack.texts()[before:]
    assert "cut short" in told and "exp-2" in told
    assert world.notebooks() == []  # it never reached ModelArts, and nothing was made later


def test_when_slack_is_unreachable_the_next_run_tells_them(world: World) -> None:
    create_running(world)
    world.slash("stop exp-1")
    before = len(world.slack.texts())
    release(world, receive_without_running(world, MAX_RECEIVES), world.dlq_url)
    world.slack.unreachable = True

    failed = read_dead_letters(world)
    world.slack.unreachable = False
    recovered = read_dead_letters(world)

    assert failed["undelivered, tried again next run"] == 1
    assert recovered["read"] == 1 and "already told" not in recovered
    (told,) = world.slack.texts()[before:]
    assert "cut short" in told


def test_a_message_without_an_author_is_noted_once(world: World) -> None:
    world.sqs.send_message(
        QueueUrl=world.dlq_url,
        MessageBody="{not json",
        MessageGroupId="other-producer",
        MessageDeduplicationId="other-producer-1",
    )
    before = len(world.slack.texts())

    assert read_dead_letters(world) == {"read": 1, "no author": 1}
    assert read_dead_letters(world) == {"read": 1, "already told": 1}
    assert len(world.slack.texts()) == before
