"""Our AsyncModelArtsClient passes the same scenarios as the official SDK, in-process.

With the emulator's documented defaults (ModelArts.6309 as HTTP 400) and the other answer seen
(404), with offset read either way, and with loose replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

import pytest

from nbkeeper.modelarts.errors import (
    InvalidRequestError,
    ModelArtsError,
    NotFoundError,
    ThrottledError,
    WrongStateError,
)
from nbkeeper.modelarts.schemas import (
    LeaseType,
    ListNotebooksQuery,
    Notebook,
    NotebookCreateRequest,
    NotebookStatus,
    NotebookUpdateRequest,
)
from nbkeeper_local.emulator import Emulator, EmulatorConfig, FaultKind, Looseness, Timings
from tests.emulator_fixtures import CREATE_BODY, ClientFactory, no_sleep

S = NotebookStatus
HOUR_MS = 3_600_000
T = Timings()
R = TypeVar("R")


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


async def refused(call: Awaitable[object]) -> ModelArtsError:
    with pytest.raises(ModelArtsError) as caught:
        await call
    return caught.value


def create_request(name: str = "client-nb") -> NotebookCreateRequest:
    return NotebookCreateRequest.model_validate(
        {**CREATE_BODY, "name": name, "lease": {"duration": 2 * HOUR_MS, "type": "TIMING"}}
    )


@pytest.mark.parametrize(
    "emulator_config",
    [EmulatorConfig(), EmulatorConfig(not_found_status=404)],
    ids=["6309-as-400", "6309-as-404"],
)
def test_whole_lifecycle(emulator_client: ClientFactory, emulator: Emulator) -> None:
    async def scenario() -> None:
        async with emulator_client() as client:
            created = await client.create_notebook(create_request())
            assert created.status is S.CREATING
            emulator.advance(T.create_s)

            mine = await client.list_notebooks()
            assert [n.id for n in mine] == [created.id]
            running = await client.list_notebooks(
                ListNotebooksQuery(status=S.RUNNING, name="client"), all_users=True
            )
            assert [n.id for n in running] == [created.id]

            shown = await client.show_notebook(created.id)
            assert shown.status is S.RUNNING and shown.server_base and shown.token

            lease = await client.show_lease(created.id)
            assert (lease.duration, lease.type) == (2 * HOUR_MS, LeaseType.TIMING)
            emulator.advance(600)
            renewed = await client.renew_lease(created.id, 3 * HOUR_MS)
            assert renewed is not None
            assert renewed.duration == (T.create_s + 600) * 1000 + 3 * HOUR_MS

            assert (await client.stop_notebook(created.id)).status is S.STOPPING
            emulator.advance(T.stop_s)
            updated = await client.update_notebook(
                created.id,
                NotebookUpdateRequest(name="client-renamed", flavor="modelarts.vm.cpu.8u"),
            )
            assert (updated.name, updated.flavor) == ("client-renamed", "modelarts.vm.cpu.8u")

            started = await client.start_notebook(created.id, HOUR_MS, LeaseType.TIMING)
            assert started.status is S.STARTING
            emulator.advance(T.start_s)
            assert (await client.show_notebook(created.id)).status is S.RUNNING

            await client.add_tags(created.id, {"owner": "alice", "env": "dev"})
            summary = await client.tag_summary()
            assert sorted((t.key, t.values) for t in summary.tags) == [
                ("env", ["dev"]),
                ("owner", ["alice"]),
            ]
            await client.delete_tags(created.id, {"env": None})
            tagged = await client.show_notebook(created.id)
            assert [(t.key, t.value) for t in tagged.tags or []] == [("owner", "alice")]

            flavors = await client.list_flavors()
            assert "modelarts.vm.cpu.2u" in {f.id for f in flavors.flavors}

            deleted = await client.delete_notebook(created.id)
            assert deleted is not None and deleted.status is S.DELETING
            emulator.advance(T.delete_s)
            gone = await refused(client.show_notebook(created.id))
            assert isinstance(gone, NotFoundError)
            not_found = emulator.config.not_found_status
            assert (gone.error_code, gone.status_code) == ("ModelArts.6309", not_found)
            assert gone.request_id

    run(scenario())


def test_illegal_transitions_raise_wrong_state(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    async def scenario() -> list[tuple[type[ModelArtsError], str | None]]:
        async with emulator_client() as client:
            notebook_id = (await client.create_notebook(create_request())).id
            emulator.advance(T.create_s)
            errors = [
                await refused(client.start_notebook(notebook_id)),
                await refused(client.update_notebook(notebook_id, NotebookUpdateRequest(name="x"))),
            ]
            await client.stop_notebook(notebook_id)
            errors.append(await refused(client.stop_notebook(notebook_id)))
            emulator.advance(T.stop_s)
            errors += [
                await refused(client.stop_notebook(notebook_id)),
                await refused(client.show_lease(notebook_id)),
                await refused(client.renew_lease(notebook_id, HOUR_MS)),
            ]
            return [(type(e), e.error_code) for e in errors]

    assert run(scenario()) == [
        (WrongStateError, "ModelArts.6305"),
        (WrongStateError, "ModelArts.6347"),
        (WrongStateError, "ModelArts.6308"),
        (WrongStateError, "ModelArts.6307"),
        (WrongStateError, "ModelArts.6327"),
        (WrongStateError, "ModelArts.6327"),
    ]


def test_paging_over_a_seeded_fleet_returns_every_notebook_once(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    records = emulator.seed_fleet(size=537, status_weights={S.RUNNING: 1.0})

    async def scenario() -> list[Notebook]:
        async with emulator_client() as client:
            return await client.list_notebooks(
                ListNotebooksQuery(status=S.RUNNING, limit=50), all_users=True
            )

    listed = run(scenario())
    assert sorted(n.id for n in listed) == sorted(r.id for r in records)


def test_client_retries_through_scripted_throttling(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    emulator.inject(FaultKind.THROTTLE, count=2)
    emulator.inject(FaultKind.ERROR_503, count=1)

    async def scenario() -> int:
        async with emulator_client(sleep=no_sleep) as client:
            return len(await client.list_notebooks())

    assert run(scenario()) == 0
    assert emulator.faults.scripted_left == 0


def test_client_gives_up_when_throttling_persists(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    emulator.inject(FaultKind.THROTTLE, count=100)

    async def scenario() -> ModelArtsError:
        async with emulator_client(sleep=no_sleep) as client:
            return await refused(client.show_notebook("any"))

    error = run(scenario())
    assert isinstance(error, ThrottledError) and error.retry_after == 2


def test_out_of_range_lease_is_caught(emulator_client: ClientFactory, emulator: Emulator) -> None:
    async def scenario() -> ModelArtsError:
        async with emulator_client() as client:
            notebook_id = (await client.create_notebook(create_request())).id
            emulator.advance(T.create_s)
            return await refused(client.renew_lease(notebook_id, 80 * HOUR_MS))

    assert isinstance(run(scenario()), InvalidRequestError)


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(offset_reading="page")])
def test_paging_when_offset_is_a_page_number(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    records = emulator.seed_fleet(size=537, status_weights={S.RUNNING: 1.0})

    async def scenario() -> list[Notebook]:
        async with emulator_client() as client:
            return await client.list_notebooks(
                ListNotebooksQuery(status=S.RUNNING, limit=50), all_users=True
            )

    listed = run(scenario())
    assert sorted(n.id for n in listed) == sorted(r.id for r in records)


@pytest.mark.parametrize(
    "emulator_config",
    [EmulatorConfig(loose_rate=1.0, loose_kinds=(k,)) for k in Looseness],
    ids=[k.value for k in Looseness],
)
def test_operations_on_one_notebook_read_loose_replies(
    emulator_client: ClientFactory, emulator: Emulator
) -> None:
    async def scenario() -> tuple[Notebook, Notebook, Notebook]:
        async with emulator_client() as client:
            created = await client.create_notebook(create_request())
            emulator.advance(T.create_s)
            shown = await client.show_notebook(created.id)
            lease = await client.show_lease(created.id)
            assert lease.duration == 2 * HOUR_MS
            assert await client.renew_lease(created.id, 3 * HOUR_MS) is not None
            stopped = await client.stop_notebook(created.id)
            return created, shown, stopped

    created, shown, stopped = run(scenario())
    assert (created.status, shown.status, stopped.status) == (S.CREATING, S.RUNNING, S.STOPPING)
    assert shown.tag("owner") is None  # tags were empty, null or not
