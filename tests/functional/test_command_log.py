"""The per-command notes (create intents, kept response_urls, once-only keys, dead letters told)
and the owner record's command id: DynamoDB (moto) and the in-memory fake behave the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nbkeeper.dynamo import DynamoCommandLog, DynamoStateStore, ItemWriter
from nbkeeper.memory import MemoryCommandLog, MemoryStateStore
from nbkeeper.records import Owner

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
URL = "https://hooks.slack.com/commands/T1/2/secret"


@pytest.fixture(params=["memory", "dynamodb"])
def backends(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    if request.param == "memory":
        return MemoryCommandLog(), MemoryStateStore()
    table = request.getfixturevalue("state_table")
    return DynamoCommandLog(table), DynamoStateStore(table)


def test_a_create_intent_is_remembered_per_command(backends: tuple[Any, Any]) -> None:
    log, _ = backends
    assert not log.create_begun("sc.1")
    log.begin_create("sc.1", "exp-1", NOW)
    assert log.create_begun("sc.1") and not log.create_begun("sc.2")


def test_a_kept_response_url_is_given_out_for_its_30_minutes_only(
    backends: tuple[Any, Any],
) -> None:
    log, _ = backends
    log.put_response_url("sc.1", URL, NOW)
    assert log.response_url("sc.1", NOW + timedelta(minutes=29)) == URL
    assert log.response_url("sc.1", NOW + timedelta(minutes=30)) is None
    assert log.response_url("sc.2", NOW) is None


def test_the_owner_record_names_the_create_command(backends: tuple[Any, Any]) -> None:
    _, store = backends
    owner = Owner(project_id="p", notebook_id="nb", user_id="U1", created_at=NOW, command_id="c")
    store.put_owner(owner)
    assert store.get_owner("p", "nb") == owner
    assert store.load_project("p", NOW).owners["nb"].command_id == "c"


def test_the_webhooks_item_writer_stores_what_the_table_would(state_table: Any) -> None:
    """The ack path writes response_urls over the low-level client (cheaper to build); the
    worker reads them back through the Table resource."""
    import boto3

    writer = ItemWriter(boto3.client("dynamodb"), state_table.name)
    DynamoCommandLog(writer).put_response_url("sc.1", URL, NOW)
    DynamoCommandLog(state_table).put_response_url("sc.2", URL, NOW)
    log = DynamoCommandLog(state_table)
    assert log.response_url("sc.1", NOW + timedelta(minutes=29)) == URL
    assert log.response_url("sc.1", NOW + timedelta(minutes=30)) is None
    items = {
        pk: state_table.get_item(Key={"pk": f"COMMAND#{pk}", "sk": "RESPURL"})["Item"]
        for pk in ("sc.1", "sc.2")
    }
    assert items["sc.1"] | {"pk": ""} == items["sc.2"] | {"pk": ""}


def test_a_key_is_new_only_the_first_time(backends: tuple[Any, Any]) -> None:
    log, _ = backends
    assert log.first_time("vs.V1", NOW)
    assert not log.first_time("vs.V1", NOW)
    assert log.first_time("vs.V2", NOW)


def test_the_item_writer_makes_the_same_conditional_write(state_table: Any) -> None:
    """The webhook claims a form's summary over the low-level client, as the Table would."""
    import boto3

    writer = DynamoCommandLog(ItemWriter(boto3.client("dynamodb"), state_table.name))
    assert writer.first_time("vs.V1", NOW)
    assert not writer.first_time("vs.V1", NOW)
    assert not DynamoCommandLog(state_table).first_time("vs.V1", NOW)


def test_dead_letters_told_are_remembered_per_message(backends: tuple[Any, Any]) -> None:
    log, _ = backends
    assert not log.told("m-1")
    log.note_told("m-1", "dm", NOW)
    assert log.told("m-1") and not log.told("m-2")
