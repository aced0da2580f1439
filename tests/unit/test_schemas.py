"""Schemas: the seeds' examples round-trip; each documented constraint is enforced clearly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from nbkeeper.modelarts.errors import describe_validation_error
from nbkeeper.modelarts.schemas import (
    EndpointService,
    EndpointsReq,
    Feature,
    FlavorList,
    Lease,
    LeaseReq,
    LeaseType,
    ListNotebooksQuery,
    Notebook,
    NotebookCreateRequest,
    NotebookPage,
    NotebookStatus,
    NotebookUpdateRequest,
    TagReq,
    TagsRequest,
    TagSummary,
    UnreadableNotebook,
    VolumeCategory,
    VolumeOwnership,
    VolumeReq,
)

# ---------------------------------------------------------------- seed examples (verbatim)

CREATE_REQUEST = """{
"name" : "notebooks_test",
"feature" : "NOTEBOOK",
"workspace_id" : "0",
"description" : "api-test",
"flavor" : "modelarts.vm.cpu.2u",
"image_id" : "e1a07296-22a8-4f05-8bc8-e936c8e54090",
"volume" : {
"category" : "evs",
"ownership" : "managed",
"capacity" : 50
}
}"""

CREATE_RESPONSE = """{
"description" : "api-test",
"feature" : "NOTEBOOK",
"flavor" : "modelarts.vm.cpu.2u",
"id" : "f9937afa-4451-42db-a76b-72d624749f66",
"image" : {
"description" : "description",
"id" : "e1a07296-22a8-4f05-8bc8-e936c8e54090",
"name" : "notebook2.0-mul-kernel-cpu-cp36",
"swr_path" : "swr.xxxxx.com/atelier/notebook2.0-mul-kernel-cpu-cp36:3.3.2-release_v1",
"tag" : "3.3.2-release_v1",
"type" : "BUILD_IN"
},
"lease" : {
"create_at" : 1638841744515,
"duration" : 3600000,
"enable" : true,
"type" : "TIMING",
"update_at" : 1638841744515
},
"name" : "notebooks_test",
"status" : "CREATING",
"token" : "3eff13f2-3d70-5456-6dc7-e3f99f562022",
"workspace_id" : "0"
}"""

DELETE_RESPONSE = """{
  "create_at" : 1638841805440,
  "description" : "update",
  "feature" : "DEFAULT",
  "flavor" : "modelarts.vm.cpu.free",
  "id" : "f9937afa-ca78-45b6-bc12-7ecf42553c48",
  "image" : {
    "description" : "description",
    "id" : "e1a07296-22a8-4f05-8bc8-e936c8e54090",
    "name" : "notebook2.0-mul-kernel-cpu-cp36",
    "swr_path" : "swr.xxxxx.com/atelier/notebook2.0-mul-kernel-cpu-cp36:3.3.2-release_v1",
    "tag" : "3.3.2-release_v1",
    "type" : "BUILD_IN"
  },
  "lease" : {
    "create_at" : 1638841805439,
    "duration" : 3600000,
    "enable" : true,
    "update_at" : 1638841805439
  },
  "name" : "notebook_5ee4bf0e",
  "status" : "DELETING",
  "token" : "58ba50c6-e8ff-245c-4840-49e51aa70737",
  "update_at" : 1638842504178,
  "workspace_id" : "0"
}"""

RENEW_REQUEST = """{
  "duration" : 3600000,
  "type" : "timing"
}"""

RENEW_RESPONSE = """{
  "create_at" : 1638841744515,
  "duration" : 3600000,
  "enable" : true,
  "type" : "TIMING",
  "update_at" : 1638843018759
}"""

UPDATE_REQUEST = """{
  "description" : "update"
}"""

# No id in the documented reply: the client fills it from the path (see test_client.py).
UPDATE_RESPONSE = """{
  "description" : "test",
  "flavor" : "modelarts.vm.cpu.8u",
  "name" : "notebook-1111",
  "endpoints" : [ {
    "allowed_access_ips" : [ "1.1.1.1" ]
  } ]
}"""

UUID = "e1a07296-22a8-4f05-8bc8-e936c8e54090"


def upper_enums(value: Any) -> Any:
    """The seeds' requests use lowercase enum values; the models normalise to upper case."""
    if isinstance(value, dict):
        return {k: upper_enums(v) for k, v in value.items()}
    if isinstance(value, str) and value in {"evs", "managed", "timing", "idle"}:
        return value.upper()
    return value


