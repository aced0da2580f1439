"""Block Kit messages as plain dicts (no slack_sdk at runtime: it costs cold start).

Every message carries a top-level `text` (the notification fallback) and respects Block Kit's
limits: section text 3000, button text 75, button value 2000, confirm title 100 / text 300 /
labels 30. tests/unit/test_render.py checks each builder against slack_sdk's models as an oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.slack.buttons import CANCEL_ACTION, CONFIRM_ACTION

Message = dict[str, Any]
ResponseType = Literal["ephemeral", "in_channel"]

SECTION_MAX = 3000
BUTTON_LABEL_MAX = 75
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_LABEL_MAX = 30
LIST_MAX_ROWS = 40


def clip(text: str, limit: int) -> str:
    """Shorten to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(markdown, SECTION_MAX)}}


def message(
    markdown: str,
    *,
    blocks: Sequence[dict[str, Any]] | None = None,
    response_type: ResponseType = "ephemeral",
    replace_original: bool = False,
) -> Message:
    """A reply for the slash command ack or a response_url post."""
    return {
        "response_type": response_type,
        "replace_original": replace_original,
        "text": clip(markdown, SECTION_MAX),
        "blocks": list(blocks) if blocks is not None else [section(markdown)],
    }


def info(markdown: str, *, replace_original: bool = False) -> Message:
    return message(markdown, replace_original=replace_original)


def problem(markdown: str, *, replace_original: bool = False) -> Message:
    """Something the person should fix or know failed."""
    return message(f":warning: {markdown}", replace_original=replace_original)


def queued(summary: str) -> Message:
    return message(f":hourglass_flowing_sand: {summary} Queued; I'll report back here.")


def done(markdown: str, *, ok: bool = True) -> Message:
    """A worker result (a new ephemeral message; the original stays for the record)."""
    icon = ":white_check_mark:" if ok else ":x:"
    return message(f"{icon} {markdown}")


@dataclass(frozen=True)
class Confirmation:
    """A question with a Confirm button (behind a Block Kit confirm dialog) and a Cancel button."""

    question: str
    confirm_label: str
    value: str
    title: str = "Are you sure?"
    dialog_text: str = ""
    danger: bool = True


def confirmation(spec: Confirmation) -> Message:
    confirm_button: dict[str, Any] = {
        "type": "button",
        "action_id": CONFIRM_ACTION,
        "text": plain(spec.confirm_label, BUTTON_LABEL_MAX),
        "value": spec.value,
        "confirm": {
            "title": plain(spec.title, CONFIRM_TITLE_MAX),
            "text": {
                "type": "mrkdwn",
                "text": clip(spec.dialog_text or spec.question, CONFIRM_TEXT_MAX),
            },
            "confirm": plain(clip(spec.confirm_label, CONFIRM_LABEL_MAX), CONFIRM_LABEL_MAX),
            "deny": plain("Cancel", CONFIRM_LABEL_MAX),
        },
    }
    if spec.danger:
        confirm_button["style"] = "danger"
        confirm_button["confirm"]["style"] = "danger"
    else:
        confirm_button["style"] = "primary"
    cancel_button = {
        "type": "button",
        "action_id": CANCEL_ACTION,
        "text": plain("Cancel", BUTTON_LABEL_MAX),
        "value": "cancel",
    }
    return message(
        spec.question,
        blocks=[
            section(spec.question),
            {
                "type": "actions",
                "block_id": "nbkeeper.confirm",
                "elements": [confirm_button, cancel_button],
            },
        ],
    )


def _when(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "?"
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return f"<!date^{epoch_ms // 1000}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def notebook_line(notebook: Notebook, owner: str | None) -> str:
    """`name` (id) STATUS, flavor, owner, lease end."""
    parts = [f"*{escape(notebook.name or '?')}* `{notebook.id}` {notebook.status.value}"]
    if notebook.flavor:
        parts.append(escape(notebook.flavor))
    parts.append(f"owner <@{owner}>" if owner else "owner unknown")
    if notebook.lease is not None and notebook.status.value == "RUNNING":
        parts.append(f"lease ends {_when(notebook.lease.deadline_ms)}")
    return ", ".join(parts)


def notebook_list(title: str, rows: Iterable[tuple[Notebook, str | None]]) -> Message:
    items = list(rows)
    if not items:
        return info(f"{title}: none.")
    lines = [f"• {notebook_line(nb, owner)}" for nb, owner in items[:LIST_MAX_ROWS]]
    if len(items) > LIST_MAX_ROWS:
        lines.append(f"…and {len(items) - LIST_MAX_ROWS} more.")
    header = f"*{escape(title)}* ({len(items)})"
    blocks = [section(header)]
    chunk: list[str] = []
    for line in lines:  # several sections rather than one cut at 3000 characters
        if sum(len(x) + 1 for x in chunk) + len(line) > SECTION_MAX - 10:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    return message(f"{title} ({len(items)})", blocks=blocks)


def notebook_status(notebook: Notebook, owner: str | None) -> Message:
    lines = [notebook_line(notebook, owner)]
    if notebook.description:
        lines.append(f"Description: {escape(notebook.description)}")
    if notebook.volume is not None and notebook.volume.capacity:
        lines.append(f"Storage: {notebook.volume.capacity} GB")
    if notebook.fail_reason:
        lines.append(f"Failure: {escape(notebook.fail_reason)}")
    if notebook.url and notebook.status.value == "RUNNING":
        lines.append(f"<{notebook.url}|Open JupyterLab>")
    return info("\n".join(lines))


def candidates(target: str, notebooks: Sequence[tuple[Notebook, str | None]]) -> Message:
    """An ambiguous name: list the notebooks it matches and ask for an id."""
    lines = [
        f":warning: {len(notebooks)} notebooks are called *{escape(target)}*; "
        "repeat the command with the id of the one you mean:"
    ]
    lines += [f"• {notebook_line(nb, owner)}" for nb, owner in notebooks[:LIST_MAX_ROWS]]
    return info("\n".join(lines))
