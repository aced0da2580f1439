"""Saving a notebook as an image: look again before acting, save, and word the outcome.

The save is begun once per command: the image's description carries the command's id, so a
delivery that finds `name:tag` already there with its own id (an earlier delivery's reply was
lost) follows that save instead of refusing it as taken. The worker then follows the save
(`FollowCommand` origin `save`) until the notebook is RUNNING again and the image ACTIVE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nbkeeper.commands import FollowCommand, SaveCommand
from nbkeeper.modelarts.images import (
    ImageCreateRequest,
    ImageDetail,
    ImageStatus,
    find_saved_image,
    save_image,
)
from nbkeeper.modelarts.schemas import Notebook, NotebookStatus
from nbkeeper.slack import render
from nbkeeper.slack.render import Message, bold, escape
from nbkeeper.worker.followups import origin_id
from nbkeeper.worker.ports import NotebookApi, NotebookBusyError
from nbkeeper.worker.reporting import name_of

DEFAULT_IMAGE_NAMESPACE = "nbkeeper"
FAILED_IMAGE_STATES = frozenset({ImageStatus.CREATE_FAILED, ImageStatus.ERROR, ImageStatus.DELETED})
SaveOutcome = Literal["ready", "failed", "pending"]


@dataclass(frozen=True)
class SaveRefused:
    """Nothing was saved: what the author is told, and the result's detail."""

    message: Message
    detail: str


def _marker(command: SaveCommand | FollowCommand) -> str:
    return f"(nbkeeper command {origin_id(command)})"


def image_request(command: SaveCommand, namespace: str) -> ImageCreateRequest:
    """The create-image body: the image's description says where it came from, and for whom."""
    source = command.notebook_name or command.notebook_id
    return ImageCreateRequest(
        name=command.image,
        tag=command.tag,
        namespace=namespace,
        description=(
            f"Saved from notebook {source} for Slack user {command.requested_by.user_id} "
            f"{_marker(command)}"
        ),
    )


async def begin_save(
    client: NotebookApi, command: SaveCommand, namespace: str
) -> tuple[Notebook, ImageDetail] | SaveRefused:
    """Look at the notebook and the image name again, then save (or adopt this command's own
    save, begun by an earlier delivery). A notebook between states raises NotebookBusyError:
    the command runs again after the change under way."""
    notebook = await client.show_notebook(command.notebook_id)
    existing = await find_saved_image(client, command.image, command.tag, namespace)
    if existing is not None:
        if _marker(command) in (existing.description or ""):
            return notebook, existing
        return SaveRefused(already_exists(command), "image exists")
    status = notebook.status
    if status is not NotebookStatus.RUNNING:
        if status.is_transient:
            raise NotebookBusyError(
                f"{name_of(command)} is {status.value}; it is saved once that change is done."
            )
        return SaveRefused(not_running(command, status), status.value)
    image = await save_image(client, command.notebook_id, image_request(command, namespace))
    return notebook, image


def image_outcome(image: ImageDetail) -> SaveOutcome:
    """ACTIVE: ready; failed or gone: failed; anything else (INIT, CREATING, new): pending."""
    if image.status is ImageStatus.ACTIVE:
        return "ready"
    if image.status in FAILED_IMAGE_STATES:
        return "failed"
    return "pending"


def not_running(command: SaveCommand, status: NotebookStatus) -> Message:
    name = name_of(command)
    return render.done(
        f"Could not save {name} as an image: it is {status.value}, and only a running notebook "
        f"can be saved. Start it (`/nb start {escape(command.notebook_name or command.notebook_id)}`),"
        " then save it again.",
        ok=False,
    )


def already_exists(command: SaveCommand) -> Message:
    source = escape(command.notebook_name or command.notebook_id)
    return render.done(
        f"Could not save {name_of(command)}: the image {bold(command.label)} already exists. "
        f"Give another tag, for example `/nb save {source} as {command.image}:v2`.",
        ok=False,
    )


def saved(follow: FollowCommand) -> Message:
    label = follow.image or "?"
    return render.done(
        f"Saved {name_of(follow)} as the image {bold(label)}; the notebook is running again. "
        f"`/nb create NAME image={escape(label)}` starts a notebook from it (`/nb images` lists "
        "it within a few minutes)."
    )


def save_failed(follow: FollowCommand, image: ImageDetail, notebook: Notebook) -> Message:
    why = f": {render.fit(image.status_message, 300)}" if image.status_message else ""
    status = image.status.value if image.status is not None else "unknown"
    return render.done(
        f"Saving {name_of(follow)} as the image {bold(follow.image or image.label)} failed "
        f"(the image is {escape(status)}{why}). The notebook is {notebook.status.value}; "
        "try again, or ask an admin to look at the image in the ModelArts console.",
        ok=False,
    )
