"""The create form end to end: a signed bare `/nb create` -> the real webhook handler -> views.open
on a fake Slack API (the view checked with slack_sdk's models); a signed view_submission -> inline
errors, or one command on moto's FIFO queue -> the real worker -> the emulator -> a DM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk.models.blocks import Option

from nbkeeper.slack import modal
from nbkeeper.tags import OWNER_TAG
from nbkeeper_local.emulator.catalogue import PUBLIC_IMAGES
from nbkeeper_local.harness import FakeLambdaContext
from tests.emulator_fixtures import IMAGE_ID, PROJECT_ID
from tests.functional.slack_world import BOT_TOKEN, World

TF26 = next(i for i in PUBLIC_IMAGES if i["name"].startswith("tensorflow2.6"))


def open_form(world: World, user: str = "U0001") -> tuple[dict[str, Any], dict[str, Any]]:
    """`/nb create` alone: the ack, and the views.open call it made."""
    event = world.command_event("create", user)
    response = world.commands.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response
    (call,) = world.slack.opened()
    return response, call


def element(view: dict[str, Any], field: modal.Field) -> dict[str, Any]:
    (block,) = [b for b in view["blocks"] if b.get("block_id") == modal.block_id(field)]
    found: dict[str, Any] = block["element"]
    return found


def submission(
    view: dict[str, Any], user: str = "U0001", view_id: str = "V0001", **fields: Any
) -> dict[str, Any]:
    """What Slack posts when `user` submits `view` with `fields` (select fields take the value of
    an option, text and number fields their text, idle a bool)."""
    values: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        kind = element(view, name)["type"]
        if name == "idle":
            chosen = [{"value": modal.IDLE_VALUE}] if value else []
            state: dict[str, Any] = {"type": kind, "selected_options": chosen}
        elif kind.endswith("_select"):
            state = {"type": kind, "selected_option": {"value": value}}
        else:
            state = {"type": kind, "value": value}
        values[modal.block_id(name)] = {name: state}
    return {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "example"},
        "user": {"id": user, "username": "ada", "team_id": "T0001"},
        "api_app_id": "A0001",
        "trigger_id": "9.submit",
        "view": {
            "id": view_id,
            "team_id": "T0001",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "hash": "1.abc",
            "state": {"values": values},
        },
    }


def queued(world: World) -> list[dict[str, Any]]:
    return world.receive(world.queue_url)


def test_a_bare_create_opens_the_form_filled_from_the_catalogue(world: World) -> None:
    response, call = open_form(world)
    assert response["body"] == ""  # the modal is the answer: nothing shown in the channel
    (url, _, auth) = next(p for p in world.slack.posts if p[0].endswith("views.open"))
    assert url.endswith("/api/views.open") and auth == f"Bearer {BOT_TOKEN}"
    assert call["trigger_id"] == "1.trigger"  # the slash command's own trigger
    view = call["view"]
    assert view["callback_id"] == modal.CREATE_CALLBACK
    image, flavor = element(view, "image"), element(view, "flavor")
    assert image["type"] == "static_select"
    assert {o["value"] for o in image["options"]} == {i["id"] for i in PUBLIC_IMAGES}
    assert image["initial_option"]["value"] == IMAGE_ID  # the deploy's default image
    for item in image["options"] + flavor["options"]:
        assert Option(**item).to_dict() == item  # Block Kit's option limits
    offered = {o["value"] for o in flavor["options"]}
    assert "modelarts.vm.gpu.t4" in offered and "modelarts.vm.gpu.a100" not in offered  # sold out
    assert json.loads(view["private_metadata"]) == {"channel_id": "C0001"}
    assert queued(world) == []


def test_a_failed_views_open_explains_and_shows_the_text_form(world: World) -> None:
    world.slack.views_open_error = "expired_trigger_id"
    response, _ = open_form(world)
    text = json.loads(response["body"])["text"]
    assert "could not open the create form (expired_trigger_id)" in text
    assert "`/nb create NAME [flavor=F] [image=NAME|ID]" in text
    assert queued(world) == []


def test_someone_not_allowed_gets_no_form(world: World) -> None:
    reply = world.slash("create", "U0999")
    assert "not on nbkeeper's list of users" in reply["text"]
    assert world.slack.opened() == []


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"name": "bad name!"}, "name", "may contain only letters, digits, '-' and '_'"),
        ({"name": "x", "image": "tensorflow2.7"}, "image", "No image is called tensorflow2.7"),
        ({"name": "x", "image": "pytorch"}, "image", "3 images match pytorch"),
        ({"name": "x", "flavor": "modelarts.vm.gpu.a100"}, "flavor", "is sold out"),
        ({"name": "x", "storage_gb": "0"}, "storage_gb", "storage 0 GB is out of range"),
        ({"name": "x", "hours": "73"}, "hours", "73 h is out of range"),
    ],
)
def test_a_bad_field_comes_back_under_that_field_and_nothing_is_queued(
    world: World, fields: dict[str, str], where: modal.Field, says: str
) -> None:
    _, call = open_form(world)
    posts = len(world.slack.posts)
    response = world.interaction(submission(call["view"], **fields))
    assert response["statusCode"] == 200
    reply = json.loads(response["body"])
    assert reply["response_action"] == "errors"
    assert list(reply["errors"]) == [modal.block_id(where)]
    assert says in reply["errors"][modal.block_id(where)], reply
    assert queued(world) == []
    assert len(world.slack.posts) == posts  # no DM either


def test_a_name_already_taken_is_refused_under_the_name(world: World) -> None:
    world.emulator_api_create("taken")
    _, call = open_form(world)
    reply = json.loads(world.interaction(submission(call["view"], name="taken"))["body"])
    assert "already exists" in reply["errors"][modal.block_id("name")]
    assert queued(world) == []


def test_a_good_submission_queues_one_command_and_the_worker_dms_the_author(
    world: World,
) -> None:
    _, call = open_form(world)
    filled = submission(
        call["view"],
        name="form-nb",
        image=TF26["id"],
        flavor="modelarts.vm.gpu.t4",
        storage_gb="10",
        hours="4",
        idle=False,
    )
    response = world.interaction(filled)
    assert (response["statusCode"], response["body"]) == (200, "")  # closes the modal
    again = world.interaction(filled)  # Slack's retry, or a double click: the same command
    assert again["statusCode"] == 200
    (message,) = queued(world)
    command = json.loads(message["Body"])
    assert command["type"] == "create" and command["name"] == "form-nb"
    assert command["requested_by"]["user_id"] == "U0001"
    assert command["requested_by"]["channel_id"] == "C0001"  # from private_metadata
    assert command["requested_by"].get("response_url") is None
    assert message["Attributes"]["MessageDeduplicationId"] == command["command_id"]
    assert command["command_id"].startswith("vs.")
    (summary,) = [dm for dm in world.slack.dms() if "Creating *form-nb*" in dm]  # once
    assert "modelarts.vm.gpu.t4" in summary
    dm_channel = [b["channel"] for u, b, _ in world.slack.posts if u.endswith("chat.postMessage")]
    assert dm_channel[-1] == "U0001"
    # the worker, against the emulator
    world.sqs.change_message_visibility(
        QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    world.settle()
    (notebook,) = world.notebooks()
    assert (notebook["name"], notebook["status"]) == ("form-nb", "RUNNING")
    assert notebook["image"]["id"] == TF26["id"]
    assert (notebook["flavor"], notebook["volume"]["capacity"]) == ("modelarts.vm.gpu.t4", 10)
    tags = {t["key"]: t.get("value") for t in notebook.get("tags") or []}
    assert tags[OWNER_TAG] == "U0001"
    assert "is ready" in world.slack.dms()[-1]
    assert not any("hooks.slack.com" in url for url, _, _ in world.slack.posts)  # DMs only


def test_a_large_catalogue_gets_type_ahead(world: World) -> None:
    for n in range(modal.STATIC_MAX):
        world.emulator.images.add_own(
            PROJECT_ID, f"d0d0d0d0-1111-4222-8333-{n:012d}", f"team-env-{n}", "v1"
        )
    _, call = open_form(world)
    assert element(call["view"], "image")["type"] == "external_select"
    response = world.interaction(
        {
            "type": "block_suggestion",
            "user": {"id": "U0001", "team_id": "T0001"},
            "team": {"id": "T0001"},
            "action_id": "image",
            "block_id": modal.block_id("image"),
            "value": "team-env-4",
            "view": {"id": "V0001", "private_metadata": call["view"]["private_metadata"]},
        }
    )
    assert response["statusCode"] == 200
    options = json.loads(response["body"])["options"]
    labels = {o["text"]["text"] for o in options}
    assert labels == {"team-env-4:v1", *(f"team-env-4{n}:v1" for n in range(10))}
    assert all(Option(**o).to_dict() == o for o in options)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "view_closed", "user": {"id": "U0001"}, "view": {"id": "V1"}},
        {"type": "view_submission", "user": {"id": "U0001"}, "view": {"id": "V1"}},  # not ours
        {
            "type": "block_actions",
            "user": {"id": "U0001"},
            "container": {"type": "view", "view_id": "V1"},
            "actions": [{"action_id": "image", "type": "static_select"}],
        },
        {"type": "shortcut", "user": {"id": "U0001"}, "callback_id": "x"},
    ],
    ids=["view_closed", "foreign view", "select in a view", "shortcut"],
)
def test_other_interactions_are_acknowledged_and_do_nothing(
    world: World, payload: dict[str, Any]
) -> None:
    response = world.interaction(payload)
    assert response["statusCode"] == 200
    assert queued(world) == [] and world.slack.posts == []


def test_an_unreadable_submission_is_a_400(world: World) -> None:
    response = world.interaction({"type": "view_submission", "user": {"id": "U0001"}})
    assert response["statusCode"] == 400
    assert queued(world) == []
