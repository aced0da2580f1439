"""Images and flavors by name in chat: the cached catalogue, picking one, listing them.

`image=` and `flavor=` take a name or an id: an exact id or name first (an image's name is
`name` or `name:tag`), then a unique prefix. An ambiguous name lists the candidates, an unknown
one suggests the closest; either way nothing is queued. An image UUID is used as typed (no
lookup). The catalogue is read at ack time, so it is cached per execution environment for
`CACHE_SECONDS` and each read is bounded by the lookup budget (`SlowLookupError` past it).
Everything ModelArts wrote goes through `render.fit`/`bold` (the one escaping rule).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from nbkeeper.chatops.access import ChatReply
from nbkeeper.chatops.directory import SlowLookupError
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.errors import ModelArtsError
from nbkeeper.modelarts.images import (
    ImageDetail,
    ImageType,
    list_all_images,
    list_flavors,
    looks_like_image_id,
)
from nbkeeper.modelarts.schemas import Flavor
from nbkeeper.slack import grammar, render
from nbkeeper.slack.render import Message

logger = logging.getLogger(__name__)
CACHE_SECONDS = 300.0
CANDIDATES_MAX = 10
LIST_MAX = 40
T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@dataclass(frozen=True)
class Prices:
    """What the policy says a flavor costs per hour (the keeper's warnings quote the same)."""

    per_hour: Mapping[str, float] = field(default_factory=dict)
    default: float = 0.0  # 0: not known
    currency: str = "USD"

    def of(self, flavor_id: str) -> str | None:
        """`0.25 USD/h`, `free`, or None when the policy does not say."""
        price = self.per_hour.get(flavor_id, self.default or None)
        if price is None:
            return None
        return f"{price:g} {self.currency}/h" if price else "free"


class Catalog(Protocol):
    """The images and flavors a notebook can be created with (read-only), and their prices."""

    def images(self) -> list[ImageDetail]: ...

    def flavors(self) -> list[Flavor]: ...

    def prices(self) -> Prices: ...

    def load(self, *, images: bool = True, flavors: bool = True) -> None:
        """Read both lists in one go when both will be needed (a no-op is fine)."""
        ...


class CachedCatalog:
    """ModelArts' images and flavors, each list kept `ttl` seconds (per execution environment).

    `client` is called on the first read only (help and clicks never build it); `clock` is
    monotonic seconds. A failed or slow read is not cached: the next request asks again.
    """

    def __init__(
        self,
        client: Callable[[], AsyncModelArtsClient],
        run: Runner,
        *,
        budget: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = CACHE_SECONDS,
        prices: Callable[[], Prices] | None = None,
    ) -> None:
        self._client = client
        self._prices = prices
        self._run = run
        self._budget = budget
        self._clock = clock
        self._ttl = ttl
        self._images: tuple[float, list[ImageDetail]] | None = None
        self._flavors: tuple[float, list[Flavor]] | None = None

    def images(self) -> list[ImageDetail]:
        self.load(images=True, flavors=False)
        assert self._images is not None
        return self._images[1]

    def flavors(self) -> list[Flavor]:
        self.load(images=False, flavors=True)
        assert self._flavors is not None
        return self._flavors[1]

    def prices(self) -> Prices:
        """The policy's prices; none when it cannot be read (the listing still helps)."""
        if self._prices is None:
            return Prices()
        try:
            return self._prices()
        except Exception:  # a bad policy is the keeper's to report; here prices are a nicety
            logger.warning("flavor prices unavailable: the policy could not be read", exc_info=True)
            return Prices()

    def load(self, *, images: bool = True, flavors: bool = True) -> None:
        """Read what is asked for and stale, concurrently, within one lookup budget (so a
        create by name pays for one round trip, not two)."""
        want_images = images and (self._images is None or self._stale(self._images[0]))
        want_flavors = flavors and (self._flavors is None or self._stale(self._flavors[0]))
        if not (want_images or want_flavors):
            return
        client = self._client()

        async def both() -> tuple[list[ImageDetail] | None, list[Flavor] | None]:
            async def none() -> None:
                return None

            return await asyncio.gather(
                list_all_images(client) if want_images else none(),
                list_flavors(client) if want_flavors else none(),
            )

        read_images, read_flavors = self._read(both())
        now = self._clock()
        if read_images is not None:
            self._images = (now, read_images)
        if read_flavors is not None:
            self._flavors = (now, read_flavors)

    def _stale(self, at: float) -> bool:
        return self._clock() - at >= self._ttl

    def _read(self, lookup: Coroutine[Any, Any, T]) -> T:
        async def bounded() -> T:
            try:
                return await asyncio.wait_for(lookup, self._budget)
            except TimeoutError:
                raise SlowLookupError(f"no answer within {self._budget} s") from None

        result: T = self._run(bounded())
        return result


# ---------------------------------------------------------------- choosing one


@dataclass(frozen=True)
class Option:
    """One thing a person can pick: the id to send, the names it answers to, its line."""

    id: str
    names: tuple[str, ...]
    label: str
    detail: str = ""
    sold_out: bool = False


def image_option(image: ImageDetail) -> Option:
    names = tuple(dict.fromkeys(n for n in (image.label, image.name) if n))
    return Option(image.id, names, image.label, _image_detail(image))


def flavor_option(flavor: Flavor) -> Option:
    flavor_id = flavor.id or flavor.name or ""
    names = tuple(dict.fromkeys(n for n in (flavor.id, flavor.name) if n))
    return Option(flavor_id, names, flavor_id, flavor.description or "", bool(flavor.sold_out))


def choose(text: str, options: Sequence[Option], what: str) -> Option | ChatReply:
    """Exact id or name, then a unique prefix; else a reply that lists or suggests."""
    folded = text.casefold()
    exact = [o for o in options if o.id == text or folded in (n.casefold() for n in o.names)]
    if not exact:
        exact = [o for o in options if any(n.casefold().startswith(folded) for n in o.names)]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return ChatReply(_ambiguous(text, exact, what))
    return ChatReply(_unknown(text, options, what))


def _ambiguous(text: str, matches: Sequence[Option], what: str) -> Message:
    lines = [
        f":warning: {len(matches)} {what}s match {render.bold(text)}; "
        f"repeat the command with the full name or the id of the one you mean:"
    ]
    lines += [_line(o) for o in matches[:CANDIDATES_MAX]]
    if len(matches) > CANDIDATES_MAX:
        lines.append(f"…and {len(matches) - CANDIDATES_MAX} more (`/nb {what}s` with a filter).")
    return render.message("\n".join(lines))


def _unknown(text: str, options: Sequence[Option], what: str) -> Message:
    by_name = {n.casefold(): o for o in options for n in o.names}
    close = difflib.get_close_matches(text.casefold(), list(by_name), n=3, cutoff=0.4)
    labels = list(dict.fromkeys(by_name[n].label for n in close))
    hint = f" Did you mean {' or '.join(render.bold(label) for label in labels)}?" if labels else ""
    return render.problem(
        f"No {what} is called {render.bold(text)}; nothing was done.{hint} "
        f"`/nb {what}s` lists them."
    )


def _line(option: Option) -> str:
    detail = f": {render.fit(option.detail, render.DETAIL_MAX // 4)}" if option.detail else ""
    sold = " (sold out)" if option.sold_out else ""
    return f"• {render.bold(option.label)}{detail}{sold} `{render.fit(option.id, render.ID_MAX)}`"


def _image_detail(image: ImageDetail) -> str:
    parts = [", ".join(image.categories)] if image.categories else []
    if image.arch is not None:
        parts.append(image.arch.value)
    parts.append("own" if image.type is ImageType.DEDICATED else "public")
    if image.description:
        parts.append(image.description)
    return ", ".join(p for p in parts if p)


# ---------------------------------------------------------------- create and update by name

Named = TypeVar("Named", grammar.CreateRequest, grammar.UpdateRequest)


@dataclass(frozen=True)
class Resolved(Generic[Named]):
    """A create or update request with ids for image and flavor, and what was picked by name
    ("")."""

    request: Named
    picked: str = ""


def resolve_create(
    request: Named, catalog: Catalog, default_image: str | None = None
) -> Resolved[Named] | ChatReply:
    """Image and flavor given by name become ids, and so does a default image given by name (of
    several tags of its name, the newest); image UUIDs and the default flavor are left as they
    are (the service judges them). Update requests are read the same way (without a default)."""
    image = request.image
    default = image is None and default_image is not None
    if default:
        image = default_image
    by_name_image = image is not None and not looks_like_image_id(image)
    if by_name_image or request.flavor is not None:
        try:  # one round trip for both lists; a failure is met again below, where it matters
            catalog.load(images=by_name_image, flavors=request.flavor is not None)
        except (SlowLookupError, ModelArtsError):
            if by_name_image:
                raise
    picked: list[str] = []
    if image is not None and by_name_image:
        usable = [i for i in catalog.images() if i.usable]
        found = (_newest(image, usable) if default else None) or choose(
            image, [image_option(i) for i in usable], "image"
        )
        if isinstance(found, ChatReply):
            if default:
                return ChatReply(_default_unusable(image), about="image")
            return replace(found, about="image")
        image = found.id
        picked.append(f"image {render.bold(found.label)}")
    flavor = request.flavor
    if flavor is not None:
        chosen = _pick_flavor(flavor, catalog)
        if isinstance(chosen, ChatReply):
            return replace(chosen, about="flavor")
        if chosen != flavor:
            picked.append(f"flavor {render.bold(chosen)}")
        flavor = chosen
    return Resolved(replace(request, image=image, flavor=flavor), ", ".join(picked))


def _newest(name: str, images: Sequence[ImageDetail]) -> Option | None:
    """The newest image called exactly `name` (or `name:tag`): a deploy's default names an image
    whose tags move on, and a person who did not choose should not be asked which tag."""
    folded = name.casefold()
    same = [i for i in images if folded in ((i.name or "").casefold(), i.label.casefold())]
    if not same:
        return None
    return image_option(max(same, key=lambda i: i.create_at or 0))


def default_image_id(default: str | None, catalog: Catalog) -> str | None:
    """The id the deploy's default image (a name or an id) stands for now, as `create NAME`
    would pick it; the default as it is when no listed image answers to it."""
    if default is None or looks_like_image_id(default):
        return default
    found = _newest(default, [i for i in catalog.images() if i.usable])
    return found.id if found else default


def _default_unusable(name: str) -> Message:
    """The deploy's default image is not found or not one image: say whose setting it is."""
    return render.problem(
        f"The default image {render.bold(name)} (set by your nbkeeper admin) is not one image "
        "this project can use, so nothing was done. Pass `image=NAME` (`/nb images` lists them), "
        "and ask an admin to fix the NotebookDefaultImage setting."
    )


def _pick_flavor(flavor: str, catalog: Catalog) -> str | ChatReply:
    try:
        options = [flavor_option(f) for f in catalog.flavors()]
    except (SlowLookupError, ModelArtsError):
        if not flavor.startswith("modelarts."):
            raise
        return flavor  # a complete flavor id needs no lookup: the service judges it
    if not options:
        return flavor  # nothing listed (a region without the call): the service judges it
    chosen = choose(flavor, options, "flavor")
    if isinstance(chosen, ChatReply):
        return chosen
    if chosen.sold_out:
        return ChatReply(
            render.problem(
                f"{render.bold(chosen.label)} is sold out right now; nothing was done. "
                "`/nb flavors` shows what is available."
            )
        )
    return chosen.id


# ---------------------------------------------------------------- listing


def images_reply(request: grammar.CatalogRequest, catalog: Catalog) -> ChatReply:
    options = [image_option(i) for i in catalog.images() if i.usable]
    return ChatReply(_listing("Images", "image", options, request.filter))


def flavors_reply(request: grammar.CatalogRequest, catalog: Catalog) -> ChatReply:
    prices = catalog.prices()
    options = []
    for flavor in catalog.flavors():
        option = flavor_option(flavor)
        price = prices.of(option.id)
        if price is not None:
            option = replace(option, detail=f"{option.detail}, {price}".lstrip(", "))
        options.append(option)
    return ChatReply(_listing("Flavors", "flavor", options, request.filter))


def _listing(title: str, what: str, options: Sequence[Option], text: str | None) -> Message:
    if text:
        folded = text.casefold()
        options = [
            o for o in options if any(folded in s.casefold() for s in (*o.names, o.id, o.detail))
        ]
    about = f" matching {render.bold(text)}" if text else ""
    if not options:
        return render.info(f"No {what}s{about}. `/nb {what}s` lists them all.")
    header = f"*{title}*{about} ({len(options)}); use the name or the id with `{what}=`:"
    lines = [_line(o) for o in options[:LIST_MAX]]
    if len(options) > LIST_MAX:
        lines.append(f"…and {len(options) - LIST_MAX} more; add a filter, e.g. `/nb {what}s gpu`.")
    blocks = [render.section(header)]
    chunk: list[str] = []
    for line in lines:
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) > render.SECTION_MAX:
            blocks.append(render.section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(render.section("\n".join(chunk)))
    return render.message(header, blocks=blocks)