def errors_of(build: Callable[[], object]) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        build()
    return describe_validation_error(caught.value)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("model", "text"),
    [
        (NotebookCreateRequest, CREATE_REQUEST),
        (LeaseReq, RENEW_REQUEST),
        (NotebookUpdateRequest, UPDATE_REQUEST),
    ],
    ids=["create", "renew-lease", "update"],
)
def test_seed_requests_round_trip(model: type[pydantic.BaseModel], text: str) -> None:
    data = json.loads(text)
    request = model.model_validate(data)
    assert request.model_dump(mode="json", exclude_none=True) == upper_enums(data)
    again = model.model_validate(request.model_dump(mode="json", exclude_none=True))
    assert again == request


@pytest.mark.parametrize(
    ("text", "extra"),
    [(CREATE_RESPONSE, {}), (DELETE_RESPONSE, {}), (UPDATE_RESPONSE, {"id": "nb-1"})],
    ids=["create", "delete", "update"],
)
def test_seed_notebook_responses_round_trip(text: str, extra: dict[str, Any]) -> None:
    data = {**json.loads(text), **extra}
    notebook = Notebook.model_validate(data)
    dumped = notebook.model_dump(mode="json", exclude_unset=True)
    token = data.pop("token", None)
    assert dumped.pop("token", None) == ("**********" if token else None)
    assert dumped == data
    if token:
        assert notebook.token is not None
        assert notebook.token.get_secret_value() == token


def test_seed_values_are_typed() -> None:
    created = Notebook.model_validate_json(CREATE_RESPONSE)
    assert created.status is NotebookStatus.CREATING
    assert created.feature is Feature.NOTEBOOK
    assert created.lease is not None
    assert created.lease.type is LeaseType.TIMING
    assert created.lease.deadline_ms == 1638841744515 + 3600000
    deleted = Notebook.model_validate_json(DELETE_RESPONSE)
    assert deleted.status is NotebookStatus.DELETING
    assert deleted.lease is not None
    assert deleted.lease.type is None


def test_seed_lease_response_round_trips() -> None:
    data = json.loads(RENEW_RESPONSE)
    lease = Lease.model_validate(data)
    assert lease.model_dump(mode="json", exclude_unset=True) == data
    assert lease.remaining_ms(1638841744515) == 3600000


def test_seed_create_request_body() -> None:
    request = NotebookCreateRequest.model_validate_json(CREATE_REQUEST)
    assert request.volume.category is VolumeCategory.EVS
    assert request.volume.ownership is VolumeOwnership.MANAGED
    assert request.to_body()["volume"] == {
        "category": "EVS",
        "ownership": "MANAGED",
        "capacity": 50,
    }


def test_list_page_round_trips() -> None:
    data = {
        "current": 0,
        "pages": 1,
        "size": 10,
        "total": 1,
        "data": [json.loads(CREATE_RESPONSE)],
    }
    page = NotebookPage.model_validate(data)
    assert page.total == 1
    assert page.data[0].id == "f9937afa-4451-42db-a76b-72d624749f66"


# ---------------------------------------------------------------- documented constraints


def create(**changes: Any) -> NotebookCreateRequest:
    data: dict[str, Any] = {
        "name": "nb_1",
        "flavor": "modelarts.vm.cpu.2u",
        "image_id": UUID,
        "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 50},
    }
    data.update(changes)
    return NotebookCreateRequest.model_validate(data)


def update(**changes: Any) -> NotebookUpdateRequest:
    return NotebookUpdateRequest.model_validate(changes)


