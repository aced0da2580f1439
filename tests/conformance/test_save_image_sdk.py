"""Saving a notebook as an image: the official SDK's CreateImage (then ShowImage, ListImage and
ShowNotebook) against the emulator over real HTTP, unmodified, and our client through the same
scenarios. The notebook is SNAPSHOTTING while it is saved, then RUNNING again; the image is
CREATING, then ACTIVE, and it is the project's own (DEDICATED)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pydantic
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    CreateImageRequest,
    ImageCreateReq,
    ListImageRequest,
    ModelArtsClient,
    ShowImageRequest,
    ShowNotebookRequest,
    StopNotebookRequest,
)

from nbkeeper.modelarts.errors import InvalidRequestError, WrongStateError
from nbkeeper.modelarts.images import (
    ImageCreateRequest,
    ImageStatus,
    ImageType,
    ListImagesQuery,
    find_saved_image,
    list_images,
    save_image,
    show_image,
)
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper_local.emulator import Emulator, Timings
from tests.emulator_fixtures import (
    CREATE_BODY,
    NOTEBOOKS,
    ApiCaller,
    ClientFactory,
)

R = TypeVar("R")
T = Timings()
NAMESPACE = "team-ai"


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


@pytest.fixture
def running(emulator: Emulator, emulator_api: ApiCaller) -> str:
    """A RUNNING notebook's id (GPU flavor: the saved image says GPU)."""
    reply = emulator_api("POST", NOTEBOOKS, json={**CREATE_BODY, "flavor": "modelarts.vm.gpu.t4"})
    assert reply.status_code == 200, reply.text
    emulator.advance(T.create_s)
    notebook_id: str = reply.json()["id"]
    assert emulator.notebook(notebook_id).status is NotebookStatus.RUNNING
    return notebook_id


def save_request(notebook_id: str, name: str = "my-env", tag: str | None = "v1") -> Any:
    body = ImageCreateReq(name=name, namespace=NAMESPACE, tag=tag, description="saved by a test")
    return CreateImageRequest(id=notebook_id, body=body)


