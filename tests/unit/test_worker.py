"""Worker against the emulator: one create makes at most one notebook, never a second one of a
taken name, and a failed create leaves nothing running unowned (issue 10, defects 2 and 3)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from nbkeeper.commands import CommandBase, CreateCommand, FollowCommand, Requester
from nbkeeper.memory import MemoryCommandLog, MemoryStateStore
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.errors import AmbiguousCreateError, ThrottledError
from nbkeeper.modelarts.retry import NO_RETRY
from nbkeeper.modelarts.schemas import Notebook, NotebookCreateRequest
from nbkeeper.records import Owner
from nbkeeper.slack.render import Message
from nbkeeper.tags import COMMAND_TAG
from nbkeeper.worker.dispatch import Worker
from nbkeeper.worker.ports import Result
from nbkeeper_local.emulator import Emulator
from nbkeeper_local.emulator.faults import FaultKind
from tests.emulator_fixtures import (
    CREATE_BODY,
    IMAGE_ID,
    NOTEBOOKS,
    PROJECT_ID,
    ApiCaller,
    ClientFactory,
)


class Recorder:
    """Follow-ups and reports, kept for the assertions."""

    def __init__(self) -> None:
        self.followups: list[FollowCommand] = []
        self.reports: list[str] = []

    def schedule(self, command: FollowCommand, delay_seconds: int) -> None:
        self.followups.append(command)

    def report(self, command: CommandBase, message: Message, now: datetime) -> str:
        self.reports.append(str(message.get("text", "")))
        return "dm"


def create_command(
    emulator: Emulator, name: str = "nb-once", requested_at: datetime | None = None
) -> CreateCommand:
    return CreateCommand(
        command_id="sc.create-1",
        requested_at=requested_at or emulator.now(),
        requested_by=Requester(user_id="U0001"),
        name=name,
        flavor="modelarts.vm.cpu.2u",
        image_id=IMAGE_ID,
        storage_gb=5,
        hours=2,
    )


@dataclass
class State:
    """What outlives one delivery: the state table's owner records and create intents."""

    store: MemoryStateStore = field(default_factory=MemoryStateStore)
    intents: MemoryCommandLog = field(default_factory=MemoryCommandLog)
    recorder: Recorder = field(default_factory=Recorder)


