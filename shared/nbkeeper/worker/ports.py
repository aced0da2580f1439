"""What the worker needs from the world (ModelArts, follow-ups, the author) and what it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from nbkeeper.commands import CommandBase, FollowCommand, SweepProjectCommand
from nbkeeper.modelarts.errors import (
    AmbiguousCreateError,
    ServerError,
    ThrottledError,
    TransportError,
)
from nbkeeper.modelarts.images import ImageApi
from nbkeeper.modelarts.schemas import (
    Lease,
    LeaseType,
    ListNotebooksQuery,
    Notebook,
    NotebookCreateRequest,
    NotebookUpdateRequest,
)
from nbkeeper.slack.render import Message


class RetryLaterError(Exception):
    """The worker's own reasons to run a command again later; the message is for people."""


class NotebookBusyError(RetryLaterError):
    """The notebook is between states (say STOPPING after an earlier stop): a start, stop or
    update on it runs again once that change is done, so commands take effect in order."""


class CommandDeadlineError(RetryLaterError):
    """The command did not finish within the time its invocation could give it."""

    def __init__(self, seconds: float | None) -> None:
        super().__init__(
            f"it did not finish within the {seconds or 0:.0f} seconds the worker could give it."
        )


class OutOfTimeError(RetryLaterError):
    """Too little time left in the invocation to start the command and still report on it."""

    def __init__(self) -> None:
        super().__init__("the worker ran out of time before it could start it.")


# Raised so that SQS delivers the command again. An ambiguous create is among them: the next
# delivery finds the notebook by name if it was made after all (`_created_by`), or creates it.
TRANSIENT_ERRORS = (
    ThrottledError,
    ServerError,
    TransportError,
    AmbiguousCreateError,
    RetryLaterError,
)


class NotebookApi(ImageApi, Protocol):
    """The part of AsyncModelArtsClient the worker uses (`read`/`send`: images)."""

    async def create_notebook(self, request: NotebookCreateRequest) -> Notebook: ...
    async def list_notebooks(
        self, query: ListNotebooksQuery | None = None, all_users: bool = False
    ) -> list[Notebook]: ...
    async def show_notebook(self, notebook_id: str) -> Notebook: ...
    async def update_notebook(
        self, notebook_id: str, request: NotebookUpdateRequest
    ) -> Notebook: ...
    async def delete_notebook(self, notebook_id: str) -> Notebook | None: ...
    async def start_notebook(
        self,
        notebook_id: str,
        duration_ms: int | None = None,
        lease_type: LeaseType | str | None = None,
    ) -> Notebook: ...
    async def stop_notebook(self, notebook_id: str) -> Notebook: ...
    async def renew_lease(self, notebook_id: str, duration_ms: int) -> Lease | None: ...
    async def add_tags(
        self, notebook_id: str, tags: Mapping[str, str], workspace_id: str | None = None
    ) -> None: ...


class CreateIntents(Protocol):
    """Which create commands got as far as calling ModelArts (kept two weeks, the DLQ's life)."""

    def begin_create(self, command_id: str, name: str, at: datetime) -> None:
        """Note, before the create call, that `command_id` is about to create `name`."""
        ...

    def create_begun(self, command_id: str) -> bool: ...


class FollowUps(Protocol):
    def schedule(self, command: FollowCommand, delay_seconds: int) -> None:
        """Deliver `command` to the worker again after `delay_seconds` (at most 900)."""
        ...


class Reporter(Protocol):
    def report(self, command: CommandBase, message: Message, now: datetime) -> str:
        """Tell the command's author; returns how ("response_url", "dm", "undelivered")."""
        ...


ResultKind = Literal["done", "failed", "refused", "following"]


@dataclass(frozen=True)
class Result:
    """What happened to one command (stored as the idempotent result)."""

    outcome: ResultKind
    notebook_id: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "notebook_id": self.notebook_id, "detail": self.detail}


Sweeper = Callable[[SweepProjectCommand, datetime], Awaitable[Result]]
