"""The keeper's Block Kit dicts, validated against slack_sdk's Block models (test-only oracle)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from nbkeeper.keeper.decide import Action, Decision
from nbkeeper.keeper.messages import (
    KEEP_ACTION,
    STOP_ACTION,
    SlackKeeperNotifier,
    summary_message,
    warning_message,
)
from nbkeeper.keeper.policy import load_policy_text
from nbkeeper.keeper.report import (
    NotDelivered,
    NotebookOutcome,
    PassReport,
    ProjectReport,
    WarningNotice,
)
from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.records import ProjectRef
from nbkeeper.slack.buttons import KeeperValue

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POLICY = load_policy_text("timezone: Europe/Berlin\nsummary_channel: C-SUMMARY")
PROJECT = ProjectRef(region="cn-north-4", project_id="p1")
TOKEN = "notebook-secret-token"


def notebook(name: str = "train<gpu>&co") -> Notebook:
    return Notebook.model_validate(
        {
            "id": "nb-1",
            "name": name,
            "status": "RUNNING",
            "flavor": "modelarts.vm.gpu.t4",
            "url": "https://nb.example/nb-1/lab",
            "token": TOKEN,
        }
    )


def notice(kind: str = "idle", owner: str | None = "U123") -> WarningNotice:
    decision = Decision(
        Action.WARN,
        "idle (last activity 1 h 5 min ago): will stop at Mon 11:15 CET unless used or reserved",
        warning_kind=kind,  # type: ignore[arg-type]
        stop_after=NOW + timedelta(minutes=15),
        cause="idle (last activity 1 h 5 min ago)",
    )
    return WarningNotice(PROJECT, notebook(), decision, owner, 2.5, "EUR")


def assert_valid_blocks(message: dict[str, Any]) -> None:
    assert message["text"]  # the notification fallback
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        # to_dict() validates lengths and required fields; equality shows nothing was dropped.
        assert parsed.to_dict() == block


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    assert len(actions) == 1
    elements: list[dict[str, Any]] = actions[0]["elements"]
    return elements


def test_warning_is_valid_block_kit_with_keep_and_stop_buttons() -> None:
    message = warning_message(notice(), POLICY)
    assert_valid_blocks(message)
    keep, stop = buttons(message)
    stop_after = notice().decision.stop_after
    assert stop_after is not None
    at = int(stop_after.timestamp())  # the buttons expire a stated time after it
    assert keep["action_id"] == KEEP_ACTION == "keeper.keep"
    assert keep["text"]["text"] == "Keep 2h more"
    assert json.loads(keep["value"]) == {
        "project_id": "p1",
        "notebook_id": "nb-1",
        "hours": 2,
        "at": at,
    }
    assert stop["action_id"] == STOP_ACTION == "keeper.stop"
    assert stop["text"]["text"] == "Stop now"
    assert json.loads(stop["value"]) == {"project_id": "p1", "notebook_id": "nb-1", "at": at}
    assert stop["confirm"]["style"] == "danger"


def test_button_values_are_compact_json() -> None:
    keep = KeeperValue(project_id="p", notebook_id="n", hours=2).encode()
    assert keep == '{"project_id":"p","notebook_id":"n","hours":2}'
    assert (
        KeeperValue(project_id="p", notebook_id="n").encode()
        == '{"project_id":"p","notebook_id":"n"}'
    )


def test_warning_text_mentions_owner_local_time_reason_and_price() -> None:
    text = json.dumps(warning_message(notice(), POLICY))
    assert "<@U123>" in text
    assert "Mon 11:15 CET unless it is used or kept" in text  # 10:15 UTC
    assert text.count("11:15") == 2  # once in the message, once in its notification text
    assert "2.50 EUR per hour" in text


def test_warning_escapes_the_name_and_never_carries_the_token_or_url() -> None:
    text = json.dumps(warning_message(notice(), POLICY))
    assert "train&lt;gpu&gt;&amp;co" in text
    assert TOKEN not in text
    assert "nb.example" not in text


def test_max_runtime_warning_offers_only_stop() -> None:
    message = warning_message(notice("max_runtime"), POLICY)
    assert_valid_blocks(message)
    assert [b["action_id"] for b in buttons(message)] == [STOP_ACTION]
    assert "runtime cap" in message["blocks"][0]["text"]["text"]


def test_very_long_names_and_reasons_stay_within_slack_limits() -> None:
    long = WarningNotice(
        PROJECT,
        notebook("n" * 128),
        Decision(Action.WARN, "x" * 5000, warning_kind="idle", stop_after=NOW),
        "U1",
        0.0,
        "USD",
    )
    assert_valid_blocks(warning_message(long, POLICY))


def outcome(name: str, action: Action, outcome: str = "ok", **kw: Any) -> NotebookOutcome:
    return NotebookOutcome(
        project_id="p1",
        notebook_id=f"id-{name}",
        name=name,
        flavor="f",
        owner=None,
        decision=Decision(action, f"because {name}", **kw),
        status=outcome.split(":")[0],  # type: ignore[arg-type]
        note=outcome.split(": ", 1)[1] if ": " in outcome else None,
        cost_saved=kw.get("hours_saved", 0.0) * 2,
    )


def report(dry_run: bool = False, n_stops: int = 2) -> PassReport:
    return PassReport(
        at=NOW,
        dry_run=dry_run,
        currency="EUR",
        projects=[
            ProjectReport("cn-north-4", "p1", 5),
            ProjectReport("cn-north-4", "p2", error="boom"),
        ],
        outcomes=[
            outcome("a", Action.PROLONG),
            outcome("b", Action.WARN),
            *(outcome(f"s{i}", Action.STOP, hours_saved=1.5) for i in range(n_stops)),
            outcome("c", Action.NOOP),
            outcome("d", Action.STOP, "failed: server error: boom"),
        ],
    )


def test_summary_is_valid_and_counts_hours_and_cost() -> None:
    message = summary_message(report(), POLICY)
    assert_valid_blocks(message)
    text = json.dumps(message)
    assert "*1* prolonged, *1* warned, *2* stopped" in text
    assert "3.0 h" in text and "6.00 EUR" in text
    assert "project `p2` not swept: boom" in text
    assert "1 action failed" in text


def test_dry_run_summary_says_so() -> None:
    assert "dry run: nothing was changed" in json.dumps(summary_message(report(True), POLICY))


def test_huge_summaries_are_clipped_to_slack_limits() -> None:
    message = summary_message(report(n_stops=400), POLICY)
    assert_valid_blocks(message)
    assert "more" in json.dumps(message)


def test_notifier_posts_to_owner_then_fallback_channel_and_summary_channel() -> None:
    posts: list[tuple[str, dict[str, Any]]] = []

    def post(channel: str, message: dict[str, Any]) -> str:
        posts.append((channel, message))
        return "171.42"

    notifier = SlackKeeperNotifier(post, POLICY)
    delivered = asyncio.run(notifier.warn(notice(owner="U9")))
    assert delivered.channel == "U9" and delivered.message_ts == "171.42"
    asyncio.run(notifier.warn(notice(owner=None)))
    asyncio.run(notifier.summary(report()))
    assert [c for c, _ in posts] == ["U9", "C-SUMMARY", "C-SUMMARY"]


def test_notifier_without_anyone_to_tell_fails_the_warning() -> None:
    notifier = SlackKeeperNotifier(lambda c, m: None, load_policy_text(""))
    with pytest.raises(NotDelivered, match="no owner"):
        asyncio.run(notifier.warn(notice(owner=None)))
    asyncio.run(notifier.summary(report()))  # no summary channel: nothing, no error


def test_a_warning_nobody_claims_goes_to_an_admin_when_no_channel_is_set() -> None:
    posts: list[str] = []
    notifier = SlackKeeperNotifier(
        lambda channel, message: posts.append(channel) or "1.0",
        load_policy_text("admins: [U0ADMIN, U0OTHER]"),
    )
    delivered = asyncio.run(notifier.warn(notice(owner=None)))
    assert posts == ["U0ADMIN"]
    assert delivered.channel == "U0ADMIN"


class Slack:
    """chat.postMessage: refuses the conversations in `refused` with Slack's error code."""

    def __init__(self, **refused: str) -> None:
        self.refused = refused
        self.tried: list[str] = []

    def __call__(self, channel: str, message: dict[str, Any]) -> str:
        from nbkeeper.slack.api import SlackApiError

        self.tried.append(channel)
        if channel in self.refused:
            raise SlackApiError("chat.postMessage", self.refused[channel])
        return "1.0"


