"""The image service's two read calls: `GET /v1/{project_id}/images` and `.../images/{id}`.
(Saving a notebook as an image, `POST .../notebooks/{id}/create-image`, is a notebook transition:
`NotebookStore.save_image`.) Reads see every save settled by the emulator's clock.

The query is validated with the shared schema (`ListImagesQuery`), so an undocumented value is
refused like the service refuses it (HTTP 400, ModelArts.0104). Defaults as documented: `type`
BUILD_IN, `limit` 200, `offset` a record offset, `sort_dir` DESC (by `create_at` unless
`sort_key` names another field).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pydantic
from starlette.requests import Request

from nbkeeper.modelarts.images import ImageType, ListImagesQuery
from nbkeeper.modelarts.schemas import SortDir

from .records import ApiError, bad_request

if TYPE_CHECKING:
    from .engine import EmulatorEngine

Reply = tuple[int, Any]


class Call(Protocol):
    """What these handlers need of app.py's `Call` (which imports this module)."""

    request: Request
    project_id: str

    def path_param(self, name: str) -> str: ...


DEFAULT_LIMIT = 200
SORTABLE = ("create_at", "update_at", "name", "size")
QUERY_FIELDS = set(ListImagesQuery.model_fields)


def _query(call: Call) -> ListImagesQuery:
    params = {k: v for k, v in call.request.query_params.items() if k in QUERY_FIELDS}
    try:
        return ListImagesQuery.model_validate(params)
    except pydantic.ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
        raise bad_request("0104", f"Invalid parameter: {fields or 'query'}") from None


def _matches(image: dict[str, Any], query: ListImagesQuery) -> bool:
    name = image.get("name") or ""
    if query.name is not None:
        if query.name_fuzzy_match and query.name not in name:
            return False
        if not query.name_fuzzy_match and query.name != name:
            return False
    for field in ("namespace", "service_type", "workspace_id", "show_name", "show_tag"):
        wanted = getattr(query, field)
        if wanted is not None and image.get(field) != wanted:
            return False
    return True


def list_images(emu: EmulatorEngine, call: Call) -> Reply:
    query = _query(call)
    image_type = (query.type or ImageType.BUILD_IN).value
    images = [i for i in emu.store.images_listed(call.project_id, image_type) if _matches(i, query)]
    key = query.sort_key if query.sort_key in SORTABLE else "create_at"
    blank = "" if key == "name" else 0
    images.sort(
        key=lambda i: (i.get(key) or blank, i["id"]), reverse=query.sort_dir is not SortDir.ASC
    )
    limit = query.limit or DEFAULT_LIMIT
    offset = query.offset or 0
    return 200, {
        "current": offset // limit,
        "pages": (len(images) + limit - 1) // limit,
        "size": limit,
        "total": len(images),
        "data": images[offset : offset + limit],
    }


def show_image(emu: EmulatorEngine, call: Call) -> Reply:
    image_id = call.path_param("id")
    image = emu.store.image(call.project_id, image_id)
    if image is None:
        raise ApiError(404, "ModelArts.6410", f"Image {image_id} does not exist.")
    return 200, image
