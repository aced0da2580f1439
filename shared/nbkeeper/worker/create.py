"""Create, the one call that is not idempotent: at most one notebook per command, never a second
notebook with a name already taken, and an owner recorded before anything else can fail.

Whose is a notebook called NAME? This command's when (no clock is compared: ModelArts' and ours
may disagree by any amount)
- it carries the `nbkeeper.command` tag with this command's id, or
- its owner record (written right after the create returned, before tagging) names this
  command, or
- it has neither a command tag nor an owner record, matches this command's spec (flavor and
  image), and this command had noted, just before calling create, that it was about to create
  (`CreateIntents`): the create happened but its reply, or the owner record, was lost.
Every other namesake is someone else's, and the name is taken: the author is told, and nothing
is created.

Creates of one project share a FIFO message group, so two creates of one name never run at the
same time, and a failing one holds back the next one until it is settled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from nbkeeper.commands import CreateCommand
from nbkeeper.modelarts.errors import ModelArtsError
from nbkeeper.modelarts.schemas import ListNotebooksQuery, Notebook
from nbkeeper.records import Owner, StateStore
from nbkeeper.slack import render
from nbkeeper.slack.render import Message, escape
from nbkeeper.tags import COMMAND_TAG, OWNER_TAG
from nbkeeper.worker.ports import CreateIntents, NotebookApi

logger = logging.getLogger(__name__)


@dataclass
class Namesakes:
    """The notebooks called NAME, sorted into this command's and everyone else's."""

    mine: Notebook | None = None
    recorded: bool = False  # `mine` already has this command's owner record
    taken: list[tuple[Notebook, str | None]] = field(default_factory=list)  # (notebook, owner)


def matches_spec(notebook: Notebook, command: CreateCommand) -> bool:
    """Same flavor and image as the command asked for (what a namesake must share to be ours)."""
    image = notebook.image.id if notebook.image else None
    return notebook.flavor == command.flavor and (image or "").lower() == command.image_id.lower()


async def namesakes(
    client: NotebookApi,
    store: StateStore,
    intents: CreateIntents | None,
    project_id: str,
    command: CreateCommand,
) -> Namesakes:
    """List the notebooks called `command.name` and say which one (if any) this command made."""
    listed = await client.list_notebooks(ListNotebooksQuery(name=command.name))
    found = Namesakes()
    unclaimed: list[Notebook] = []
    for notebook in (n for n in listed if n.name == command.name):
        owner = store.get_owner(project_id, notebook.id)
        tag = notebook.tag(COMMAND_TAG)
        if found.mine is None and command.command_id in (tag, owner and owner.command_id):
            found.mine = notebook
            found.recorded = owner is not None and owner.command_id == command.command_id
        elif tag is None and owner is None and matches_spec(notebook, command):
            unclaimed.append(notebook)
        else:
            found.taken.append((notebook, owner.user_id if owner else notebook.tag(OWNER_TAG)))
    if found.mine is None and unclaimed and intents and intents.create_begun(command.command_id):
        found.mine = unclaimed.pop(0)
    found.taken += [(notebook, None) for notebook in unclaimed]
    return found


def owner_record(
    project_id: str, notebook: Notebook, command: CreateCommand, now: datetime
) -> Owner:
    """The author's owner record, naming the command (written before the notebook is tagged)."""
    return Owner(
        project_id=project_id,
        notebook_id=notebook.id,
        user_id=command.requested_by.user_id,
        team_id=command.requested_by.team_id,
        notebook_name=command.name,
        created_at=now,
        command_id=command.command_id,
    )


def name_taken(command: CreateCommand, taken: list[tuple[Notebook, str | None]]) -> Message:
    """What the author of a create whose name is taken is told."""
    which = "; ".join(
        f"`{escape(notebook.id)}` ({notebook.status.value}, "
        + (f"owner <@{escape(owner)}>" if owner else "not created through nbkeeper")
        + ")"
        for notebook, owner in taken
    )
    return render.done(
        f"Did not create *{escape(command.name)}*: a notebook with that name already exists "
        f"({which}). Names pick notebooks in `/nb` commands, so choose another name.",
        ok=False,
    )


async def account_for_failed_create(
    client: NotebookApi,
    store: StateStore,
    intents: CreateIntents | None,
    project_id: str,
    command: CreateCommand,
    now: datetime,
) -> str:
    """On a create's last receive: what exists, settled so nothing runs unowned.

    The notebook this command made (if any) is recorded as the author's; when that cannot be
    done it is stopped. Returns the sentence the author is told.
    """
    name = f"*{escape(command.name)}*"
    found = await namesakes(client, store, intents, project_id, command)
    notebook = found.mine
    if notebook is None:
        return f"No notebook called {name} was created for you."
    what = f"{name} exists nonetheless (`{escape(notebook.id)}`, {notebook.status.value})"
    if not found.recorded:
        try:
            store.put_owner(owner_record(project_id, notebook, command, now))
        except Exception:  # the state table's errors vary; the notebook must not run unowned
            logger.exception("could not record the owner of a notebook a failed create made")
            return await _stop_unowned(client, notebook, what)
    return (
        f"{what} and is recorded as yours. It is billed while it runs: "
        f"`/nb stop {escape(command.name)}` or `/nb delete {escape(command.name)}` if you do "
        "not want it."
    )


async def _stop_unowned(client: NotebookApi, notebook: Notebook, what: str) -> str:
    try:
        await client.stop_notebook(notebook.id)
    except ModelArtsError as exc:
        logger.error("could not stop an unowned notebook: %s", exc.kind)
        return (
            f"{what}, but nbkeeper could neither record you as its owner nor stop it: tell an "
            "admin, it is billed while it runs."
        )
    return (
        f"{what}, but nbkeeper could not record you as its owner, so it was stopped. An admin "
        "can delete it, or record it as yours."
    )
