"""Notebook records the client could not read: counted, reported everywhere, never acted on.

The client reports them through `iter_notebooks(..., on_unreadable=...)` (issue 9); here a fake
client wraps the emulator's and reports two broken records around the readable ones.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from nbkeeper.jupyter import JupyterProber
from nbkeeper.keeper.messages import summary_message
from nbkeeper.keeper.passes import KeeperClient, OnUnreadable, run_pass
from nbkeeper.keeper.report import PassReport, pass_metrics, summary_worth_posting
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.retry import RetryPolicy
from nbkeeper.modelarts.schemas import ListNotebooksQuery, Notebook
from nbkeeper_local.emulator import ActivityPattern, Emulator
from nbkeeper_local.plan import print_table, unreadable_row
from tests.emulator_fixtures import EMULATOR_BASE_URL, PROJECT_ID
from tests.unit.test_keeper import POLICY, PROJECT, RecordingNotifier, create
from tests.unit.test_keeper_messages import assert_valid_blocks


@dataclass(frozen=True)
class Unreadable:
    """What the client hands `on_unreadable` (its `UnreadableNotebook`)."""

    position: int
    notebook_id: str | None
    reason: str


BROKEN = "broken-<1>"


class WithBrokenRecords:
    """The emulator's client, with one unreadable record before the readable ones and one
    without a readable id after them."""

    def __init__(self, inner: AsyncModelArtsClient) -> None:
        self.inner = inner
        self.asked_to_report = False

    async def iter_notebooks(
        self,
        query: ListNotebooksQuery | None = None,
        all_users: bool = False,
        *,
        on_unreadable: OnUnreadable | None = None,
    ) -> AsyncIterator[Notebook]:
        assert on_unreadable is not None
        self.asked_to_report = True
        on_unreadable(Unreadable(0, BROKEN, "feature: not a string"))
        position = 1
        async for notebook in self.inner.iter_notebooks(query, all_users):
            position += 1
            yield notebook
        on_unreadable(Unreadable(position, None, "id: field required"))

    async def renew_lease(self, notebook_id: str, duration_ms: int) -> Any:
        assert notebook_id != BROKEN
        return await self.inner.renew_lease(notebook_id, duration_ms)

    async def stop_notebook(self, notebook_id: str) -> Any:
        assert notebook_id != BROKEN
        return await self.inner.stop_notebook(notebook_id)


def test_unreadable_records_are_reported_and_never_acted_on(
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    emulator_auth: httpx.Auth,
) -> None:
    ids = {name: create(emulator_api, name) for name in ("active", "idle")}
    emulator.advance(120)
    emulator.set_activity(ids["active"], pattern=ActivityPattern.ACTIVE)
    emulator.set_activity(ids["idle"], pattern=ActivityPattern.IDLE, kernels=[])
    emulator.advance(timedelta(minutes=108))  # "active" is prolonged, "idle" warned
    store = MemoryStateStore()
    notifier = RecordingNotifier()
    clients: list[WithBrokenRecords] = []

    async def go() -> PassReport:
        inner = AsyncModelArtsClient(
            EMULATOR_BASE_URL,
            PROJECT_ID,
            emulator_auth,
            transport=emulator_transport,
            retry=RetryPolicy(max_attempts=1),
        )

        def client_for(project: Any) -> KeeperClient:
            clients.append(WithBrokenRecords(inner))
            return clients[-1]

        async with inner, httpx.AsyncClient(transport=emulator_transport) as http:
            return await run_pass(
                [PROJECT], client_for, JupyterProber(http), store, notifier, POLICY, emulator.now()
            )

    report = asyncio.run(go())
    assert clients and clients[0].asked_to_report
    # The readable ones were decided as usual; the broken ones are counted, not decided.
    assert sorted((o.name, o.action.value) for o in report.outcomes) == [
        ("active", "prolong"),
        ("idle", "warn"),
    ]
    assert [(r.notebook_id, r.position) for r in report.unreadable] == [(BROKEN, 0), (None, 3)]
    assert report.projects[0].unreadable == 2
    assert report.summary()["unreadable"] == 2 and report.summary()["notebooks"] == 2
    assert pass_metrics(report)["UnreadableNotebooks"] == 2
    assert all(r.notebook_id != BROKEN for r in store.audit)
    assert (PROJECT_ID, BROKEN) not in store.warnings and [
        n.notebook.id for n in notifier.warnings
    ] == [ids["idle"]]

    # The Slack summary names each by id (escaped) or position.
    message = summary_message(report, POLICY)
    assert_valid_blocks(message)
    text = json.dumps(message)
    assert "broken-&lt;1&gt;" in text and BROKEN not in text
    assert "at position 3 (no readable id)" in text
    assert "feature: not a string" in text

    # `nbkeeper plan`: a line each in the table, an object each in --json.
    out = io.StringIO()
    print_table(report, out)
    table = out.getvalue()
    assert "2 notebook records could not be read:" in table
    assert f"{BROKEN} ({PROJECT_ID}): feature: not a string" in table
    assert "to leave alone, 2 unreadable." in table
    rows = [unreadable_row(r) for r in report.unreadable]
    assert [(r["notebook_id"], r["action"], r["position"]) for r in rows] == [
        (BROKEN, "unreadable", 0),
        (None, "unreadable", 3),
    ]


def test_a_pass_with_an_unreadable_record_is_worth_a_summary() -> None:
    from datetime import UTC, datetime

    from nbkeeper.keeper.report import SkippedRecord

    report = PassReport(at=datetime(2026, 11, 23, 10, tzinfo=UTC), dry_run=False)
    assert not summary_worth_posting(report, "actions")
    report.unreadable.append(SkippedRecord(PROJECT_ID, 3, None, "id: field required"))
    assert summary_worth_posting(report, "actions")
    assert summary_worth_posting(report, "always")
    assert not summary_worth_posting(report, "never")
