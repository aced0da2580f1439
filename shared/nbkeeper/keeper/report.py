"""What a lease keeper pass saw and did, and the notifier it reports to.

`NotebookOutcome` holds one notebook's decision and what came of it: `status` is one of
ok | dry-run | skipped | failed, with a `note` saying why for the last two. `decision_detail`
shapes the per-action figures once, for audit records and plan output alike.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from nbkeeper.keeper.decide import Action, Decision
from nbkeeper.keeper.policy import SummaryMode
from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.records import ProjectRef
from nbkeeper.timefmt import iso

OutcomeStatus = Literal["ok", "dry-run", "skipped", "failed"]


@dataclass(frozen=True)
class WarningNotice:
    """What the owner is told before a stop."""

    project: ProjectRef
    notebook: Notebook
    decision: Decision
    owner: str | None  # Slack user id, when known
    price_per_hour: float
    currency: str


@dataclass(frozen=True)
class Delivered:
    """Where a warning went (stored with the pending warning), and the targets before it that
    could not take it (`problems`, for the pass summary)."""

    channel: str | None = None
    message_ts: str | None = None
    problems: tuple[str, ...] = ()


class NotDelivered(Exception):
    """A warning reached nobody. The message says why and is safe to show (no token);
    `problems` name targets that refused it, for the pass summary."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class KeeperNotifier(Protocol):
    async def warn(self, notice: WarningNotice) -> Delivered:
        """Tell the owner; raise (`NotDelivered`, or whatever the channel failed with) when the
        warning reached nobody: it is then not recorded, so no stop follows it."""
        ...

    async def summary(self, report: PassReport) -> None: ...


class NullNotifier:
    """No Slack configured: nobody can be warned, so no warning is recorded and nothing is
    stopped (nobody told means no stop); summaries go nowhere. Dry runs never call `warn`."""

    async def warn(self, notice: WarningNotice) -> Delivered:
        raise NotDelivered("no Slack bot token configured, nobody can be warned")

    async def summary(self, report: PassReport) -> None:
        return None


@dataclass
class NotebookOutcome:
    """One notebook's decision and what came of it."""

    project_id: str
    notebook_id: str
    name: str | None
    flavor: str | None
    owner: str | None
    decision: Decision
    status: OutcomeStatus = "ok"
    note: str | None = None  # why it was skipped or failed
    cost_saved: float = 0.0

    @property
    def action(self) -> Action:
        return self.decision.action

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def acted(self) -> bool:
        """The action happened (or would have, in a dry run)."""
        return self.status in ("ok", "dry-run")

    @property
    def outcome(self) -> str:
        """`ok`, `dry-run`, `skipped: <why>` or `failed: <why>` (audit records, logs, Slack)."""
        return f"{self.status}: {self.note}" if self.note else self.status

    def settle(self, status: OutcomeStatus, note: str | None = None) -> None:
        self.status, self.note = status, note


@dataclass
class ProjectReport:
    region: str
    project_id: str
    notebooks: int = 0
    error: str | None = None
    unreadable: int = 0  # list records that could not be read (never acted on)


@dataclass(frozen=True)
class SkippedRecord:
    """A listed notebook record that could not be read: counted, reported, never acted on."""

    project_id: str
    position: int  # its place in the listing, for a record without a readable id
    notebook_id: str | None
    reason: str  # names fields and rules, never values (a record carries the notebook token)

    @property
    def label(self) -> str:
        return self.notebook_id or f"at position {self.position} (no readable id)"


