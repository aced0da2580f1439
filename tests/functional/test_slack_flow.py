"""End to end: signed Slack requests -> real handler -> moto SQS FIFO/DynamoDB -> real worker ->
the emulator -> results posted to a fake Slack (httpx.MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nbkeeper.tags import OWNER_TAG
from nbkeeper_local.emulator import FaultKind
from tests.functional.slack_world import (
    ADMIN,
    BOT_TOKEN,
    MAX_RECEIVES,
    NOW,
    SECRET,
    World,
    create_running,
    sign,
)


def last_text(world: World) -> str:
    return world.slack.texts()[-1]


def test_create_queues_then_reports_ready_with_owner_recorded(world: World) -> None:
    reply = world.slash("create exp-1 storage=10 hours=4")
    assert reply["response_type"] == "ephemeral"
    assert world.notebooks() == []  # nothing happens before the worker runs
    world.settle()
    (notebook,) = world.notebooks()
    assert notebook["status"] == "RUNNING"
    assert notebook["volume"]["capacity"] == 10
    tags = {t["key"]: t.get("value") for t in notebook.get("tags") or []}
    assert tags[OWNER_TAG] == "U0001"
    assert "is ready" in last_text(world)
    url, _, auth = world.slack.posts[-1]
    assert url.startswith("https://hooks.slack.com/commands/") and auth is None


@pytest.mark.parametrize("base64_body", [True, False])
def test_help_accepts_base64_and_plain_bodies(world: World, base64_body: bool) -> None:
    event = world.command_event("help", base64_body=base64_body)
    response = world.commands.lambda_handler(event, _ctx())
    assert response["statusCode"] == 200
    assert "/nb create NAME" in json.loads(response["body"])["text"]


def test_list_and_status(world: World) -> None:
    notebook_id = create_running(world)
    mine = world.slash("list")
    assert "exp-1" in json.dumps(mine["blocks"])
    assert "exp-1" not in json.dumps(world.slash("list", "U0002")["blocks"])
    assert "exp-1" in json.dumps(world.slash("list all", "U0002")["blocks"])
    status = world.slash(f"status {notebook_id}")
    assert "RUNNING" in status["text"] and "<@U0001>" in status["text"]


def test_stop_then_start_then_prolong(world: World) -> None:
    notebook_id = create_running(world)
    assert "Stopping" in world.slash("stop exp-1")["text"]
    world.settle()
    assert world.emulator.find(notebook_id).status == "STOPPED"
    assert "is stopped" in last_text(world)
    assert "already stopped" in world.slash("stop exp-1")["text"]
    world.slash("start exp-1 hours=3")
    world.settle()
    assert "is running" in last_text(world)
    world.slash("prolong exp-1 5")
    world.settle()
    assert "now runs until" in last_text(world)


def test_keep_writes_a_reservation_the_keeper_reads(world: World) -> None:
    notebook_id = create_running(world)
    world.slash("keep exp-1 for 3h")
    world.settle()
    assert "Keeping *exp-1* alive until" in last_text(world)
    from nbkeeper.dynamo import DynamoStateStore

    store = DynamoStateStore(world.worker.wiring.state_table)
    from datetime import UTC, datetime

    state = store.load_project(world.worker.SETTINGS.project_id, datetime.now(UTC))
    assert notebook_id in state.reservations


def test_delete_asks_for_confirmation_and_stops_first(world: World) -> None:
    notebook_id = create_running(world)
    ask = world.slash("delete exp-1")
    assert any(b["type"] == "actions" for b in ask["blocks"])
    assert world.run_worker() == 0  # nothing queued before confirming
    assert world.click(ask, "nbkeeper.confirm") == 200
    assert "Confirmed" in last_text(world)
    world.settle()
    assert [n for n in world.notebooks() if n["id"] == notebook_id] == []
    assert "Deleted *exp-1*" in last_text(world)


def test_cancel_changes_nothing(world: World) -> None:
    create_running(world)
    ask = world.slash("delete exp-1")
    assert world.click(ask, "nbkeeper.cancel") == 200
    assert "Cancelled" in last_text(world)
    assert world.run_worker() == 0
    assert len(world.notebooks()) == 1


def test_non_owner_cannot_delete_and_admin_must_confirm(world: World) -> None:
    create_running(world)
    refused = world.slash("delete exp-1", "U0002")
    assert "belongs to <@U0001>" in refused["text"]
    assert world.run_worker() == 0
    ask = world.slash("stop exp-1", ADMIN)
    assert "belongs to <@U0001>" in ask["text"] and ask["blocks"][1]["type"] == "actions"
    assert world.click(ask, "nbkeeper.confirm", user="U0002") == 200  # not the asker
    assert "Only <@UADMIN>" in last_text(world)
    assert world.run_worker() == 0
    world.click(ask, "nbkeeper.confirm", user=ADMIN)
    world.settle()
    assert "is stopped" in last_text(world)


def test_unknown_user_is_refused_and_nothing_is_queued(world: World) -> None:
    reply = world.slash("create exp-9", "UNKNOWN")
    assert "not on nbkeeper's list of users" in reply["text"]
    assert world.run_worker() == 0


def test_ambiguous_name_lists_candidates(world: World) -> None:
    create_running(world)
    world.emulator_api_create("exp-1")
    reply = world.slash("stop exp-1")
    assert "2 notebooks are called *exp-1*" in reply["text"]
    assert world.run_worker() == 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("create bad!name", "name may contain only letters"),
        ("create x storage=9999", "out of range"),
        ('create x hours=2 description="<b>"', "no option 'description'"),
        ("create x image=not-a-uuid", "No image is called"),
    ],
)
def test_invalid_create_is_explained_and_not_queued(world: World, text: str, says: str) -> None:
    reply = world.slash(text)
    assert says in reply["text"]
    assert world.run_worker() == 0


def test_invalid_update_description_and_storage(world: World) -> None:
    create_running(world)
    world.slash("stop exp-1")
    world.settle()
    assert "must not contain" in world.slash('update exp-1 description="a<b"')["text"]
    assert "can only grow" in world.slash("update exp-1 storage=5")["text"]
    assert world.run_worker() == 0
    world.slash('update exp-1 storage=50 description="ablation runs"')
    world.settle()
    assert "Updated *exp-1*" in last_text(world)


def test_update_running_offers_stop_update_start(world: World) -> None:
    notebook_id = create_running(world)
    ask = world.slash("update exp-1 storage=30")
    assert "only updates stopped notebooks" in ask["text"]
    world.click(ask, "nbkeeper.confirm")
    world.settle()
    record = world.emulator.find(notebook_id)
    assert record.status == "RUNNING"
    assert "was updated and is running again" in last_text(world)


def test_tampered_body_is_401_and_nothing_else(world: World) -> None:
    event = world.command_event("create exp-2")
    event["body"] = event["body"][:-4] + "AAAA"
    response = world.commands.lambda_handler(event, _ctx())
    assert response["statusCode"] == 401 and response["body"] == ""
    assert world.run_worker() == 0 and world.slack.posts == []


def test_stale_timestamp_is_401(world: World) -> None:
    event = world.command_event("help")
    import base64

    sign(event, base64.b64decode(event["body"]), timestamp=NOW - 301)
    assert world.commands.lambda_handler(event, _ctx())["statusCode"] == 401


def test_duplicate_delivery_creates_exactly_one_notebook(world: World) -> None:
    world.slash("create exp-1")
    (message,) = world.receive(world.queue_url)
    body = message["Body"]
    world.sqs.change_message_visibility(
        QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    world.run_worker()
    # The same command arrives again later (a producer retry after FIFO's 5-minute dedup window).
    world.worker.lambda_handler(_sqs_event(body), _ctx())
    world.settle()
    assert [n["name"] for n in world.notebooks()] == ["exp-1"]


def test_emulator_429_and_503_are_retried_by_the_worker(world: World) -> None:
    world.slash("create exp-1")  # the ack does not retry (test_slack_ack); the worker does
    world.emulator.inject(FaultKind.THROTTLE, 2, method="POST")
    world.emulator.inject(FaultKind.ERROR_503, 1, method="GET")
    world.settle()
    assert [n["status"] for n in world.notebooks()] == ["RUNNING"]
    assert "is ready" in last_text(world)


def test_poison_message_reaches_dlq_and_author_is_told(world: World) -> None:
    poison = json.dumps(
        {
            "type": "teleport",
            "command_id": "bad.1",
            "requested_at": "2020-01-01T12:00:00+00:00",  # its response_url has expired
            "requested_by": {"user_id": "U0001", "response_url": "https://hooks.slack.com/x/1"},
        }
    )
    world.sqs.send_message(
        QueueUrl=world.queue_url,
        MessageBody=poison,
        MessageGroupId="poison",
        MessageDeduplicationId="bad.1",
    )
    world.slash("create exp-1")  # a good message in the same batch still succeeds
    for _ in range(MAX_RECEIVES + 1):
        world.run_worker()
    dead = world.receive(world.dlq_url)
    assert [m["Body"] for m in dead] == [poison]
    told = world.slack.dms()
    assert len(told) == 1 and f"failed after {MAX_RECEIVES} attempts" in told[0]
    assert [n["name"] for n in world.notebooks()] == ["exp-1"]


def test_secrets_never_reach_replies_or_queue(world: World) -> None:
    create_running(world)
    world.slash("status exp-1")
    everything = json.dumps([body for _, body, _ in world.slack.posts])
    assert SECRET not in everything and BOT_TOKEN not in everything
    world.slash("stop exp-1")
    (message,) = world.receive(world.queue_url)
    assert SECRET not in message["Body"] and BOT_TOKEN not in message["Body"]
    # The bot token is only ever sent as the Authorization header of Web API calls.
    assert {auth for url, _, auth in world.slack.posts if "/api/" in url} <= {f"Bearer {BOT_TOKEN}"}


def test_keeper_buttons_keep_and_stop(world: World) -> None:
    notebook_id = create_running(world)
    project = world.worker.SETTINGS.project_id
    message = {
        "blocks": [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "keeper.keep",
                        "value": json.dumps(
                            {
                                "project_id": project,
                                "notebook_id": notebook_id,
                                "hours": 2,
                                "at": NOW,
                            }
                        ),
                    },
                    {
                        "type": "button",
                        "action_id": "keeper.stop",
                        "value": json.dumps(
                            {"project_id": project, "notebook_id": notebook_id, "at": NOW}
                        ),
                    },
                ],
            }
        ]
    }
    world.click(message, "keeper.keep")
    world.settle()
    assert "Keeping *exp-1* alive" in last_text(world)
    world.click(message, "keeper.stop")
    world.settle()
    assert world.emulator.find(notebook_id).status == "STOPPED"


def _ctx() -> Any:
    from tests.functional.slack_world import FakeLambdaContext

    return FakeLambdaContext()


def _sqs_event(body: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "dup-1",
                "receiptHandle": "r",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:commands.fifo",
                "awsRegion": "eu-west-1",
            }
        ]
    }
