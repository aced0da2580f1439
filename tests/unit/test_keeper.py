"""run_pass against the in-process emulator with the in-memory store and a recording notifier."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from nbkeeper.commands import SweepProjectCommand
from nbkeeper.jupyter import JupyterProber
from nbkeeper.keeper.decide import Action, Decision
from nbkeeper.keeper.passes import KeeperClient, run_pass, sweep_command
from nbkeeper.keeper.policy import Policy, load_policy_text
from nbkeeper.keeper.report import (
    Delivered,
    NotebookOutcome,
    PassReport,
    ProjectReport,
    WarningNotice,
    summary_worth_posting,
)
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.retry import RetryPolicy
from nbkeeper.modelarts.schemas import HOUR_MS, NotebookStatus
from nbkeeper.records import Owner, PendingWarning, ProjectRef, Reservation
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import EMULATOR_BASE_URL, PROJECT_ID

PROJECT = ProjectRef(region="cn-north-4", project_id=PROJECT_ID)
POLICY = load_policy_text("prices: {modelarts.vm.cpu.2u: 0.5}\ndefault_price_per_hour: 1.0")
HOUR = 3600


class RecordingNotifier:
    def __init__(self, fail: bool = False) -> None:
        self.warnings: list[WarningNotice] = []
        self.summaries: list[PassReport] = []
        self.fail = fail

    async def warn(self, notice: WarningNotice) -> Delivered:
        if self.fail:
            raise ConnectionError("slack down")
        self.warnings.append(notice)
        return Delivered(channel=notice.owner or "#fallback", message_ts="1.0")

    async def summary(self, report: PassReport) -> None:
        self.summaries.append(report)


def create(emulator_api: Any, name: str, hours: int = 2) -> str:
    reply = emulator_api(
        "POST",
        f"/v1/{PROJECT_ID}/notebooks",
        json={
            "name": name,
            "image_id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
            "flavor": "modelarts.vm.cpu.2u",
            "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 5},
            "duration": hours * HOUR * 1000,
        },
    )
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["id"])


def run(
    emulator: Emulator,
    transport: httpx.AsyncBaseTransport,
    auth: httpx.Auth,
    store: MemoryStateStore,
    notifier: RecordingNotifier,
    policy: Policy = POLICY,
    **kwargs: Any,
) -> PassReport:
    async def go() -> PassReport:
        # One attempt: a retry would back off in real time, and tests never sleep.
        client = AsyncModelArtsClient(
            EMULATOR_BASE_URL,
            PROJECT_ID,
            auth,
            transport=transport,
            retry=RetryPolicy(max_attempts=1),
        )

        def client_for(project: ProjectRef) -> KeeperClient:
            assert project == PROJECT
            return client

        async with client, httpx.AsyncClient(transport=transport) as http:
            return await run_pass(
                [PROJECT],
                client_for,
                JupyterProber(http),
                store,
                notifier,
                policy,
                emulator.now(),
                **kwargs,
            )

    return asyncio.run(go())


@pytest.fixture
def world(
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    emulator_auth: httpx.Auth,
) -> dict[str, Any]:
    ids = {
        name: create(emulator_api, name, hours=4 if name == "idle" else 2)
        for name in ("active", "busy", "idle", "reserved", "tagged", "down")
    }
    emulator.advance(120)  # CREATING -> RUNNING
    assert all(emulator.find(i).status is NotebookStatus.RUNNING for i in ids.values())
    emulator.set_activity(ids["active"], pattern=ActivityPattern.ACTIVE)
    emulator.set_activity(ids["busy"], pattern=ActivityPattern.BUSY)
    for name in ("idle", "reserved", "tagged"):
        emulator.set_activity(ids[name], pattern=ActivityPattern.IDLE, kernels=[])
    emulator.set_activity(ids["down"], pattern=ActivityPattern.UNREACHABLE)
    emulator.find(ids["tagged"]).tags["nbkeeper.keep"] = "true"
    store = MemoryStateStore()
    store.put_owner(
        Owner(
            project_id=PROJECT_ID, notebook_id=ids["idle"], user_id="U1", created_at=emulator.now()
        )
    )
    return {
        "ids": ids,
        "store": store,
        "transport": emulator_transport,
        "auth": emulator_auth,
    }


def by_name(report: PassReport) -> dict[str, Action]:
    return {o.name or "": o.action for o in report.outcomes}


def due_idle_warning(emulator: Emulator, notebook_id: str) -> PendingWarning:
    """An idle warning sent 30 minutes ago whose lead time ran out 15 minutes ago."""
    return PendingWarning(
        project_id=PROJECT_ID,
        notebook_id=notebook_id,
        kind="idle",
        warned_at=emulator.now() - timedelta(minutes=30),
        stop_after=emulator.now() - timedelta(minutes=15),
    )


def test_a_day_of_passes(emulator: Emulator, world: dict[str, Any]) -> None:
    ids, store = world["ids"], world["store"]
    notifier = RecordingNotifier()

    def go(**kwargs: Any) -> PassReport:
        return run(emulator, world["transport"], world["auth"], store, notifier, **kwargs)

    # 09:00 + 2 min: everything just started; the lease has ~2 h. Nobody is idle yet.
    first = go()
    assert set(by_name(first).values()) == {Action.NOOP}
    assert first.summary()["notebooks"] == 6

    # 10:50: 2 h leases end within 20 min: active, busy, tagged and reserved are prolonged;
    # idle (a 4 h lease) is warned.
    emulator.advance(timedelta(minutes=108))
    store.put_reservation(
        Reservation(
            project_id=PROJECT_ID,
            notebook_id=ids["reserved"],
            until=emulator.now() + timedelta(hours=5),
            by_user="U2",
        )
    )
    second = go()
    actions = by_name(second)
    assert actions["active"] is Action.PROLONG
    assert actions["busy"] is Action.PROLONG
    assert actions["tagged"] is Action.PROLONG
    assert actions["reserved"] is Action.PROLONG
    assert actions["idle"] is Action.WARN
    assert actions["down"] is Action.NOOP  # Jupyter unreachable: never warned or stopped
    assert [n.notebook.id for n in notifier.warnings] == [ids["idle"]]
    assert notifier.warnings[0].owner == "U1"
    assert store.warnings[(PROJECT_ID, ids["idle"])].kind == "idle"
    lease = emulator.find(ids["active"])
    assert lease.deadline_ms >= int((emulator.now() + timedelta(hours=2)).timestamp() * 1000) - 1000

    # 11:06: the warning's lead time (30 min) runs until 11:20; the idle notebook waits.
    emulator.advance(timedelta(minutes=16))
    waiting = go()
    assert by_name(waiting)["idle"] is Action.NOOP
    assert emulator.find(ids["idle"]).status is NotebookStatus.RUNNING

    # 11:21: the lead time has passed; the idle notebook is stopped.
    emulator.advance(timedelta(minutes=15))
    third = go()
    assert by_name(third)["idle"] is Action.STOP
    emulator.advance(60)
    assert emulator.find(ids["idle"]).status is NotebookStatus.STOPPED
    assert (PROJECT_ID, ids["idle"]) not in store.warnings
    stop = next(o for o in third.outcomes if o.action is Action.STOP)
    assert stop.decision.hours_saved > 0
    assert stop.cost_saved == pytest.approx(stop.decision.hours_saved * 0.5)
    assert third.summary()["stop"] == 1

    audit = store.list_audit(PROJECT_ID, emulator.now())
    trail = [(r.notebook_name, r.action, r.outcome) for r in audit]
    assert ("idle", "warn", "ok") in trail
    assert ("idle", "stop", "ok") in trail
    assert ("active", "prolong", "ok") in trail
    assert all(r.actor == "lease-keeper" and r.reason for r in audit)
    # Summaries (default `summary: actions`): the quiet passes post none.
    assert [s.at for s in notifier.summaries] == [second.at, third.at]


def test_dry_run_acts_on_nothing(emulator: Emulator, world: dict[str, Any]) -> None:
    ids, store = world["ids"], world["store"]
    emulator.advance(timedelta(minutes=108))
    notifier = RecordingNotifier()
    before = emulator.find(ids["active"]).deadline_ms
    report = run(emulator, world["transport"], world["auth"], store, notifier, dry_run=True)
    assert by_name(report)["active"] is Action.PROLONG
    assert by_name(report)["idle"] is Action.WARN
    assert all(o.outcome in ("ok", "dry-run") for o in report.outcomes)
    assert emulator.find(ids["active"]).deadline_ms == before
    assert notifier.warnings == []
    assert store.warnings == {}
    assert all(r.dry_run for r in store.audit)
    assert report.dry_run


def test_a_warning_nobody_received_is_not_recorded(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    store = world["store"]
    emulator.advance(timedelta(minutes=108))
    report = run(emulator, world["transport"], world["auth"], store, RecordingNotifier(fail=True))
    idle = next(o for o in report.outcomes if o.name == "idle")
    assert idle.outcome == "failed: warning not delivered (ConnectionError)"
    assert store.warnings == {}
    # "reserved" has no reservation in this test: idle too, and its warning failed as well.
    assert report.summary()["failures"] == 2
    assert report.summary()["warn"] == 0


def test_became_active_clears_the_warning(emulator: Emulator, world: dict[str, Any]) -> None:
    ids, store = world["ids"], world["store"]
    store.put_warning(due_idle_warning(emulator, ids["active"]))
    report = run(emulator, world["transport"], world["auth"], store, RecordingNotifier())
    assert by_name(report)["active"] is Action.NOOP
    assert (PROJECT_ID, ids["active"]) not in store.warnings
    assert report.cleared_warnings == 1
    assert [r.action for r in store.audit] == ["clear-warning"]


def test_stop_racing_a_person_is_skipped_not_failed(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    ids, store = world["ids"], world["store"]
    emulator.advance(timedelta(hours=1, minutes=30))  # idle for long enough
    # Warned during this run (a warning from before the notebook started would not count).
    store.put_warning(due_idle_warning(emulator, ids["idle"]))

    class StoppedMeanwhile:
        """The client, but someone stops the notebook just before the keeper does."""

        def __init__(self, inner: KeeperClient) -> None:
            self.inner = inner

        def iter_notebooks(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.iter_notebooks(*args, **kwargs)

        async def renew_lease(self, notebook_id: str, duration_ms: int) -> Any:
            return await self.inner.renew_lease(notebook_id, duration_ms)

        async def stop_notebook(self, notebook_id: str) -> Any:
            await self.inner.stop_notebook(notebook_id)
            return await self.inner.stop_notebook(notebook_id)  # now STOPPING: 6308

    async def go() -> PassReport:
        client = AsyncModelArtsClient(
            EMULATOR_BASE_URL,
            PROJECT_ID,
            world["auth"],
            transport=world["transport"],
            retry=RetryPolicy(max_attempts=1),
        )
        async with client, httpx.AsyncClient(transport=world["transport"]) as http:
            return await run_pass(
                [PROJECT],
                lambda p: StoppedMeanwhile(client),
                JupyterProber(http),
                store,
                RecordingNotifier(),
                POLICY,
                emulator.now(),
            )

    report = asyncio.run(go())
    idle = next(o for o in report.outcomes if o.name == "idle")
    assert idle.action is Action.STOP
    assert idle.outcome == "skipped: wrong state"
    assert not idle.failed


def test_listing_failure_is_reported_per_project(emulator: Emulator, world: dict[str, Any]) -> None:
    from nbkeeper_local.emulator import FaultKind

    emulator.inject(FaultKind.ERROR_500, count=50, method="GET")
    report = run(emulator, world["transport"], world["auth"], world["store"], RecordingNotifier())
    assert report.outcomes == []
    assert report.project_errors and report.project_errors[0].error
    assert report.summary()["project_errors"] == 1


def test_many_projects_fan_out_one_message_each() -> None:
    projects = [ProjectRef(region="cn-north-4", project_id=f"p{i}") for i in range(4)]
    policy = load_policy_text("max_projects_per_pass: 3")
    sent: list[SweepProjectCommand] = []
    now = datetime.fromisoformat("2026-11-23T10:00:00+00:00")

    def client_for(project: ProjectRef) -> KeeperClient:
        raise AssertionError("a fan-out pass lists nothing itself")

    class NoProber:
        async def probe(self, notebook: Any, idle_after: Any = None) -> Any:
            raise AssertionError("not probed")

    report = asyncio.run(
        run_pass(
            projects,
            client_for,
            NoProber(),
            MemoryStateStore(),
            None,
            policy,
            now,
            enqueue=sent.append,
        )
    )
    assert [c.project.project_id for c in sent if c.project] == ["p0", "p1", "p2", "p3"]
    assert all(c.at == now and c.type == "sweep-project" for c in sent)
    assert len({c.command_id for c in sent}) == 4
    assert report.fanned_out == projects
    assert report.outcomes == []


def test_sweep_command_ids_are_stable_per_project_and_time() -> None:
    now = datetime.fromisoformat("2026-11-23T10:00:00+00:00")
    first = sweep_command(PROJECT, now)
    assert first.command_id == sweep_command(PROJECT, now).command_id
    assert first.command_id == f"sweep.{PROJECT_ID}.20261123T100000Z"
    assert first.command_id != sweep_command(PROJECT, now + timedelta(minutes=5)).command_id


def test_a_dry_pass_fans_out_dry_sweeps() -> None:
    now = datetime.fromisoformat("2026-11-23T10:00:00+00:00")
    dry, real = sweep_command(PROJECT, now, dry_run=True), sweep_command(PROJECT, now)
    assert dry.dry_run is True and real.dry_run is None  # absent: the worker's policy decides
    assert dry.command_id == f"{real.command_id}.dry"  # Idempotency keeps them apart


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        asyncio.run(
            run_pass(
                [], lambda p: None, None, MemoryStateStore(), None, POLICY, datetime(2026, 1, 1)
            )  # type: ignore[arg-type]
        )


def test_off_hours_probes_kernels_against_the_shorter_threshold(
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    emulator_auth: httpx.Auth,
) -> None:
    """Off hours, a notebook quiet for 30 min (past the 15 min off-hours threshold) but with a
    busy kernel is kept: the prober asks for kernels whenever activity is older than the
    threshold that applies now, not the working-hours one."""
    notebook_id = create(emulator_api, "night-run")
    emulator.advance(120)
    now_ms = int(emulator.now().timestamp() * 1000)
    emulator.set_activity(
        notebook_id,
        pattern=ActivityPattern.IDLE,
        last_activity=emulator.now(),
        kernels=[{"execution_state": "busy", "last_activity_ms": now_ms}],
    )
    emulator.advance(30 * 60)
    # An explicit off-hours threshold shorter than the quiet time (the default 60 is not).
    holiday = load_policy_text(
        f"holidays: [{emulator.now().date().isoformat()}]\noff_hours_idle_minutes: 15"
    )
    notifier = RecordingNotifier()
    report = run(emulator, emulator_transport, emulator_auth, MemoryStateStore(), notifier, holiday)
    [outcome] = report.outcomes
    assert outcome.action is not Action.WARN, outcome.decision.reason
    assert "busy kernel" in outcome.decision.reason
    assert notifier.warnings == []


def _report(*actions: tuple[Action, str], project_error: bool = False) -> PassReport:
    report = PassReport(at=datetime.fromisoformat("2026-11-23T10:00:00+00:00"), dry_run=False)
    report.projects.append(
        ProjectReport("cn-north-4", PROJECT_ID, error="server: 503" if project_error else None)
    )
    for index, (action, outcome) in enumerate(actions):
        status, _, note = outcome.partition(": ")
        report.outcomes.append(
            NotebookOutcome(
                PROJECT_ID,
                f"nb{index}",
                None,
                None,
                None,
                Decision(action, "why"),
                status,  # type: ignore[arg-type]
                note or None,
            )
        )
    return report


QUIET = _report((Action.NOOP, "ok"), (Action.PROLONG, "ok"))
WARNED = _report((Action.PROLONG, "ok"), (Action.WARN, "ok"))
STOPPED = _report((Action.STOP, "dry-run"))
FAILED_PROLONG = _report((Action.PROLONG, "failed: server: 503"))
RACED_STOP = _report((Action.STOP, "skipped: wrong_state"))
PROJECT_DOWN = _report(project_error=True)
EMPTY = _report()


@pytest.mark.parametrize(
    ("report", "actions", "always"),
    [
        (QUIET, False, True),  # "0 warned, 0 stopped": no longer posted by default
        (WARNED, True, True),
        (STOPPED, True, True),  # a dry-run stop counts: the summary says it was a dry run
        (FAILED_PROLONG, True, True),
        (RACED_STOP, False, True),  # someone stopped it first: nothing happened, nothing failed
        (PROJECT_DOWN, True, True),
        (EMPTY, False, False),
    ],
)
def test_when_a_summary_is_worth_posting(report: PassReport, actions: bool, always: bool) -> None:
    assert summary_worth_posting(report, "actions") is actions
    assert summary_worth_posting(report, "always") is always
    assert summary_worth_posting(report, "never") is False


@pytest.mark.parametrize(("mode", "posted"), [("actions", 1), ("always", 2), ("never", 0)])
def test_summary_mode_decides_which_passes_post(
    mode: str, posted: int, emulator: Emulator, world: dict[str, Any]
) -> None:
    """A quiet pass (nobody idle yet) and a pass that warns, under each mode."""
    notifier = RecordingNotifier()
    policy = POLICY.model_copy(update={"summary": mode})
    store = world["store"]
    run(emulator, world["transport"], world["auth"], store, notifier, policy)
    emulator.advance(timedelta(minutes=108))  # the idle notebooks are warned
    run(emulator, world["transport"], world["auth"], store, notifier, policy)
    assert notifier.warnings
    assert len(notifier.summaries) == posted


class FlakyStore(MemoryStateStore):
    """The in-memory store, with chosen operations failing as DynamoDB might."""

    def __init__(self, base: MemoryStateStore, *failing: str) -> None:
        super().__init__()
        self.__dict__.update({k: v for k, v in base.__dict__.items() if k != "failing"})
        self.failing = set(failing)

    def _maybe_fail(self, operation: str) -> None:
        if operation in self.failing:
            raise OSError(f"{operation} failed")

    def load_project(self, project_id: str, now: datetime) -> Any:
        self._maybe_fail("load_project")
        return super().load_project(project_id, now)

    def load_notebook(self, project_id: str, notebook_id: str, now: datetime) -> Any:
        self._maybe_fail("load_notebook")
        return super().load_notebook(project_id, notebook_id, now)

    def put_warning(self, warning: PendingWarning) -> None:
        self._maybe_fail("put_warning")
        super().put_warning(warning)

    def delete_warning(self, project_id: str, notebook_id: str) -> None:
        self._maybe_fail("delete_warning")
        super().delete_warning(project_id, notebook_id)

    def record_audit(self, records: Any) -> None:
        self._maybe_fail("record_audit")
        super().record_audit(records)


def test_a_warning_delivered_but_not_recorded_fails_that_notebook_only(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    store = FlakyStore(world["store"], "put_warning")
    emulator.advance(timedelta(minutes=108))
    report = run(emulator, world["transport"], world["auth"], store, RecordingNotifier())
    idle = next(o for o in report.outcomes if o.name == "idle")
    assert idle.outcome == "failed: warning not recorded (OSError)"
    assert len(report.outcomes) == 6
    assert next(o for o in report.outcomes if o.name == "active").outcome == "ok"
    assert store.warnings == {}
    assert ("warn", "failed: warning not recorded (OSError)") in [
        (r.action, r.outcome) for r in store.audit
    ]


def test_a_stop_whose_warning_cannot_be_deleted_is_still_audited_as_done(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    ids = world["ids"]
    store = FlakyStore(world["store"], "delete_warning")
    emulator.advance(timedelta(hours=1, minutes=30))
    store.put_warning(due_idle_warning(emulator, ids["idle"]))
    report = run(emulator, world["transport"], world["auth"], store, RecordingNotifier())
    idle = next(o for o in report.outcomes if o.name == "idle")
    assert idle.action is Action.STOP and idle.outcome == "ok"
    assert emulator.find(ids["idle"]).status is not NotebookStatus.RUNNING
    assert ("stop", "ok") in [(r.action, r.outcome) for r in store.audit]


def test_without_state_every_lease_about_to_end_is_prolonged_and_nothing_is_warned_or_stopped(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    """A reservation nobody can read may keep any notebook: kept ones get extend_by, the others
    (idle, unreachable) the 1 h minimum; the idle one whose lease is not due is left alone."""
    ids = world["ids"]
    world["store"].put_warning(due_idle_warning(emulator, ids["idle"]))  # unreadable below
    store = FlakyStore(world["store"], "load_project")
    emulator.advance(timedelta(minutes=108))  # the 2 h leases end within 20 minutes
    notifier = RecordingNotifier()
    report = run(emulator, world["transport"], world["auth"], store, notifier)
    extended = {o.name: o.decision.extend_ms for o in report.outcomes if o.action is Action.PROLONG}
    assert extended == {
        "active": 2 * HOUR_MS,
        "busy": 2 * HOUR_MS,
        "tagged": 2 * HOUR_MS,
        "reserved": HOUR_MS,  # idle, and its reservation (if any) cannot be read
        "down": HOUR_MS,  # Jupyter unreachable
    }
    assert by_name(report)["idle"] is Action.NOOP  # its 4 h lease is not due
    idle = next(o for o in report.outcomes if o.name == "idle")
    assert idle.decision.reason.startswith("nbkeeper's state is not readable")
    assert notifier.warnings == []
    assert emulator.find(ids["idle"]).status is NotebookStatus.RUNNING
    assert [p.error for p in report.project_errors] == [
        "state not readable: OSError; only prolonged"
    ]


def test_an_audit_that_cannot_be_written_is_reported_not_raised(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    store = FlakyStore(world["store"], "record_audit")
    emulator.advance(timedelta(minutes=108))
    report = run(emulator, world["transport"], world["auth"], store, RecordingNotifier())
    assert by_name(report)["idle"] is Action.WARN
    assert [p.error for p in report.project_errors] == ["audit not recorded: OSError"]


def test_a_notebook_that_cannot_be_decided_fails_alone(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    ids = world["ids"]

    class Breaking(JupyterProber):
        async def probe(self, notebook: Any, idle_after: Any = None) -> Any:
            if notebook.id == ids["busy"]:
                raise RuntimeError("unexpected")
            return await super().probe(notebook, idle_after)

    async def go() -> PassReport:
        client = AsyncModelArtsClient(
            EMULATOR_BASE_URL, PROJECT_ID, world["auth"], transport=world["transport"]
        )
        async with client, httpx.AsyncClient(transport=world["transport"]) as http:
            return await run_pass(
                [PROJECT],
                lambda p: client,
                Breaking(http),
                world["store"],
                RecordingNotifier(),
                POLICY,
                emulator.now(),
            )

    report = asyncio.run(go())
    busy = next(o for o in report.outcomes if o.notebook_id == ids["busy"])
    assert busy.action is Action.NOOP and busy.outcome == "failed: RuntimeError"
    assert len(report.outcomes) == 6 and len(report.failures) == 1


def test_a_stop_is_not_made_when_the_state_cannot_be_read_again(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    ids = world["ids"]
    store = FlakyStore(world["store"], "load_notebook")
    emulator.advance(timedelta(hours=1, minutes=30))
    store.put_warning(due_idle_warning(emulator, ids["idle"]))
    report = run(emulator, world["transport"], world["auth"], store, RecordingNotifier())
    idle = next(o for o in report.outcomes if o.name == "idle")
    assert idle.action is Action.STOP
    assert idle.outcome == "failed: state not re-read before the stop (OSError)"
    assert emulator.find(ids["idle"]).status is NotebookStatus.RUNNING


def test_a_warning_that_changed_during_the_pass_stops_nothing(
    emulator: Emulator, world: dict[str, Any]
) -> None:
    """Someone answered the warning (another pass cleared it, a Stop now ran) between the
    pass's read and its stop: the consistent read sees it and the stop is skipped."""
    ids = world["ids"]

    class ClearedMeanwhile(MemoryStateStore):
        def load_notebook(self, project_id: str, notebook_id: str, now: datetime) -> Any:
            self.warnings.pop((project_id, notebook_id), None)
            return super().load_notebook(project_id, notebook_id, now)

    store = ClearedMeanwhile()
    emulator.advance(timedelta(hours=1, minutes=30))
    store.put_warning(due_idle_warning(emulator, ids["idle"]))
    report = run(emulator, world["transport"], world["auth"], store, RecordingNotifier())
    idle = next(o for o in report.outcomes if o.name == "idle")
    assert idle.outcome == "skipped: warning changed during the pass"
    assert emulator.find(ids["idle"]).status is NotebookStatus.RUNNING