@pytest.mark.parametrize(
    ("build", "field", "message"),
    [
        (lambda: create(name="n" * 129), "name", "129 characters long; use at most 128"),
        (lambda: create(name="my notebook!"), "name", "only letters, digits, '-' and '_'"),
        (lambda: create(name=""), "name", "must not be empty"),
        (lambda: update(name="a.b"), "name", "remove '.'"),
        (lambda: create(description="d" * 513), "description", "use at most 512"),
        (lambda: create(description="it's"), "description", 'remove "\'"'),
        (lambda: create(description="a/b"), "description", "remove '/'"),
        (lambda: update(description="a&b"), "description", "remove '&'"),
        (lambda: update(description="<b>"), "description", "remove '<>'"),
        (
            lambda: create(volume={"category": "EVS", "ownership": "MANAGED", "capacity": 4097}),
            "volume.capacity",
            "use 1 to 4096 GB",
        ),
        (lambda: update(storage_new_size=5000), "storage_new_size", "use 1 to 4096 GB"),
        (lambda: LeaseReq(duration=3_599_999), "duration", "use 1 h to 72 h"),
        (lambda: LeaseReq(duration=72 * 3_600_000 + 1), "duration", "use 1 h to 72 h"),
        (lambda: create(duration=60_000), "duration", "use 1 h to 72 h"),
        (
            lambda: EndpointsReq(allowed_access_ips=[f"8.8.8.{i}" for i in range(6)]),
            "allowed_access_ips",
            "6 allowed access IPs given; at most 5",
        ),
        (
            lambda: EndpointsReq(allowed_access_ips=["10.0.0.1"]),
            "allowed_access_ips.0",
            "not a public IP address",
        ),
        (lambda: create(image_id="not-a-uuid"), "image_id", "is not a UUID"),
        (lambda: update(image_id="1234"), "image_id", "is not a UUID"),
        (lambda: create(workspace_id="ABC"), "workspace_id", "'0' or 32 lowercase"),
        (lambda: TagReq(key=" owner"), "key", "no leading or trailing space"),
        (lambda: TagReq(key="k" * 129), "key", "1-128"),
        (lambda: TagReq(key="a#b"), "key", "letters, digits"),
        (lambda: TagReq(key="_sys_owner"), "key", "reserved"),
        (lambda: TagReq(key="owner", value="v" * 256), "value", "at most 255"),
        (lambda: TagReq(key="owner", value="a*b"), "value", "at most 255"),
        (lambda: TagsRequest(tags=[]), "tags", "at least 1"),
        (lambda: update(), "input", "nothing to update"),
        (lambda: create(flavor=None), "input", "flavor is required"),
        (
            lambda: create(volume={"category": "EFS", "ownership": "DEDICATED"}),
            "volume",
            "needs both 'uri' and 'id'",
        ),
        (lambda: create(colour="red"), "colour", "Extra inputs are not permitted"),
        (lambda: ListNotebooksQuery(status="BOGUS"), "status", "unknown status"),
    ],
)
def test_constraint_violations_are_rejected_clearly(
    build: Callable[[], object], field: str, message: str
) -> None:
    text = errors_of(build)
    assert f"{field}: " in text
    assert message in text


def test_update_description_allows_a_quote_create_does_not() -> None:
    assert update(description="it's").description == "it's"
    assert "description" in errors_of(lambda: create(description="it's"))


@pytest.mark.parametrize(
    ("current", "new", "ok"), [(50, 100, True), (50, 50, False), (100, 60, False), (None, 10, True)]
)
def test_storage_only_grows(current: int | None, new: int, ok: bool) -> None:
    request = update(storage_new_size=new)
    if ok:
        request.check_storage_growth(current)
    else:
        with pytest.raises(ValueError, match="storage can only grow"):
            request.check_storage_growth(current)


