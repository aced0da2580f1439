"""Emulator API surface: listing, paging, filters, validation codes, tags, flavors, projects."""

from __future__ import annotations

from typing import Any

import pytest

from nbkeeper.modelarts.schemas import FlavorList, NotebookPage, TagSummary
from nbkeeper_local.emulator import Emulator, Identity
from tests.emulator_fixtures import CREATE_BODY, NOTEBOOKS, ApiCaller

OTHER_PROJECT = "f" * 32


def create(api: ApiCaller, path: str = NOTEBOOKS, **overrides: Any) -> str:
    response = api("POST", path, json={**CREATE_BODY, **overrides})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def page(api: ApiCaller, path: str = f"{NOTEBOOKS}/all", **params: Any) -> NotebookPage:
    response = api("GET", path, params=params)
    assert response.status_code == 200, response.text
    return NotebookPage.model_validate(response.json())


def test_offset_is_a_record_offset_and_current_the_page_number(emulator_api: ApiCaller) -> None:
    for index in range(23):
        create(emulator_api, name=f"nb-{index}")
    first = page(emulator_api, limit=10, offset=0)
    third = page(emulator_api, limit=10, offset=20)
    assert (first.current, first.pages, first.size, first.total, len(first.data)) == (
        0,
        3,
        10,
        23,
        10,
    )
    assert (third.current, len(third.data)) == (2, 3)


def test_default_order_is_newest_first_and_asc_reverses_it(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    for index in range(3):
        create(emulator_api, name=f"nb-{index}")
        emulator.advance(1)
    assert [n.name for n in page(emulator_api).data] == ["nb-2", "nb-1", "nb-0"]
    assert [n.name for n in page(emulator_api, sort_dir="ASC").data] == ["nb-0", "nb-1", "nb-2"]


def test_pages_cover_every_notebook_once(emulator_api: ApiCaller) -> None:
    ids = {create(emulator_api, name=f"nb-{index}") for index in range(23)}
    seen = [
        n.id
        for offset in range(0, 23, 10)
        for n in page(emulator_api, limit=10, offset=offset).data
    ]
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "ALPHA"}, {"alpha-1", "alpha-2"}),
        ({"status": "CREATING"}, {"alpha-1", "alpha-2", "beta"}),
        ({"status": "RUNNING"}, set()),
        ({"tags": "team|vision"}, {"alpha-1"}),
        ({"tags": "team|vision,env|dev"}, set()),
        ({"tags": "team"}, {"alpha-1", "beta"}),
        ({"flavor": "modelarts.vm.cpu.8u"}, {"beta"}),
        ({"feature": "DEFAULT"}, {"free"}),
    ],
)
def test_list_filters(emulator_api: ApiCaller, params: dict[str, str], expected: set[str]) -> None:
    first = create(emulator_api, name="alpha-1")
    create(emulator_api, name="alpha-2")
    beta = create(emulator_api, name="beta", flavor="modelarts.vm.cpu.8u")
    create(emulator_api, name="free", feature="DEFAULT", flavor="modelarts.vm.cpu.free")
    emulator_api(
        "POST",
        f"{NOTEBOOKS}/{first}/tags/create",
        json={"tags": [{"key": "team", "value": "vision"}]},
    )
    emulator_api(
        "POST", f"{NOTEBOOKS}/{beta}/tags/create", json={"tags": [{"key": "team", "value": "nlp"}]}
    )
    assert {n.name for n in page(emulator_api, **params).data} == expected


def test_list_by_id(emulator_api: ApiCaller) -> None:
    wanted = create(emulator_api, name="a")
    create(emulator_api, name="b")
    assert [n.id for n in page(emulator_api, id=wanted).data] == [wanted]


def test_own_list_shows_only_the_callers_notebooks(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    create(emulator_api, name="mine")
    emulator.seed_fleet(size=5, users=2)
    assert [n.name for n in page(emulator_api, NOTEBOOKS).data] == ["mine"]
    assert page(emulator_api).total == 6


def test_projects_are_separate_namespaces(emulator_api: ApiCaller) -> None:
    other = f"/v1/{OTHER_PROJECT}/notebooks"
    notebook_id = create(emulator_api, other)
    assert page(emulator_api).total == 0
    assert page(emulator_api, f"{other}/all").total == 1
    missing = emulator_api("GET", f"{NOTEBOOKS}/{notebook_id}")
    assert (missing.status_code, missing.json()["error_code"]) == (400, "ModelArts.6309")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**CREATE_BODY, "description": "a <b>"}, "ModelArts.6334"),
        ({**CREATE_BODY, "name": "bad name!"}, "ModelArts.6334"),
        ({k: v for k, v in CREATE_BODY.items() if k != "image_id"}, "ModelArts.6335"),
        ({**CREATE_BODY, "duration": 60_000}, "ModelArts.6349"),
        ({**CREATE_BODY, "lease": {"duration": 73 * 3_600_000}}, "ModelArts.6349"),
        ({**CREATE_BODY, "unknown_field": 1}, "ModelArts.0104"),
        ({**CREATE_BODY, "image_id": "not-a-uuid"}, "ModelArts.6336"),
        ({**CREATE_BODY, "flavor": "modelarts.vm.gpu.unknown"}, "ModelArts.6323"),
        ({**CREATE_BODY, "flavor": "modelarts.vm.gpu.a100.sold"}, "ModelArts.6329"),
    ],
)
def test_create_validation_codes(emulator_api: ApiCaller, body: dict[str, Any], code: str) -> None:
    response = emulator_api("POST", NOTEBOOKS, json=body)
    assert (response.status_code, response.json()["error_code"]) == (400, code)
    assert response.json()["error_msg"]


