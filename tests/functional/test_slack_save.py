"""`/nb save NAME as IMAGE[:TAG]` end to end: signed Slack requests -> the real webhook handler ->
moto SQS -> the real worker -> the emulator -> the result posted to a fake Slack."""

from __future__ import annotations

import pytest

from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper_local.emulator import Emulator
from tests.functional.slack_world import World, create_running
from tests.functional.test_slack_flow import last_text


@pytest.fixture
def world(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, aws: None) -> World:
    monkeypatch.setenv("IMAGE_NAMESPACE", "team-ai")  # the deploy's ImageNamespace parameter
    return World(emulator, monkeypatch)


def own_images(world: World) -> list[dict[str, object]]:
    return world.emulator.store.images_listed(world.worker.SETTINGS.project_id, "DEDICATED")


def test_save_ends_with_a_dedicated_image_and_the_notebook_running(world: World) -> None:
    notebook_id = create_running(world)
    reply = world.slash("save exp-1 as exp-env:v1")
    assert "Saving *exp-1* as the image *exp-env:v1*" in reply["text"]
    assert "Queued" in reply["text"]
    assert own_images(world) == []  # nothing happens before the worker runs
    world.run_worker()
    assert world.emulator.find(notebook_id).status == "SNAPSHOTTING"
    world.settle()
    (image,) = own_images(world)
    assert (image["name"], image["tag"], image["namespace"]) == ("exp-env", "v1", "team-ai")
    assert (image["type"], image["status"]) == ("DEDICATED", "ACTIVE")
    assert world.emulator.find(notebook_id).status == "RUNNING"
    told = last_text(world)
    assert "Saved *exp-1* as the image *exp-env:v1*" in told
    assert "image=exp-env:v1" in told
    # The name it was told is one `create image=` takes (the webhook read no catalogue yet).
    assert "exp-env:v1" in str(world.slash("images exp-env"))
    assert "Queued" in world.slash("create exp-2 image=exp-env:v1")["text"]
    world.settle()
    (second,) = [n for n in world.notebooks() if n["name"] == "exp-2"]
    assert (second["status"], second["image"]["id"]) == ("RUNNING", image["id"])


def test_someone_else_cannot_save_my_notebook(world: World) -> None:
    create_running(world)
    refused = world.slash("save exp-1 as theirs", "U0002")
    assert "belongs to <@U0001>" in refused["text"]
    assert world.run_worker() == 0
    assert own_images(world) == []


def test_saving_a_stopped_notebook_says_to_start_it_first(world: World) -> None:
    notebook_id = create_running(world)
    world.slash("stop exp-1")
    world.settle()
    assert world.emulator.find(notebook_id).status == "STOPPED"
    reply = world.slash("save exp-1 as exp-env")
    assert "*exp-1* is STOPPED; only a running notebook can be saved as an image" in reply["text"]
    assert "`/nb start exp-1`" in reply["text"]
    assert world.run_worker() == 0
    assert own_images(world) == []


def test_a_notebook_stopped_after_the_ack_is_reported_not_saved(world: World) -> None:
    notebook_id = create_running(world)
    world.slash("save exp-1 as exp-env")  # queued while RUNNING
    world.emulator.force_status(
        notebook_id, NotebookStatus.STOPPED
    )  # stopped in the console meanwhile
    world.settle()
    assert own_images(world) == []
    assert "it is STOPPED, and only a running notebook can be saved" in last_text(world)


def test_the_delete_confirmation_points_at_save(world: World) -> None:
    create_running(world)
    ask = world.slash("delete exp-1")
    assert "its storage for good" in ask["text"]
    assert "`/nb save exp-1 as IMAGE`" in ask["text"]
