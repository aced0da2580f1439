"""A Slack message as a person would read it, in plain text: for local runs (serve, demo,
invoke), which print what Slack would show rather than the Block Kit JSON.

Blocks render in order: headers and sections as text (mrkdwn marks removed, `<@U1>` as `@U1`,
links and dates as their labels, entities decoded), context lines as they are, and each
actions block as its buttons: `[Keep 2h more] [Stop now]`. Nothing is cut.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_ANGLE = re.compile(r"<([^<>\n]+)>")


def _angle(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@") or target.startswith("#"):
        return f"{target[0]}{label}" if label else target
    if target.startswith("!date^"):
        return label or target
    if target.startswith("!"):
        return "@" + (label or target[1:])
    return f"{label} ({target})" if label and label != target else target


def mrkdwn(text: str) -> str:
    """Slack mrkdwn as plain text: marks removed, references resolved, entities decoded."""
    text = _ANGLE.sub(_angle, text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return ""
    raw = str(obj.get("text", ""))
    return mrkdwn(raw) if obj.get("type") == "mrkdwn" else raw


def buttons(elements: Any) -> str:
    """`[Keep 2h more] [Stop now]`: the labels of an actions block's buttons."""
    labels = []
    for element in elements or []:
        if isinstance(element, Mapping) and element.get("type") == "button":
            labels.append(f"[{_text(element.get('text'))}]")
    return " ".join(labels)


def render(message: Mapping[str, Any]) -> str:
    """The whole message as text; the `text` fallback when it has no blocks."""
    blocks = message.get("blocks") or []
    if not blocks:
        return mrkdwn(str(message.get("text") or "")).strip() or "(empty message)"
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"))
            lines += [title, "=" * len(title)]
        elif kind == "section":
            if block.get("text"):
                lines.append(_text(block.get("text")))
            lines += [_text(f) for f in block.get("fields") or []]
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping) and accessory.get("type") == "button":
                lines.append(buttons([accessory]))
        elif kind == "context":
            lines.append(" · ".join(_text(e) for e in block.get("elements") or []))
        elif kind == "actions":
            lines.append(buttons(block.get("elements")))
        elif kind == "divider":
            lines.append("---")
        else:
            lines.append(_text(block.get("text")) or f"({kind} block)")
    return "\n".join(lines).strip()


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())
