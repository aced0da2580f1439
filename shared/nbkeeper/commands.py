"""Queue messages: the commands the worker executes, as a pydantic discriminated union on `type`.

Anyone may enqueue these (Slack webhook, lease keeper fan-out, other systems); docs/queue-messages.md
documents the format. `command_id` is the idempotency key and the FIFO deduplication id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from nbkeeper.modelarts.schemas import (
    CreateDescription,
    ImageId,
    NotebookName,
    StorageGb,
)

MAX_HOURS = 72


class Requester(BaseModel):
    """Who asked, and where to tell them the result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(min_length=1, max_length=64)
    team_id: str | None = Field(default=None, max_length=64)
    channel_id: str | None = Field(default=None, max_length=64)
    response_url: str | None = Field(default=None, max_length=2048)
    is_admin: bool = False


class Project(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(min_length=1, max_length=64)
    project_id: str = Field(min_length=1, max_length=64)


class CommandBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    requested_at: datetime
    requested_by: Requester
    project: Project | None = None  # default project from configuration when absent


Hours = Annotated[int, Field(ge=1, le=MAX_HOURS)]


class CreateCommand(CommandBase):
    type: Literal["create"] = "create"
    name: NotebookName
    flavor: str = Field(min_length=1, max_length=128)
    image_id: ImageId
    storage_gb: StorageGb
    hours: Hours
    idle_stop: bool = False
    description: CreateDescription | None = None


class NotebookCommand(CommandBase):
    notebook_id: str = Field(min_length=1, max_length=64)


class UpdateCommand(NotebookCommand):
    type: Literal["update"] = "update"
    changes: dict[str, Any]
    restart: bool = False  # stop, update, start again (confirmed by the person)


class DeleteCommand(NotebookCommand):
    type: Literal["delete"] = "delete"


class StartCommand(NotebookCommand):
    type: Literal["start"] = "start"
    hours: Hours | None = None


class StopCommand(NotebookCommand):
    type: Literal["stop"] = "stop"


class ProlongCommand(NotebookCommand):
    type: Literal["prolong"] = "prolong"
    hours: Hours


class KeepCommand(NotebookCommand):
    type: Literal["keep"] = "keep"
    until: datetime


class SweepProjectCommand(CommandBase):
    """Lease keeper fan-out: run one pass over one project at `at`."""

    type: Literal["sweep-project"] = "sweep-project"
    at: datetime


Command = Annotated[
    CreateCommand
    | UpdateCommand
    | DeleteCommand
    | StartCommand
    | StopCommand
    | ProlongCommand
    | KeepCommand
    | SweepProjectCommand,
    Field(discriminator="type"),
]

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def parse_command(body: str | bytes) -> Command:
    """Parse a queue message body; raises pydantic.ValidationError with field-level messages."""
    return COMMAND_ADAPTER.validate_json(body)
