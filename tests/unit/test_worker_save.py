"""The worker saves a notebook as an image against the emulator: it looks again before acting,
follows the save until the notebook runs again and the image is ACTIVE, and says what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from nbkeeper.commands import Command, FollowCommand, Requester, SaveCommand
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.errors import AmbiguousCreateError
from nbkeeper.modelarts.retry import NO_RETRY
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.worker.dispatch import Worker
from nbkeeper.worker.ports import NotebookBusyError, Result
from nbkeeper_local.emulator import Emulator, Timings
from tests.emulator_fixtures import CREATE_BODY, NOTEBOOKS, PROJECT_ID, ApiCaller, ClientFactory
from tests.unit.test_worker import Recorder

T = Timings()
NAMESPACE = "team-ai"


@pytest.fixture
def running(emulator: Emulator, emulator_api: ApiCaller) -> str:
    reply = emulator_api("POST", NOTEBOOKS, json={**CREATE_BODY, "name": "nb1"})
    emulator.advance(T.create_s)
    notebook_id: str = reply.json()["id"]
    return notebook_id


def save_command(emulator: Emulator, notebook_id: str, tag: str = "v1") -> SaveCommand:
    return SaveCommand(
        command_id="sc.save-1",
        requested_at=emulator.now(),
        requested_by=Requester(user_id="U0001"),
        notebook_id=notebook_id,
        notebook_name="nb1",
        image="my-env",
        tag=tag,
    )


class LostReply:
    """A client whose save happens but whose reply is lost."""

    def __init__(self, client: AsyncModelArtsClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        await self.client.send(*args, **kwargs)
        raise AmbiguousCreateError("the connection dropped after the request was sent")


def execute(
    factory: ClientFactory,
    command: Command,
    now: datetime,
    recorder: Recorder,
    wrap: Callable[[AsyncModelArtsClient], Any] = lambda client: client,
) -> Result:
    async def go() -> Result:
        async with factory(retry=NO_RETRY) as client:
            worker = Worker(
                wrap(client),
                MemoryStateStore(),
                recorder,
                recorder,
                PROJECT_ID,
                image_namespace=NAMESPACE,
            )
            return await worker.execute(command, now)

    return asyncio.run(go())


def own_images(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.store.images_listed(PROJECT_ID, "DEDICATED")


def test_save_follows_until_running_and_active_then_names_the_image(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    recorder = Recorder()
    result = execute(emulator_client, save_command(emulator, running), emulator.now(), recorder)
    assert result.outcome == "following"
    assert emulator.notebook(running).status is NotebookStatus.SNAPSHOTTING
    (image,) = own_images(emulator)
    assert (image["name"], image["tag"], image["namespace"]) == ("my-env", "v1", NAMESPACE)
    assert "sc.save-1" in image["description"] and "U0001" in image["description"]

    first = recorder.followups[-1]
    assert (first.origin, first.image_id, first.image) == ("save", image["id"], "my-env:v1")
    emulator.advance(T.snapshot_s / 2)
    assert execute(emulator_client, first, emulator.now(), recorder).outcome == "following"
    assert recorder.reports == []

    emulator.advance(T.snapshot_s)
    second = recorder.followups[-1]
    assert second.command_id != first.command_id
    result = execute(emulator_client, second, emulator.now(), recorder)
    assert (result.outcome, result.detail) == ("done", "saved")
    assert "Saved *nb1* as the image *my-env:v1*" in recorder.reports[-1]
    assert "image=my-env:v1" in recorder.reports[-1]
    assert emulator.notebook(running).status is NotebookStatus.RUNNING
    assert own_images(emulator)[0]["status"] == "ACTIVE"


def test_a_stopped_notebook_is_not_saved_and_the_author_is_told_how(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller, running: str
) -> None:
    emulator_api("POST", f"{NOTEBOOKS}/{running}/stop")
    emulator.advance(T.stop_s)
    recorder = Recorder()
    result = execute(emulator_client, save_command(emulator, running), emulator.now(), recorder)
    assert (result.outcome, result.detail) == ("refused", "STOPPED")
    assert "it is STOPPED, and only a running notebook can be saved" in recorder.reports[-1]
    assert "/nb start nb1" in recorder.reports[-1]
    assert own_images(emulator) == [] and recorder.followups == []


def test_a_notebook_between_states_is_saved_after_the_change(
    emulator: Emulator, emulator_client: ClientFactory, emulator_api: ApiCaller, running: str
) -> None:
    emulator_api("POST", f"{NOTEBOOKS}/{running}/stop")  # STOPPING for a few seconds
    with pytest.raises(NotebookBusyError, match="STOPPING"):
        execute(emulator_client, save_command(emulator, running), emulator.now(), Recorder())
    assert own_images(emulator) == []


def test_a_taken_name_and_tag_is_refused_with_another_tag_suggested(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    taken = "d0d0d0d0-1111-4222-8333-444455556666"
    emulator.images.add_own(PROJECT_ID, taken, "my-env", "v1", namespace=NAMESPACE)
    recorder = Recorder()
    result = execute(emulator_client, save_command(emulator, running), emulator.now(), recorder)
    assert (result.outcome, result.detail) == ("refused", "image exists")
    assert "*my-env:v1* already exists" in recorder.reports[-1]
    assert "/nb save nb1 as my-env:v2" in recorder.reports[-1]
    assert emulator.notebook(running).status is NotebookStatus.RUNNING


def test_a_lost_reply_is_followed_on_the_next_delivery_not_saved_twice(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    command = save_command(emulator, running)
    recorder = Recorder()
    with pytest.raises(AmbiguousCreateError):
        execute(emulator_client, command, emulator.now(), recorder, wrap=LostReply)
    result = execute(emulator_client, command, emulator.now(), recorder)  # SQS delivers again
    assert result.outcome == "following"
    assert len(own_images(emulator)) == 1 and recorder.reports == []
    emulator.advance(T.snapshot_s + 1)
    follow = recorder.followups[-1]
    assert execute(emulator_client, follow, emulator.now(), recorder).outcome == "done"


def test_a_failed_save_is_reported_with_the_service_reason(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    emulator.fail_next_save(reason="push to SWR failed: organization team-ai not found")
    recorder = Recorder()
    execute(emulator_client, save_command(emulator, running), emulator.now(), recorder)
    emulator.advance(T.snapshot_s + 1)
    result = execute(emulator_client, recorder.followups[-1], emulator.now(), recorder)
    assert (result.outcome, result.detail) == ("failed", "image CREATE_FAILED")
    text = recorder.reports[-1]
    assert "Saving *nb1* as the image *my-env:v1* failed" in text
    assert "organization team-ai not found" in text and "The notebook is RUNNING" in text


def test_a_save_still_creating_at_the_deadline_is_given_up_with_a_note(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    # A service may show the notebook RUNNING again while the image is still being pushed.
    stuck = emulator.images.add_own(
        PROJECT_ID, "d0d0d0d0-1111-4222-8333-444455556666", "my-env", "v1", status="CREATING"
    )
    follow = FollowCommand(
        command_id="sc.save-1.f3",
        requested_at=emulator.now() - timedelta(minutes=61),
        requested_by=Requester(user_id="U0001"),
        notebook_id=running,
        notebook_name="nb1",
        origin="save",
        wait_for="RUNNING",
        image_id=stuck["id"],
        image="my-env:v1",
        attempt=3,
        deadline=emulator.now() - timedelta(seconds=1),
    )
    recorder = Recorder()
    result = execute(emulator_client, follow, emulator.now(), recorder)
    assert (result.outcome, result.detail) == ("failed", "timed out")
    assert "The image my-env:v1 is still CREATING after 61 minutes" in recorder.reports[-1]
    early = follow.model_copy(update={"deadline": emulator.now() + timedelta(minutes=5)})
    assert execute(emulator_client, early, emulator.now(), recorder).outcome == "following"
