"""Queue messages: round trips, FIFO grouping, and fuzzing of message bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbkeeper.commands import (
    CreateCommand,
    DeleteCommand,
    FollowCommand,
    KeepCommand,
    Requester,
    SweepProjectCommand,
    encode_command,
    message_group_id,
    parse_command,
    peek_requester,
)
from nbkeeper.modelarts.errors import describe_validation_error
from nbkeeper.records import ProjectRef

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
IMAGE = "e1a07296-22a8-4f05-8bc8-e936c8e54090"
BASE: dict[str, Any] = {
    "command_id": "slack.T1.abc",
    "requested_at": NOW.isoformat(),
    "requested_by": {"user_id": "U1", "response_url": "https://hooks.slack.com/commands/x"},
}


def samples() -> list[dict[str, Any]]:
    return [
        {**BASE, "type": "create", "name": "exp-1", "flavor": "f", "image_id": IMAGE,
         "storage_gb": 5, "hours": 2},
        {**BASE, "type": "update", "notebook_id": "nb1", "changes": {"storage_new_size": 100}},
        {**BASE, "type": "delete", "notebook_id": "nb1"},
        {**BASE, "type": "start", "notebook_id": "nb1", "hours": 4},
        {**BASE, "type": "stop", "notebook_id": "nb1"},
        {**BASE, "type": "prolong", "notebook_id": "nb1", "hours": 3},
        {**BASE, "type": "keep", "notebook_id": "nb1", "until": (NOW + timedelta(hours=3)).isoformat()},
        {**BASE, "type": "sweep-project", "at": NOW.isoformat(),
         "project": {"region": "ap-southeast-3", "project_id": "p1"}},
        {**BASE, "type": "follow", "notebook_id": "nb1", "origin": "create", "wait_for": "RUNNING",
         "attempt": 1, "deadline": NOW.isoformat()},
    ]  # fmt: skip


@pytest.mark.parametrize("body", samples(), ids=lambda b: b["type"])
def test_every_type_round_trips(body: dict[str, Any]) -> None:
    command = parse_command(json.dumps(body))
    assert command.type == body["type"]
    assert parse_command(encode_command(command)) == command


def test_group_per_notebook_and_per_project_for_creates() -> None:
    delete = parse_command(json.dumps(samples()[2]))
    create = parse_command(json.dumps(samples()[0]))
    sweep = parse_command(json.dumps(samples()[7]))
    assert message_group_id(delete) == "nb.nb1"
    assert message_group_id(create, "p0") == "project.p0"
    assert message_group_id(sweep) == "project.p1"


def test_create_request_carries_lease_type() -> None:
    command = CreateCommand.model_validate({**samples()[0], "idle_stop": True})
    body = command.to_request().to_body()
    assert body["lease"] == {"duration": 7_200_000, "type": "IDLE"}
    assert body["volume"] == {"category": "EVS", "ownership": "MANAGED", "capacity": 5}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"type": "teleport"}, "type"),
        ({"type": "create", "name": "bad name!"}, "name may contain only"),
        ({"type": "prolong", "notebook_id": "nb1", "hours": 99}, "hours"),
        ({"type": "delete", "notebook_id": "nb1", "extra": 1}, "extra"),
        ({"type": "delete", "notebook_id": "nb1", "command_id": "has space"}, "command_id"),
    ],
)
def test_invalid_bodies_name_the_field(change: dict[str, Any], says: str) -> None:
    body = {**BASE, **change}
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_command(json.dumps(body))
    assert says in describe_validation_error(caught.value)


def test_peek_requester_reads_a_broken_message() -> None:
    body = json.dumps({**BASE, "type": "teleport"})
    requester = peek_requester(body)
    assert requester is not None and requester.user_id == "U1"
    assert peek_requester("not json") is None
    assert peek_requester("[1]") is None


def test_follow_ids_and_types_are_distinct_models() -> None:
    follow = parse_command(json.dumps(samples()[8]))
    assert isinstance(follow, FollowCommand)
    keep = parse_command(json.dumps(samples()[6]))
    assert isinstance(keep, KeepCommand)
    assert isinstance(parse_command(json.dumps(samples()[2])), DeleteCommand)
    assert isinstance(parse_command(json.dumps(samples()[7])), SweepProjectCommand)


def test_requester_and_project_are_strict() -> None:
    with pytest.raises(pydantic.ValidationError):
        Requester.model_validate({"user_id": ""})
    with pytest.raises(pydantic.ValidationError):
        ProjectRef.model_validate({"region": "r"})


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@given(
    base=st.sampled_from(samples()),
    key=st.sampled_from(
        ["type", "name", "hours", "notebook_id", "until", "changes", "requested_by", "command_id",
         "requested_at", "storage_gb", "attempt", "project", "zzz"]
    ),
    value=JSONISH,
)  # fmt: skip
def test_fuzz_mutated_bodies_parse_or_fail_clearly(
    base: dict[str, Any], key: str, value: Any
) -> None:
    message = rejection(json.dumps({**base, key: value}))
    assert message is None or ":" in message


def rejection(body: bytes | str) -> str | None:
    """None if the body parses, else the person-readable reason (other exceptions fail)."""
    try:
        parse_command(body)
    except pydantic.ValidationError as exc:
        return describe_validation_error(exc)
    return None


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode) | JSONISH.map(json.dumps))
def test_fuzz_arbitrary_bodies_never_crash(body: bytes | str) -> None:
    message = rejection(body)
    assert message is None or message
    peek_requester(body)
