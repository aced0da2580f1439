"""In-memory backends with the same semantics as the DynamoDB ones (tests and local tools)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from nbkeeper.records import (
    TTL_GRACE,
    AuditRecord,
    NotebookState,
    Owner,
    PendingWarning,
    ProjectState,
    Reservation,
)
from nbkeeper.slack.api import RESPONSE_URL_LIFETIME, RESPONSE_URL_MAX_POSTS, response_url_key


class MemoryStateStore:
    """In-memory StateStore with the same semantics as the DynamoDB one (for unit tests)."""

    def __init__(self) -> None:
        self.owners: dict[tuple[str, str], Owner] = {}
        self.reservations: dict[tuple[str, str], Reservation] = {}
        self.warnings: dict[tuple[str, str], PendingWarning] = {}
        self.audit: list[AuditRecord] = []

    def load_project(self, project_id: str, now: datetime) -> ProjectState:
        return ProjectState(
            owners={k[1]: v for k, v in self.owners.items() if k[0] == project_id},
            reservations={
                k[1]: v
                for k, v in self.reservations.items()
                if k[0] == project_id and v.active(now)
            },
            warnings={
                k[1]: v
                for k, v in self.warnings.items()
                if k[0] == project_id and now < v.stop_after + TTL_GRACE
            },
        )

    def load_notebook(self, project_id: str, notebook_id: str, now: datetime) -> NotebookState:
        state = self.load_project(project_id, now)
        return NotebookState(
            reservation=state.reservations.get(notebook_id),
            warning=state.warnings.get(notebook_id),
        )

    def get_owner(self, project_id: str, notebook_id: str) -> Owner | None:
        return self.owners.get((project_id, notebook_id))

    def put_owner(self, owner: Owner) -> None:
        self.owners[(owner.project_id, owner.notebook_id)] = owner

    def put_reservation(self, reservation: Reservation) -> None:
        self.reservations[(reservation.project_id, reservation.notebook_id)] = reservation

    def delete_reservation(self, project_id: str, notebook_id: str) -> None:
        self.reservations.pop((project_id, notebook_id), None)

    def put_warning(self, warning: PendingWarning) -> None:
        self.warnings[(warning.project_id, warning.notebook_id)] = warning

    def delete_warning(self, project_id: str, notebook_id: str) -> None:
        self.warnings.pop((project_id, notebook_id), None)

    def record_audit(self, records: Iterable[AuditRecord]) -> None:
        self.audit.extend(records)

    def list_audit(self, project_id: str, day: datetime) -> list[AuditRecord]:
        wanted = day.astimezone(UTC).date()
        return sorted(
            (
                r
                for r in self.audit
                if r.project_id == project_id and r.at.astimezone(UTC).date() == wanted
            ),
            key=lambda r: (r.at, r.notebook_id),
        )


class MemoryLedger:
    """Counts response_url posts in memory (Slack allows 5 within 30 minutes)."""

    def __init__(self) -> None:
        self.posts: dict[str, int] = {}

    def claim(self, url: str, issued_at: datetime, already_used: int = 0) -> bool:
        key = response_url_key(url)
        if self.posts.get(key, 0) >= RESPONSE_URL_MAX_POSTS - already_used:
            return False
        self.posts[key] = self.posts.get(key, 0) + 1
        return True


class MemoryCommandLog:
    """Per-command notes in memory (create intents, response_urls, dead letters told)."""

    def __init__(self) -> None:
        self.creates: dict[str, str] = {}
        self.response_urls: dict[str, tuple[str, datetime]] = {}
        self.dead_letters_told: dict[str, str] = {}  # message id -> how
        self.once: set[str] = set()

    def begin_create(self, command_id: str, name: str, at: datetime) -> None:
        self.creates[command_id] = name

    def create_begun(self, command_id: str) -> bool:
        return command_id in self.creates

    def put_response_url(self, command_id: str, url: str, issued_at: datetime) -> None:
        self.response_urls[command_id] = (url, issued_at + RESPONSE_URL_LIFETIME)

    def response_url(self, command_id: str, now: datetime) -> str | None:
        url, expires = self.response_urls.get(command_id, ("", now))
        return url if now < expires else None

    def first_time(self, command_id: str, at: datetime) -> bool:
        seen = command_id in self.once
        self.once.add(command_id)
        return not seen

    def note_told(self, message_id: str, how: str, at: datetime) -> None:
        self.dead_letters_told[message_id] = how

    def told(self, message_id: str) -> bool:
        return message_id in self.dead_letters_told
