"""Queue messages: the commands the worker executes, as a pydantic discriminated union on `type`.

Anyone may enqueue these (Slack webhook, lease keeper fan-out, other systems); docs/queue-messages.md
documents the format. `command_id` is the idempotency key and the FIFO deduplication id.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from nbkeeper.modelarts.images import ImageTag, SavedImageName
from nbkeeper.modelarts.schemas import (
    HOUR_MS,
    LEASE_MAX_MS,
    CreateDescription,
    ImageId,
    LeaseReq,
    LeaseType,
    NotebookCreateRequest,
    NotebookName,
    NotebookUpdateRequest,
    StorageGb,
    VolumeCategory,
    VolumeOwnership,
    VolumeReq,
)
from nbkeeper.records import ProjectRef

MAX_HOURS = LEASE_MAX_MS // HOUR_MS  # the longest lease one call may ask for (72 h)
DEFAULT_IMAGE_TAG = "latest"  # `save NAME as IMAGE` without a tag


class Requester(BaseModel):
    """Who asked, and where to tell them the result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(min_length=1, max_length=64)
    team_id: str | None = Field(default=None, max_length=64)
    channel_id: str | None = Field(default=None, max_length=64)
    response_url: str | None = Field(default=None, max_length=2048)
    is_admin: bool = False
    # Posts the webhook itself already made to response_url (Slack allows 5 in 30 minutes).
    response_url_posts: int = Field(default=0, ge=0, le=5)


class CommandBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    requested_at: datetime
    requested_by: Requester
    project: ProjectRef | None = None  # default project from configuration when absent


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

    def to_request(self) -> NotebookCreateRequest:
        """The ModelArts create body: EVS storage managed by ModelArts, lease of `hours`."""
        return NotebookCreateRequest(
            name=self.name,
            image_id=self.image_id,
            flavor=self.flavor,
            description=self.description,
            volume=VolumeReq(
                category=VolumeCategory.EVS,
                ownership=VolumeOwnership.MANAGED,
                capacity=self.storage_gb,
            ),
            lease=LeaseReq(
                duration=self.hours * HOUR_MS,
                type=LeaseType.IDLE if self.idle_stop else LeaseType.TIMING,
            ),
        )


class NotebookCommand(CommandBase):
    notebook_id: str = Field(min_length=1, max_length=64)
    notebook_name: str | None = Field(default=None, max_length=128)  # for messages only


class UpdateCommand(NotebookCommand):
    type: Literal["update"] = "update"
    changes: NotebookUpdateRequest
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


class SaveCommand(NotebookCommand):
    """Save a RUNNING notebook as the project's own image `image:tag`, in the SWR organization
    the worker is configured with (IMAGE_NAMESPACE)."""

    type: Literal["save"] = "save"
    image: SavedImageName
    tag: ImageTag = DEFAULT_IMAGE_TAG

    @property
    def label(self) -> str:
        return f"{self.image}:{self.tag}"


FollowOrigin = Literal["create", "start", "stop", "delete", "update", "save"]


class FollowCommand(NotebookCommand):
    """Internal: look at a notebook again after a delay, then report or take the next step.

    Sent by the worker to the standard follow-up queue (per-message DelaySeconds; FIFO queues
    have none), never by other producers. `command_id` is `{origin id}.f{attempt}`.
    """

    type: Literal["follow"] = "follow"
    origin: FollowOrigin
    wait_for: Literal["RUNNING", "STOPPED", "GONE"]
    then: Literal["report", "delete", "update"] = "report"
    changes: NotebookUpdateRequest | None = None  # for then=update
    hours: Hours | None = None  # lease for the start after an update
    # origin=save: the image being made (done once it is ACTIVE and the notebook RUNNING).
    image_id: str | None = Field(default=None, max_length=64)
    image: str | None = Field(default=None, max_length=200)  # `name:tag`, for messages
    attempt: int = Field(ge=1, le=1000)
    deadline: datetime


class SweepProjectCommand(CommandBase):
    """Lease keeper fan-out: run one pass over one project at `at` (no further fan-out).

    `dry_run: true` makes the pass a dry run; absent, the worker's policy decides."""

    type: Literal["sweep-project"] = "sweep-project"
    at: datetime
    dry_run: bool | None = None


Command = Annotated[
    CreateCommand
    | UpdateCommand
    | DeleteCommand
    | StartCommand
    | StopCommand
    | ProlongCommand
    | KeepCommand
    | SaveCommand
    | SweepProjectCommand
    | FollowCommand,
    Field(discriminator="type"),
]

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def parse_command(body: str | bytes) -> Command:
    """Parse a queue message body; raises pydantic.ValidationError with field-level messages."""
    return COMMAND_ADAPTER.validate_json(body)


def encode_command(command: Command) -> str:
    """The queue message body (JSON, unset optional fields omitted)."""
    return command.model_dump_json(exclude_none=True)


def message_group_id(command: Command, default_project_id: str = "default") -> str:
    """FIFO group: one per notebook (its commands run in order), one per project for creates
    and sweeps (there is no notebook id yet)."""
    if isinstance(command, NotebookCommand):
        return f"nb.{command.notebook_id}"
    project = command.project.project_id if command.project else default_project_id
    return f"project.{project}"


def peek(body: str | bytes, key: str) -> Any:
    """Best effort: one top-level field of a message that may not parse as a command."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def peek_requester(body: str | bytes) -> Requester | None:
    """Best effort: who sent a message that does not parse as a whole (to tell them it failed)."""
    try:
        return Requester.model_validate(peek(body, "requested_by"))
    except pydantic.ValidationError:
        return None