def test_valid_edges_are_accepted() -> None:
    assert LeaseReq(duration=3_600_000).duration == 3_600_000
    assert LeaseReq(duration=72 * 3_600_000).duration == 72 * 3_600_000
    assert create(name="n" * 128, description="d" * 512).name == "n" * 128
    assert update(storage_new_size=4096).storage_new_size == 4096
    ips = [f"8.8.8.{i}" for i in range(5)]
    assert EndpointsReq(allowed_access_ips=ips).allowed_access_ips == ips
    assert create(workspace_id="0123456789abcdef0123456789abcdef").workspace_id
    assert TagReq(key="team.ml:x=y+z-@ 1", value="a/b c").value == "a/b c"


# ---------------------------------------------------------------- case variants, extras, secrets


@pytest.mark.parametrize("value", ["timing", "TIMING", "Timing"])
def test_lease_type_accepts_any_case(value: str) -> None:
    assert LeaseReq(type=value).type is LeaseType.TIMING  # type: ignore[arg-type]
    assert Lease.model_validate({"type": value}).type is LeaseType.TIMING


@pytest.mark.parametrize(("category", "ownership"), [("evs", "managed"), ("EVS", "MANAGED")])
def test_volume_enums_accept_any_case(category: str, ownership: str) -> None:
    volume = VolumeReq.model_validate({"category": category, "ownership": ownership})
    assert (volume.category, volume.ownership) == (VolumeCategory.EVS, VolumeOwnership.MANAGED)


def test_unknown_response_fields_and_status_are_tolerated() -> None:
    notebook = Notebook.model_validate(
        {"id": "x", "status": "HIBERNATING", "brand_new": {"a": 1}, "lease": {"extra": True}}
    )
    assert notebook.status.value == "HIBERNATING"
    assert not notebook.status.is_known
    assert notebook.status.is_transient
    assert notebook.status != NotebookStatus.UNKNOWN
    assert str(notebook) == "? (x, HIBERNATING)"
    assert notebook.model_extra == {"brand_new": {"a": 1}}


@pytest.mark.parametrize("status", [None, "UNKNOWN"])
def test_a_missing_status_is_unknown_and_transient(status: str | None) -> None:
    notebook = Notebook.model_validate({"id": "x", "status": status})
    assert notebook.status is NotebookStatus.UNKNOWN
    assert not notebook.status.is_known and notebook.status.is_transient
    assert Notebook.model_validate({"id": "x"}).status is NotebookStatus.UNKNOWN


def test_unknown_enum_values_in_replies_keep_their_value() -> None:
    notebook = Notebook.model_validate(
        {
            "id": "x",
            "feature": "ECS",
            "lease": {"type": "SCHEDULED"},
            "volume": {"category": "NAS", "ownership": "SHARED"},
            "endpoints": [{"service": "VSCODE"}],
        }
    )
    assert notebook.volume is not None and notebook.lease is not None and notebook.endpoints
    values = [
        notebook.feature,
        notebook.lease.type,
        notebook.volume.category,
        notebook.volume.ownership,
        notebook.endpoints[0].service,
    ]
    assert [v.value for v in values if v is not None] == [
        "ECS",
        "SCHEDULED",
        "NAS",
        "SHARED",
        "VSCODE",
    ]
    assert not any(v is None or v.is_known for v in values)
    dumped = notebook.model_dump(mode="json", exclude_unset=True)
    assert dumped["feature"] == "ECS" and dumped["volume"]["category"] == "NAS"


def test_known_values_stay_members_in_any_case() -> None:
    notebook = Notebook.model_validate({"id": "x", "status": "running ", "feature": "notebook"})
    assert notebook.status is NotebookStatus.RUNNING
    assert notebook.feature is Feature.NOTEBOOK
    assert notebook.status.is_known and not notebook.status.is_transient