def test_a_warning_a_channel_refuses_goes_to_the_next_target_and_says_why() -> None:
    slack = Slack(C0WARN="not_in_channel")
    policy = load_policy_text("warning_channel: C0WARN\nadmins: [U0ADMIN]")
    delivered = asyncio.run(SlackKeeperNotifier(slack, policy).warn(notice(owner=None)))
    assert slack.tried == ["C0WARN", "U0ADMIN"]
    assert delivered.channel == "U0ADMIN"
    assert delivered.problems == (
        "warnings cannot be posted to C0WARN (not_in_channel): invite the bot to C0WARN "
        "or grant it chat:write.public",
    )


def test_an_owner_slack_does_not_know_falls_back_to_the_channel() -> None:
    slack = Slack(alice="channel_not_found")  # an `nbkeeper.owner` tag that is not a user id
    policy = load_policy_text("warning_channel: C0WARN")
    delivered = asyncio.run(SlackKeeperNotifier(slack, policy).warn(notice(owner="alice")))
    assert (slack.tried, delivered.channel) == (["alice", "C0WARN"], "C0WARN")


def test_a_warning_every_target_refuses_is_not_delivered() -> None:
    slack = Slack(C0WARN="not_in_channel", U0ADMIN="user_not_found")
    policy = load_policy_text("warning_channel: C0WARN\nadmins: [U0ADMIN]")
    with pytest.raises(NotDelivered) as refused:
        asyncio.run(SlackKeeperNotifier(slack, policy).warn(notice(owner=None)))
    assert len(refused.value.problems) == 2
    assert "U0ADMIN (user_not_found)" in str(refused.value)


def test_a_slack_failure_is_not_a_reason_to_try_elsewhere() -> None:
    from nbkeeper.slack.api import SlackApiError

    slack = Slack(C0WARN="ratelimited (retry after 3 s)")
    policy = load_policy_text("warning_channel: C0WARN\nadmins: [U0ADMIN]")
    with pytest.raises(SlackApiError):
        asyncio.run(SlackKeeperNotifier(slack, policy).warn(notice(owner=None)))
    assert slack.tried == ["C0WARN"]  # the next pass retries; nobody else is bothered


def test_the_summary_repeats_what_keeps_warnings_from_people() -> None:
    summary = report()
    summary.notice("warnings cannot be posted to <#x> (not_in_channel): invite the bot")
    message = summary_message(summary, POLICY)
    assert_valid_blocks(message)
    assert "warnings cannot be posted to &lt;#x&gt; (not_in_channel)" in json.dumps(message)
    assert summary.summary()["notices"] == summary.notices
