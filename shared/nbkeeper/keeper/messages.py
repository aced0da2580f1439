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
from datetime import datetime
from typing import Any

from nbkeeper.keeper.decide import Action
from nbkeeper.keeper.policy import Policy
from nbkeeper.keeper.report import (
    Delivered,
    NotDelivered,
    NotebookOutcome,
    PassReport,
    WarningNotice,
)
from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.slack.api import SlackApiError
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
from nbkeeper.timefmt import from_ms, local_time

logger = logging.getLogger(__name__)

SUMMARY_LINES = 15

Message = dict[str, Any]
# chat.postMessage(channel, message) -> message ts (helper: SlackApi.post_message)
PostMessage = Callable[[str, Message], str | None]


def _lease_end(notebook: Notebook) -> datetime | None:
    lease = notebook.lease
    if lease is None or lease.enable is False or lease.deadline_ms is None:
        return None
    return from_ms(lease.deadline_ms)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def warning_message(notice: WarningNotice, policy: Policy) -> Message:
    """The owner's warning: what will happen, why, when, and two buttons."""
    notebook = notice.notebook
    decision = notice.decision
    name = bold(notebook.name or notebook.id)
    stop_at = decision.stop_after
    when = local_time(stop_at, policy.zone) if stop_at else "soon"
    owner = f"{mention(notice.owner)} " if notice.owner else ""
    lease_end = _lease_end(notebook)
    if decision.warning_kind == "max_runtime":
        headline = f"{owner}:hourglass: {name} reached its runtime cap: it stops at {when}."
    elif stop_at and lease_end and lease_end < stop_at:
        # ModelArts stops it first, when the lease runs out (not before the warning was sent,
        # `warning_lead` before `stop_after`): say that moment, not the keeper's later one.
        when = local_time(max(lease_end, stop_at - policy.warning_lead), policy.zone)
        headline = (
            f"{owner}:warning: {name} stops at {when}, when its lease runs out, "
            "unless it is used or kept."
        )
    else:
        headline = f"{owner}:warning: {name} will be stopped at {when} unless it is used or kept."
    # The cause only: the headline already says when (the reason would say it again).
    cause = decision.cause or decision.reason
    cost = ""
    if notice.price_per_hour > 0:
        cost = f" It costs {_money(notice.price_per_hour, notice.currency)} per hour."
    first = cause[:1].upper() + cause[1:]
    body = clip_markup(f"{headline}\n{fit(first, DETAIL_MAX)}.{cost}", SECTION_MAX)
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
        f"{fit(cause, DETAIL_MAX)}"
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
    title = f"Lease keeper pass, {local_time(report.now, policy.zone)}{mode}"
    figures = (
        f"*{_count(len(report.outcomes), 'running notebook')}* in "
        f"{_count(len(report.projects), 'project')}: "
        f"*{counts['prolong']}* prolonged, *{counts['warn']}* warned, "
        f"*{counts['stop']}* stopped, {counts['noop']} left alone."
    )
    saved = f"Saved about *{report.hours_saved:,.1f} h* of lease" + (
        f" (≈ *{_money(report.cost_saved, report.currency)}*)." if report.cost_saved > 0 else "."
    )
    if report.fanned_out:
        figures = f"Fanned out {len(report.fanned_out)} projects to the worker, one message each."
        saved = ""
    problems = [f":warning: {fit(notice, 300)}" for notice in report.notices]
    problems += [
        f":x: project `{fit(p.project_id, ID_MAX)}` not swept: {fit(p.error or '', 300)}"
        for p in report.project_errors
    ]
    problems += [
        f":grey_question: notebook `{fit(r.label, ID_MAX)}` in project "
        f"`{fit(r.project_id, ID_MAX)}` could not be read ({fit(r.reason, 300)}); left alone"
        for r in report.unreadable[:SUMMARY_LINES]
    ]
    if len(report.unreadable) > SUMMARY_LINES:
        problems.append(f"…and {len(report.unreadable) - SUMMARY_LINES} more unreadable records.")
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
                        "text": f"{_count(len(report.failures), 'action')} failed; "
                        f"{'it is' if len(report.failures) == 1 else 'they are'} retried on "
                        "the next pass.",
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


# Slack's answers when a message cannot go to that conversation (the next target is tried).
UNDELIVERABLE = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "messages_tab_disabled",
    }
)


def warning_targets(owner: str | None, policy: Policy) -> list[str]:
    """Where a warning goes, in order: the owner by DM; then the team's channels
    (`warning_channel`, `summary_channel`); then the admins by DM (someone must be able to press
    the buttons). Each target that Slack refuses (`UNDELIVERABLE`) hands over to the next."""
    targets: list[str] = []
    for target in (owner, policy.warning_channel, policy.summary_channel, *policy.admins):
        if target and target not in targets:
            targets.append(target)
    return targets


def routing_problems(policy: Policy) -> list[str]:
    """Why warnings about notebooks without a known owner could reach nobody, for operators."""
    if warning_targets(None, policy):
        return []
    return [
        "warnings about notebooks without a known owner have nowhere to go, so those notebooks "
        "are never stopped: set NBKEEPER_WARNING_CHANNEL or SLACK_ADMINS (the deploy's "
        "answers), or warning_channel in the policy"
    ]


def _refused(target: str, error: str) -> str:
    if error in ("not_in_channel", "channel_not_found"):
        return (
            f"warnings cannot be posted to {target} ({error}): invite the bot to {target} "
            "or grant it chat:write.public"
        )
    return f"warnings cannot be delivered to {target} ({error})"


class SlackKeeperNotifier:
    """Posts warnings along `warning_targets` (a DM is chat.postMessage to the user id) and
    summaries to `summary_channel`, through a synchronous `post` callable (run in a worker
    thread so probes keep flowing)."""

    def __init__(self, post: PostMessage, policy: Policy) -> None:
        self._post = post
        self._policy = policy

    async def warn(self, notice: WarningNotice) -> Delivered:
        targets = warning_targets(notice.owner, self._policy)
        if not targets:
            # Nobody to tell is a delivery failure: the stop must not follow.
            raise NotDelivered("no owner, no warning_channel, summary_channel or admins configured")
        message = warning_message(notice, self._policy)
        problems: list[str] = []
        for target in targets:
            try:
                ts = await asyncio.to_thread(self._post, target, message)
            except SlackApiError as exc:
                if exc.error not in UNDELIVERABLE:
                    raise  # Slack itself failed (rate limit, network, token): the next pass retries
                logger.warning(
                    "warning not delivered to %s: %s; trying the next", target, exc.error
                )
                problems.append(_refused(target, exc.error))
                continue
            return Delivered(channel=target, message_ts=ts, problems=tuple(problems))
        raise NotDelivered("; ".join(problems), tuple(problems))

    async def summary(self, report: PassReport) -> None:
        channel = self._policy.summary_channel
        if not channel:
            return
        await asyncio.to_thread(self._post, channel, summary_message(report, self._policy))