def refused(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------- the official SDK


def test_sdk_saves_a_running_notebook_as_a_dedicated_image(
    sdk: ModelArtsClient, emulator: Emulator, running: str
) -> None:
    image = sdk.create_image(save_request(running))
    assert (image.name, image.tag, image.namespace) == ("my-env", "v1", NAMESPACE)
    assert (image.type, image.status, image.origin) == ("DEDICATED", "CREATING", "IMAGE_SAVE")
    assert image.resource_categories == ["GPU"]
    assert sdk.show_notebook(ShowNotebookRequest(id=running)).status == "SNAPSHOTTING"
    assert sdk.show_image(ShowImageRequest(id=image.id)).status == "CREATING"

    emulator.advance(T.snapshot_s)
    assert sdk.show_notebook(ShowNotebookRequest(id=running)).status == "RUNNING"
    shown = sdk.show_image(ShowImageRequest(id=image.id))
    assert (shown.status, shown.description) == ("ACTIVE", "saved by a test")
    assert shown.swr_path.endswith(f"/{NAMESPACE}/my-env:v1")
    own = sdk.list_image(ListImageRequest(type="DEDICATED"))
    assert [(i.id, i.name, i.tag, i.status) for i in own.data] == [
        (image.id, "my-env", "v1", "ACTIVE")
    ]
    public = sdk.list_image(ListImageRequest(name="my-env"))
    assert public.data == []  # BUILD_IN by default: saved images are not public


def test_a_notebook_made_from_a_saved_image_shows_its_name_and_tag(
    sdk: ModelArtsClient, emulator: Emulator, emulator_api: ApiCaller, running: str
) -> None:
    image = sdk.create_image(save_request(running))
    emulator.advance(T.snapshot_s)
    reply = emulator_api(
        "POST", NOTEBOOKS, json={**CREATE_BODY, "name": "from-saved", "image_id": image.id}
    )
    assert reply.status_code == 200, reply.text
    shown = sdk.show_notebook(ShowNotebookRequest(id=reply.json()["id"])).image
    assert (shown.id, shown.name, shown.tag, shown.type) == (image.id, "my-env", "v1", "DEDICATED")
    assert shown.swr_path.endswith(f"/{NAMESPACE}/my-env:v1")


def test_sdk_saves_without_a_tag_as_latest(
    sdk: ModelArtsClient, emulator: Emulator, running: str
) -> None:
    image = sdk.create_image(save_request(running, tag=None))
    assert image.tag == "latest"


def test_sdk_save_refusals(sdk: ModelArtsClient, emulator: Emulator, running: str) -> None:
    sdk.create_image(save_request(running))
    busy = refused(lambda: sdk.create_image(save_request(running, tag="v2")))
    assert (busy.status_code, busy.error_code) == (400, "ModelArts.6357")

    emulator.advance(T.snapshot_s)
    duplicate = refused(lambda: sdk.create_image(save_request(running)))
    assert (duplicate.status_code, duplicate.error_code) == (400, "ModelArts.0103")
    assert "my-env:v1" in duplicate.error_msg

    sdk.stop_notebook(StopNotebookRequest(id=running))
    emulator.advance(T.stop_s)
    stopped = refused(lambda: sdk.create_image(save_request(running, tag="v3")))
    assert (stopped.status_code, stopped.error_code) == (400, "ModelArts.6327")
    assert "STOPPED" in stopped.error_msg


def test_sdk_save_body_is_checked(sdk: ModelArtsClient, running: str) -> None:
    no_namespace = CreateImageRequest(id=running, body=ImageCreateReq(name="my-env", tag="v1"))
    missing = refused(lambda: sdk.create_image(no_namespace))
    assert (missing.status_code, missing.error_code) == (400, "ModelArts.6335")
    upper = refused(lambda: sdk.create_image(save_request(running, name="My-Env")))
    assert (upper.status_code, upper.error_code) == (400, "ModelArts.6336")
    unknown = refused(
        lambda: sdk.create_image(save_request("00000000-0000-4000-8000-00000000000f"))
    )
    assert unknown.error_code == "ModelArts.6309"


def test_a_failed_save_leaves_the_notebook_running(
    sdk: ModelArtsClient, emulator: Emulator, running: str
) -> None:
    emulator.fail_next_save()
    image = sdk.create_image(save_request(running))
    emulator.advance(T.snapshot_s)
    shown = sdk.show_image(ShowImageRequest(id=image.id))
    assert shown.status == "CREATE_FAILED" and shown.status_message
    assert sdk.show_notebook(ShowNotebookRequest(id=running)).status == "RUNNING"


def test_a_lease_that_ends_during_a_save_stops_the_notebook_after_it(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    record = emulator.notebook(running)
    left_s = (record.deadline_ms - emulator.clock.now_ms()) / 1000
    emulator.advance(left_s - T.snapshot_s / 2)  # the lease ends halfway through the save

    async def go() -> None:
        async with emulator_client() as client:
            await save_image(client, running, ImageCreateRequest(name="late", namespace=NAMESPACE))

    run(go())
    emulator.advance(T.snapshot_s / 2 + 1)
    assert emulator.notebook(running).status is NotebookStatus.SNAPSHOTTING
    emulator.advance(T.snapshot_s / 2)
    assert emulator.notebook(running).status is NotebookStatus.STOPPING


# ---------------------------------------------------------------- our client, same scenarios


def test_client_saves_then_finds_the_image(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    request = ImageCreateRequest(name="my-env", namespace=NAMESPACE, tag="v1", description="x")

    async def save() -> tuple[Any, Any]:
        async with emulator_client() as client:
            image = await save_image(client, running, request)
            return image, await client.show_notebook(running)

    image, notebook = run(save())
    assert (image.type, image.status, image.label) == (
        ImageType.DEDICATED,
        ImageStatus.CREATING,
        "my-env:v1",
    )
    assert notebook.status is NotebookStatus.SNAPSHOTTING
    emulator.advance(T.snapshot_s)

    async def after() -> tuple[Any, ...]:
        async with emulator_client() as client:
            return (
                await show_image(client, image.id),
                await list_images(client, ListImagesQuery(type=ImageType.DEDICATED)),
                await find_saved_image(client, "my-env", "v1"),
                await find_saved_image(client, "my-env", "v2"),
                await client.show_notebook(running),
            )

    shown, own, found, other, notebook = run(after())
    assert (shown.status, shown.usable, shown.categories) == (ImageStatus.ACTIVE, True, ["GPU"])
    assert [i.id for i in own] == [image.id]
    assert found is not None and found.id == image.id and other is None
    assert notebook.status is NotebookStatus.RUNNING


def test_client_refusals_are_typed(
    emulator: Emulator, emulator_client: ClientFactory, running: str
) -> None:
    request = ImageCreateRequest(name="my-env", namespace=NAMESPACE, tag="v1")

    async def twice() -> None:
        async with emulator_client() as client:
            await save_image(client, running, request)
            await save_image(client, running, request)

    with pytest.raises(WrongStateError):  # SNAPSHOTTING: another operation is in progress
        run(twice())
    emulator.advance(T.snapshot_s)

    async def again() -> None:
        async with emulator_client() as client:
            await save_image(client, running, request)

    with pytest.raises(InvalidRequestError) as caught:
        run(again())
    assert caught.value.error_code == "ModelArts.0103"


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"name": "My-Env"}, "lowercase"),
        ({"name": "-env"}, "starts and ends"),
        ({"name": "e" * 129}, "1 to 128"),
        ({"tag": "v 1"}, "tag"),
        ({"tag": "v" * 65}, "1 to 64"),
        ({"namespace": "1team"}, "namespace"),
        ({"namespace": None}, "namespace"),
        ({"description": "d" * 513}, "512"),
        ({"owner": "me"}, "owner"),  # undocumented fields are never sent
    ],
)
def test_client_checks_the_save_request_before_sending(
    fields: dict[str, Any], complaint: str
) -> None:
    body = {"name": "my-env", "namespace": NAMESPACE, "tag": "v1", **fields}
    with pytest.raises(pydantic.ValidationError, match=complaint):
        ImageCreateRequest.model_validate({k: v for k, v in body.items() if v is not None})


def test_client_sends_only_what_is_set() -> None:
    request = ImageCreateRequest(name="my-env", namespace=NAMESPACE)
    assert request.to_body() == {"name": "my-env", "namespace": NAMESPACE}
