"""Slash commands: a parsed `/nb ...` request -> a reply, and maybe a command to queue.

Non-admins act only on notebooks they own; `delete`, acting on someone else's notebook and
stop-update-start ask for confirmation first (a button whose value carries the command).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import pydantic

from nbkeeper.chatops import catalog as by_name
from nbkeeper.chatops.access import ChatConfig, ChatReply, Invocation, command_base
from nbkeeper.chatops.directory import Directory, Found
from nbkeeper.commands import (
    CreateCommand,
    DeleteCommand,
    KeepCommand,
    ProlongCommand,
    SaveCommand,
    StartCommand,
    StopCommand,
    UpdateCommand,
)
from nbkeeper.explain import explain_error
from nbkeeper.modelarts.schemas import Notebook, NotebookStatus, NotebookUpdateRequest
from nbkeeper.slack import grammar, render
from nbkeeper.slack.buttons import VALUE_MAX, ConfirmValue
from nbkeeper.slack.render import Message

ActionCommand = (
    DeleteCommand
    | StopCommand
    | StartCommand
    | ProlongCommand
    | KeepCommand
    | UpdateCommand
    | SaveCommand
)


@dataclass(frozen=True)
class Planned:
    """A notebook action ready to queue: the command, a one-line summary, and why it needs a
    confirmation first ("" when it does not)."""

    command: ActionCommand
    summary: str
    confirm_reason: str = ""


def handle_request(
    request: grammar.ParsedRequest,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
    catalog: by_name.Catalog | None = None,
) -> ChatReply:
    """Authorize, resolve and validate one parsed command."""
    refusal = config.access.refusal(inv.team_id, inv.channel_id, inv.user_id)
    if refusal:
        return ChatReply(render.problem(f"Sorry, {refusal}"))
    if isinstance(request, grammar.HelpRequest):
        return ChatReply(render.info(grammar.help_text(request.topic)))
    if isinstance(request, grammar.ListRequest):
        return _list(request, inv, directory)
    if isinstance(request, grammar.CatalogRequest | grammar.CreateRequest):
        return _with_catalog(request, inv, config, directory, catalog)
    found = resolve(request.target, directory)
    if isinstance(found, ChatReply):
        return found
    if isinstance(request, grammar.StatusRequest):
        return ChatReply(render.notebook_status(found.notebook, found.owner))
    if isinstance(request, grammar.UpdateRequest) and catalog is not None:
        named = by_name.resolve_create(request, catalog)  # image= and flavor= by name
        if isinstance(named, ChatReply):
            return named
        request = named.request
    return act(request, found, inv, config)


def _list(request: grammar.ListRequest, inv: Invocation, directory: Directory) -> ChatReply:
    everyone = request.scope == "all"
    rows = directory.listing()
    if not everyone:
        rows = [row for row in rows if row.owner == inv.user_id]
    title = "All notebooks" if everyone else "Your notebooks"
    return ChatReply(render.notebook_list(title, [(r.notebook, r.owner) for r in rows]))


def resolve(target: str, directory: Directory) -> Found | ChatReply:
    try:
        matches = directory.find(target)
    except pydantic.ValidationError as exc:  # e.g. longer than ModelArts allows a name to be
        return ChatReply(
            render.problem(
                f"No notebook can be called {render.bold(target)}: "
                f"{render.sentence(explain_error(exc))}."
            )
        )
    if not matches:
        return ChatReply(
            render.problem(
                f"No notebook is called or has the id {render.bold(target)}. "
                "`/nb list all` shows every notebook."
            )
        )
    if len(matches) > 1:
        return ChatReply(render.candidates(target, [(m.notebook, m.owner) for m in matches]))
    return matches[0]


def _with_catalog(
    request: grammar.CatalogRequest | grammar.CreateRequest,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
    catalog: by_name.Catalog | None,
) -> ChatReply:
    """Requests that read the images and flavors (chatops/catalog.py)."""
    if isinstance(request, grammar.CreateRequest):
        if catalog is None:
            return _create(request, inv, config, directory)
        resolved = by_name.resolve_create(request, catalog, config.default_image)
        if isinstance(resolved, ChatReply):
            return resolved
        return _create(resolved.request, inv, config, directory, resolved.picked)
    if catalog is None:
        return ChatReply(render.problem("Listing images and flavors is not available here."))
    if request.verb == "images":
        return by_name.images_reply(request, catalog)
    return by_name.flavors_reply(request, catalog)


def _create(
    request: grammar.CreateRequest,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
    picked: str = "",
) -> ChatReply:
    image = request.image or config.default_image
    if image is None:
        return ChatReply(
            render.problem(
                "No image given and no default image is configured: add image=NAME or "
                "image=ID (`/nb images` lists them)."
            ),
            about="image",
        )
    try:
        command = CreateCommand(
            **command_base(inv, config),
            name=request.name,
            flavor=request.flavor or config.default_flavor,
            image_id=image,
            storage_gb=request.storage_gb or config.default_storage_gb,
            hours=request.hours or config.default_hours,
            idle_stop=request.idle,
        )
        command.to_request()
    except pydantic.ValidationError as exc:
        reason = render.sentence(explain_error(exc))
        return ChatReply(
            render.problem(f"Cannot create that notebook: {reason}"), about=_about(exc)
        )
    if directory.find(request.name):
        return ChatReply(
            render.problem(
                f"A notebook called {render.bold(request.name)} already exists; names pick "
                "notebooks in every other command, so choose another name."
            ),
            about="name",
        )
    lease = "stops when idle" if command.idle_stop else f"runs {command.hours} h"
    flavor = render.fit(command.flavor, render.FLAVOR_MAX)
    chosen = f"{picked}, " if picked else ""
    summary = f"Creating {render.bold(command.name)} ({chosen}{flavor}, {command.storage_gb} GB, {lease})."
    return ChatReply(render.queued(summary), command)


# CreateCommand's fields (and its request body's) as the CreateRequest fields they come from.
_REQUEST_FIELD = {"image_id": "image", "volume": "storage_gb", "lease": "hours"}


def _about(exc: pydantic.ValidationError) -> str | None:
    """The CreateRequest field the first error is about (None: not one of them)."""
    errors = exc.errors()
    where = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else ""
    field = _REQUEST_FIELD.get(where, where)
    return field if field in ("name", "image", "flavor", "storage_gb", "hours") else None


def act(
    request: grammar.ParsedRequest,
    found: Found,
    inv: Invocation,
    config: ChatConfig,
) -> ChatReply:
    notebook = found.notebook
    name = notebook.name or notebook.id
    admin = config.access.is_admin(inv.user_id)
    mine = found.owner == inv.user_id
    if not mine and not admin:
        whose = (
            f"belongs to {render.mention(found.owner)}" if found.owner else "was not created by you"
        )
        return ChatReply(
            render.problem(
                f"{render.bold(name)} {whose}; only its owner or an nbkeeper admin can "
                f"{request.verb} it."
            )
        )
    built = _plan(request, notebook, inv, config)
    if isinstance(built, ChatReply):
        return built
    command, summary, confirm_reason = built.command, built.summary, built.confirm_reason
    if not mine:
        owner = render.mention(found.owner) if found.owner else "someone else"
        whose = f"{render.bold(name)} belongs to {owner}."
        confirm_reason = f"{whose} {confirm_reason}" if confirm_reason else whose
    if isinstance(command, DeleteCommand):
        confirm_reason = (confirm_reason + " " if confirm_reason else "") + _storage_is_lost(
            notebook
        )
    if confirm_reason:
        return ChatReply(_confirmation(command, summary, confirm_reason, inv, found.owner))
    return ChatReply(render.queued(summary), command)


def _storage_is_lost(notebook: Notebook) -> str:
    """What a delete takes with it, and how to keep the environment first."""
    target = render.fit(notebook.name or notebook.id, render.NAME_MAX)
    return (
        "Deleting removes the notebook and its storage for good (files and installed "
        f"packages). To keep its environment, save it first: `/nb save {target} as IMAGE`."
    )


def _plan(
    request: grammar.ParsedRequest,
    notebook: Notebook,
    inv: Invocation,
    config: ChatConfig,
) -> Planned | ChatReply:
    """The command for a notebook action, or the reply that says why there is none."""
    base = {**command_base(inv, config), "notebook_id": notebook.id, "notebook_name": notebook.name}
    name = render.notebook_name(notebook)
    status = notebook.status
    if isinstance(request, grammar.DeleteRequest):
        return Planned(DeleteCommand(**base), f"Deleting {name}.")
    if isinstance(request, grammar.StopRequest):
        if status is NotebookStatus.STOPPED:
            return ChatReply(render.info(f"{name} is already stopped."))
        return Planned(StopCommand(**base), f"Stopping {name}.")
    if isinstance(request, grammar.StartRequest):
        if status is NotebookStatus.RUNNING:
            return ChatReply(
                render.info(f"{name} is already running; `/nb prolong` extends its lease.")
            )
        hours = request.hours or config.default_hours
        return Planned(StartCommand(**base, hours=hours), f"Starting {name} for {hours} h.")
    if isinstance(request, grammar.ProlongRequest):
        if status is not NotebookStatus.RUNNING:
            return ChatReply(
                render.problem(f"{name} is {status.value}; only a running notebook has a lease.")
            )
        command = ProlongCommand(**base, hours=request.hours)
        return Planned(command, f"Extending {name}'s lease to {request.hours} h from now.")
    if isinstance(request, grammar.KeepRequest):
        until = keep_until(request, inv.now, config.timezone)
        when = _local_moment(until, inv.now, config.timezone)
        if request.until is not None and not when.endswith(" today"):
            # "until 18:00" typed at 19:30 means tomorrow's 18:00: say why, not just when.
            when += ", since that time today has passed"
        note = "" if status is NotebookStatus.RUNNING else f" (it is {status.value} now)"
        summary = f"Keeping {name} alive until {when}{note}."
        return Planned(KeepCommand(**base, until=until), summary)
    if isinstance(request, grammar.UpdateRequest):
        return _update(request, notebook, base, name)
    if isinstance(request, grammar.SaveRequest):
        return _save(request, notebook, base, name)
    return ChatReply(render.problem("That command does not act on a notebook."))


def _update(
    request: grammar.UpdateRequest,
    notebook: Notebook,
    base: dict[str, Any],
    name: str,
) -> Planned | ChatReply:
    try:
        changes = NotebookUpdateRequest(
            name=request.name,
            description=request.description,
            flavor=request.flavor,
            image_id=request.image,
            storage_new_size=request.storage_gb,
        )
        capacity = notebook.volume.capacity if notebook.volume else None
        changes.check_storage_growth(capacity)
    except (pydantic.ValidationError, ValueError) as exc:
        why = explain_error(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
        reason = render.sentence(why)
        return ChatReply(render.problem(f"Cannot update {name}: {reason}"))
    what = ", ".join(sorted(changes.model_dump(exclude_none=True)))
    if notebook.status is NotebookStatus.STOPPED:
        return Planned(UpdateCommand(**base, changes=changes), f"Updating {name} ({what}).")
    if notebook.status is NotebookStatus.RUNNING:
        command = UpdateCommand(**base, changes=changes, restart=True)
        reason = (
            f"{name} is running, and ModelArts only updates stopped notebooks. "
            "I can stop it, update it and start it again; unsaved work in it will be lost."
        )
        return Planned(command, f"Stopping, updating ({what}) and restarting {name}.", reason)
    return ChatReply(
        render.problem(
            f"{name} is {notebook.status.value}; update works on a stopped notebook. "
            "Try again once it has settled."
        )
    )


def _save(
    request: grammar.SaveRequest,
    notebook: Notebook,
    base: dict[str, Any],
    name: str,
) -> Planned | ChatReply:
    tag = {"tag": request.tag} if request.tag is not None else {}
    try:
        command = SaveCommand(**base, image=request.image, **tag)
    except pydantic.ValidationError as exc:
        reason = render.sentence(explain_error(exc))
        return ChatReply(render.problem(f"Cannot save {name} as an image: {reason}"))
    status = notebook.status
    if status is not NotebookStatus.RUNNING:
        target = render.fit(notebook.name or notebook.id, render.NAME_MAX)
        how = (
            f"start it (`/nb start {target}`), then save it"
            if status is NotebookStatus.STOPPED
            else "try again once it is running"
        )
        return ChatReply(
            render.problem(
                f"{name} is {status.value}; only a running notebook can be saved as an image: "
                f"{how}."
            )
        )
    summary = (
        f"Saving {name} as the image {render.bold(command.label)}; JupyterLab is unavailable "
        "while it is saved (minutes, more for a large environment), then it runs on."
    )
    return Planned(command, summary)


def keep_until(request: grammar.KeepRequest, now: datetime, tz: tzinfo) -> datetime:
    """When a `keep` ends: now + duration, or the first instant after `now` at which the clock in
    `tz` shows the time (compared as instants, so the repeated autumn hour counts twice)."""
    if request.duration is not None:
        return now + request.duration
    assert request.until is not None
    today = now.astimezone(tz).date()
    for day in (today + timedelta(days=n) for n in range(3)):
        later = sorted(i for i in _occurrences(day, request.until, tz) if i > now)
        if later:
            return later[0]
    raise AssertionError("a clock time occurs at least once in any two days")


def _occurrences(day: date, clock: time, tz: tzinfo) -> set[datetime]:
    """The instants (UTC) at which the clock in `tz` shows `clock` on `day`: one, or two in the
    autumn's repeated hour. A time the spring change skips is moved forward by the gap (02:30
    becomes 03:30 CEST), the rule java.time and dateutil follow."""
    found = set()
    for fold in (0, 1):
        local = datetime.combine(day, clock, tzinfo=tz).replace(fold=fold)
        instant = local.astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
            found.add(instant)
    if not found:  # skipped: fold=0 reads it with the offset before the change
        found.add(datetime.combine(day, clock, tzinfo=tz).astimezone(UTC))
    return found


def _local_moment(moment: datetime, now: datetime, tz: tzinfo) -> str:
    """`18:00 CEST today` / `02:00 CEST tomorrow (Wed 12 Jun)` / `... on Thu 13 Jun`."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    days = (local.date() - today).days
    if days == 0:
        return f"{local:%H:%M %Z} today"
    if days == 1:
        return f"{local:%H:%M %Z} tomorrow ({local:%a %d %b})"
    return f"{local:%H:%M %Z} on {local:%a %d %b}"


_BASE_FIELDS = {"command_id", "requested_at", "requested_by"}


def _confirmation(
    command: ActionCommand, summary: str, reason: str, inv: Invocation, owner: str | None
) -> Message:
    value = ConfirmValue(
        at=ConfirmValue.stamp(inv.now),
        by=inv.user_id,
        owner=owner,
        cmd=command.model_dump(mode="json", exclude=_BASE_FIELDS, exclude_none=True),
    ).encode()
    if len(value) > VALUE_MAX:
        return render.problem("That request is too long to confirm; shorten the description.")
    question = f"{reason} {summary.removesuffix('.')}?"
    verb = command.type
    label = {"update": "Stop, update, start", "keep": "Keep alive"}.get(verb, verb.capitalize())
    return render.confirmation(
        render.Confirmation(
            question=question,
            confirm_label=label,
            value=value,
            title=f"{label}?",
            danger=verb in ("delete", "stop", "update"),
        )
    )
