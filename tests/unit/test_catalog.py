"""chatops/catalog.py: picking an image or flavor by name, the listings, and the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from nbkeeper.chatops.access import ChatReply
from nbkeeper.chatops.catalog import (
    CachedCatalog,
    Option,
    Prices,
    Resolved,
    choose,
    flavors_reply,
    images_reply,
    resolve_create,
)
from nbkeeper.chatops.directory import SlowLookupError
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.errors import ThrottledError
from nbkeeper.modelarts.images import ImageDetail
from nbkeeper.modelarts.schemas import Flavor
from nbkeeper.slack import grammar
from tests.emulator_fixtures import ClientFactory

IMAGES = [
    ImageDetail(id="i-1", name="pytorch1.8", tag="a", resource_categories=["GPU"]),
    ImageDetail(id="i-2", name="pytorch1.8", tag="b"),
    ImageDetail(id="i-3", name="pytorch2.1", tag="x", description="<b>&"),
    ImageDetail(id="i-4", name="tensorflow2.6", tag="t", status="CREATE_FAILED"),
    ImageDetail(id="i-5", name="mind<spore>", tag="&"),
]
FLAVORS = [
    Flavor(id="modelarts.vm.cpu.2u", description="CPU: 2 vCPUs"),
    Flavor(id="modelarts.vm.cpu.8u"),
    Flavor(id="modelarts.vm.gpu.a100", sold_out=True),
]


class FakeCatalog:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.priced = Prices()
        self.loads: list[tuple[bool, bool]] = []

    def images(self) -> list[ImageDetail]:
        return IMAGES

    def flavors(self) -> list[Flavor]:
        if self.fail is not None:
            raise self.fail
        return FLAVORS

    def load(self, *, images: bool = True, flavors: bool = True) -> None:
        self.loads.append((images, flavors))

    def prices(self) -> Prices:
        return self.priced


def create(**kwargs: Any) -> grammar.CreateRequest:
    return grammar.CreateRequest(name="nb", **kwargs)


def picked(request: grammar.CreateRequest, catalog: FakeCatalog | None = None) -> Resolved:
    result = resolve_create(request, catalog or FakeCatalog())
    assert isinstance(result, Resolved), result
    return result


def refusal(request: grammar.CreateRequest, catalog: FakeCatalog | None = None) -> str:
    result = resolve_create(request, catalog or FakeCatalog())
    assert isinstance(result, ChatReply) and result.command is None
    return str(result.reply["text"])


def test_exact_name_then_unique_prefix() -> None:
    assert picked(create(image="pytorch2.1")).request.image == "i-3"
    assert picked(create(image="pytorch1.8:b")).request.image == "i-2"
    assert picked(create(image="PyTorch2")).request.image == "i-3"
    assert picked(create(image="i-1")).request.image == "i-1"
    result = picked(create(image="pytorch2", flavor="modelarts.vm.cpu.8"))
    assert (result.request.flavor, result.picked) == (
        "modelarts.vm.cpu.8u",
        "image *pytorch2.1:x*, flavor *modelarts.vm.cpu.8u*",
    )


def test_defaults_and_uuids_need_no_lookup() -> None:
    catalog = FakeCatalog()
    uuid = "278e88d1-5b71-4766-8502-b3ba72e824d9"
    assert picked(create(image=uuid), catalog).request == create(image=uuid)
    assert picked(create(), catalog).request == create()
    assert catalog.loads == []
    picked(create(image="pytorch2", flavor="modelarts.vm.cpu.2u"), catalog)
    assert catalog.loads == [(True, True)]


def test_a_default_image_by_name_takes_the_newest_tag_of_that_name() -> None:
    images = [
        ImageDetail(id="old", name="cpu-image", tag="1", create_at=1),
        ImageDetail(id="new", name="cpu-image", tag="2", create_at=2),
        ImageDetail(id="other", name="cpu-image-gpu", tag="1", create_at=3),
    ]
    catalog = FakeCatalog()
    catalog.images = lambda: images  # type: ignore[method-assign]
    result = resolve_create(create(), catalog, default_image="cpu-image")
    assert isinstance(result, Resolved) and result.request.image == "new"
    assert "cpu-image:2" in result.picked
    # a person who names it still chooses: two tags of one name are ambiguous
    assert isinstance(resolve_create(create(image="cpu-image"), catalog), ChatReply)
    # an image given in the command wins over the default
    chosen = resolve_create(create(image="cpu-image:1"), catalog, default_image="cpu-image")
    assert isinstance(chosen, Resolved) and chosen.request.image == "old"


def test_a_default_image_that_is_no_image_names_the_setting() -> None:
    result = resolve_create(create(), FakeCatalog(), default_image="no-such-image")
    assert isinstance(result, ChatReply) and result.command is None
    assert "NotebookDefaultImage" in result.reply["text"]
    assert "image=" in result.reply["text"]
    # a default UUID needs no lookup
    catalog = FakeCatalog()
    uuid = "11111111-2222-3333-4444-555555555555"
    resolved = resolve_create(create(), catalog, default_image=uuid)
    assert isinstance(resolved, Resolved) and resolved.request.image == uuid
    assert catalog.loads == []


def test_ambiguous_lists_the_candidates() -> None:
    text = refusal(create(image="pytorch1.8"))
    assert "2 images match *pytorch1.8*" in text
    assert "*pytorch1.8:a*" in text and "*pytorch1.8:b*" in text and "pytorch2.1" not in text


def test_unknown_suggests_the_closest_and_skips_unusable_images() -> None:
    text = refusal(create(image="pytorch3.0"))
    assert text.startswith(":warning: No image is called *pytorch3.0*; nothing was done.")
    assert "Did you mean" in text and "pytorch2.1:x" in text
    assert "tensorflow2.6" not in refusal(create(image="tensorflow2.6"))[40:]
    assert "Did you mean" not in refusal(create(image="zzzzzzzz"))


def test_sold_out_flavor_is_refused() -> None:
    assert "sold out" in refusal(create(flavor="modelarts.vm.gpu.a100"))


def test_a_failed_flavor_lookup_passes_a_full_id_and_refuses_a_partial_one() -> None:
    slow = FakeCatalog(fail=SlowLookupError("no answer"))
    assert (
        picked(create(flavor="modelarts.vm.cpu.2u"), slow).request.flavor == "modelarts.vm.cpu.2u"
    )
    with pytest.raises(ThrottledError):
        resolve_create(create(flavor="cpu.2u"), FakeCatalog(fail=ThrottledError("busy")))


def test_modelarts_text_is_escaped_in_every_reply() -> None:
    listing = images_reply(grammar.CatalogRequest("images"), FakeCatalog()).reply
    blocks = str(listing["blocks"])
    assert "mind&lt;spore&gt;:&amp;" in blocks and "&lt;b&gt;&amp;" in blocks
    assert "<spore>" not in blocks and "<b>" not in blocks
    assert "i-4" not in blocks  # a failed image is not offered
    assert picked(create(image="mind<sp")).picked == "image *mind&lt;spore&gt;:&amp;*"
    text = refusal(create(image="mind<spora>"))
    assert "*mind&lt;spora&gt;*" in text and "Did you mean *mind&lt;spore&gt;:&amp;*" in text
    assert "<spor" not in text
    odd = [Option("x", ("a*b",), "a*b"), Option("y", ("a*c",), "a*c")]
    reply = choose("a*", odd, "image")
    assert isinstance(reply, ChatReply)


def test_flavor_listing_filters_and_shows_prices_and_sold_out() -> None:
    request = grammar.CatalogRequest("flavors", "cpu")
    catalog = FakeCatalog()
    catalog.priced = Prices({"modelarts.vm.cpu.2u": 0.25, "modelarts.vm.cpu.8u": 0}, currency="EUR")
    blocks = str(flavors_reply(request, catalog).reply["blocks"])
    assert "CPU: 2 vCPUs, 0.25 EUR/h" in blocks and "a100" not in blocks
    assert "modelarts.vm.cpu.8u*: free" in blocks
    every = str(flavors_reply(grammar.CatalogRequest("flavors"), FakeCatalog()).reply["blocks"])
    assert "(sold out)" in every and "/h" not in every  # no policy prices: none shown


def test_prices_fall_back_to_the_default_and_a_broken_policy_shows_none() -> None:
    assert Prices({"a": 1.5}, default=0.5).of("b") == "0.5 USD/h"
    assert Prices({"a": 1.5}).of("b") is None

    def broken() -> Prices:
        raise ValueError("policy.yaml line 3: bad")

    catalog = CachedCatalog(lambda: pytest.fail("no client needed"), asyncio.run, prices=broken)
    assert catalog.prices() == Prices()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_keeps_lists_for_its_ttl(emulator_client: ClientFactory, emulator: Any) -> None:
    loop = asyncio.new_event_loop()
    made: list[AsyncModelArtsClient] = []

    def client() -> AsyncModelArtsClient:
        if not made:
            made.append(emulator_client())
        return made[0]

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return loop.run_until_complete(coro)

    clock = Clock()
    catalog = CachedCatalog(client, run, budget=5.0, clock=clock, ttl=60)
    try:
        catalog.load()
        assert (emulator.stats["api.list_images"], emulator.stats["api.flavors"]) == (2, 1)
        clock.now += 59
        assert len(catalog.images()) == 10 and len(catalog.flavors()) == 7
        assert (emulator.stats["api.list_images"], emulator.stats["api.flavors"]) == (2, 1)
        clock.now += 1
        catalog.flavors()
        assert (emulator.stats["api.list_images"], emulator.stats["api.flavors"]) == (2, 2)
        catalog.load()  # only the stale list is read again
        assert (emulator.stats["api.list_images"], emulator.stats["api.flavors"]) == (4, 2)
    finally:
        run(made[0].aclose())
        loop.close()


def test_a_slow_read_is_abandoned_and_not_cached() -> None:
    loop = asyncio.new_event_loop()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return loop.run_until_complete(coro)

    class Stuck:
        async def read(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.Event().wait()  # never answers

    catalog = CachedCatalog(lambda: Stuck(), run, budget=0.01)  # type: ignore[arg-type,return-value]
    try:
        with pytest.raises(SlowLookupError):
            catalog.flavors()
        with pytest.raises(SlowLookupError):
            catalog.flavors()
    finally:
        loop.close()
