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
    NotebookOutcome,
    NullNotifier,
    PassReport,
    ProjectReport,
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

logger = logging.getLogger(__name__)

ACTOR = "lease-keeper"
LIST_PAGE_SIZE = 50  # the SDK documents 10, 20 or 50


class KeeperClient(Protocol):
    """The part of `AsyncModelArtsClient` a pass uses (one client per project)."""

    def iter_notebooks(
        self, query: ListNotebooksQuery | None = None, all_users: bool = False
    ) -> AsyncIterator[Notebook]: ...

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
    dry_run: bool | None = None,
    enqueue: Enqueue | None = None,
) -> PassReport:
    """Run one pass over `projects` at `now` (see the module docstring).

    `dry_run` (default: the policy's) decides and reports without renewing, stopping, warning
    or writing warnings; audit records are still written, marked dry-run.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    dry = policy.dry_run if dry_run is None else dry_run
    report = PassReport(at=now, dry_run=dry, currency=policy.currency)
    notifier = notifier or NullNotifier()
    if enqueue is not None and len(projects) > policy.max_projects_per_pass:
        for project in projects:
            enqueue(sweep_command(project, now, dry))
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
        self.dry_run = dry_run
        self.report = report
        # Kernels are asked for whenever activity is older than the threshold that applies
        # now (shorter off hours), so a busy kernel behind quiet activity is always seen.
        self.idle_after = now - policy.idle_threshold_at(now)
        self.actions = asyncio.Semaphore(policy.action_concurrency)

    async def project(self, project: ProjectRef) -> None:
        summary = ProjectReport(region=project.region, project_id=project.project_id)
        self.report.projects.append(summary)
        audit: list[AuditRecord] = []
        tasks: list[asyncio.Task[NotebookOutcome]] = []
        try:
            state = self.store.load_project(project.project_id, self.now)
        except Exception as exc:  # without reservations and warnings nothing is safe to decide
            summary.error = f"state not readable: {type(exc).__name__}"
            logger.error("project %s not swept: %s", project.project_id, summary.error)
            return
        try:
            client = self.client_for(project)
            query = ListNotebooksQuery(status=NotebookStatus.RUNNING, limit=LIST_PAGE_SIZE)
            # Each notebook is probed and decided as soon as the iterator yields it.
            async for notebook in client.iter_notebooks(query, all_users=True):
                tasks.append(
                    asyncio.create_task(self.guarded(project, client, state, notebook, audit))
                )
        except ModelArtsError as exc:
            # The notebooks already listed are still handled; the rest wait for the next pass.
            summary.error = failure_note(exc)
            logger.error("project %s not fully swept: %s", project.project_id, summary.error)
        summary.notebooks = len(tasks)
        self.report.outcomes.extend(await asyncio.gather(*tasks))
        if audit:
            try:
                self.store.record_audit(audit)
            except Exception as exc:  # the actions happened: report, do not undo the pass
                summary.error = f"audit not recorded: {type(exc).__name__}"
                logger.error("project %s: %s", project.project_id, summary.error)

    async def guarded(
        self,
        project: ProjectRef,
        client: KeeperClient,
        state: ProjectState,
        notebook: Notebook,
        audit: list[AuditRecord],
    ) -> NotebookOutcome:
        """`notebook`, but a failure nobody foresaw fails this notebook only, not the pass."""
        try:
            return await self.notebook(project, client, state, notebook, audit)
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
            await self._act(project, client, notebook, outcome)
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
    ) -> None:
        decision = outcome.decision
        price = self.policy.price_per_hour(notebook.flavor)
        if decision.action is Action.STOP:
            outcome.cost_saved = decision.hours_saved * price
        if self.dry_run:
            outcome.settle("dry-run")
            return
        try:
            async with self.actions:
                if decision.action is Action.PROLONG:
                    assert decision.extend_ms is not None
                    await client.renew_lease(notebook.id, decision.extend_ms)
                elif decision.action is Action.STOP:
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
        except Exception as exc:  # whatever the channel failed with: retry on the next pass
            # Not recorded: a stop must never follow a warning nobody received.
            outcome.settle("failed", f"warning not delivered ({type(exc).__name__})")
            return
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
        return AuditRecord(
            project_id=project.project_id,
            notebook_id=notebook.id,
            notebook_name=notebook.name,
            action=action,
            reason=reason,
            at=self.now,
            actor=ACTOR,
            dry_run=self.dry_run,
            outcome=result,
            detail=detail,
        )
