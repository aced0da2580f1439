"""How the worker words results for the person who asked."""

from __future__ import annotations

from nbkeeper.commands import CommandBase, CreateCommand, FollowCommand, NotebookCommand
from nbkeeper.slack import render
from nbkeeper.slack.render import Message, bold, sentence

# Why a FIFO record failed without running (`nbkeeper.worker.batch`).
HELD_BACK = (
    "an earlier request for the same notebook failed, so this one was held back to keep the order."
)


def name_of(command: CommandBase) -> str:
    if isinstance(command, NotebookCommand):
        return bold(command.notebook_name or command.notebook_id)
    if isinstance(command, CreateCommand):
        return bold(command.name)
    return "the project"


def verb_of(command: CommandBase) -> str:
    if isinstance(command, FollowCommand):
        return command.origin
    return str(getattr(command, "type", "run"))


def last_receive_notice(
    receives: int, reason: str, aftermath: str = "", command: CommandBase | None = None
) -> Message:
    """What the author is told when their command fails its last receive (then the DLQ);
    `aftermath` says what it left behind (a create's notebook, written by nbkeeper); `command`
    (when the message reads as one) is named, since a DM arrives out of its context.

    `reason` is plain text (it may quote ModelArts or the message): escaped here."""
    what = f" ({verb_of(command)} {name_of(command)})" if command is not None else ""
    return render.done(
        f"Your nbkeeper request{what} failed after {receives} attempts: {sentence(reason)} "
        "It was set aside for an admin (dead-letter queue); nothing more will happen."
        + (f" {aftermath}" if aftermath else ""),
        ok=False,
    )


def unknown_create_outcome(command: CreateCommand) -> str:
    """When even looking for a failed create's notebook fails."""
    return (
        f"nbkeeper could not check whether {name_of(command)} was created: `/nb list` shows "
        "what exists."
    )
