"""Worker against the emulator: exactly-once create when a step after the create fails."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from nbkeeper.commands import CommandBase, CreateCommand, FollowCommand, Requester
from nbkeeper.modelarts.errors import AmbiguousCreateError, ThrottledError
from nbkeeper.modelarts.retry import NO_RETRY
from nbkeeper.slack.render import Message
from nbkeeper.store import MemoryStateStore
from nbkeeper.tags import COMMAND_TAG
from nbkeeper.worker import Result, Worker
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


def create_command(emulator: Emulator, name: str = "nb-once") -> CreateCommand:
    return CreateCommand(
        command_id="sc.create-1",
        requested_at=emulator.now(),
        requested_by=Requester(user_id="U0001"),
        name=name,
        flavor="modelarts.vm.cpu.2u",
        image_id=IMAGE_ID,
        storage_gb=5,
        hours=2,
    )


def execute(factory: ClientFactory, command: CreateCommand, now: datetime) -> Result:
    async def go() -> Result:
        async with factory(retry=NO_RETRY) as client:
            recorder = Recorder()
            worker = Worker(client, MemoryStateStore(), recorder, recorder, PROJECT_ID)
            return await worker.execute(command, now)

    return asyncio.run(go())


def notebooks_named(emulator_api: ApiCaller, name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = emulator_api("GET", NOTEBOOKS, params={"name": name}).json()[
        "data"
    ]
    return [n for n in data if n["name"] == name]


def test_redelivered_create_after_tagging_failed_adopts_the_first_notebook(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller
) -> None:
    command = create_command(emulator)
    emulator.inject(FaultKind.THROTTLE, 1, method="POST", path=r"/tags/create$")
    with pytest.raises(ThrottledError):  # transient: SQS delivers the command again
        execute(emulator_client, command, emulator.now())

    result = execute(emulator_client, command, emulator.now() + timedelta(seconds=30))

    [notebook] = notebooks_named(emulator_api, command.name)
    assert result.notebook_id == notebook["id"]
    assert {t["key"]: t["value"] for t in notebook["tags"]}[COMMAND_TAG] == command.command_id


def test_ambiguous_create_does_not_adopt_an_older_untagged_namesake(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller
) -> None:
    older = emulator_api("POST", NOTEBOOKS, json={**CREATE_BODY, "name": "nb-twin"}).json()
    emulator.advance(3600)
    command = create_command(emulator, "nb-twin")
    emulator.inject(FaultKind.DROP, 1, method="POST", path=rf"{NOTEBOOKS}$")

    with pytest.raises(AmbiguousCreateError):
        execute(emulator_client, command, emulator.now())

    [notebook] = notebooks_named(emulator_api, "nb-twin")
    assert notebook["id"] == older["id"]
    assert COMMAND_TAG not in {t["key"] for t in notebook["tags"]}
