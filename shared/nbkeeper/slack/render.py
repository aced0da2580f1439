"""Block Kit messages as plain dicts (no slack_sdk at runtime: it costs cold start).

Every message carries a top-level `text` (the notification fallback) and respects Block Kit's
limits: section text 3000, button text 75, button value 2000, confirm title 100 / text 300 /
labels 30. tests/unit/test_render.py checks each builder against slack_sdk's models as an oracle.

The escaping rule, here and nowhere else: every piece of text nbkeeper did not write (names, ids,
flavors, descriptions, ModelArts' messages, what a person typed) enters mrkdwn or a fallback
`text` through `fit` (clipped to a budget first, then escaped, so a cut never splits an entity),
a user id through `mention`, a URL through `link`. Builders give each piece a budget so a
section fits by construction; `clip_markup` is the safety net that cuts composed mrkdwn only
between whole entities, links and bold spans. No message holds an empty section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.slack.buttons import CANCEL_ACTION, CONFIRM_ACTION

Message = dict[str, Any]
ResponseType = Literal["ephemeral", "in_channel"]

SECTION_MAX = 3000
TEXT_MAX = 3000  # the fallback `text`: Slack allows far more; notifications show the start
BUTTON_LABEL_MAX = 75
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_LABEL_MAX = 30
LIST_MAX_ROWS = 40
MAX_BLOCKS = 50  # Slack's limit per message
# Budgets (characters after escaping) for pieces nbkeeper did not write.
NAME_MAX = 150
ID_MAX = 80
FLAVOR_MAX = 100
DETAIL_MAX = 700  # a description, a failure reason
SENTENCE_MAX = 1500  # an explanation (explain_error), a parse error
URL_MAX = 1000

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{1,40}$")
_URL = re.compile(r"^https?://[^\s<>|]+$")
# What must not be cut: an entity, a link or mention, a bold span (on one line), a code span.
_ATOM = re.compile(r"&(?:amp|lt|gt);|<[^<>\n]*>|\*[^*\n]*\*|`[^`\n]*`")


def clip(text: str, limit: int) -> str:
    """Shorten plain text (plain_text fields, never mrkdwn) to `limit`, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """Text nbkeeper did not write, for mrkdwn or a fallback `text`: at most `limit` characters
    once escaped, clipped before escaping (so never inside an entity), "…" marking a cut."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def bold(text: str) -> str:
    """`*text*` for a name nbkeeper did not write (fitted, so the bold always closes)."""
    return f"*{fit(text, NAME_MAX)}*"


def sentence(text: str) -> str:
    """A sentence nbkeeper did not write in full (an explanation quoting ModelArts, a parse
    error quoting the command), fitted."""
    return fit(text, SENTENCE_MAX)


def mention(user_id: str | None) -> str:
    """`<@U…>` for a Slack user id; anything else (a tag someone edited) as escaped text."""
    if user_id and _USER_ID.match(user_id):
        return f"<@{user_id}>"
    return fit(user_id or "someone", 40)


def link(url: str | None, label: str) -> str:
    """`<url|label>` for an http(s) URL Slack can parse, else "" (never a half link)."""
    if not url or len(url) > URL_MAX or not _URL.match(url):
        return ""
    return f"<{url.replace('&', '&amp;')}|{label}>"


def clip_markup(markdown: str, limit: int) -> str:
    """Composed mrkdwn shortened to `limit`, cut only between whole entities, links, mentions,
    bold and code spans, at a line end when one is near ("…" marks the cut)."""
    if len(markdown) <= limit:
        return markdown
    cut = limit - 1
    for atom in _ATOM.finditer(markdown):
        if atom.start() < cut < atom.end():
            cut = atom.start()
            break
        if atom.start() >= cut:
            break
    line_end = markdown.rfind("\n", 0, cut)
    if line_end > cut * 0.7:
        cut = line_end
    return markdown[:cut].rstrip() + "…"


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or "-", "emoji": True}


def section(markdown: str) -> dict[str, Any]:
    """A mrkdwn section (`message` drops it if blank: Slack rejects an empty one)."""
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": clip_markup(markdown, SECTION_MAX)},
    }


def _blank_section(block: dict[str, Any]) -> bool:
    return block.get("type") == "section" and not str(block.get("text", {}).get("text", "")).strip()


def message(
    markdown: str,
    *,
    blocks: Sequence[dict[str, Any]] | None = None,
    response_type: ResponseType = "ephemeral",
    replace_original: bool = False,
) -> Message:
    """A reply for the slash command ack or a response_url post."""
    text = clip_markup(markdown, TEXT_MAX) if markdown.strip() else "nbkeeper"
    chosen = list(blocks) if blocks is not None else [section(text)]
    kept = [b for b in chosen if not _blank_section(b)][:MAX_BLOCKS]
    return {
        "response_type": response_type,
        "replace_original": replace_original,
        "text": text,
        "blocks": kept or [section(text)],
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
                "text": clip_markup(spec.dialog_text or spec.question, CONFIRM_TEXT_MAX),
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


def notebook_name(notebook: Notebook) -> str:
    """`*name*` (or its id), fitted: nbkeeper's bold around ModelArts' text."""
    return bold(notebook.name or notebook.id or "?")


def notebook_line(notebook: Notebook, owner: str | None) -> str:
    """`name` (id) STATUS, flavor, owner, lease end: at most about 500 characters."""
    parts = [f"{notebook_name(notebook)} `{fit(notebook.id, ID_MAX)}` {notebook.status.value}"]
    if notebook.flavor:
        parts.append(fit(notebook.flavor, FLAVOR_MAX))
    parts.append(f"owner {mention(owner)}" if owner else "owner unknown")
    if notebook.lease is not None and notebook.status.value == "RUNNING":
        parts.append(f"lease ends {_when(notebook.lease.deadline_ms)}")
    return ", ".join(parts)


def _rows(header: str, fallback: str, rows: Sequence[tuple[Notebook, str | None]]) -> Message:
    """A header and one line per notebook, in as many sections as they need (each row fits one),
    the rows past LIST_MAX_ROWS counted ("…and 31 more")."""
    lines = [f"• {notebook_line(nb, owner)}" for nb, owner in rows[:LIST_MAX_ROWS]]
    if len(rows) > LIST_MAX_ROWS:
        lines.append(f"…and {len(rows) - LIST_MAX_ROWS} more.")
    blocks = [section(header)]
    chunk: list[str] = []
    for line in lines:  # several sections rather than one cut at 3000 characters
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) > SECTION_MAX:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    return message(fallback, blocks=blocks)


def notebook_list(title: str, rows: Iterable[tuple[Notebook, str | None]]) -> Message:
    items = list(rows)
    if not items:
        return info(f"{fit(title, NAME_MAX)}: none.")
    header = f"*{fit(title, NAME_MAX)}* ({len(items)})"
    return _rows(header, f"{fit(title, NAME_MAX)} ({len(items)})", items)


def notebook_status(notebook: Notebook, owner: str | None) -> Message:
    """One section: each piece has a budget, so the Jupyter link is never cut off."""
    lines = [notebook_line(notebook, owner)]
    if notebook.description:
        lines.append(f"Description: {fit(notebook.description, DETAIL_MAX)}")
    if notebook.volume is not None and notebook.volume.capacity:
        lines.append(f"Storage: {notebook.volume.capacity} GB")
    if notebook.fail_reason:
        lines.append(f"Failure: {fit(notebook.fail_reason, DETAIL_MAX)}")
    if notebook.status.value == "RUNNING" and (jupyter := link(notebook.url, "Open JupyterLab")):
        lines.append(jupyter)
    return info("\n".join(lines))


def candidates(target: str, notebooks: Sequence[tuple[Notebook, str | None]]) -> Message:
    """An ambiguous name: list the notebooks it matches and ask for an id."""
    called = f"{len(notebooks)} notebooks are called *{fit(target, NAME_MAX)}*"
    header = f":warning: {called}; repeat the command with the id of the one you mean:"
    return _rows(header, header, notebooks)
