"""Images and flavors by name, end to end: signed slash commands -> the real webhook handler
(its catalogue read from the emulator) -> moto SQS -> the real worker -> the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nbkeeper.settings import DEFAULT_POLICY_PATH
from nbkeeper_local.emulator import Emulator
from nbkeeper_local.emulator.catalogue import DEFAULT_IMAGE_ID, DEFAULT_IMAGE_NAME, PUBLIC_IMAGES
from tests.emulator_fixtures import PROJECT_ID
from tests.functional.slack_world import World

TF26 = next(i for i in PUBLIC_IMAGES if i["name"].startswith("tensorflow2.6"))
OWN_ID = "d0d0d0d0-1111-4222-8333-444455556666"


def test_create_by_public_image_name_uses_that_images_id(world: World) -> None:
    reply = world.slash(f"create tf-nb image={TF26['name']} flavor=modelarts.vm.gpu.t4")
    assert "Queued" in reply["text"], reply
    assert f"image *{TF26['name']}:{TF26['tag']}*" in reply["text"]
    world.settle()
    (notebook,) = world.notebooks()
    assert (notebook["name"], notebook["status"]) == ("tf-nb", "RUNNING")
    assert notebook["image"]["id"] == TF26["id"]
    assert notebook["flavor"] == "modelarts.vm.gpu.t4"


def test_a_unique_prefix_and_the_projects_own_image(world: World) -> None:
    world.emulator.images.add_own(PROJECT_ID, OWN_ID, "team-env", "v3")
    reply = world.slash("create own-nb image=team-env flavor=modelarts.vm.cpu.8")
    assert "Queued" in reply["text"], reply
    assert "flavor *modelarts.vm.cpu.8u*" in reply["text"]
    world.slash("create tf-nb image=tensorflow2.6")
    world.settle()
    images = {n["name"]: n["image"]["id"] for n in world.notebooks()}
    assert images == {"own-nb": OWN_ID, "tf-nb": TF26["id"]}


def test_ambiguous_image_lists_candidates_and_queues_nothing(world: World) -> None:
    reply = world.slash("create x image=pytorch")
    text = reply["text"]
    assert "3 images match *pytorch*" in text, text
    assert "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04:pytorch_1.8.0-cuda_10.2-py_3.7-v2" in text
    assert "pytorch2.1.0" in text
    assert world.receive(world.queue_url) == []
    # one name with two tags: the name alone is ambiguous, name:tag is not
    two = world.slash("create x image=pytorch1.8-cuda10.2-cudnn7-ubuntu18.04")
    assert "2 images match" in two["text"]
    assert world.receive(world.queue_url) == []


def test_unknown_image_or_flavor_suggests_the_closest_and_queues_nothing(world: World) -> None:
    reply = world.slash("create x image=tensorflow2.7.0-cuda11.2")
    text = reply["text"]
    assert text.startswith(":warning: No image is called *tensorflow2.7.0-cuda11.2*"), text
    assert "Did you mean *tensorflow2.6.0-cuda11.2-cudnn8-ubuntu18.04:" in text
    flavor = world.slash("create x flavor=modelarts.vm.gpu.t8")
    assert "No flavor is called" in flavor["text"]
    assert "*modelarts.vm.gpu.t4*" in flavor["text"]
    sold = world.slash("create x flavor=modelarts.vm.gpu.a100")
    assert "sold out" in sold["text"]
    assert world.receive(world.queue_url) == []
    world.settle()
    assert world.notebooks() == []


def test_images_and_flavors_listings_answer(world: World) -> None:
    every = world.slash("images")
    blocks = json.dumps(every["blocks"])
    assert f"*Images* ({len(PUBLIC_IMAGES)})" in every["text"]
    assert all(i["id"] in blocks for i in PUBLIC_IMAGES)
    ascend = world.slash("images ascend")
    assert "*Images* matching *ascend* (2)" in ascend["text"]
    assert "mindspore2.2.0" in json.dumps(ascend["blocks"])
    assert (
        "No images matching *nothing-like-this*" in world.slash("images nothing-like-this")["text"]
    )
    flavors = world.slash("flavors gpu")
    listed = json.dumps(flavors["blocks"])
    assert "modelarts.vm.gpu.t4" in listed and "modelarts.vm.cpu.2u" not in listed
    assert "(sold out)" in listed
    assert "/nb images [FILTER]" in world.slash("help")["text"]
    assert world.receive(world.queue_url) == []


def test_lookups_are_cached_across_requests(world: World) -> None:
    world.slash("images")
    world.slash("create a image=tensorflow2.6 flavor=modelarts.vm.cpu.2u")
    world.slash("flavors")
    stats = world.emulator.stats
    assert stats["api.list_images"] == 2  # BUILD_IN and DEDICATED, once each
    assert stats["api.flavors"] == 1


@pytest.fixture
def deployed(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, aws: None, tmp_path: Path
) -> World:
    """The webhook as the template deploys it: the default image by name (a public CPU image),
    and a policy that prices two flavors."""
    policy = tmp_path / "policy.yaml"
    prices = {"modelarts.vm.cpu.2u": 0.25, "modelarts.vm.gpu.t4": 1.9}
    policy.write_text(DEFAULT_POLICY_PATH.read_text() + "\n" + yaml.safe_dump({"prices": prices}))
    env = {"NOTEBOOK_DEFAULT_IMAGE": DEFAULT_IMAGE_NAME, "POLICY_PATH": str(policy)}
    return World(emulator, monkeypatch, extra_env=env)


def test_create_without_image_takes_the_default_image_by_name(deployed: World) -> None:
    reply = deployed.slash("create plain-nb")
    assert "Queued" in reply["text"], reply
    assert f"image *{DEFAULT_IMAGE_NAME}:" in reply["text"]  # says which image it picked
    deployed.settle()
    (notebook,) = deployed.notebooks()
    assert (notebook["name"], notebook["status"]) == ("plain-nb", "RUNNING")
    assert notebook["image"]["id"] == DEFAULT_IMAGE_ID


def test_flavors_show_the_policys_prices_and_what_is_sold_out(deployed: World) -> None:
    listed = json.dumps(deployed.slash("flavors")["blocks"])
    assert "0.25 USD/h" in listed and "1.9 USD/h" in listed
    a100 = next(line for line in listed.split("\\n") if "a100" in line)
    assert "(sold out)" in a100 and "/h" not in a100  # no price in the policy: none invented


def test_update_takes_image_and_flavor_by_name_too(world: World) -> None:
    world.slash("create upd-nb")
    world.settle()
    world.slash("stop upd-nb")
    world.settle()
    unknown = world.slash("update upd-nb image=tensorflow2.7")
    assert "No image is called *tensorflow2.7*" in unknown["text"]
    assert world.receive(world.queue_url) == []
    reply = world.slash("update upd-nb image=tensorflow2.6 flavor=modelarts.vm.cpu.8")
    assert "Queued" in reply["text"], reply
    world.settle()
    (notebook,) = world.notebooks()
    assert notebook["image"]["id"] == TF26["id"]
    assert notebook["flavor"] == "modelarts.vm.cpu.8u"
