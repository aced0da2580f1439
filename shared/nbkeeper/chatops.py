"""Chat-ops domain: a parsed Slack request -> a reply, and maybe a Command to queue.

Pure: the caller passes who asked (`Invocation`, with `now`), the configuration (`ChatConfig`),
and a read-only `Directory` of notebooks and their owners. Nothing here touches the network or the
environment. Rules:
- only allowed workspaces, channels and users get anywhere;
- non-admins act only on notebooks they own (owner = Slack user recorded at create, as the
  `nbkeeper.owner` tag and in the state table); admins act on any;
- `delete`, any action on someone else's notebook, and stop-update-start ask for confirmation
  (a Block Kit confirm button whose value carries the command; re-authorized when clicked);
- an ambiguous name lists the candidates instead of guessing;
- the lease keeper's buttons work where its warnings land (DMs, so no channel check) and only for
  this project's notebooks: the Directory, and so the owner check, covers no other project.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

import pydantic

from nbkeeper.commands import (
    COMMAND_ADAPTER,
    Command,
    CreateCommand,
    DeleteCommand,
    KeepCommand,
    Project,
    ProlongCommand,
    Requester,
    StartCommand,
    StopCommand,
    UpdateCommand,
)
from nbkeeper.modelarts.errors import ModelArtsError, describe_validation_error
from nbkeeper.modelarts.schemas import (
    UUID_PATTERN,
    Notebook,
    NotebookStatus,
    NotebookUpdateRequest,
)
from nbkeeper.slack import grammar, render
from nbkeeper.slack.buttons import KEEP_ACTION, STOP_ACTION
from nbkeeper.slack.render import Message

ActionCommand = (
    DeleteCommand | StopCommand | StartCommand | ProlongCommand | KeepCommand | UpdateCommand
)


# ---------------------------------------------------------------- configuration and inputs


@dataclass(frozen=True)
class Access:
    """Who may use nbkeeper. An empty set means "no restriction" for teams, channels, users."""

    teams: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def refusal(
        self,
        team_id: str | None,
        channel_id: str | None,
        user_id: str,
        *,
        check_channel: bool = True,
    ) -> str | None:
        """Why this person may not use nbkeeper here, or None.

        `check_channel=False` for buttons nbkeeper itself posted outside its channels (the lease
        keeper's warnings are DMs, which are never on the channel list)."""
        if self.teams and team_id not in self.teams:
            return "nbkeeper is not enabled for this workspace."
        if self.users and user_id not in self.users and user_id not in self.admins:
            return "you are not on nbkeeper's list of users; ask an admin to add you."
        if check_channel and self.channels and channel_id not in self.channels:
            return "nbkeeper does not take commands in this channel; use one of its channels."
        return None


@dataclass(frozen=True)
class ChatConfig:
    project: Project
    access: Access = field(default_factory=Access)
    default_flavor: str = "modelarts.vm.cpu.2u"
    default_image_id: str | None = None
    default_storage_gb: int = 5
    default_hours: int = 2
    timezone: tzinfo = UTC


@dataclass(frozen=True)
class Invocation:
    """One Slack request: who, where, where to answer, and when."""

    user_id: str
    team_id: str | None
    channel_id: str | None
    response_url: str | None
    command_id: str
    now: datetime
    response_url_posts: int = 0  # posts already made to response_url (by the webhook itself)

    def requester(self, access: Access) -> Requester:
        return Requester(
            user_id=self.user_id,
            team_id=self.team_id,
            channel_id=self.channel_id,
            response_url=self.response_url,
            is_admin=access.is_admin(self.user_id),
            response_url_posts=self.response_url_posts,
        )


@dataclass(frozen=True)
class Found:
    notebook: Notebook
    owner: str | None  # Slack user id, or None when nbkeeper did not create it


class Directory(Protocol):
    """Read-only view of the project's notebooks (one ModelArts call, plus the owner records)."""

    def find(self, target: str) -> list[Found]:
        """The notebook with this id, or every notebook with exactly this name."""
        ...

    def listing(self, *, all_users: bool) -> list[Found]: ...


@dataclass(frozen=True)
class Outcome:
    """What to answer now, and what (if anything) to queue."""

    reply: Message
    command: Command | None = None


def explain_error(exc: Exception) -> str:
    """The one place domain errors become sentences for people (no secrets, no stack)."""
    if isinstance(exc, pydantic.ValidationError):
        return describe_validation_error(exc)
    if isinstance(exc, ModelArtsError):
        hints = {
            "not found": "it may have been deleted; `/nb list all` shows what exists.",
            "wrong state": "its current state does not allow that; `/nb status` shows it.",
            "throttled": "ModelArts is busy; try again in a minute.",
            "quota exceeded": "the quota or capacity is exhausted; try another flavor or later.",
            "server error": "ModelArts failed; try again later.",
            "transport error": "ModelArts did not answer; try again later.",
            "unauthorized": "nbkeeper's ModelArts credentials were refused; tell an admin.",
            "forbidden": "nbkeeper is not allowed to do that in ModelArts; tell an admin.",
        }
        code = f" ({exc.error_code})" if exc.error_code else ""
        hint = hints.get(exc.kind, "")
        return f"ModelArts said: {exc.message}{code}. {hint}".strip()
    return "something went wrong inside nbkeeper; an admin can find the details in its logs."


# ---------------------------------------------------------------- slash commands


def handle_request(
    request: grammar.ParsedRequest,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
) -> Outcome:
    """Authorize, resolve and validate one parsed command."""
    refusal = config.access.refusal(inv.team_id, inv.channel_id, inv.user_id)
    if refusal:
        return Outcome(render.problem(f"Sorry, {refusal}"))
    if isinstance(request, grammar.HelpRequest):
        return Outcome(render.info(grammar.help_text(request.topic)))
    if isinstance(request, grammar.ListRequest):
        return _list(request, inv, directory)
    if isinstance(request, grammar.CreateRequest):
        return _create(request, inv, config, directory)
    found = _resolve(request.target, directory)
    if isinstance(found, Outcome):
        return found
    if isinstance(request, grammar.StatusRequest):
        return Outcome(render.notebook_status(found.notebook, found.owner))
    return _act(request, found, inv, config)


def _list(request: grammar.ListRequest, inv: Invocation, directory: Directory) -> Outcome:
    everyone = request.scope == "all"
    rows = directory.listing(all_users=everyone)
    if not everyone:
        rows = [row for row in rows if row.owner == inv.user_id]
    title = "All notebooks" if everyone else "Your notebooks"
    return Outcome(render.notebook_list(title, [(r.notebook, r.owner) for r in rows]))


def _resolve(target: str, directory: Directory) -> Found | Outcome:
    matches = directory.find(target)
    if not matches:
        return Outcome(
            render.problem(
                f"No notebook is called or has the id *{render.escape(target)}*. "
                "`/nb list all` shows every notebook."
            )
        )
    if len(matches) > 1:
        return Outcome(render.candidates(target, [(m.notebook, m.owner) for m in matches]))
    return matches[0]


def _create(
    request: grammar.CreateRequest,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
) -> Outcome:
    image = request.image or config.default_image_id
    if image is None:
        return Outcome(
            render.problem(
                "No image given and no default image is configured: add image=ID "
                "(an image UUID from the ModelArts console)."
            )
        )
    try:
        command = CreateCommand(
            **_base(inv, config),
            name=request.name,
            flavor=request.flavor or config.default_flavor,
            image_id=image,
            storage_gb=request.storage_gb or config.default_storage_gb,
            hours=request.hours or config.default_hours,
            idle_stop=request.idle,
        )
        command.to_request()
    except pydantic.ValidationError as exc:
        return Outcome(render.problem(f"Cannot create that notebook: {explain_error(exc)}"))
    if directory.find(request.name):
        return Outcome(
            render.problem(
                f"A notebook called *{render.escape(request.name)}* already exists; names pick "
                "notebooks in every other command, so choose another name."
            )
        )
    lease = "stops when idle" if command.idle_stop else f"runs {command.hours} h"
    summary = f"Creating *{command.name}* ({command.flavor}, {command.storage_gb} GB, {lease})."
    return Outcome(render.queued(summary), command)


def _act(
    request: grammar.ParsedRequest,
    found: Found,
    inv: Invocation,
    config: ChatConfig,
) -> Outcome:
    notebook = found.notebook
    name = notebook.name or notebook.id
    admin = config.access.is_admin(inv.user_id)
    mine = found.owner == inv.user_id
    if not mine and not admin:
        whose = f"belongs to <@{found.owner}>" if found.owner else "was not created by you"
        return Outcome(
            render.problem(
                f"*{render.escape(name)}* {whose}; only its owner or an nbkeeper admin can "
                f"{request.verb} it."
            )
        )
    built = _build(request, notebook, inv, config)
    if isinstance(built, Outcome):
        return built
    command, summary, confirm_reason = built
    if not mine:
        owner = f"<@{found.owner}>" if found.owner else "someone else"
        whose = f"*{render.escape(name)}* belongs to {owner}."
        confirm_reason = f"{whose} {confirm_reason}" if confirm_reason else whose
    if isinstance(command, DeleteCommand):
        confirm_reason = (confirm_reason + " " if confirm_reason else "") + (
            "Deleting removes the notebook and its storage for good."
        )
    if confirm_reason:
        return Outcome(_confirmation(command, summary, confirm_reason, inv, found.owner))
    return Outcome(render.queued(summary), command)


def _build(
    request: grammar.ParsedRequest,
    notebook: Notebook,
    inv: Invocation,
    config: ChatConfig,
) -> tuple[ActionCommand, str, str] | Outcome:
    """The command for a notebook action, a one-line summary, and a reason to confirm (or "")."""
    base = {**_base(inv, config), "notebook_id": notebook.id, "notebook_name": notebook.name}
    name = f"*{render.escape(notebook.name or notebook.id)}*"
    status = notebook.status
    if isinstance(request, grammar.DeleteRequest):
        return DeleteCommand(**base), f"Deleting {name}.", ""
    if isinstance(request, grammar.StopRequest):
        if status is NotebookStatus.STOPPED:
            return Outcome(render.info(f"{name} is already stopped."))
        return StopCommand(**base), f"Stopping {name}.", ""
    if isinstance(request, grammar.StartRequest):
        if status is NotebookStatus.RUNNING:
            return Outcome(
                render.info(f"{name} is already running; `/nb prolong` extends its lease.")
            )
        hours = request.hours or config.default_hours
        return StartCommand(**base, hours=hours), f"Starting {name} for {hours} h.", ""
    if isinstance(request, grammar.ProlongRequest):
        if status is not NotebookStatus.RUNNING:
            return Outcome(
                render.problem(f"{name} is {status.value}; only a running notebook has a lease.")
            )
        command = ProlongCommand(**base, hours=request.hours)
        return command, f"Extending {name}'s lease to {request.hours} h from now.", ""
    if isinstance(request, grammar.KeepRequest):
        until = keep_until(request, inv.now, config.timezone)
        when = _local_moment(until, inv.now, config.timezone)
        if request.until is not None and not when.endswith(" today"):
            # "until 18:00" typed at 19:30 means tomorrow's 18:00: say why, not just when.
            when += f"; {request.until:%H:%M} today has passed"
        note = "" if status is NotebookStatus.RUNNING else f" (it is {status.value} now)"
        summary = f"Keeping {name} alive until {when}{note}."
        return KeepCommand(**base, until=until), summary, ""
    if isinstance(request, grammar.UpdateRequest):
        return _update(request, notebook, base, name)
    return Outcome(render.problem("That command does not act on a notebook."))


def _update(
    request: grammar.UpdateRequest,
    notebook: Notebook,
    base: dict[str, Any],
    name: str,
) -> tuple[ActionCommand, str, str] | Outcome:
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
        reason = explain_error(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
        return Outcome(render.problem(f"Cannot update {name}: {reason}"))
    what = ", ".join(sorted(changes.model_dump(exclude_none=True)))
    if notebook.status is NotebookStatus.STOPPED:
        return UpdateCommand(**base, changes=changes), f"Updating {name} ({what}).", ""
    if notebook.status is NotebookStatus.RUNNING:
        command = UpdateCommand(**base, changes=changes, restart=True)
        reason = (
            f"{name} is running, and ModelArts only updates stopped notebooks. "
            "I can stop it, update it and start it again; unsaved work in it will be lost."
        )
        return command, f"Stopping, updating ({what}) and restarting {name}.", reason
    return Outcome(
        render.problem(
            f"{name} is {notebook.status.value}; update works on a stopped notebook. "
            "Try again once it has settled."
        )
    )


def keep_until(request: grammar.KeepRequest, now: datetime, tz: tzinfo) -> datetime:
    """When a `keep` ends: now + duration, or the next occurrence of the clock time in `tz`."""
    if request.duration is not None:
        return now + request.duration
    assert request.until is not None
    local_now = now.astimezone(tz)
    candidate = datetime.combine(local_now.date(), request.until, tzinfo=tz)
    if candidate <= local_now:
        candidate = datetime.combine(local_now.date() + timedelta(days=1), request.until, tzinfo=tz)
    return candidate.astimezone(UTC)


def _local_moment(moment: datetime, now: datetime, tz: tzinfo) -> str:
    """`18:00 CEST today` / `02:00 CEST tomorrow (Wed 12 Jun)` / `... on Thu 13 Jun`."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    days = (local.date() - today).days
    if days == 0:
        return f"{local:%H:%M %Z} today"
    if days == 1:
        return f"{local:%H:%M %Z} tomorrow ({local:%a %d %b})"
    return f"{local:%H:%M %Z} on {local:%a %d %b}"


def _base(inv: Invocation, config: ChatConfig) -> dict[str, Any]:
    return {
        "command_id": inv.command_id,
        "requested_at": inv.now,
        "requested_by": inv.requester(config.access),
        "project": config.project,
    }


# ---------------------------------------------------------------- confirmations and buttons

_BASE_FIELDS = {"command_id", "requested_at", "requested_by"}


def _confirmation(
    command: ActionCommand, summary: str, reason: str, inv: Invocation, owner: str | None
) -> Message:
    payload = {
        "by": inv.user_id,
        "owner": owner,  # re-checked on the click: an admin may have lost the role meanwhile
        "cmd": command.model_dump(mode="json", exclude=_BASE_FIELDS, exclude_none=True),
    }
    value = json.dumps(payload, separators=(",", ":"))
    if len(value) > render.BUTTON_VALUE_MAX:
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


@dataclass(frozen=True)
class ButtonAction:
    action_id: str
    value: str


def handle_action(
    action: ButtonAction,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
) -> Outcome:
    """A button click: our confirm/cancel, or the lease keeper's keep/stop on a warning.

    The reply replaces the message that held the button.
    """
    keeper = action.action_id in (KEEP_ACTION, STOP_ACTION)
    refusal = config.access.refusal(
        inv.team_id, inv.channel_id, inv.user_id, check_channel=not keeper
    )
    if refusal:
        return Outcome(render.problem(f"Sorry, {refusal}", replace_original=False))
    if action.action_id == render.CANCEL_ACTION:
        return Outcome(render.info("Cancelled; nothing was changed.", replace_original=True))
    try:
        value = json.loads(action.value)
        if not isinstance(value, dict):
            raise TypeError("button value is not an object")
        if action.action_id == render.CONFIRM_ACTION:
            return _confirmed(value, inv, config)
        if keeper:
            return _keeper_button(action.action_id, value, inv, config, directory)
    except (ValueError, TypeError, KeyError):
        return Outcome(render.problem("That button's data is not readable; nothing was done."))
    return Outcome(render.problem("I do not know that button; nothing was done."))


_CONFIRMABLE = (
    DeleteCommand,
    StopCommand,
    StartCommand,
    ProlongCommand,
    KeepCommand,
    UpdateCommand,
)


def _confirmed(value: dict[str, Any], inv: Invocation, config: ChatConfig) -> Outcome:
    """Queue a confirmed command, re-authorized now: the clicker must be who asked (or an admin),
    and a non-admin must still own the notebook."""
    asked_by = str(value["by"])
    admin = config.access.is_admin(inv.user_id)
    if inv.user_id != asked_by and not admin:
        return Outcome(
            render.problem(
                f"Only <@{asked_by}> (who asked) or an admin can confirm this.",
                replace_original=False,
            )
        )
    try:
        command = COMMAND_ADAPTER.validate_python(
            {
                **value["cmd"],
                "command_id": inv.command_id,
                "requested_at": inv.now,
                "requested_by": inv.requester(config.access),
            }
        )
    except pydantic.ValidationError as exc:
        return Outcome(render.problem(f"Cannot do that: {explain_error(exc)}"))
    if not isinstance(command, _CONFIRMABLE):
        return Outcome(render.problem("That confirmation is not for a notebook; nothing was done."))
    name = command.notebook_name or command.notebook_id
    owner = value.get("owner")
    if not admin and owner != inv.user_id:
        whose = f"belongs to <@{owner}>" if owner else "was not created by you"
        return Outcome(
            render.problem(
                f"*{render.escape(name)}* {whose}; only its owner or an nbkeeper admin can "
                f"{command.type} it. Nothing was done.",
                replace_original=False,
            )
        )
    return Outcome(
        render.info(
            f":hourglass_flowing_sand: Confirmed by <@{inv.user_id}>: {command.type} "
            f"*{render.escape(name)}*. Queued; I'll report back here.",
            replace_original=True,
        ),
        command,
    )


def _keeper_button(
    action_id: str,
    value: dict[str, Any],
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
) -> Outcome:
    project_id = str(value["project_id"])
    notebook_id = str(value["notebook_id"])
    request: grammar.ParsedRequest
    if action_id == KEEP_ACTION:
        hours = int(value.get("hours", 2))
        request = grammar.KeepRequest(notebook_id, duration=timedelta(hours=max(1, min(hours, 72))))
    else:
        request = grammar.StopRequest(notebook_id)
    if project_id != config.project.project_id:
        # The keeper may sweep several projects; the Directory (and so the owner check) covers
        # only this one, so a command for another project could not be authorized here.
        return Outcome(
            render.problem(
                f"That warning is about a notebook in ModelArts project {render.escape(project_id)}"
                f", which nbkeeper's Slack commands do not manage (they manage "
                f"{config.project.project_id}). Nothing was done: {request.verb} it in the "
                "ModelArts console, or ask an nbkeeper admin."
            )
        )
    found = _resolve(notebook_id, directory)
    if isinstance(found, Outcome):
        return found
    outcome = _act(request, found, inv, config)
    if outcome.command is None:
        return outcome  # a refusal, a no-op, or a confirmation (someone else's notebook)
    return Outcome({**outcome.reply, "replace_original": True}, outcome.command)


def describe_candidates(found: Sequence[Found]) -> str:
    """Plain-text list of notebooks (for logs and tests)."""
    return ", ".join(f"{f.notebook.name} ({f.notebook.id})" for f in found)


def looks_like_id(target: str) -> bool:
    return bool(UUID_PATTERN.match(target))
