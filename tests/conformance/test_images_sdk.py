"""Images and flavors: the official SDK's ListImage, ShowImage and ListFlavors against the
emulator over real HTTP, unmodified, and our client through the same scenarios."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    ListFlavorsRequest,
    ListImageRequest,
    ModelArtsClient,
    ShowImageRequest,
)

from nbkeeper.modelarts.errors import InvalidRequestError, NotFoundError
from nbkeeper.modelarts.images import (
    FlavorCategory,
    ImageType,
    ListFlavorsQuery,
    ListImagesQuery,
    list_all_images,
    list_flavors,
    list_image_page,
    list_images,
    show_image,
)
from nbkeeper.modelarts.schemas import Arch
from nbkeeper_local.emulator import Emulator
from nbkeeper_local.emulator.catalogue import PUBLIC_IMAGES
from tests.emulator_fixtures import PROJECT_ID, ClientFactory

R = TypeVar("R")
PYTORCH18 = "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04"
OWN_ID = "d0d0d0d0-1111-4222-8333-444455556666"


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


@pytest.fixture
def own_image(emulator: Emulator) -> str:
    emulator.images.add_own(PROJECT_ID, OWN_ID, "my-env", "v1")
    return OWN_ID


def test_sdk_lists_every_public_image_page_by_page(sdk: ModelArtsClient) -> None:
    seen: list[str] = []
    offset = 0
    for _ in range(10):
        page = sdk.list_image(ListImageRequest(limit=3, offset=offset))
        assert page.total == len(PUBLIC_IMAGES)
        if not page.data:
            break
        seen += [image.id for image in page.data]
        offset += len(page.data)
    assert sorted(seen) == sorted(i["id"] for i in PUBLIC_IMAGES)
    newest_first = sdk.list_image(ListImageRequest()).data
    assert [i.create_at for i in newest_first] == sorted(
        (i.create_at for i in newest_first), reverse=True
    )


def test_sdk_filters_by_name_and_type(sdk: ModelArtsClient, own_image: str) -> None:
    exact = sdk.list_image(ListImageRequest(name=PYTORCH18))
    assert {i.tag for i in exact.data} == {
        "pytorch_1.8.0-cuda_10.2-py_3.7",
        "pytorch_1.8.0-cuda_10.2-py_3.7-v2",
    }
    fuzzy = sdk.list_image(ListImageRequest(name="pytorch", name_fuzzy_match=True))
    assert fuzzy.total == 3
    own = sdk.list_image(ListImageRequest(type="DEDICATED"))
    assert [(i.id, i.type, i.visibility) for i in own.data] == [(own_image, "DEDICATED", "PRIVATE")]


def test_sdk_shows_an_image_and_gets_not_found(sdk: ModelArtsClient, own_image: str) -> None:
    shown = sdk.show_image(ShowImageRequest(id=PUBLIC_IMAGES[6]["id"]))
    assert (shown.name, shown.arch, shown.resource_categories) == (
        "mindspore1.7.0-cann5.1.0-py3.7-euler2.8.3",
        "AARCH64",
        ["ASCEND"],
    )
    assert sdk.show_image(ShowImageRequest(id=own_image)).name == "my-env"
    with pytest.raises(ClientRequestException) as caught:
        sdk.show_image(ShowImageRequest(id="00000000-0000-4000-8000-000000000000"))
    assert caught.value.status_code == 404


def test_emulator_refuses_an_undocumented_image_type(sdk: ModelArtsClient) -> None:
    with pytest.raises(ClientRequestException) as caught:
        sdk.list_image(ListImageRequest(type="SOMETHING"))
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.0104")


def test_sdk_flavors_by_category(sdk: ModelArtsClient) -> None:
    gpus = sdk.list_flavors(ListFlavorsRequest(category="GPU"))
    assert gpus.flavors and {f.id for f in gpus.flavors} >= {"modelarts.vm.gpu.t4"}
    assert all("gpu" in f.id for f in gpus.flavors)


# ---------------------------------------------------------------- our client, same scenarios


def test_client_lists_every_public_image_in_small_pages(emulator_client: ClientFactory) -> None:
    async def go() -> list[str]:
        async with emulator_client() as client:
            return [i.id for i in await list_images(client, ListImagesQuery(limit=3))]

    ids = run(go())
    assert len(ids) == len(set(ids)) == len(PUBLIC_IMAGES)
    assert set(ids) == {i["id"] for i in PUBLIC_IMAGES}


def test_client_filters_and_reads_fields(emulator_client: ClientFactory, own_image: str) -> None:
    async def go() -> tuple[Any, ...]:
        async with emulator_client() as client:
            exact = await list_images(client, ListImagesQuery(name=PYTORCH18))
            fuzzy = await list_image_page(
                client, ListImagesQuery(name="pytorch", name_fuzzy_match=True)
            )
            both = await list_all_images(client)
            shown = await show_image(client, PUBLIC_IMAGES[6]["id"])
            return exact, fuzzy, both, shown

    exact, fuzzy, both, shown = run(go())
    assert {i.label for i in exact} == {
        f"{PYTORCH18}:pytorch_1.8.0-cuda_10.2-py_3.7",
        f"{PYTORCH18}:pytorch_1.8.0-cuda_10.2-py_3.7-v2",
    }
    assert fuzzy.total == 3
    assert len(both) == len(PUBLIC_IMAGES) + 1
    assert [i.type for i in both if i.id == own_image] == [ImageType.DEDICATED]
    assert (shown.arch, shown.categories, shown.usable) == (Arch.AARCH64, ["ASCEND"], True)


def test_client_not_found_and_refused_query(emulator_client: ClientFactory) -> None:
    async def missing() -> None:
        async with emulator_client() as client:
            await show_image(client, "00000000-0000-4000-8000-000000000000")

    with pytest.raises(NotFoundError):
        run(missing())
    with pytest.raises(ValueError, match="lowercase"):
        ListImagesQuery(name="PyTorch")
    with pytest.raises(ValueError, match="type"):
        ListImagesQuery.model_validate({"type": "SOMETHING"})

    async def with_offset() -> None:
        async with emulator_client() as client:
            await list_images(client, ListImagesQuery(offset=3))

    with pytest.raises(InvalidRequestError):
        run(with_offset())


def test_client_flavors_all_pages_and_filters(emulator_client: ClientFactory) -> None:
    async def go() -> tuple[list[Any], list[Any]]:
        async with emulator_client() as client:
            every = await list_flavors(client, ListFlavorsQuery(limit=2))
            gpus = await list_flavors(client, ListFlavorsQuery(category=FlavorCategory.GPU))
            return every, gpus

    every, gpus = run(go())
    ids = [f.id for f in every]
    assert len(ids) == len(set(ids)) == 7
    assert {f.id for f in gpus} == {
        "modelarts.vm.gpu.t4",
        "modelarts.vm.gpu.v100",
        "modelarts.vm.gpu.a100.sold",
    }
    assert [f.sold_out for f in gpus if f.id == "modelarts.vm.gpu.a100.sold"] == [True]


def test_loose_image_replies_are_read_record_by_record() -> None:
    from nbkeeper.modelarts.images import ImagePage

    page = ImagePage.model_validate(
        {
            "total": 3,
            "data": [
                {"id": "a", "arch": "RISCV", "status": "MIGRATING", "dev_services": None},
                {"name": "no id"},
                None,
                {"id": "b", "resource_categories": "GPU", "size": "12"},
            ],
        }
    )
    assert [i.id for i in page.data] == ["a", "b"]
    assert [r.index for r in page.unreadable] == [1, 2]
    first = page.data[0]
    assert first.arch is not None
    assert (first.arch.value, first.arch.is_known, first.dev_services) == ("RISCV", False, [])
    assert first.usable  # an unknown status is not a refusal
    assert page.data[1].categories == ["GPU"]
