"""Following a slow change without sleeping: each look is a `FollowCommand` on the standard
follow-up queue (per-message `DelaySeconds`; the FIFO commands queue has only a queue-wide
delay), until the notebook reaches the state, fails, or the deadline passes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from nbkeeper.commands import CommandBase, FollowCommand, FollowOrigin, NotebookCommand
from nbkeeper.modelarts.schemas import NotebookStatus, NotebookUpdateRequest

FAILED_STATES = frozenset(
    {
        NotebookStatus.CREATE_FAILED,
        NotebookStatus.START_FAILED,
        NotebookStatus.DELETE_FAILED,
        NotebookStatus.ERROR,
        NotebookStatus.FROZEN,
    }
)
FOLLOW_DEADLINES: Mapping[FollowOrigin, timedelta] = {
    "create": timedelta(minutes=30),
    "start": timedelta(minutes=20),
    "update": timedelta(minutes=30),
    "stop": timedelta(minutes=10),
    "delete": timedelta(minutes=15),
    "save": timedelta(minutes=60),  # a large environment takes a while to push to SWR
}
FIRST_DELAY_SECONDS = 15
MAX_DELAY_SECONDS = 120  # SQS allows up to 900


def next_delay(attempt: int) -> int:
    """Seconds before look number `attempt + 1`: doubling from 15 s, at most 2 minutes."""
    return min(FIRST_DELAY_SECONDS << min(max(0, attempt - 1), 10), MAX_DELAY_SECONDS)


def follow_for(
    command: NotebookCommand,
    origin: FollowOrigin,
    wait_for: Literal["RUNNING", "STOPPED", "GONE"],
    now: datetime,
    *,
    then: Literal["report", "delete", "update"] = "report",
    changes: NotebookUpdateRequest | None = None,
    image_id: str | None = None,
    image: str | None = None,
) -> FollowCommand:
    """The first look of a new wait after `command` (stop -> update -> start waits in turn)."""
    # A follow-up that starts a new wait continues the numbering: every look needs its own
    # command id, or Idempotency would return the earlier result.
    attempt = command.attempt if isinstance(command, FollowCommand) else 0
    return FollowCommand(
        command_id=follow_id(command.command_id, attempt),
        requested_at=command.requested_at,
        requested_by=command.requested_by,
        project=command.project,
        notebook_id=command.notebook_id,
        notebook_name=command.notebook_name,
        origin=origin,
        wait_for=wait_for,
        then=then,
        changes=changes,
        hours=getattr(command, "hours", None),
        image_id=image_id,
        image=image,
        attempt=attempt + 1,
        deadline=now + FOLLOW_DEADLINES[origin],
    )


def origin_id(command: CommandBase) -> str:
    """The id of the command a follow-up continues (its own id for any other command)."""
    if not isinstance(command, FollowCommand):
        return command.command_id
    base, sep, last = command.command_id.rpartition(".f")
    return base if sep and last.isdigit() else command.command_id


def follow_id(command_id: str, attempt: int) -> str:
    """`{origin}.f{n}`: unique per look, so Idempotency and FIFO dedup keep each one once."""
    base, sep, last = command_id.rpartition(".f")
    root = base if sep and last.isdigit() else command_id
    return f"{root}.f{attempt + 1}"
