"""The emulator answers like the documentation, and loosely on request (loose replies)."""

from __future__ import annotations

import ast
import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from nbkeeper.modelarts.schemas import (
    Lease,
    ListNotebooksQuery,
    Notebook,
    NotebookPage,
    NotebookStatus,
    UnreadableNotebook,
)
from nbkeeper_local.emulator import Emulator, EmulatorConfig, FaultKind, Looseness, SimClock
from nbkeeper_local.emulator.loose import EXTRA_FIELD, UNKNOWN_PREFIX, LooseReplies
from nbkeeper_local.emulator.server import build_parser, config_from
from tests.emulator_fixtures import (
    EMULATOR_BASE_URL,
    EMULATOR_START,
    NOTEBOOKS,
    ApiCaller,
    ClientFactory,
)

S = NotebookStatus
EMULATOR_PACKAGE = Path(__file__).parents[2] / "local" / "nbkeeper_local" / "emulator"


def page(api: ApiCaller, **params: Any) -> dict[str, Any]:
    response = api("GET", f"{NOTEBOOKS}/all", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------- documented answers


@pytest.mark.parametrize("limit", [1, 5, 11, 30, 100])
def test_a_limit_outside_10_20_50_is_refused_with_0104(emulator_api: ApiCaller, limit: int) -> None:
    response = emulator_api("GET", f"{NOTEBOOKS}/all", params={"limit": limit})
    assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.0104")


@pytest.mark.parametrize("limit", [10, 20, 50])
def test_the_documented_limits_are_served(
    emulator_api: ApiCaller, emulator: Emulator, limit: int
) -> None:
    emulator.seed_fleet(size=60, status_weights={S.RUNNING: 1.0})
    body = page(emulator_api, limit=limit)
    assert (body["size"], len(body["data"]), body["total"]) == (limit, limit, 60)


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(offset_reading="page")])
def test_offset_can_be_read_as_a_page_number(emulator_api: ApiCaller, emulator: Emulator) -> None:
    records = emulator.seed_fleet(size=25, status_weights={S.RUNNING: 1.0})
    pages = [page(emulator_api, limit=10, offset=k, sort_dir="ASC") for k in range(3)]
    assert [p["current"] for p in pages] == [0, 1, 2]
    assert [n["id"] for p in pages for n in p["data"]] == [r.id for r in records]


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(offset_reading="page")])
def test_our_client_lists_everything_when_offset_is_a_page_number(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    records = emulator.seed_fleet(size=137, status_weights={S.RUNNING: 1.0})

    async def scenario() -> list[Notebook]:
        async with emulator_client() as client:
            return await client.list_notebooks(ListNotebooksQuery(limit=20), all_users=True)

    listed = asyncio.run(scenario())
    assert sorted(n.id for n in listed) == sorted(r.id for r in records)
    assert emulator.stats["api.list_all"] == 1 + 1 + 5  # first, probe, pages 2..6


def test_requests_the_sdk_can_send_are_accepted(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    body = {
        "name": "sdk-fields",
        "image_id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
        "flavor": "modelarts.vm.cpu.2u",
        "volume": {
            "category": "EVS",
            "ownership": "MANAGED",
            "mount_path": "/home/ma-user/work/",
            "read_only": False,
        },
        "hooks": {"container_hooks": {"post_start": {"type": "SCRIPT", "mode": "ASYNC"}}},
        "public_network_config": {"public_network_type": "SHARED"},
    }
    created = emulator_api("POST", NOTEBOOKS, json=body)
    assert created.status_code == 200, created.text
    notebook_id = created.json()["id"]
    emulator.advance(10)
    assert emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/stop").status_code == 200
    emulator.advance(5)
    update = {
        "custom_spec": {"cpu": 2, "memory": 8192, "arch": "X86_64", "category": "CPU"},
        "affinity": {
            "preferred_during_scheduling_ignored_during_execution": [
                {"key": "zone", "operator": "In", "values": ["a"], "weight": 10}
            ]
        },
        "public_network_config": {"public_network_type": "FORBIDDEN"},
    }
    updated = emulator_api("PUT", f"{NOTEBOOKS}/{notebook_id}", json=update)
    assert updated.status_code == 200, updated.text
    tags = {"tags": [{"key": "チーム", "value": "データ"}]}
    tagged = emulator_api("POST", f"{NOTEBOOKS}/{notebook_id}/tags/create", json=tags)
    assert tagged.status_code == 204, tagged.text
    shown = Notebook.model_validate(emulator_api("GET", f"{NOTEBOOKS}/{notebook_id}").json())
    assert shown.tag("チーム") == "データ"


# ---------------------------------------------------------------- loose replies


def test_loose_choices_follow_the_seed_and_the_rate() -> None:
    ids = [f"nb-{i:04d}" for i in range(2000)]
    first = LooseReplies(0.05, seed=7)
    again = LooseReplies(0.05, seed=7)
    other = LooseReplies(0.05, seed=8)
    chosen = [first.looseness(i) for i in ids]
    assert chosen == [again.looseness(i) for i in reversed(ids)][::-1]  # order does not matter
    assert chosen != [other.looseness(i) for i in ids]
    loose = [c for c in chosen if c is not None]
    assert 60 <= len(loose) <= 140  # about 5 % of 2000
    assert set(Counter(loose)) == set(Looseness)
    assert LooseReplies(0.0).looseness("nb") is None
    assert LooseReplies(0.0).looseness("nb", every=True) is not None
    with pytest.raises(ValueError, match="within"):
        LooseReplies(1.5)


def test_each_looseness_changes_the_reply_as_documented(emulator: Emulator) -> None:
    record = emulator.seed_fleet(size=1, status_weights={S.RUNNING: 1.0})[0]
    body = record.to_json(EMULATOR_BASE_URL)
    loose = LooseReplies(1.0)
    by_kind: dict[Looseness, dict[str, Any]] = {}
    for seed in range(200):
        loose.set(1.0, seed=seed)
        kind = loose.looseness(record.id)
        assert kind is not None
        by_kind.setdefault(kind, loose.notebook(body, in_list=True))
    assert set(by_kind) == set(Looseness)

    unknown = by_kind[Looseness.UNKNOWN_VALUES]
    assert unknown["feature"] == UNKNOWN_PREFIX + "NOTEBOOK"
    assert unknown["lease"]["type"] == UNKNOWN_PREFIX + "TIMING"
    assert unknown["volume"]["category"] == UNKNOWN_PREFIX + "EVS"
    assert unknown["status"] == "RUNNING"  # statuses stay: they decide what the keeper does
    nulls = by_kind[Looseness.NULLS]
    assert nulls["volume"] is None and nulls["image"] is None and nulls["endpoints"] is None
    assert nulls["tags"] == body["tags"]  # tags carry the owner: never nulled when set
    assert EXTRA_FIELD in by_kind[Looseness.EXTRA_FIELDS]
    assert EXTRA_FIELD in by_kind[Looseness.EXTRA_FIELDS]["lease"]
    broken = by_kind[Looseness.BROKEN]
    assert broken["id"] == record.id
    page = NotebookPage.model_validate({"data": [broken, unknown, nulls]})
    assert [r.notebook_id for r in page.unreadable] == [record.id]
    assert len(page.data) == 2
    assert record.id in loose.broken_ids


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(loose_rate=0.2, seed=3)])
def test_every_loose_reply_is_readable_except_broken_records(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    records = emulator.seed_fleet(size=200, status_weights={S.RUNNING: 1.0})
    pages = [NotebookPage.model_validate(page(emulator_api, limit=50, offset=k)) for k in (0, 50)]
    pages += [
        NotebookPage.model_validate(page(emulator_api, limit=50, offset=k)) for k in (100, 150)
    ]
    unreadable = {r.notebook_id for p in pages for r in p.unreadable}
    assert unreadable == emulator.loose.broken_ids
    assert 3 <= len(unreadable) <= 25  # a quarter of a fifth of 200 is 10
    readable = {n.id for p in pages for n in p.data}
    assert readable | unreadable == {r.id for r in records}
    odd = [n for p in pages for n in p.data if n.feature is not None and not n.feature.is_known]
    assert odd  # unknown enum values came through, readable
    for record in records[:40]:  # single replies: never broken
        shown = emulator_api("GET", f"{NOTEBOOKS}/{record.id}")
        assert Notebook.model_validate(shown.json()).id == record.id
        lease = emulator_api("GET", f"{NOTEBOOKS}/{record.id}/lease")
        Lease.model_validate(lease.json())
    assert emulator.snapshot()["loose_replies"]["rate"] == 0.2


def test_an_empty_loose_page_answers_data_null(emulator_api: ApiCaller, emulator: Emulator) -> None:
    emulator.set_loose_rate(0.5)
    body = page(emulator_api, limit=10)
    assert body["data"] is None and body["total"] == 0
    assert NotebookPage.model_validate(body).data == []


def test_a_scripted_loose_fault_loosens_one_whole_reply(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.seed_fleet(size=30, status_weights={S.RUNNING: 1.0})
    emulator.inject(FaultKind.LOOSE, path=r"/notebooks/all$")
    loose = page(emulator_api, limit=20)
    exact = page(emulator_api, limit=20)
    assert all(n.get("id") for n in loose["data"])
    assert EXTRA_FIELD in loose and EXTRA_FIELD not in exact
    assert sum(EXTRA_FIELD in n or n.get("volume") is None for n in exact["data"]) == 0
    assert emulator.faults.injected[FaultKind.LOOSE] == 1


def test_our_client_reports_every_broken_record_and_yields_the_rest(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    records = emulator.seed_fleet(size=300, status_weights={S.RUNNING: 1.0})
    emulator.set_loose_rate(0.1, seed=11)
    reported: list[UnreadableNotebook] = []

    async def scenario() -> list[Notebook]:
        async with emulator_client() as client:
            return await client.list_notebooks(
                ListNotebooksQuery(status=S.RUNNING, limit=50),
                all_users=True,
                on_unreadable=reported.append,
            )

    listed = asyncio.run(scenario())
    broken = emulator.loose.broken_ids
    assert broken and {r.notebook_id for r in reported} == broken
    assert len(reported) == len(broken)  # once each
    assert {n.id for n in listed} == {r.id for r in records} - broken


def test_loose_replies_are_set_by_the_control_route_and_the_command_line(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(
            transport=emulator.asgi_transport(), base_url=EMULATOR_BASE_URL
        ) as client:
            response = await client.post("/_emulator/faults", json={"loose_rate": 0.05, "seed": 9})
            body: dict[str, Any] = response.json()
            return body

    state = asyncio.run(go())
    assert state["loose_replies"]["rate"] == 0.05 and emulator.loose.seed == 9
    args = build_parser().parse_args(["--loose-rate", "0.1", "--not-found-status", "404"])
    config = config_from(args)
    assert (config.loose_rate, config.not_found_status, config.offset_reading) == (
        0.1,
        404,
        "record",
    )
    monkeypatch.setenv("EMULATOR_LOOSE_RATE", "0.25")
    monkeypatch.setenv("EMULATOR_OFFSET_READING", "page")
    config = config_from(build_parser().parse_args([]))
    assert (config.loose_rate, config.not_found_status, config.offset_reading) == (
        0.25,
        400,
        "page",
    )
    emulator_from_config = Emulator(config, clock=SimClock.stepped(EMULATOR_START))
    assert emulator_from_config.loose.rate == 0.25


# ---------------------------------------------------------------- module structure


def _local_imports(path: Path) -> set[str]:
    """Sibling modules `path` imports (`from .x import`), wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_emulator_package_has_no_import_cycle() -> None:
    graph = {p.stem: _local_imports(p) for p in EMULATOR_PACKAGE.glob("*.py")}
    graph.pop("__init__")
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, " -> ".join([*visiting, module])
        if module in done:
            return
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert {"app", "core", "engine", "machine", "listing", "records"} <= done


def test_no_emulator_module_is_longer_than_500_lines() -> None:
    lengths = {p.name: len(p.read_text().splitlines()) for p in EMULATOR_PACKAGE.glob("*.py")}
    assert max(lengths.values()) <= 500, lengths