def test_nulls_for_every_list_and_object_are_read() -> None:
    nulls = {
        "id": "x",
        "status": "RUNNING",
        **dict.fromkeys(
            [
                "lease",
                "image",
                "volume",
                "pool",
                "user",
                "custom_spec",
                "endpoints",
                "tags",
                "billing_items",
                "action_progress",
                "token",
            ]
        ),
    }
    notebook = Notebook.model_validate(nulls)
    assert notebook.tags is None and notebook.tag("owner") is None
    assert NotebookPage.model_validate({"data": None, "total": None}).data == []
    assert TagSummary.model_validate({"tags": None}).tags == []
    assert TagSummary.model_validate({"tags": [{"key": None, "values": None}]}).tags[0].values == []
    flavors = FlavorList.model_validate({"flavors": None, "data": None})
    assert (flavors.flavors, flavors.data) == ([], [])
    lease = Lease.model_validate({"create_at": None, "duration": None, "enable": None})
    assert lease.deadline_ms is None


def test_null_items_are_dropped_and_numbers_read_as_strings() -> None:
    notebook = Notebook.model_validate(
        {
            "id": 12345,
            "workspace_id": 0,
            "tags": [None, {"key": "owner", "value": "alice"}, {"key": None}],
            "billing_items": [None, "COMPUTE"],
            "endpoints": {"service": "SSH"},  # a lone object where a list is documented
        }
    )
    assert (notebook.id, notebook.workspace_id) == ("12345", "0")
    assert notebook.tag("owner") == "alice"
    assert notebook.billing_items == ["COMPUTE"]
    assert notebook.endpoints is not None and notebook.endpoints[0].service is EndpointService.SSH


def test_one_unreadable_record_does_not_cost_the_page() -> None:
    page = NotebookPage.model_validate(
        {
            "total": 5,
            "data": [
                {"id": "a", "status": "RUNNING"},
                {"id": "b", "lease": {"duration": "soon"}, "token": "SECRET-TOKEN-b"},
                "not a record",
                None,
                {"name": "no id", "token": "SECRET-TOKEN-c"},
                {"id": "f", "feature": "ECS", "tags": None},
            ],
        }
    )
    assert [n.id for n in page.data] == ["a", "f"]
    assert [(r.index, r.position, r.notebook_id) for r in page.unreadable] == [
        (1, 1, "b"),
        (2, 2, None),
        (3, 3, None),
        (4, 4, None),
    ]
    assert page.unreadable[0].reason == (
        "lease.duration: Input should be a valid integer, unable to parse string as an integer"
    )
    assert page.unreadable[3].reason == "id: Field required"
    assert str(page.unreadable[0]).startswith("notebook b: lease.duration:")
    assert str(page.unreadable[2]).startswith("record 3: ")
    text = repr(page) + "".join(str(r) for r in page.unreadable)
    assert "SECRET-TOKEN" not in text


def test_a_page_built_in_code_keeps_its_unreadable_records() -> None:
    record = UnreadableNotebook(index=0, position=7, notebook_id=None, reason="id: Field required")
    page = NotebookPage(data=[], unreadable=[record])
    assert page.unreadable == [record]
    assert NotebookPage.model_validate({"unreadable": "the service's own field"}).unreadable == []


def test_update_endpoints_accept_documented_spellings() -> None:
    request = update(endpoints=[{"dev_service": "SSH", "ssh_keys": ["kp1"]}])
    assert request.to_body() == {"endpoints": [{"dev_service": "SSH", "ssh_keys": ["kp1"]}]}


def test_token_never_in_repr_str_or_json() -> None:
    notebook = Notebook.model_validate_json(CREATE_RESPONSE)
    secret = "3eff13f2-3d70-5456-6dc7-e3f99f562022"
    shown = [
        repr(notebook),
        str(notebook),
        notebook.model_dump_json(),
        str(notebook.model_dump()),
        repr(NotebookPage(data=[notebook])),
    ]
    assert all(secret not in text for text in shown)


def test_list_query_params_are_sorted_strings() -> None:
    query = ListNotebooksQuery(status=NotebookStatus.RUNNING, limit=10, name="nb", offset=20)
    assert query.to_params() == [
        ("limit", "10"),
        ("name", "nb"),
        ("offset", "20"),
        ("status", "RUNNING"),
    ]


