"""One lease keeper pass: list, probe, decide, act, record, report.

`run_pass` receives everything it touches: a ModelArts client per project, the activity prober,
the state store, the notifier, the policy and `now`. Per project it reads nbkeeper's state in one
batch, lists RUNNING notebooks (the client fetches pages 2..N together once the first has said
how many there are) and starts each notebook's task as soon as the iterator yields it: probe
(bounded by the prober), `decide`, act (bounded by `action_concurrency`, through the client's
retries and rate limit). Failures stay with their notebook or project; a pass always returns a
`PassReport`.

With more projects than `policy.max_projects_per_pass` and an `enqueue` callable, the pass fans
out instead: one `SweepProjectCommand` per project, which the worker turns into a one-project pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from nbkeeper.commands import Requester, SweepProjectCommand
from nbkeeper.explain import failure_note
from nbkeeper.keeper.activity import ActivityResult, Prober, UnknownActivity
from nbkeeper.keeper.decide import Action, Decision, decide
from nbkeeper.keeper.policy import Policy
from nbkeeper.keeper.report import (
    KeeperNotifier,
    NotDelivered,
    NotebookOutcome,
    NullNotifier,
    PassReport,
    ProjectReport,
    SkippedRecord,
    WarningNotice,
    decision_detail,
    summary_worth_posting,
)
from nbkeeper.modelarts.errors import ModelArtsError, NotFoundError, WrongStateError
from nbkeeper.modelarts.schemas import (
    Lease,
    ListNotebooksQuery,
    Notebook,
    NotebookStatus,
)
from nbkeeper.records import AuditRecord, PendingWarning, ProjectRef, ProjectState, StateStore
from nbkeeper.tags import OWNER_TAG
from nbkeeper.timefmt import iso

logger = logging.getLogger(__name__)

ACTOR = "lease-keeper"
LIST_PAGE_SIZE = 50  # the SDK documents 10, 20 or 50


class UnreadableRecord(Protocol):
    """A list record the client could not read as a notebook (the client's
    `UnreadableNotebook`): skipped, counted and reported, never acted on."""

    @property
    def position(self) -> int: ...
    @property
    def notebook_id(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


OnUnreadable = Callable[[UnreadableRecord], None]


class KeeperClient(Protocol):
    """The part of `AsyncModelArtsClient` a pass uses (one client per project)."""

    def iter_notebooks(
        self,
        query: ListNotebooksQuery | None = None,
        all_users: bool = False,
        *,
        on_unreadable: OnUnreadable | None = None,
    ) -> AsyncIterator[Notebook]:
        """Readable notebooks; each record that cannot be read goes to `on_unreadable`."""
        ...

    async def renew_lease(self, notebook_id: str, duration_ms: int) -> Lease | None: ...

    async def stop_notebook(self, notebook_id: str) -> Notebook: ...


Enqueue = Callable[[SweepProjectCommand], None]
ClientFor = Callable[[ProjectRef], KeeperClient]


def sweep_command(project: ProjectRef, now: datetime, dry_run: bool = False) -> SweepProjectCommand:
    """The fan-out message for one project; its id is stable per (project, pass time, dry run).

    A dry pass fans out dry sweeps; otherwise the worker's policy (the same file and overlay)
    decides, so a sweep can only be drier than the pass that sent it, never less dry.
    """
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return SweepProjectCommand(
        command_id=f"sweep.{project.project_id}.{stamp}" + (".dry" if dry_run else ""),
        requested_at=now,
        requested_by=Requester(user_id=ACTOR),
        project=ProjectRef(region=project.region, project_id=project.project_id),
        at=now,
        dry_run=True if dry_run else None,
    )


async def run_pass(
    projects: Sequence[ProjectRef],
    client_for: ClientFor,
    prober: Prober,
    store: StateStore,
    notifier: KeeperNotifier | None,
    policy: Policy,
    now: datetime,
    *,
    at: datetime | None = None,
    dry_run: bool | None = None,
    enqueue: Enqueue | None = None,
    notices: Sequence[str] = (),
) -> PassReport:
    """Run one pass over `projects` at `now` (see the module docstring).

    `now` (the wall clock, `keeper.schedule.pass_time`) drives every decision; `at` (default:
    `now`) is the triggering event's time, used for fan-out ids and audit records only.
    `dry_run` (default: the policy's) decides and reports without renewing, stopping, warning
    or writing warnings; audit records are still written, marked dry-run. `notices` (what keeps
    warnings from reaching people) are repeated in the report and its summary.
    """
    at = now if at is None else at
    if now.tzinfo is None or at.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    dry = policy.dry_run if dry_run is None else dry_run
    report = PassReport(at=at, dry_run=dry, currency=policy.currency, decided_at=now)
    for text in notices:
        report.notice(text)
    notifier = notifier or NullNotifier()
    if enqueue is not None and len(projects) > policy.max_projects_per_pass:
        for project in projects:
            enqueue(sweep_command(project, at, dry))
            report.fanned_out.append(project)
        logger.info("fanned out %d projects", len(projects), extra={"projects": len(projects)})
        return report
    runner = _Pass(client_for, prober, store, notifier, policy, now, dry, report)
    await asyncio.gather(*(runner.project(project) for project in projects))
    if summary_worth_posting(report, policy.summary):
        try:
            await notifier.summary(report)
        except Exception as exc:  # the pass already happened: a failed summary must not undo it
            logger.warning("pass summary not delivered: %s", type(exc).__name__)
    return report


class _Pass:
    def __init__(
        self,
        client_for: ClientFor,
        prober: Prober,
        store: StateStore,
        notifier: KeeperNotifier,
        policy: Policy,
        now: datetime,
        dry_run: bool,
        report: PassReport,
    ) -> None:
        self.client_for = client_for
        self.prober = prober
        self.store = store
        self.notifier = notifier
        self.policy = policy
        self.now = now
        self.at = report.at  # the event's time: audit records
        self.dry_run = dry_run
        self.report = report
        # Kernels are asked for whenever activity is older than the threshold that applies
        # now (shorter off hours), so a busy kernel behind quiet activity is always seen.
        self.idle_after = now - policy.idle_threshold_at(now)
        self.actions = asyncio.Semaphore(policy.action_concurrency)
        # Per project: set once its listing is complete. A stop takes a notebook out of the
        # RUNNING listing, so later pages would shift and skip notebooks: stops wait for it.
        self.listed: dict[str, asyncio.Event] = {}

    async def project(self, project: ProjectRef) -> None:
        summary = ProjectReport(region=project.region, project_id=project.project_id)
        self.report.projects.append(summary)
        audit: list[AuditRecord] = []
        tasks: list[asyncio.Task[NotebookOutcome]] = []
        state_read = True
        try:
            state = self.store.load_project(project.project_id, self.now)
        except Exception as exc:
            # Without reservations and warnings no warning or stop is safe, and no lease may run
            # out because the state table is down: still prolong (decide's rule 5).
            state, state_read = ProjectState(), False
            summary.error = f"state not readable: {type(exc).__name__}; only prolonged"
            logger.error("project %s: %s", project.project_id, summary.error)

        def unreadable(record: UnreadableRecord) -> None:
            skipped = SkippedRecord(
                project_id=project.project_id,
                position=record.position,
                notebook_id=record.notebook_id,
                reason=record.reason,
            )
            self.report.unreadable.append(skipped)
            summary.unreadable += 1
            logger.warning(
                "project %s: notebook %s not readable, left alone: %s",
                project.project_id,
                skipped.label,
                record.reason,
                extra={"notebook_id": record.notebook_id, "position": record.position},
            )

        listed = self.listed.setdefault(project.project_id, asyncio.Event())
        try:
            client = self.client_for(project)
            query = ListNotebooksQuery(status=NotebookStatus.RUNNING, limit=LIST_PAGE_SIZE)
            # Each notebook is probed and decided as soon as the iterator yields it.
            listing = client.iter_notebooks(query, all_users=True, on_unreadable=unreadable)
            async for notebook in listing:
                tasks.append(
                    asyncio.create_task(
                        self.guarded(project, client, state, state_read, notebook, audit)
                    )
                )
        except ModelArtsError as exc:
            # The notebooks already listed are still handled; the rest wait for the next pass.
            summary.error = _joined(summary.error, failure_note(exc))
            logger.error("project %s not fully swept: %s", project.project_id, summary.error)
        finally:
            listed.set()
        summary.notebooks = len(tasks)
        self.report.outcomes.extend(await asyncio.gather(*tasks))
        if audit:
            try:
                self.store.record_audit(audit)
            except Exception as exc:  # the actions happened: report, do not undo the pass
                summary.error = _joined(summary.error, f"audit not recorded: {type(exc).__name__}")
                logger.error("project %s: %s", project.project_id, summary.error)

    async def guarded(
        self,
        project: ProjectRef,
        client: KeeperClient,
        state: ProjectState,
        state_read: bool,
        notebook: Notebook,
        audit: list[AuditRecord],
    ) -> NotebookOutcome:
        """`notebook`, but a failure nobody foresaw fails this notebook only, not the pass."""
        try:
            return await self.notebook(project, client, state, state_read, notebook, audit)
        except Exception as exc:
            logger.exception("notebook %s not handled", notebook.id)
            return NotebookOutcome(
                project_id=project.project_id,
                notebook_id=notebook.id,
                name=notebook.name,
                flavor=notebook.flavor,
                owner=None,
                decision=Decision(Action.NOOP, f"not decided: {type(exc).__name__}"),
                status="failed",
                note=type(exc).__name__,
            )

    async def notebook(
        self,
        project: ProjectRef,
        client: KeeperClient,
        state: ProjectState,
        state_read: bool,
        notebook: Notebook,
        audit: list[AuditRecord],
    ) -> NotebookOutcome:
        activity: ActivityResult
        if notebook.status is NotebookStatus.RUNNING:
            activity = await self.prober.probe(notebook, self.idle_after)
        else:  # the list filter should make this rare; never worth a probe
            activity = UnknownActivity(reason="not running")
        warning = state.warnings.get(notebook.id)
        decision = decide(
            notebook,
            activity,
            state.reservations.get(notebook.id),
            warning,
            self.policy,
            self.now,
            state=state_read,
        )
        owner = state.owners.get(notebook.id)
        outcome = NotebookOutcome(
            project_id=project.project_id,
            notebook_id=notebook.id,
            name=notebook.name,
            flavor=notebook.flavor,
            owner=owner.user_id if owner else notebook.tag(OWNER_TAG),
            decision=decision,
        )
        if decision.action is not Action.NOOP:
            await self._act(project, client, notebook, outcome, state)
        if decision.clear_warning and warning is not None and outcome.acted:
            cleared = self.dry_run or self._forget_warning(project, notebook)
            if cleared:
                self.report.cleared_warnings += 1
            result = "ok" if cleared else "failed: warning not deleted"
            audit.append(self._audit(notebook, project, "clear-warning", decision.reason, result))
        if decision.action is not Action.NOOP:
            audit.append(
                self._audit(
                    notebook,
                    project,
                    decision.action.value,
                    decision.reason,
                    outcome.outcome,
                    outcome,
                )
            )
        return outcome

    async def _act(
        self,
        project: ProjectRef,
        client: KeeperClient,
        notebook: Notebook,
        outcome: NotebookOutcome,
        state: ProjectState,
    ) -> None:
        decision = outcome.decision
        price = self.policy.price_per_hour(notebook.flavor)
        if decision.action is Action.STOP:
            outcome.cost_saved = decision.hours_saved * price
        if self.dry_run:
            outcome.settle("dry-run")
            return
        if decision.action is Action.STOP:
            await self.listed[project.project_id].wait()
        try:
            async with self.actions:
                if decision.action is Action.PROLONG:
                    assert decision.extend_ms is not None
                    await client.renew_lease(notebook.id, decision.extend_ms)
                elif decision.action is Action.STOP:
                    if not self._still_due(project, notebook, state, outcome):
                        return
                    await client.stop_notebook(notebook.id)
                    # Done even if this fails: a warning older than the next run is ignored.
                    self._forget_warning(project, notebook)
                elif decision.action is Action.WARN:
                    await self._warn(project, notebook, outcome, price)
        except (WrongStateError, NotFoundError) as exc:
            # Someone else got there first (stopped, deleting): nothing left to do.
            outcome.settle("skipped", exc.kind)
        except ModelArtsError as exc:
            outcome.settle("failed", failure_note(exc))
            logger.warning(
                "%s %s failed: %s",
                decision.action.value,
                notebook.id,
                exc,
                extra={"error": exc.kind},
            )

    def _still_due(
        self,
        project: ProjectRef,
        notebook: Notebook,
        state: ProjectState,
        outcome: NotebookOutcome,
    ) -> bool:
        """Re-read the reservation and the warning the stop was decided on, consistently: a
        [Keep] pressed during the pass (owners press it right around the stop time) wins."""
        try:
            fresh = self.store.load_notebook(project.project_id, notebook.id, self.now)
        except Exception as exc:  # unsure is not a stop: the next pass decides again
            outcome.settle("failed", f"state not re-read before the stop ({type(exc).__name__})")
            return False
        if fresh.reservation != state.reservations.get(notebook.id):
            outcome.settle("skipped", "reserved during the pass")
            return False
        if fresh.warning != state.warnings.get(notebook.id):
            outcome.settle("skipped", "warning changed during the pass")
            return False
        return True

    def _forget_warning(self, project: ProjectRef, notebook: Notebook) -> bool:
        """Delete the notebook's pending warning; False (logged) when the store fails."""
        try:
            self.store.delete_warning(project.project_id, notebook.id)
        except Exception as exc:
            logger.warning("warning of %s not deleted: %s", notebook.id, type(exc).__name__)
            return False
        return True

    async def _warn(
        self, project: ProjectRef, notebook: Notebook, outcome: NotebookOutcome, price: float
    ) -> None:
        decision = outcome.decision
        assert decision.warning_kind is not None and decision.stop_after is not None
        notice = WarningNotice(
            project=project,
            notebook=notebook,
            decision=decision,
            owner=outcome.owner,
            price_per_hour=price,
            currency=self.policy.currency,
        )
        try:
            delivered = await self.notifier.warn(notice)
        except NotDelivered as exc:  # not recorded: a stop never follows a warning nobody got
            outcome.settle("failed", f"warning not delivered: {exc}")
            for problem in exc.problems:
                self.report.notice(problem)
            return
        except Exception as exc:  # whatever the channel failed with: retry on the next pass
            outcome.settle("failed", f"warning not delivered ({type(exc).__name__})")
            return
        for problem in delivered.problems:  # delivered, but not where it should have gone
            self.report.notice(problem)
        try:
            self.store.put_warning(
                PendingWarning(
                    project_id=project.project_id,
                    notebook_id=notebook.id,
                    kind=decision.warning_kind,
                    warned_at=self.now,
                    stop_after=decision.stop_after,
                    channel=delivered.channel,
                    message_ts=delivered.message_ts,
                )
            )
        except Exception as exc:  # delivered but unrecorded: the next pass warns again
            outcome.settle("failed", f"warning not recorded ({type(exc).__name__})")

    def _audit(
        self,
        notebook: Notebook,
        project: ProjectRef,
        action: str,
        reason: str,
        result: str,
        outcome: NotebookOutcome | None = None,
    ) -> AuditRecord:
        detail = decision_detail(outcome.decision, outcome.cost_saved) if outcome else {}
        if self.now != self.at:  # a late (or early) event: when the decision was really made
            detail["decided_at"] = iso(self.now)
        return AuditRecord(
            project_id=project.project_id,
            notebook_id=notebook.id,
            notebook_name=notebook.name,
            action=action,
            reason=reason,
            at=self.at,
            actor=ACTOR,
            dry_run=self.dry_run,
            outcome=result,
            detail=detail,
        )


def _joined(*errors: str | None) -> str:
    return "; ".join(error for error in errors if error)
