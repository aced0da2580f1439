"""A keeper pass while a notebook is saved as an image (SNAPSHOTTING): not stopped and not
prolonged while it is saved; once it runs again, the usual rules apply to it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from nbkeeper.keeper.decide import Action
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.images import ImageCreateRequest, save_image
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper_local.emulator import Emulator, Timings
from tests.emulator_fixtures import EMULATOR_BASE_URL, PROJECT_ID
from tests.unit.test_keeper import RecordingNotifier, by_name, due_idle_warning, run, world

__all__ = ["world"]  # the fixture, used below


def test_a_notebook_being_saved_is_left_alone_until_it_runs_again(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    ids, store = world["ids"], world["store"]
    idle = ids["idle"]
    emulator.advance(timedelta(hours=1, minutes=30))  # idle for long enough
    store.put_warning(due_idle_warning(emulator, idle))  # due: a running one would be stopped

    async def save() -> None:
        async with AsyncModelArtsClient(
            EMULATOR_BASE_URL, PROJECT_ID, world["auth"], transport=world["transport"]
        ) as client:
            await save_image(client, idle, ImageCreateRequest(name="idle-env", namespace="team"))

    asyncio.run(save())
    notifier = RecordingNotifier()
    during = run(emulator, world["transport"], world["auth"], store, notifier)
    assert "idle" not in by_name(during)  # only RUNNING notebooks are swept
    assert emulator.find(idle).status is NotebookStatus.SNAPSHOTTING
    assert store.load_project(PROJECT_ID, emulator.now()).warnings[idle].kind == "idle"

    emulator.advance(Timings().snapshot_s)
    after = run(emulator, world["transport"], world["auth"], store, notifier)
    assert by_name(after)["idle"] is Action.STOP  # still idle, warned, its stop time passed
