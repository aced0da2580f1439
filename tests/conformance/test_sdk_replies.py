"""Every reply the official SDK's notebook models can describe, our client reads.

Hypothesis builds response bodies from the SDK's own attribute types (`openapi_types` and
`attribute_map` of huaweicloudsdkmodelarts 3.1.219): any string where it says `str`, any integer,
float or boolean where it says so, nested models recursively, lists (with null items), `None` or
no key at all for every field (the SDK requires none), and keys nobody documented. Each body goes
through `AsyncModelArtsClient` over a mock transport, exactly as a reply from the service would.

The one field we insist on is a notebook's `id`: a list record without one is reported as
unreadable (never acted on), and a reply about one notebook falls back to the id we asked about.
A create reply without an id would leave nothing to track, so create bodies always carry one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import huaweicloudsdkmodelarts.v1 as sdk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbkeeper.modelarts.auth import TokenAuth
from nbkeeper.modelarts.client import AsyncModelArtsClient, run_sync
from nbkeeper.modelarts.schemas import (
    LeaseType,
    ListNotebooksQuery,
    NotebookCreateRequest,
    NotebookStatus,
    UnreadableNotebook,
)

T = TypeVar("T")
JSON = dict[str, Any]
EXAMPLES = 200
NOTEBOOK_ID = "asked-for-id"
CREATE = NotebookCreateRequest.model_validate(
    {
        "name": "nb",
        "image_id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
        "flavor": "modelarts.vm.cpu.2u",
        "volume": {"category": "EVS", "ownership": "MANAGED"},
    }
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=6), inner, max_size=2)
    ),
    max_leaves=4,
)


def sdk_value(type_name: str, depth: int) -> st.SearchStrategy[Any]:
    """A JSON value of the SDK type `type_name` (e.g. `str`, `list[JobProgress]`)."""
    if type_name == "str":
        return st.text(max_size=12)
    if type_name == "int":
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if type_name == "float":
        return st.floats(allow_nan=False, allow_infinity=False)
    if type_name == "bool":
        return st.booleans()
    if type_name == "object":
        return json_values
    listed = re.fullmatch(r"list\[(.+)\]", type_name)
    if listed:
        return st.lists(st.none() | sdk_value(listed.group(1), depth), max_size=2)
    mapping = re.fullmatch(r"dict\(([^,]+), (.+)\)", type_name)
    if mapping:
        return st.dictionaries(st.text(max_size=6), sdk_value(mapping.group(2), depth), max_size=2)
    return sdk_body(getattr(sdk, type_name), depth + 1)


def sdk_body(
    model: type[Any], depth: int = 0, forced: dict[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[JSON]:
    """A body of SDK `model`: every field absent, null or of its type; plus unknown keys."""
    keys = {model.attribute_map[name]: type_name for name, type_name in model.openapi_types.items()}
    if depth > 3:  # deep enough: nested objects below this are empty or absent
        return st.just({})
    fields = {key: st.none() | sdk_value(type_name, depth) for key, type_name in keys.items()}
    fields.update(forced or {})
    extra = st.dictionaries(
        st.text(min_size=1, max_size=10).filter(lambda key: key not in keys),
        json_values,
        max_size=2,
    )
    return st.builds(
        lambda known, more: {**more, **known},
        st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in (forced or {})},
            optional={k: v for k, v in fields.items() if k not in (forced or {})},
        ),
        extra,
    )


def read(body: JSON, call: Callable[[AsyncModelArtsClient], Coroutine[Any, Any, T]]) -> T:
    """`call` on a client whose every request is answered 200 with `body`."""

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    client = AsyncModelArtsClient(
        "https://modelarts.example.com",
        "0123456789abcdef0123456789abcdef",
        TokenAuth("t"),
        transport=httpx.MockTransport(reply),
    )

    async def go() -> T:
        async with client:
            return await call(client)

    return run_sync(go())


def check_notebook(body: JSON, notebook: Any, fallback_id: str) -> None:
    sent_id = body.get("id")
    assert notebook.id == (sent_id if sent_id is not None else fallback_id)
    status = body.get("status")
    if status is None:
        assert notebook.status is NotebookStatus.UNKNOWN
    else:
        assert notebook.status == NotebookStatus(status)
        assert notebook.status.is_known or notebook.status.value == status
    if isinstance(body.get("token"), str):
        assert notebook.token.get_secret_value() == body["token"]
    for name in ("tags", "endpoints", "billing_items", "action_progress"):
        items = body.get(name)
        parsed = getattr(notebook, name)
        assert (
            (parsed is None) if items is None else len(parsed) == sum(i is not None for i in items)
        )
    extra = {k for k in body if k not in type(notebook).model_fields}
    assert extra <= set(notebook.model_extra or {})


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ONE_NOTEBOOK: dict[str, Callable[[AsyncModelArtsClient], Coroutine[Any, Any, Any]]] = {
    "ShowNotebookResponse": lambda c: c.show_notebook(NOTEBOOK_ID),
    "UpdateNotebookResponse": lambda c: c.update_notebook(NOTEBOOK_ID, {"name": "x"}),
    "DeleteNotebookResponse": lambda c: c.delete_notebook(NOTEBOOK_ID),
    "StartNotebookResponse": lambda c: c.start_notebook(NOTEBOOK_ID),
    "StopNotebookResponse": lambda c: c.stop_notebook(NOTEBOOK_ID),
}


@pytest.mark.parametrize("model", sorted(ONE_NOTEBOOK))
def test_every_notebook_reply_is_read(model: str) -> None:
    @SETTINGS
    @given(body=sdk_body(getattr(sdk, model)))
    def check(body: JSON) -> None:
        notebook = read(body, ONE_NOTEBOOK[model])
        check_notebook(body, notebook, NOTEBOOK_ID)

    check()


def test_every_create_reply_with_an_id_is_read() -> None:
    @SETTINGS
    @given(body=sdk_body(sdk.CreateNotebookResponse, forced={"id": st.text(max_size=12)}))
    def check(body: JSON) -> None:
        check_notebook(body, read(body, lambda c: c.create_notebook(CREATE)), "")

    check()


@pytest.mark.parametrize("model", ["ListNotebooksResponse", "ListAllNotebooksResponse"])
def test_every_list_page_is_read_record_by_record(model: str) -> None:
    @SETTINGS
    @given(body=sdk_body(getattr(sdk, model)))
    def check(body: JSON) -> None:
        page = read(body, lambda c: c.list_page(ListNotebooksQuery(limit=10)))
        records = body.get("data") or []
        assert len(page.data) + len(page.unreadable) == len(records)
        # Only a record with no notebook id (or none at all) is unreadable.
        without_id = [i for i, r in enumerate(records) if r is None or r.get("id") is None]
        assert [r.index for r in page.unreadable] == without_id
        readable = [r for r in records if r is not None and r.get("id") is not None]
        for record, notebook in zip(readable, page.data, strict=True):
            check_notebook(record, notebook, "")

    check()


def test_every_list_page_is_listed_without_failing() -> None:
    @SETTINGS
    @given(body=sdk_body(sdk.ListAllNotebooksResponse))
    def check(body: JSON) -> None:
        reported: list[UnreadableNotebook] = []
        notebooks = read(
            body, lambda c: c.list_notebooks(all_users=True, on_unreadable=reported.append)
        )
        records = [r for r in body.get("data") or [] if r is not None and r.get("id") is not None]
        assert {n.id for n in notebooks} == {r["id"] for r in records}

    check()


@pytest.mark.parametrize("model", ["ShowLeaseResponse", "RenewLeaseResponse"])
def test_every_lease_reply_is_read(model: str) -> None:
    @SETTINGS
    @given(body=sdk_body(getattr(sdk, model)))
    def check(body: JSON) -> None:
        lease = read(body, lambda c: c.show_lease(NOTEBOOK_ID))
        assert (lease.create_at, lease.duration, lease.enable) == (
            body.get("create_at"),
            body.get("duration"),
            body.get("enable"),
        )
        if body.get("type") is not None:
            assert lease.type == LeaseType(body["type"])

    check()


def test_every_tag_summary_is_read() -> None:
    @SETTINGS
    @given(body=sdk_body(sdk.ShowNotebookTagsResponse))
    def check(body: JSON) -> None:
        summary = read(body, lambda c: c.tag_summary())
        items = [t for t in body.get("tags") or [] if t is not None]
        assert [t.key for t in summary.tags] == [t.get("key") for t in items]

    check()


@pytest.mark.parametrize(
    ("model", "notebook_id"),
    [("ListFlavorsResponse", None), ("ShowSwitchableFlavorsResponse", NOTEBOOK_ID)],
)
def test_every_flavor_list_is_read(model: str, notebook_id: str | None) -> None:
    @SETTINGS
    @given(body=sdk_body(getattr(sdk, model)))
    def check(body: JSON) -> None:
        flavors = read(body, lambda c: c.list_flavors(notebook_id))
        for name in ("flavors", "data"):
            items = [f for f in body.get(name) or [] if f is not None]
            assert [f.id for f in getattr(flavors, name)] == [f.get("id") for f in items]

    check()


def test_the_models_cover_every_notebook_reply_of_the_sdk() -> None:
    """The SDK's notebook operations, each with a test above (or no body to read)."""
    operations = {
        name
        for name in dir(sdk.ModelArtsClient)
        if ("notebook" in name or "lease" in name)
        and not name.startswith("_")
        and not name.endswith("_invoker")
    } | {"list_flavors", "show_switchable_flavors"}
    replies = {re.sub(r"(?:^|_)([a-z])", lambda m: m.group(1).upper(), op) for op in operations}
    tested = {
        *ONE_NOTEBOOK,
        "CreateNotebookResponse",
        "ListNotebooksResponse",
        "ListAllNotebooksResponse",
        "ShowLeaseResponse",
        "RenewLeaseResponse",
        "ShowNotebookTagsResponse",
        "ListFlavorsResponse",
        "ShowSwitchableFlavorsResponse",
    }
    bodiless = {"CreateNotebookTagsResponse", "DeleteNotebookTagsResponse"}
    assert {f"{r}Response" for r in replies} == tested | bodiless
    assert all(not getattr(sdk, name).openapi_types for name in bodiless)
