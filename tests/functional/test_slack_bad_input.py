"""Signed but malformed Slack interactions: a clear 400, nothing queued, nothing posted."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nbkeeper.slack.interaction import BlockActions
from tests.functional.slack_world import NOW, FakeLambdaContext, World, load_app
from tests.unit.test_slack_escaping import assert_safe

CLICK: dict[str, Any] = {
    "user": {"id": "U0001"},
    "actions": [{"action_id": "nbkeeper.cancel", "value": "{}"}],
}


@pytest.mark.parametrize(
    "payload",
    [
        {**CLICK, "actions": ["not-an-object"]},
        {**CLICK, "actions": []},
        {**CLICK, "user": "U0001"},
        {**CLICK, "user": {}},
        {**CLICK, "container": "not-an-object"},
        {**CLICK, "team": ["T0001"]},
        {**CLICK, "response_url": 5},
        ["not", "an", "object"],
    ],
    ids=[
        "action-not-object",
        "no-actions",
        "user-not-object",
        "user-without-id",
        "container-not-object",
        "team-not-object",
        "response-url-not-text",
        "payload-not-object",
    ],
)
def test_malformed_interaction_is_400_and_nothing_happens(world: World, payload: Any) -> None:
    assert world.interact(payload) == 400
    assert world.receive(world.queue_url) == []
    assert world.slack.posts == []


def test_well_formed_cancel_still_answers(world: World) -> None:
    payload = {**CLICK, "response_url": "https://hooks.slack.com/actions/T0001/1/x"}
    assert world.interact(payload) == 200
    assert "Cancelled" in world.slack.texts()[-1]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(["user", "actions", "team", "channel", "container", "response_url"])


@given(st.dictionaries(KEYS, JSON, max_size=6) | JSON)
def test_any_json_payload_parses_or_is_a_validation_error(payload: Any) -> None:
    try:
        parsed = BlockActions.model_validate_json(json.dumps(payload))
    except ValidationError:
        return
    assert parsed.user.id and parsed.action is parsed.actions[0]


# ---------------------------------------------------------------- ModelArts refuses the key


def test_a_refused_access_key_is_one_sentence_and_never_echoed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator's 401 echoes an unknown access key id, as the gateway does."""
    wrong_key = "HPUAWRONGWRONGWRONG1"
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", wrong_key)
    commands = load_app("slack_commands")
    commands.seams.modelarts_transport = world.emulator.asgi_transport()
    commands.seams.clock = world.commands.seams.clock
    world.commands = commands
    for text in ("status exp-1", "list all", "create exp-2", "stop exp-1"):
        reply = world.slash(text)
        assert reply["text"] == ":warning: ModelArts refused nbkeeper's credentials; tell an admin."
        assert wrong_key not in json.dumps(reply)
    assert world.receive(world.queue_url) == []


# ---------------------------------------------------------------- any target, any verb


TARGET_VERBS = {
    "delete": "",
    "status": "",
    "start": "",
    "stop": "",
    "prolong": " 3",
    "keep": " for 1h",
    "update": " storage=10",
    "save": " as env:v1",
}
ODD_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40) | st.text(
    min_size=120, max_size=600
)
TARGETS = ODD_TEXT.filter(lambda t: t.strip() != "")


def slack_form_text(text: str) -> str:
    """What Slack sends for typed text: &, < and > HTML-escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(verb=st.sampled_from(sorted(TARGET_VERBS)), target=TARGETS, quoted=st.booleans())
def test_every_verb_answers_any_target_with_a_reply(
    world: World, verb: str, target: str, quoted: bool
) -> None:
    """Long, quoted, unicode and markup targets: a 200 with a readable reply, nothing queued."""
    word = shlex.quote(target) if quoted else target
    event = world.command_event(slack_form_text(f"{verb} {word}{TARGET_VERBS[verb]}"))
    response = world.commands.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response
    reply = json.loads(response["body"])
    assert_safe(reply)  # escaped, no cut entity or empty section, valid Block Kit
    assert world.receive(world.queue_url) == []


@pytest.mark.parametrize("verb", sorted(TARGET_VERBS))
@pytest.mark.parametrize("length", [129, 300, 1500])
def test_a_target_longer_than_a_name_says_so(world: World, verb: str, length: int) -> None:
    reply = world.slash(f"{verb} {'n' * length}{TARGET_VERBS[verb]}")
    assert "at most 128 characters" in reply["text"], reply["text"]
    assert world.receive(world.queue_url) == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=TARGETS, flavor=ODD_TEXT)
def test_create_answers_any_name_and_flavor(world: World, name: str, flavor: str) -> None:
    text = f"create {shlex.quote(name)} flavor={shlex.quote(flavor)}"
    response = world.commands.lambda_handler(
        world.command_event(slack_form_text(text)), FakeLambdaContext()
    )
    assert response["statusCode"] == 200, response
    assert_safe(json.loads(response["body"]))
    for message in world.receive(world.queue_url):  # a valid name is queued: clear it
        world.sqs.delete_message(QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"])


# ---------------------------------------------------------------- button values and their age


def keeper_click(action_id: str, value: str) -> dict[str, Any]:
    return {
        "user": {"id": "U0001"},
        "actions": [{"action_id": action_id, "value": value}],
        "response_url": "https://hooks.slack.com/actions/T0001/1/x",
    }


@pytest.mark.parametrize("action_id", ["keeper.keep", "keeper.stop"])
@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN"])
def test_a_keeper_value_with_an_overflowing_number_is_an_unknown_button(
    world: World, action_id: str, number: str
) -> None:
    """Was an OverflowError (500) in the interactions route; now the one codec refuses it."""
    value = (
        f'{{"project_id":"{world.commands.SETTINGS.project_id}",'
        f'"notebook_id":"00000000-0000-0000-0000-000000000001","hours":{number},"at":{NOW}}}'
    )
    assert world.interact(keeper_click(action_id, value)) == 200
    assert "do not recognise that button" in world.slack.texts()[-1]
    assert world.receive(world.queue_url) == []


def test_a_confirmation_clicked_after_15_minutes_is_refused_and_replaced(world: World) -> None:
    world.slash("create exp-1")
    world.settle()
    ask = world.slash("delete exp-1")
    assert world.click(ask, "nbkeeper.confirm", at=NOW + 15 * 60 + 1) == 200
    url, body, _ = world.slack.posts[-1]
    assert "/actions/" in url and body["replace_original"] is True
    assert "expired" in body["text"] and "Nothing was done" in body["text"]
    assert world.receive(world.queue_url) == []
    assert world.click(ask, "nbkeeper.confirm", at=NOW + 15 * 60) == 200
    assert "Confirmed" in world.slack.texts()[-1]
    assert len(world.receive(world.queue_url)) == 1