def test_malformed_json_is_6400(emulator_api: ApiCaller) -> None:
    response = emulator_api(
        "POST", NOTEBOOKS, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.json()["error_code"] == "ModelArts.6400"


def test_bad_list_query_is_refused(emulator_api: ApiCaller) -> None:
    response = emulator_api("GET", NOTEBOOKS, params={"status": "SLEEPING"})
    assert response.json()["error_code"] == "ModelArts.6336"


def test_second_free_codelab_per_user_is_refused(emulator_api: ApiCaller) -> None:
    free = {"feature": "DEFAULT", "flavor": "modelarts.vm.cpu.free"}
    create(emulator_api, **free)
    response = emulator_api("POST", NOTEBOOKS, json={**CREATE_BODY, **free})
    assert response.json()["error_code"] == "ModelArts.6302"


def test_create_honours_top_level_duration_over_lease(emulator_api: ApiCaller) -> None:
    body = {
        **CREATE_BODY,
        "duration": 5 * 3_600_000,
        "lease": {"duration": 3_600_000, "type": "IDLE"},
    }
    lease = emulator_api("POST", NOTEBOOKS, json=body).json()["lease"]
    assert (lease["duration"], lease["type"]) == (5 * 3_600_000, "TIMING")


def test_tags_add_overwrite_delete_and_summary(emulator_api: ApiCaller) -> None:
    notebook_id = create(emulator_api)
    tags = f"{NOTEBOOKS}/{notebook_id}/tags"
    assert (
        emulator_api(
            "POST", f"{tags}/create", json={"tags": [{"key": "k", "value": "1"}]}
        ).status_code
        == 204
    )
    emulator_api(
        "POST",
        f"{tags}/create",
        json={"tags": [{"key": "k", "value": "2"}, {"key": "x", "value": "y"}]},
    )
    assert (
        emulator_api(
            "DELETE", f"{tags}/delete", json={"tags": [{"key": "x"}, {"key": "missing"}]}
        ).status_code
        == 204
    )
    summary = TagSummary.model_validate(emulator_api("GET", f"{NOTEBOOKS}/tags").json())
    assert [(t.key, t.values) for t in summary.tags] == [("k", ["2"])]
    shown = emulator_api("GET", f"{NOTEBOOKS}/{notebook_id}").json()["tags"]
    assert shown == [{"key": "k", "value": "2"}]


def test_tags_on_a_missing_notebook_are_6309(emulator_api: ApiCaller) -> None:
    response = emulator_api(
        "POST", f"{NOTEBOOKS}/nope/tags/create", json={"tags": [{"key": "k", "value": "v"}]}
    )
    assert response.json()["error_code"] == "ModelArts.6309"


def test_reserved_tag_key_is_refused(emulator_api: ApiCaller) -> None:
    notebook_id = create(emulator_api)
    response = emulator_api(
        "POST",
        f"{NOTEBOOKS}/{notebook_id}/tags/create",
        json={"tags": [{"key": "_sys_x", "value": "v"}]},
    )
    assert response.status_code == 400


def test_flavor_catalogue_and_switchable_flavors(emulator_api: ApiCaller) -> None:
    flavors = FlavorList.model_validate(emulator_api("GET", f"{NOTEBOOKS}/flavors").json())
    assert flavors.total == len(flavors.flavors) >= 5
    gpu = FlavorList.model_validate(
        emulator_api("GET", f"{NOTEBOOKS}/flavors", params={"category": "GPU"}).json()
    )
    assert {f.category for f in gpu.flavors} == {"GPU"}
    notebook_id = create(emulator_api)
    switchable = emulator_api("GET", f"{NOTEBOOKS}/{notebook_id}/flavors").json()["flavors"]
    assert all(f["arch"] == "x86" and not f["sold_out"] for f in switchable)


def test_unknown_api_path_is_apig_0101(emulator_api: ApiCaller) -> None:
    response = emulator_api("GET", f"/v1/{OTHER_PROJECT}/trainings")
    assert (response.status_code, response.json()["error_code"]) == (404, "APIG.0101")


def test_every_reply_carries_a_request_id(emulator_api: ApiCaller) -> None:
    ok = emulator_api("GET", NOTEBOOKS)
    bad = emulator_api("GET", f"{NOTEBOOKS}/nope")
    assert ok.headers["X-Request-Id"] != bad.headers["X-Request-Id"]


def test_list_uses_the_callers_identity_for_own_notebooks(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.add_token("tok-2", Identity("2" * 32, "second"))
    create(emulator_api)
    response = emulator_api("GET", NOTEBOOKS, auth=None, headers={"X-Auth-Token": "tok-2"})
    assert response.json()["total"] == 0