# ---------------------------------------------------------------- what the SDK can send, we can send


def test_hook_without_script_is_accepted() -> None:
    hooks = {"container_hooks": {"post_start": {"type": "SCRIPT", "mode": "ASYNC"}}}
    assert create(hooks=hooks).to_body()["hooks"] == hooks
    assert update(hooks=hooks).to_body() == {"hooks": hooks}


def test_volume_mount_path_and_read_only_pass_through() -> None:
    volume = {
        "category": "EVS",
        "ownership": "MANAGED",
        "capacity": 5,
        "mount_path": "/home/ma-user/work/",
        "read_only": False,
    }
    assert create(volume=volume).to_body()["volume"] == volume
    assert "volume.mount_path" in errors_of(
        lambda: create(volume={**volume, "mount_path": "/" * 257})
    )


def test_update_takes_custom_spec_affinity_and_public_network() -> None:
    body = {
        "custom_spec": {"cpu": 2.0, "memory": 8192, "arch": "X86_64", "category": "CPU"},
        "affinity": {
            "required_during_scheduling_ignored_during_execution": [
                {"key": "os.modelarts/node", "operator": "In", "values": ["n1"]}
            ]
        },
        "public_network_config": {"public_network_type": "SHARED"},
    }
    assert update(**body).to_body() == body
    assert create(public_network_config={"public_network_type": "FORBIDDEN"}).to_body()[
        "public_network_config"
    ] == {"public_network_type": "FORBIDDEN"}
    custom = create(flavor=None, custom_spec={"cpu": 4, "memory": 16384})
    assert custom.to_body()["custom_spec"] == {"cpu": 4.0, "memory": 16384}


@pytest.mark.parametrize(
    ("build", "field", "message"),
    [
        (
            lambda: update(public_network_config={"public_network_type": "OPEN"}),
            "public_network_config.public_network_type",
            "unknown public_network_type 'OPEN'; use one of SHARED, EXCLUSIVE, FORBIDDEN",
        ),
        (
            lambda: update(custom_spec={"cpu": 0.1}),
            "custom_spec.cpu",
            "greater than or equal to 0.4",
        ),
        (
            lambda: update(affinity={"required_during_scheduling_ignored_during_execution": [{}]}),
            "affinity.required_during_scheduling_ignored_during_execution.0.key",
            "Field required",
        ),
        (lambda: create(feature="ECS"), "feature", "unknown feature 'ECS'; use one of DEFAULT"),
        (
            lambda: create(volume={"category": "NAS", "ownership": "MANAGED"}),
            "volume.category",
            "unknown category 'NAS'",
        ),
        (lambda: LeaseReq(type="SCHEDULED"), "type", "use one of TIMING, IDLE"),
        (lambda: ListNotebooksQuery(limit=30), "limit", "use 10, 20, 50"),
        (lambda: ListNotebooksQuery(limit=100), "limit", "not a documented page size"),
        (lambda: ListNotebooksQuery(status="UNKNOWN"), "status", "unknown status 'UNKNOWN'"),
        (lambda: TagReq(key="チーム#1"), "key", "letters, digits"),
    ],
)
def test_requests_still_send_documented_values_only(
    build: Callable[[], object], field: str, message: str
) -> None:
    text = errors_of(build)
    assert f"{field}: " in text
    assert message in text


@pytest.mark.parametrize(
    ("key", "value"),
    [("チーム", "データ"), ("équipe", "Zürich/été"), ("हिन्दी", "मान"), ("команда", "ml-1")],
)
def test_tag_keys_and_values_take_letters_of_any_language(key: str, value: str) -> None:
    assert TagReq(key=key, value=value).to_body() == {"key": key, "value": value}


@pytest.mark.parametrize("limit", [10, 20, 50])
def test_list_query_takes_the_documented_page_sizes(limit: int) -> None:
    assert ListNotebooksQuery(limit=limit).to_params() == [("limit", str(limit))]
