"""A keeper pass over 1,000 notebooks while ModelArts answers loosely (unknown enum strings, nulls,
extra fields, unreadable records at 5%): every readable notebook is decided, every broken record
is reported by id and never acted on, and nothing is stopped that a clean run of the same fleet
would not stop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from nbkeeper.jupyter import JupyterProber
from nbkeeper.keeper.decide import Action
from nbkeeper.keeper.passes import run_pass
from nbkeeper.keeper.report import PassReport
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.retry import RetryPolicy
from nbkeeper.records import PendingWarning
from nbkeeper_local.emulator import Emulator
from tests.emulator_fixtures import EMULATOR_BASE_URL, PROJECT_ID
from tests.unit.test_keeper import POLICY, PROJECT, RecordingNotifier

FLEET = 1000
LOOSE_RATE = 0.05


def keeper_pass(
    emulator: Emulator,
    transport: httpx.AsyncBaseTransport,
    auth: httpx.Auth,
    warnings: Mapping[str, PendingWarning],
    *,
    dry_run: bool,
) -> PassReport:
    store = MemoryStateStore()
    for warning in warnings.values():
        store.put_warning(warning)

    async def go() -> PassReport:
        client = AsyncModelArtsClient(
            EMULATOR_BASE_URL,
            PROJECT_ID,
            auth,
            transport=transport,
            retry=RetryPolicy(max_attempts=1),
        )
        async with client, httpx.AsyncClient(transport=transport) as http:
            return await run_pass(
                [PROJECT],
                lambda project: client,
                JupyterProber(http),
                store,
                RecordingNotifier(),
                POLICY,
                emulator.now(),
                dry_run=dry_run,
            )

    return asyncio.run(go())


def actions(report: PassReport) -> dict[str, Action]:
    return {o.notebook_id: o.action for o in report.outcomes}


def test_a_loose_fleet_is_decided_like_a_clean_one(
    emulator: Emulator,
    emulator_transport: httpx.AsyncBaseTransport,
    emulator_auth: httpx.Auth,
) -> None:
    emulator.seed_fleet(size=FLEET, seed=11)
    emulator.advance(timedelta(minutes=30))
    running = {r.id for r in emulator.store.projects[PROJECT_ID].records.values()}

    # A clean pass finds the idle notebooks; warnings due now turn the next pass's into stops.
    first = keeper_pass(emulator, emulator_transport, emulator_auth, {}, dry_run=True)
    now = emulator.now()
    due = {
        o.notebook_id: PendingWarning(
            project_id=PROJECT_ID,
            notebook_id=o.notebook_id,
            kind=o.decision.warning_kind or "idle",
            warned_at=now - timedelta(seconds=1),
            stop_after=now,
        )
        for o in first.outcomes
        if o.action is Action.WARN
    }
    clean = keeper_pass(emulator, emulator_transport, emulator_auth, due, dry_run=True)
    clean_stops = {i for i, a in actions(clean).items() if a is Action.STOP}
    assert clean.unreadable == [] and len(clean.outcomes) >= FLEET // 2
    assert clean_stops, "the comparison needs stops to compare"

    emulator.loose.set(LOOSE_RATE, seed=5)
    loose = keeper_pass(emulator, emulator_transport, emulator_auth, due, dry_run=True)
    broken = set(emulator.loose.broken_ids)
    decided = actions(loose)

    assert broken, "5% of 1,000 should break some records"
    assert {r.notebook_id for r in loose.unreadable} == broken  # each reported by its id
    assert loose.summary()["unreadable"] == len(broken)
    assert not broken & set(decided)  # never decided, so never acted on
    assert set(decided) | broken == set(actions(clean))  # every readable one decided
    loose_stops = {i for i, a in decided.items() if a is Action.STOP}
    assert loose_stops <= clean_stops
    assert loose_stops == clean_stops - broken  # loose values alone change no stop

    # Acting for real: the broken notebooks are left exactly as they were.
    before: dict[str, Any] = {
        i: (emulator.find(i).status, emulator.find(i).lease_duration) for i in broken
    }
    keeper_pass(emulator, emulator_transport, emulator_auth, due, dry_run=False)
    assert {i: (emulator.find(i).status, emulator.find(i).lease_duration) for i in broken} == (
        before
    )
    assert running >= broken


def test_stops_during_a_listing_skip_no_notebook(
    emulator: Emulator,
    emulator_transport: httpx.AsyncBaseTransport,
    emulator_auth: httpx.Auth,
) -> None:
    """A stop takes its notebook out of the RUNNING listing; were it made while later pages
    load, those pages would shift by one and a notebook would go unseen."""
    from nbkeeper.modelarts.schemas import NotebookStatus
    from nbkeeper_local.emulator import ActivityPattern

    emulator.seed_fleet(
        size=160,
        status_weights={NotebookStatus.RUNNING: 1.0},
        activity_weights={ActivityPattern.IDLE: 1.0},
        keep_tag_fraction=0.0,
        seed=3,
    )
    emulator.advance(timedelta(minutes=70))
    now = emulator.now()
    due = {
        record.id: PendingWarning(
            project_id=PROJECT_ID,
            notebook_id=record.id,
            kind="idle",
            warned_at=now - timedelta(seconds=1),
            stop_after=now,
        )
        for record in emulator.store.projects[PROJECT_ID].records.values()
    }
    running = {i for i in due if emulator.find(i).status is NotebookStatus.RUNNING}
    assert len(running) > 100  # more than two pages of 50
    report = keeper_pass(emulator, emulator_transport, emulator_auth, due, dry_run=False)
    assert {o.notebook_id for o in report.outcomes} == running  # every one seen
    assert sum(o.action is Action.STOP for o in report.outcomes) > 50  # stops on page one
