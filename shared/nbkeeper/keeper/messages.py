"""The lease keeper's Slack messages (hand-written Block Kit dicts) and its Slack notifier.

- `warning_message`: sent to the owner before a stop, with "Keep Nh more" (`keeper.keep`) and
  "Stop now" (`keeper.stop`) buttons, each carrying a `nbkeeper.slack.buttons.KeeperValue`; the
  Slack interactions route (chatops) turns a click into a keep or stop command.
- `summary_message`: the per-pass summary for `policy.summary_channel`.

Dicts rather than slack_sdk models keep cold starts light; tests validate them against slack_sdk's
Block models. No notebook token or URL is ever put in a message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nbkeeper.keeper.decide import Action
from nbkeeper.keeper.policy import Policy
from nbkeeper.keeper.report import Delivered, NotebookOutcome, PassReport, WarningNotice
from nbkeeper.slack.buttons import KEEP_ACTION, STOP_ACTION, KeeperValue
from nbkeeper.slack.render import (
    DETAIL_MAX,
    FLAVOR_MAX,
    ID_MAX,
    NAME_MAX,
    SECTION_MAX,
    bold,
    clip,
    clip_markup,
    fit,
    mention,
)
from nbkeeper.timefmt import local_time

logger = logging.getLogger(__name__)

SUMMARY_LINES = 15

Message = dict[str, Any]
# chat.postMessage(channel, message) -> message ts (helper: SlackApi.post_message)
PostMessage = Callable[[str, Message], str | None]


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def warning_message(notice: WarningNotice, policy: Policy) -> Message:
    """The owner's warning: what will happen, why, when, and two buttons."""
    notebook = notice.notebook
    decision = notice.decision
    name = bold(notebook.name or notebook.id)
    stop_at = decision.stop_after
    when = f"{local_time(stop_at, policy.zone)} ({policy.timezone})" if stop_at else "soon"
    owner = f"{mention(notice.owner)} " if notice.owner else ""
    if decision.warning_kind == "max_runtime":
        headline = f"{owner}:hourglass: {name} reaches its runtime cap and stops at {when}."
    else:
        headline = f"{owner}:warning: {name} will be stopped at {when}."
    cost = ""
    if notice.price_per_hour > 0:
        cost = f" It costs {_money(notice.price_per_hour, notice.currency)} per hour."
    body = clip_markup(f"{headline}\n{fit(decision.reason, DETAIL_MAX)}.{cost}", SECTION_MAX)
    elements: list[dict[str, Any]] = []
    hours = max(1, round(policy.extend_by_hours))
    # The buttons expire a stated time after the stop the warning announces (slack.buttons).
    issued = KeeperValue.stamp(stop_at) if stop_at else None
    if decision.warning_kind != "max_runtime":
        elements.append(
            {
                "type": "button",
                "action_id": KEEP_ACTION,
                "text": {"type": "plain_text", "text": f"Keep {hours}h more", "emoji": True},
                "style": "primary",
                "value": KeeperValue(
                    project_id=notice.project.project_id,
                    notebook_id=notebook.id,
                    hours=hours,
                    at=issued,
                ).encode(),
            }
        )
    elements.append(
        {
            "type": "button",
            "action_id": STOP_ACTION,
            "text": {"type": "plain_text", "text": "Stop now", "emoji": True},
            "style": "danger",
            "value": KeeperValue(
                project_id=notice.project.project_id, notebook_id=notebook.id, at=issued
            ).encode(),
            "confirm": {
                "title": {"type": "plain_text", "text": "Stop this notebook?"},
                "text": {
                    "type": "mrkdwn",
                    "text": clip_markup(f"{name} will be stopped now. Its storage is kept.", 300),
                },
                "confirm": {"type": "plain_text", "text": "Stop it"},
                "deny": {"type": "plain_text", "text": "Cancel"},
                "style": "danger",
            },
        }
    )
    fallback = (
        f"{fit(notebook.name or notebook.id, NAME_MAX)} will be stopped at {when}: "
        f"{fit(decision.reason, DETAIL_MAX)}"
    )
    return {
        "text": clip_markup(fallback, SECTION_MAX),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": clip_markup(
                            f"Notebook `{fit(notebook.id, ID_MAX)}` in project "
                            f"`{fit(notice.project.project_id, ID_MAX)}`"
                            f" · flavor {fit(notebook.flavor or '?', FLAVOR_MAX)}",
                            SECTION_MAX,
                        ),
                    }
                ],
            },
            {"type": "actions", "block_id": f"keeper.{notebook.id}"[:255], "elements": elements},
        ],
    }