@dataclass
class PassReport:
    """What one pass saw and did: `at` is the triggering event's time (ids, audit),
    `decided_at` the wall clock its decisions used (default: `at`)."""

    at: datetime
    dry_run: bool
    currency: str = "USD"
    decided_at: datetime | None = None
    projects: list[ProjectReport] = field(default_factory=list)
    outcomes: list[NotebookOutcome] = field(default_factory=list)
    fanned_out: list[ProjectRef] = field(default_factory=list)
    cleared_warnings: int = 0
    unreadable: list[SkippedRecord] = field(default_factory=list)
    # What keeps warnings from reaching people (configuration, refused channels): one line each.
    notices: list[str] = field(default_factory=list)

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)

    @property
    def now(self) -> datetime:
        """The time the pass's decisions were made at."""
        return self.decided_at or self.at

    @property
    def counts(self) -> dict[str, int]:
        counter = Counter(
            o.action.value for o in self.outcomes if o.acted or o.action is Action.NOOP
        )
        return {action.value: counter.get(action.value, 0) for action in Action}

    @property
    def failures(self) -> list[NotebookOutcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def project_errors(self) -> list[ProjectReport]:
        return [p for p in self.projects if p.error]

    @property
    def hours_saved(self) -> float:
        return sum(
            o.decision.hours_saved for o in self.outcomes if o.action is Action.STOP and o.acted
        )

    @property
    def cost_saved(self) -> float:
        return sum(o.cost_saved for o in self.outcomes if o.action is Action.STOP and o.acted)

    def summary(self) -> dict[str, Any]:
        """Compact, log- and JSON-friendly figures (no notebook tokens or URLs)."""
        return {
            "at": iso(self.at),
            "decided_at": iso(self.now),
            "dry_run": self.dry_run,
            "projects": len(self.projects),
            "fanned_out": len(self.fanned_out),
            "notebooks": len(self.outcomes),
            **self.counts,
            "unreadable": len(self.unreadable),
            "warnings_cleared": self.cleared_warnings,
            "failures": len(self.failures),
            "project_errors": len(self.project_errors),
            "hours_saved": round(self.hours_saved, 2),
            "cost_saved": round(self.cost_saved, 2),
            "currency": self.currency,
            "notices": list(self.notices),
        }


METRICS = (
    ("NotebooksSeen", "notebooks"),
    ("Prolonged", "prolong"),
    ("Warned", "warn"),
    ("Stopped", "stop"),
    ("ActionFailures", "failures"),
    ("ProjectErrors", "project_errors"),
    ("ProjectsFannedOut", "fanned_out"),
    ("UnreadableNotebooks", "unreadable"),
    ("HoursSaved", "hours_saved"),
    ("CostSaved", "cost_saved"),
)


def pass_metrics(report: PassReport) -> dict[str, float]:
    """The pass's figures by CloudWatch metric name."""
    summary = report.summary()
    return {name: summary[key] for name, key in METRICS}


def summary_worth_posting(report: PassReport, mode: SummaryMode) -> bool:
    """Whether the pass summary goes to Slack: `actions` (default) when the pass warned, stopped
    or failed (an action, a whole project, or a notebook record it could not read), `always`
    after any pass that saw a notebook or an error, `never` not at all. A pass that only
    prolonged or left things alone is quiet."""
    if mode == "never":
        return False
    if mode == "always":
        return bool(report.outcomes or report.project_errors or report.unreadable)
    counts = report.counts
    return bool(
        counts[Action.WARN.value]
        or counts[Action.STOP.value]
        or report.failures
        or report.project_errors
        or report.unreadable
    )


def decision_detail(decision: Decision, cost_saved: float = 0.0) -> dict[str, Any]:
    """The figures behind one decision: what a renewal asks for, when a warned notebook may be
    stopped, what a stop saves."""
    detail: dict[str, Any] = {}
    if decision.extend_ms is not None:
        detail["extend_ms"] = decision.extend_ms
        detail["duration_ms"] = decision.duration_ms
    if decision.warning_kind is not None:
        detail["warning"] = decision.warning_kind
        detail["stop_after"] = iso(decision.stop_after)
    if decision.action is Action.STOP:
        detail["hours_saved"] = round(decision.hours_saved, 3)
        detail["cost_saved"] = round(cost_saved, 4)
    return detail