class LostReply:
    """A client whose create happens but whose reply is lost (the connection dropped after)."""

    def __init__(self, client: AsyncModelArtsClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def create_notebook(self, request: NotebookCreateRequest) -> Notebook:
        await self.client.create_notebook(request)
        raise AmbiguousCreateError("the connection dropped after the request was sent")


class OwnerlessStore(MemoryStateStore):
    """A state table that takes no owner records (say, DynamoDB throttling every write)."""

    def put_owner(self, owner: Owner) -> None:
        raise RuntimeError("ProvisionedThroughputExceededException")


def execute(
    factory: ClientFactory,
    command: CreateCommand,
    now: datetime,
    state: State | None = None,
    wrap: Callable[[AsyncModelArtsClient], Any] = lambda client: client,
) -> Result:
    state = state or State()

    async def go() -> Result:
        async with factory(retry=NO_RETRY) as client:
            worker = Worker(
                wrap(client),
                state.store,
                state.recorder,
                state.recorder,
                PROJECT_ID,
                intents=state.intents,
            )
            return await worker.execute(command, now)

    return asyncio.run(go())


def account_for(factory: ClientFactory, command: CreateCommand, now: datetime, state: State) -> str:
    async def go() -> str:
        async with factory(retry=NO_RETRY) as client:
            worker = Worker(
                client,
                state.store,
                state.recorder,
                state.recorder,
                PROJECT_ID,
                intents=state.intents,
            )
            return await worker.account_for_create(command, now)

    return asyncio.run(go())


def notebooks_named(emulator_api: ApiCaller, name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = emulator_api("GET", NOTEBOOKS, params={"name": name}).json()[
        "data"
    ]
    return [n for n in data if n["name"] == name]


def tags_of(notebook: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in notebook.get("tags") or []}


def test_redelivered_create_after_tagging_failed_adopts_the_first_notebook(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller
) -> None:
    command = create_command(emulator)
    state = State()
    emulator.inject(FaultKind.THROTTLE, 1, method="POST", path=r"/tags/create$")
    with pytest.raises(ThrottledError):  # transient: SQS delivers the command again
        execute(emulator_client, command, emulator.now(), state)
    [notebook] = notebooks_named(emulator_api, command.name)
    owner = state.store.get_owner(PROJECT_ID, notebook["id"])
    assert owner is not None and owner.command_id == command.command_id  # before tagging

    result = execute(emulator_client, command, emulator.now() + timedelta(seconds=30), state)

    [notebook] = notebooks_named(emulator_api, command.name)
    assert result.notebook_id == notebook["id"]
    assert tags_of(notebook)[COMMAND_TAG] == command.command_id


def test_create_refuses_a_name_taken_by_an_older_untagged_notebook(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller
) -> None:
    older = emulator_api("POST", NOTEBOOKS, json={**CREATE_BODY, "name": "nb-twin"}).json()
    emulator.advance(3600)
    command = create_command(emulator, "nb-twin")
    state = State()

    result = execute(emulator_client, command, emulator.now(), state)

    assert result.outcome == "refused" and result.detail == "name taken"
    [notebook] = notebooks_named(emulator_api, "nb-twin")
    assert notebook["id"] == older["id"] and COMMAND_TAG not in tags_of(notebook)
    assert (
        "already exists" in state.recorder.reports[-1] and older["id"] in state.recorder.reports[-1]
    )


@pytest.mark.parametrize("skew", [timedelta(days=-1), timedelta(0), timedelta(days=1)])
def test_a_create_whose_reply_was_lost_adopts_its_notebook_whatever_the_clocks_say(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller, skew: timedelta
) -> None:
    """Our clock `skew` away from ModelArts': adoption compares no clocks."""
    command = create_command(emulator, requested_at=emulator.now() + skew)
    state = State()

    result = execute(emulator_client, command, command.requested_at, state, wrap=LostReply)

    [notebook] = notebooks_named(emulator_api, command.name)
    assert result.notebook_id == notebook["id"]
    assert tags_of(notebook)[COMMAND_TAG] == command.command_id
    assert state.store.get_owner(PROJECT_ID, notebook["id"]) is not None


def test_an_untagged_namesake_with_another_spec_is_not_adopted(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller
) -> None:
    command = create_command(emulator, "nb-spec")
    state = State()
    emulator.inject(FaultKind.DROP, 1, method="POST", path=rf"{NOTEBOOKS}$")
    with pytest.raises(AmbiguousCreateError):  # nothing was made; SQS delivers it again
        execute(emulator_client, command, emulator.now(), state)
    # Meanwhile someone makes a namesake in the console, with another flavor.
    other = {**CREATE_BODY, "name": "nb-spec", "flavor": "modelarts.vm.cpu.8u"}
    emulator_api("POST", NOTEBOOKS, json=other)

    result = execute(emulator_client, command, emulator.now(), state)

    assert result.outcome == "refused"
    [notebook] = notebooks_named(emulator_api, "nb-spec")
    assert COMMAND_TAG not in tags_of(notebook)
    assert state.store.get_owner(PROJECT_ID, notebook["id"]) is None


def test_last_receive_stops_a_notebook_whose_owner_cannot_be_recorded(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller
) -> None:
    command = create_command(emulator, "nb-orphan")
    state = State(store=OwnerlessStore())
    with pytest.raises(RuntimeError):
        execute(emulator_client, command, emulator.now(), state)
    emulator.advance(600)  # it finished creating: RUNNING, untagged, unowned, billed

    told = account_for(emulator_client, command, emulator.now(), state)

    [notebook] = notebooks_named(emulator_api, "nb-orphan")
    assert notebook["status"] in ("STOPPING", "STOPPED")
    assert notebook["id"] in told and "so it was stopped" in told


def test_last_receive_records_an_unrecorded_notebook_as_the_authors(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller
) -> None:
    command = create_command(emulator, "nb-late")
    state = State()
    execute(emulator_client, command, emulator.now(), State(intents=state.intents))  # lost owner

    told = account_for(emulator_client, command, emulator.now(), state)

    [notebook] = notebooks_named(emulator_api, "nb-late")
    owner = state.store.get_owner(PROJECT_ID, notebook["id"])
    assert owner is not None and owner.user_id == "U0001"
    assert notebook["id"] in told and "recorded as yours" in told


def test_last_receive_says_when_nothing_was_created(
    emulator: Emulator, emulator_client: ClientFactory
) -> None:
    told = account_for(
        emulator_client, create_command(emulator, "nb-none"), emulator.now(), State()
    )
    assert "No notebook called *nb-none* was created" in told
