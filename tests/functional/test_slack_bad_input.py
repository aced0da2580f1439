"""Signed but malformed Slack interactions: a clear 400, nothing queued, nothing posted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from nbkeeper.slack.interaction import BlockActions
from tests.functional.slack_world import World, load_app

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