def _outcome_line(outcome: NotebookOutcome, currency: str) -> str:
    name = fit(outcome.name or outcome.notebook_id, 100)
    decision = outcome.decision
    verb = {
        Action.STOP: ":octagonal_sign: stopped",
        Action.WARN: ":warning: warned",
        Action.PROLONG: ":arrows_counterclockwise: prolonged",
        Action.NOOP: "left alone",
    }[decision.action]
    extra = ""
    if decision.action is Action.STOP and outcome.cost_saved > 0:
        extra = f" (saves {_money(outcome.cost_saved, currency)})"
    if outcome.failed or outcome.outcome.startswith("skipped"):
        verb = f":x: {decision.action.value} {fit(outcome.outcome, 120)}"
    # Each piece has a budget: the line stays under 400 without cutting an entity or the bold.
    return f"• *{name}* {verb}{extra}: {fit(decision.reason, 150)}"


def summary_message(report: PassReport, policy: Policy) -> Message:
    """Counts, hours and cost saved, failures first, then stops and warnings."""
    counts = report.counts
    mode = " (dry run: nothing was changed)" if report.dry_run else ""
    when = local_time(report.at, policy.zone)
    title = f"Lease keeper pass, {when} {policy.timezone}{mode}"
    figures = (
        f"*{len(report.outcomes)}* running notebooks in {len(report.projects)} project(s): "
        f"*{counts['prolong']}* prolonged, *{counts['warn']}* warned, "
        f"*{counts['stop']}* stopped, {counts['noop']} left alone."
    )
    saved = f"Saved about *{report.hours_saved:,.1f} h* of lease" + (
        f" (≈ *{_money(report.cost_saved, report.currency)}*)." if report.cost_saved > 0 else "."
    )
    if report.fanned_out:
        figures = f"Fanned out {len(report.fanned_out)} projects to the worker, one message each."
        saved = ""
    problems = [
        f":x: project `{fit(p.project_id, ID_MAX)}` not swept: {fit(p.error or '', 300)}"
        for p in report.project_errors
    ]
    interesting = [o for o in report.outcomes if o.failed]
    interesting += [o for o in report.outcomes if not o.failed and o.action is Action.STOP]
    interesting += [o for o in report.outcomes if not o.failed and o.action is Action.WARN]
    lines = problems + [_outcome_line(o, report.currency) for o in interesting[:SUMMARY_LINES]]
    if len(interesting) > SUMMARY_LINES:
        lines.append(f"…and {len(interesting) - SUMMARY_LINES} more (see the audit log).")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, 150)}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": clip_markup(f"{figures} {saved}".strip(), SECTION_MAX),
            },
        },
    ]
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _join_clipped(lines)}})
    if report.failures:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{len(report.failures)} action(s) failed; "
                        "they are retried on the next pass.",
                    }
                ],
            }
        )
    text = (
        f"{title}: {counts['prolong']} prolonged, {counts['warn']} warned, {counts['stop']} stopped"
    )
    return {"text": text, "blocks": blocks}


def _join_clipped(lines: list[str]) -> str:
    out: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > SECTION_MAX - 40:
            out.append(f"…{len(lines) - len(out)} more.")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


class SlackKeeperNotifier:
    """Posts warnings to the owner (a DM: chat.postMessage to the user id) or the fallback
    channel, and summaries to `summary_channel`, through a synchronous `post` callable (run in a
    worker thread so probes keep flowing)."""

    def __init__(self, post: PostMessage, policy: Policy) -> None:
        self._post = post
        self._policy = policy

    async def warn(self, notice: WarningNotice) -> Delivered:
        policy = self._policy
        # The owner first; for a notebook nobody claimed, the team's channels, then an nbkeeper
        # admin by DM (someone must be able to press the buttons).
        channel = (
            notice.owner
            or policy.warning_channel
            or policy.summary_channel
            or (policy.admins[0] if policy.admins else None)
        )
        if not channel:
            # Nobody to tell is a delivery failure: the stop must not follow.
            raise LookupError("no owner, no warning_channel, summary_channel or admins configured")
        message = warning_message(notice, self._policy)
        ts = await asyncio.to_thread(self._post, channel, message)
        return Delivered(channel=channel, message_ts=ts)

    async def summary(self, report: PassReport) -> None:
        channel = self._policy.summary_channel
        if not channel:
            return
        await asyncio.to_thread(self._post, channel, summary_message(report, self._policy))
