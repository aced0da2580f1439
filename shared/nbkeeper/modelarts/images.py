"""Images and flavors: what a notebook can be created from (`GET /v1/{project_id}/images`,
`GET /v1/{project_id}/images/{id}`, `GET /v1/{project_id}/notebooks/flavors`).

Requests are conservative (the official SDK's query parameters only, documented values only);
replies are read liberally like notebooks: open enums, nulls for lists, and a list page read
record by record, so one odd image never costs the listing. `list_images` and `list_flavors`
read every page (record offsets, de-duplicated by id, bounded by `max_pages`). `save_image`
(`POST /v1/{project_id}/notebooks/{id}/create-image`) saves a RUNNING notebook as a DEDICATED
image: the notebook is SNAPSHOTTING meanwhile, the image CREATING, then RUNNING and ACTIVE.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from nbkeeper.modelarts.errors import AmbiguousCreateError, InvalidRequestError
from nbkeeper.modelarts.schemas import (
    UUID_PATTERN,
    Arch,
    Feature,
    Flavor,
    FlavorList,
    Items,
    Known,
    OpenEnum,
    RequestModel,
    ResponseModel,
    SortDir,
    WorkspaceId,
    _raw_id,
    _reason,
)

logger = logging.getLogger("nbkeeper.modelarts")

IMAGE_NAME_MAX = 512
SAVED_NAME_MAX = 128  # a name to save under (create-image): shorter than a listed one may be
IMAGE_TAG_MAX = 64
NAMESPACE_MAX = 64
IMAGE_DESCRIPTION_MAX = 512
IMAGE_PAGE_SIZE = 100  # the service's default is 200; any positive limit is documented
FLAVOR_PAGE_SIZE = 50
MAX_CATALOGUE_PAGES = 50


class ImageType(OpenEnum):
    BUILD_IN = "BUILD_IN"  # the service's public images
    DEDICATED = "DEDICATED"  # saved or registered by users of the project


class ImageStatus(OpenEnum):
    INIT = "INIT"
    CREATING = "CREATING"
    CREATE_FAILED = "CREATE_FAILED"
    ERROR = "ERROR"
    DELETED = "DELETED"
    ACTIVE = "ACTIVE"


class FlavorCategory(OpenEnum):
    CPU = "CPU"
    GPU = "GPU"
    ASCEND = "ASCEND"


def _check_image_name(value: str) -> str:
    bad = sorted({c for c in value if not (c.islower() or c.isdigit() or c in "-_.")})
    if bad:
        raise ValueError("an image name has lowercase letters, digits, '-', '_' and '.' only")
    return value


_SAVED_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
_TAG = re.compile(r"^[A-Za-z0-9._-]+$")
_NAMESPACE = re.compile(r"^[a-z][A-Za-z0-9._-]*$")


def _check_saved_name(value: str) -> str:
    if not 1 <= len(value) <= SAVED_NAME_MAX:
        raise ValueError(f"an image name has 1 to {SAVED_NAME_MAX} characters")
    if not _SAVED_NAME.match(value):
        raise ValueError(
            "an image name has lowercase letters, digits, '-', '_' and '.' only, and starts and "
            "ends with a letter or digit (for example my-env)"
        )
    return value


def _check_tag(value: str) -> str:
    if not 1 <= len(value) <= IMAGE_TAG_MAX:
        raise ValueError(f"an image tag has 1 to {IMAGE_TAG_MAX} characters")
    if not _TAG.match(value):
        raise ValueError("an image tag has letters, digits, '-', '_' and '.' only (like v1)")
    return value


def _check_namespace(value: str) -> str:
    if not 1 <= len(value) <= NAMESPACE_MAX or not _NAMESPACE.match(value):
        raise ValueError(
            f"an image namespace (SWR organization) has 1 to {NAMESPACE_MAX} letters, digits, "
            "'-', '_' and '.', and starts with a lowercase letter"
        )
    return value


SavedImageName = Annotated[str, AfterValidator(_check_saved_name)]
ImageTag = Annotated[str, AfterValidator(_check_tag)]
ImageNamespace = Annotated[str, AfterValidator(_check_namespace)]


class ImageCreateRequest(RequestModel):
    """Body of `POST /notebooks/{id}/create-image` (the SDK's ImageCreateReq): the documented
    fields only. `name` and `namespace` are required by the API reference."""

    name: SavedImageName
    namespace: ImageNamespace
    tag: ImageTag | None = None
    description: Annotated[str, Field(max_length=IMAGE_DESCRIPTION_MAX)] | None = None
    workspace_id: WorkspaceId | None = None
    swr_instance_id: str | None = None  # enterprise SWR only
    swr_instance_domain: str | None = None


class ListImagesQuery(RequestModel):
    """Query of `GET /v1/{project_id}/images` (the SDK's ListImageRequest)."""

    limit: Annotated[int, Field(ge=1)] | None = None
    offset: Annotated[int, Field(ge=0)] | None = None
    name: (
        Annotated[str, Field(max_length=IMAGE_NAME_MAX), AfterValidator(_check_image_name)] | None
    ) = None
    name_fuzzy_match: bool | None = None
    namespace: str | None = None
    service_type: str | None = None
    sort_dir: Annotated[SortDir, Known] | None = None
    sort_key: str | None = None
    type: Annotated[ImageType, Known] | None = None
    workspace_id: WorkspaceId | None = None
    show_name: str | None = None
    show_tag: str | None = None

    def to_params(self) -> list[tuple[str, str]]:
        pairs = []
        for key, value in self.model_dump(mode="json", exclude_none=True).items():
            pairs.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
        return sorted(pairs)


class ListFlavorsQuery(RequestModel):
    """Query of `GET /notebooks/flavors` (the SDK's ListFlavorsRequest)."""

    category: Annotated[FlavorCategory, Known] | None = None
    feature: Annotated[Feature, Known] | None = None
    type: str | None = None
    flavor_type: str | None = None
    sort_dir: Annotated[SortDir, Known] | None = None
    sort_key: str | None = None
    limit: Annotated[int, Field(ge=1)] | None = None
    offset: Annotated[int, Field(ge=0)] | None = None

    def to_params(self) -> list[tuple[str, str]]:
        return sorted(
            (k, str(v)) for k, v in self.model_dump(mode="json", exclude_none=True).items()
        )


class ImageDetail(ResponseModel):
    """One image (ImageResponse / ShowImageResponse). Only `id` is required."""

    id: Annotated[str, Field(min_length=1)]
    name: str | None = None
    tag: str | None = None
    swr_path: str | None = None
    type: ImageType | None = None
    status: ImageStatus | None = None
    status_message: str | None = None
    arch: Arch | None = None
    description: str | None = None
    namespace: str | None = None
    origin: str | None = None
    service_type: str | None = None
    visibility: str | None = None
    workspace_id: str | None = None
    size: int | None = None
    create_at: int | None = None
    update_at: int | None = None
    dev_services: Items[str] = Field(default_factory=list)
    resource_categories: Items[str] = Field(default_factory=list)
    support_res_categories: Items[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """`name:tag` as people see it in the console (the id when nameless)."""
        if not self.name:
            return self.id
        return f"{self.name}:{self.tag}" if self.tag else self.name

    @property
    def categories(self) -> list[str]:
        return sorted({c.upper() for c in self.resource_categories + self.support_res_categories})

    @property
    def usable(self) -> bool:
        """Can a notebook start from it: not failed or gone, and (when said) serves notebooks."""
        if (
            self.status is not None
            and self.status.is_known
            and self.status is not ImageStatus.ACTIVE
        ):
            return False
        services = {s.upper() for s in self.dev_services}
        return not services or "NOTEBOOK" in services


class UnreadableRecord(BaseModel):
    """A list record that could not be read: skipped. `reason` names fields, never values."""

    model_config = ConfigDict(frozen=True)

    index: int
    record_id: str | None = None
    reason: str


class ImagePage(ResponseModel):
    """One page of `GET /images`; records read one by one (`unreadable` for the odd ones)."""

    current: int | None = None
    pages: int | None = None
    size: int | None = None
    total: int | None = None
    data: list[ImageDetail] = Field(default_factory=list)
    unreadable: list[UnreadableRecord] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _read_each_record(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        readable: list[ImageDetail] = []
        unreadable: list[UnreadableRecord] = []
        records = value.get("data")
        if not isinstance(records, list):
            records = [] if records is None else [records]
        # Null records stay in: they count in `total` and are reported like any unreadable one.
        for index, record in enumerate(records):
            try:
                readable.append(ImageDetail.model_validate(record))
            except ValidationError as exc:
                unreadable.append(
                    UnreadableRecord(index=index, record_id=_raw_id(record), reason=_reason(exc))
                )
        return {**value, "data": readable, "unreadable": unreadable}


R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)


class ImageApi(Protocol):
    """What these calls need of `AsyncModelArtsClient` (the module loads without HTTP: queue
    commands use its request models)."""

    async def read(
        self,
        model: type[M],
        resource: str,
        segments: list[str],
        params: Iterable[tuple[str, str]] = (),
    ) -> M: ...

    async def send(
        self,
        model: type[M],
        method: str,
        segments: list[str],
        body: Mapping[str, Any],
        *,
        resource: str = "notebooks",
    ) -> M: ...


async def _every_page(
    fetch: Callable[[int, int], Awaitable[tuple[list[R], int | None, int]]],
    key: Callable[[R], str | None],
    limit: int,
    max_pages: int,
) -> list[R]:
    """Pages at record offsets (0, then each page's records further) until an empty page,
    `total` records, a page with nothing new, or `max_pages` requests."""
    seen: set[str] = set()
    found: list[R] = []
    offset = 0
    for _ in range(max_pages):
        items, total, records = await fetch(offset, limit)
        if not records:
            break
        fresh = [item for item in items if (k := key(item)) is None or k not in seen]
        seen.update(k for item in fresh if (k := key(item)) is not None)
        found += fresh
        offset += records
        if (offset > records and not fresh) or (total is not None and offset >= total):
            break
    return found


async def list_image_page(client: ImageApi, query: ListImagesQuery | None = None) -> ImagePage:
    """One page of `GET /v1/{project_id}/images`."""
    return await client.read(ImagePage, "images", [], (query or ListImagesQuery()).to_params())


async def list_images(
    client: ImageApi,
    query: ListImagesQuery | None = None,
    *,
    max_pages: int = MAX_CATALOGUE_PAGES,
) -> list[ImageDetail]:
    """Every readable image matching `query` (type BUILD_IN unless it says DEDICATED)."""
    base = query or ListImagesQuery()
    if base.offset:
        raise InvalidRequestError("list_images lists from the start: leave offset unset")
    limit = base.limit or IMAGE_PAGE_SIZE

    async def fetch(offset: int, size: int) -> tuple[list[ImageDetail], int | None, int]:
        page = await list_image_page(
            client, base.model_copy(update={"limit": size, "offset": offset})
        )
        for record in page.unreadable:
            logger.warning(
                "skipped an unreadable image record: %s",
                record.reason,
                extra={"image_id": record.record_id},
            )
        return page.data, page.total, len(page.data) + len(page.unreadable)

    return await _every_page(fetch, lambda image: image.id, limit, max_pages)


async def list_all_images(client: ImageApi) -> list[ImageDetail]:
    """The public images and the project's own, together (two listings, concurrently)."""
    public, own = await asyncio.gather(
        list_images(client, ListImagesQuery(type=ImageType.BUILD_IN)),
        list_images(client, ListImagesQuery(type=ImageType.DEDICATED)),
    )
    ids = {image.id for image in public}
    return public + [image for image in own if image.id not in ids]


async def show_image(client: ImageApi, image_id: str) -> ImageDetail:
    if not isinstance(image_id, str) or not image_id.strip():
        raise InvalidRequestError("image id is empty; give the image's id")
    return await client.read(ImageDetail, "images", [image_id])


async def save_image(
    client: ImageApi, notebook_id: str, request: ImageCreateRequest
) -> ImageDetail:
    """Save a RUNNING notebook as an image; returns the image (usually status CREATING).

    Never retried blindly (a second call could start a second save): a reply lost after the
    request was sent raises `AmbiguousCreateError`; look the image up by name and tag.
    """
    if not isinstance(notebook_id, str) or not notebook_id.strip():
        raise InvalidRequestError("notebook id is empty; give the notebook's id")
    try:
        return await client.send(
            ImageDetail, "POST", [notebook_id, "create-image"], request.to_body()
        )
    except AmbiguousCreateError as exc:
        exc.message = (
            f"saving notebook {notebook_id} as image {request.name}:{request.tag or ''} may "
            "have started before the connection failed; look the image up before saving again"
        )
        raise


async def find_saved_image(
    client: ImageApi, name: str, tag: str, namespace: str | None = None
) -> ImageDetail | None:
    """The project's own (DEDICATED) image `name:tag` (in SWR organization `namespace`)."""
    query = ListImagesQuery(name=name, type=ImageType.DEDICATED, namespace=namespace)
    found = [
        image
        for image in await list_images(client, query)
        if image.name == name
        and image.tag == tag
        and (namespace is None or image.namespace in (None, namespace))
    ]
    return found[0] if found else None


async def list_flavors(
    client: ImageApi,
    query: ListFlavorsQuery | None = None,
    *,
    max_pages: int = MAX_CATALOGUE_PAGES,
) -> list[Flavor]:
    """Every flavor for new notebooks matching `query` (its `flavors`, else its `data`)."""
    base = query or ListFlavorsQuery()
    limit = base.limit or FLAVOR_PAGE_SIZE

    async def fetch(offset: int, size: int) -> tuple[list[Flavor], int | None, int]:
        params = base.model_copy(update={"limit": size, "offset": offset}).to_params()
        page = await client.read(FlavorList, "notebooks", ["flavors"], params)
        flavors = page.flavors or page.data
        return flavors, page.total, len(flavors)

    return await _every_page(fetch, lambda flavor: flavor.id or flavor.name, limit, max_pages)


def looks_like_image_id(text: str) -> bool:
    return bool(UUID_PATTERN.match(text))
