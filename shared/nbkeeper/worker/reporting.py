"""How the worker words results for the person who asked."""

from __future__ import annotations

from nbkeeper.commands import CommandBase, CreateCommand, FollowCommand, NotebookCommand
from nbkeeper.slack import render
from nbkeeper.slack.render import Message, bold, sentence


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


def last_receive_notice(receives: int, reason: str) -> Message:
    """What the author is told when their command fails its last receive (then the DLQ).

    `reason` is plain text (it may quote ModelArts or the message): escaped here."""
    return render.done(
        f"Your nbkeeper request failed after {receives} attempts: {sentence(reason)} "
        "It was set aside for an admin (dead-letter queue); nothing more will happen.",
        ok=False,
    )
