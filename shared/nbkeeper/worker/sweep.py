"""The lease keeper's fan-out on the worker side: one `sweep-project` command, one project's pass."""

from __future__ import annotations

from nbkeeper.commands import SweepProjectCommand
from nbkeeper.keeper.report import PassReport
from nbkeeper.records import ProjectRef
from nbkeeper.settings import ModelArtsSettings
from nbkeeper.worker.ports import Result


def sweep_target(command: SweepProjectCommand, settings: ModelArtsSettings) -> ProjectRef:
    """The project a `sweep-project` command names (the configured one when it names none)."""
    if command.project is None:
        return ProjectRef(region=settings.region, project_id=settings.project_id)
    return ProjectRef(region=command.project.region, project_id=command.project.project_id)


def sweep_result(report: PassReport, project: ProjectRef) -> Result:
    """The sweep's result for the idempotency record and the logs.

    A failed project is not raised: the next scheduled pass sweeps it again, at its own time.
    """
    errors = "; ".join(p.error or "" for p in report.project_errors)
    if errors:
        return Result("failed", None, f"project {project.project_id}: {errors}")
    summary = report.summary()
    counts = ", ".join(f"{summary[key]} {key}" for key in ("prolong", "warn", "stop"))
    return Result(
        "done", None, f"project {project.project_id}: {summary['notebooks']} notebooks, {counts}"
    )
