"""Button clicks: our Confirm/Cancel, and the lease keeper's [Keep 2h more] / [Stop now].

Every click is re-authorized when it arrives: the clicker must be who asked (or an admin) and a
non-admin must still own the notebook. Button values are read by the models in
`nbkeeper.slack.buttons`, the one codec for what our buttons carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pydantic

from nbkeeper.chatops.access import ChatConfig, ChatReply, Invocation
from nbkeeper.chatops.directory import Directory
from nbkeeper.chatops.slash import act, resolve
from nbkeeper.commands import (
    COMMAND_ADAPTER,
    DeleteCommand,
    KeepCommand,
    ProlongCommand,
    SaveCommand,
    StartCommand,
    StopCommand,
    UpdateCommand,
)
from nbkeeper.explain import explain_error
from nbkeeper.slack import grammar, render
from nbkeeper.slack.buttons import (
    CANCEL_ACTION,
    CONFIRM_ACTION,
    CONFIRM_MAX_AGE,
    KEEP_ACTION,
    KEEPER_MAX_AGE,
    STOP_ACTION,
    ButtonValueError,
    ConfirmValue,
    KeeperValue,
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
) -> ChatReply:
    """A button click: our confirm/cancel, or the lease keeper's keep/stop on a warning.

    The reply replaces the message that held the button.
    """
    keeper = action.action_id in (KEEP_ACTION, STOP_ACTION)
    refusal = config.access.refusal(
        inv.team_id, inv.channel_id, inv.user_id, check_channel=not keeper
    )
    if refusal:
        return ChatReply(render.problem(f"Sorry, {refusal}", replace_original=False))
    if action.action_id == CANCEL_ACTION:
        return ChatReply(render.info("Cancelled; nothing was changed.", replace_original=True))
    if action.action_id not in (CONFIRM_ACTION, KEEP_ACTION, STOP_ACTION):
        return ChatReply(render.problem("I do not know that button; nothing was done."))
    try:
        if action.action_id == CONFIRM_ACTION:
            confirm = ConfirmValue.decode(action.value)
        else:
            keeper_value = KeeperValue.decode(action.value)
    except ButtonValueError:
        return ChatReply(
            render.problem(
                "I do not recognise that button (it may come from an older nbkeeper); "
                "nothing was done. Run the command again."
            )
        )
    if action.action_id == CONFIRM_ACTION:
        if confirm.expired(inv.now):
            return ChatReply(_expired(f"confirmations last {_span(CONFIRM_MAX_AGE)}"))
        return _confirmed(confirm, inv, config)
    # A Keep from before buttons carried their time is honoured: see nbkeeper.slack.buttons.
    legacy_keep = keeper_value.at is None and action.action_id == KEEP_ACTION
    if keeper_value.expired(inv.now) and not legacy_keep:
        return ChatReply(
            _expired(
                f"a warning's buttons work until {_span(KEEPER_MAX_AGE)} after the stop it "
                "announced; `/nb status`, `/nb keep` and `/nb stop` still work"
            )
        )
    return _keeper_button(action.action_id, keeper_value, inv, config, directory)


def _expired(why: str) -> render.Message:
    """Replaces the stale buttons, so they cannot be clicked again."""
    return render.problem(
        f"That button has expired ({why}). Nothing was done.", replace_original=True
    )


def _span(age: timedelta) -> str:
    minutes = int(age.total_seconds()) // 60
    return f"{minutes // 60} hours" if minutes % 60 == 0 else f"{minutes} minutes"


_CONFIRMABLE = (
    DeleteCommand,
    StopCommand,
    StartCommand,
    ProlongCommand,
    KeepCommand,
    UpdateCommand,
    SaveCommand,
)


def _confirmed(value: ConfirmValue, inv: Invocation, config: ChatConfig) -> ChatReply:
    """Queue a confirmed command, re-authorized now: the clicker must be who asked (or an admin),
    and a non-admin must still own the notebook."""
    asked_by = value.by
    admin = config.access.is_admin(inv.user_id)
    if inv.user_id != asked_by and not admin:
        return ChatReply(
            render.problem(
                f"Only {render.mention(asked_by)} (who asked) or an admin can confirm this.",
                replace_original=False,
            )
        )
    try:
        command = COMMAND_ADAPTER.validate_python(
            {
                **value.cmd,
                "command_id": inv.command_id,
                "requested_at": inv.now,
                "requested_by": inv.requester(config.access),
            }
        )
    except pydantic.ValidationError as exc:
        reason = render.sentence(explain_error(exc))
        return ChatReply(render.problem(f"Cannot do that: {reason}"))
    if not isinstance(command, _CONFIRMABLE):
        return ChatReply(
            render.problem("That confirmation is not for a notebook; nothing was done.")
        )
    name = command.notebook_name or command.notebook_id
    owner = value.owner
    if not admin and owner != inv.user_id:
        whose = f"belongs to {render.mention(owner)}" if owner else "was not created by you"
        return ChatReply(
            render.problem(
                f"{render.bold(name)} {whose}; only its owner or an nbkeeper admin can "
                f"{command.type} it. Nothing was done.",
                replace_original=False,
            )
        )
    return ChatReply(
        render.info(
            f":hourglass_flowing_sand: Confirmed by {render.mention(inv.user_id)}: "
            f"{command.type} {render.bold(name)}. Queued; I'll report back here.",
            replace_original=True,
        ),
        command,
    )


def _keeper_button(
    action_id: str,
    value: KeeperValue,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
) -> ChatReply:
    project_id, notebook_id = value.project_id, value.notebook_id
    request: grammar.ParsedRequest
    if action_id == KEEP_ACTION:
        request = grammar.KeepRequest(notebook_id, duration=timedelta(hours=value.hours or 2))
    else:
        request = grammar.StopRequest(notebook_id)
    if project_id != config.project.project_id:
        # The keeper may sweep several projects; the Directory (and so the owner check) covers
        # only this one, so a command for another project could not be authorized here.
        return ChatReply(
            render.problem(
                "That warning is about a notebook in ModelArts project "
                f"{render.fit(project_id, render.ID_MAX)}"
                f", which nbkeeper's Slack commands do not manage (they manage "
                f"{config.project.project_id}). Nothing was done: {request.verb} it in the "
                "ModelArts console, or ask an nbkeeper admin."
            )
        )
    found = resolve(notebook_id, directory)
    if isinstance(found, ChatReply):
        return found
    outcome = act(request, found, inv, config)
    if outcome.command is None:
        return outcome  # a refusal, a no-op, or a confirmation (someone else's notebook)
    return ChatReply({**outcome.reply, "replace_original": True}, outcome.command)
