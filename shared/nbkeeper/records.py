"""The records nbkeeper keeps about notebooks: owners, reservations, pending warnings, audit.

Plain models and the `StateStore` protocol domain code depends on; no storage library is imported
here. The backends live beside it: `nbkeeper.dynamo` (DynamoDB, with the table layout) and
`nbkeeper.memory` (in-memory fakes with the same semantics, for tests and local tools).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

# Readers drop expired reservations and warnings themselves: DynamoDB deletes TTL'd items up to
# two days late, and a warning is kept a day past its stop time for the audit trail.
TTL_GRACE = timedelta(days=1)
AUDIT_RETENTION = timedelta(days=90)


class ProjectRef(BaseModel):
    """A ModelArts project: where the keeper sweeps, where a command acts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(min_length=1, max_length=64)
    project_id: str = Field(min_length=1, max_length=64)


class StateItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    notebook_id: str


class Owner(StateItem):
    """Who created a notebook through nbkeeper (Slack user), recorded at create."""

    user_id: str
    team_id: str | None = None
    notebook_name: str | None = None
    created_at: datetime
    # The create command that made it: written before the notebook is tagged, so a redelivered
    # create recognises its own notebook even when tagging failed.
    command_id: str | None = None


class Reservation(StateItem):
    """'Keep alive until T': the keeper prolongs and never stops the notebook before `until`."""

    until: datetime
    by_user: str
    note: str | None = None

    def active(self, now: datetime) -> bool:
        return now < self.until


WarningKind = Literal["idle", "off_hours", "max_runtime"]


class PendingWarning(StateItem):
    """A warning sent to the owner; the stop may happen once `stop_after` has passed."""

    kind: WarningKind
    warned_at: datetime
    stop_after: datetime
    channel: str | None = None
    message_ts: str | None = None


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    notebook_id: str
    notebook_name: str | None = None
    action: str
    reason: str
    at: datetime
    actor: str = "lease-keeper"
    dry_run: bool = False
    outcome: str = "ok"
    detail: dict[str, Any] = {}


@dataclass
class ProjectState:
    """Everything about one project's notebooks that the keeper reads in one go."""

    owners: dict[str, Owner] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    warnings: dict[str, PendingWarning] = field(default_factory=dict)


@dataclass(frozen=True)
class NotebookState:
    """One notebook's reservation and pending warning, read consistently (just before a stop)."""

    reservation: Reservation | None = None
    warning: PendingWarning | None = None


class StateStore(Protocol):
    def load_project(self, project_id: str, now: datetime) -> ProjectState: ...
    def load_notebook(self, project_id: str, notebook_id: str, now: datetime) -> NotebookState:
        """A strongly consistent read of what a stop depends on (a Keep pressed a moment ago
        is seen); the same filters as `load_project`."""
        ...

    def get_owner(self, project_id: str, notebook_id: str) -> Owner | None: ...
    def put_owner(self, owner: Owner) -> None: ...
    def put_reservation(self, reservation: Reservation) -> None: ...
    def delete_reservation(self, project_id: str, notebook_id: str) -> None: ...
    def put_warning(self, warning: PendingWarning) -> None: ...
    def delete_warning(self, project_id: str, notebook_id: str) -> None: ...
    def record_audit(self, records: Iterable[AuditRecord]) -> None: ...
    def list_audit(self, project_id: str, day: datetime) -> list[AuditRecord]: ...
