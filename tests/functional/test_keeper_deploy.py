"""The keeper with the shipped default policy and the deploy's answers (issue 16): the real
handler over the demo's seeded fleet, the emulator, moto and a fake Slack.

The deploy passes NBKEEPER_TIMEZONE (the stack's timezone), NBKEEPER_WARNING_CHANNEL (where
warnings about notebooks without a known owner go) and SLACK_ADMINS to every function.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.records import Owner
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import PROJECT_ID
from tests.functional.slack_world import FakeLambdaContext, FakeSlack
from tests.functional.test_lease_keeper import at, create, go_idle, keeper_app, warning_posts

DEMO_FLEET = 24  # `make demo`'s default
SINGAPORE = "Asia/Singapore"  # the default region ap-southeast-3's zone: UTC+8
IDLE_AFTER_MS = 60 * 60_000  # the default policy's working-hours threshold


@dataclass
class RefusingSlack(FakeSlack):
    """Fake Slack where the bot is not in some channels (`not_in_channel`)."""

    not_in: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        if request.url.path.endswith("chat.postMessage") and body.get("channel") in self.not_in:
            self.posts.append((str(request.url), body, request.headers.get("authorization")))
            return httpx.Response(200, json={"ok": False, "error": "not_in_channel"})
        return super().__call__(request)


def idle_in_the_fleet(emulator: Emulator, now_ms: int) -> set[str]:
    """The seeded notebooks idle by the emulator's own records: running, Jupyter readable and
    quiet for an hour, not opted out."""
    idle = set()
    emulator.store.now_ms()  # apply what is due (transitions) first
    for record in emulator.store.project(PROJECT_ID).records.values():
        jupyter = record.jupyter
        if (
            record.status is NotebookStatus.RUNNING
            and jupyter.pattern is ActivityPattern.IDLE
            and now_ms - jupyter.effective_last_activity(now_ms) >= IDLE_AFTER_MS
            and record.tags.get("nbkeeper.keep") != "true"
        ):
            idle.add(record.id)
    return idle


def test_the_default_policy_warns_every_idle_notebook_of_the_demo_fleet(
    state_table: Any,
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tuesday 10:00 in Singapore (02:00 UTC): working hours by the deploy's timezone. Every
    idle notebook is warned, whoever created it: nbkeeper's by DM to its creator, the seeded
    fleet's (created in the console) in the deploy's warning channel."""
    module, slack = keeper_app(
        emulator,
        emulator_transport,
        monkeypatch,
        NBKEEPER_TIMEZONE=SINGAPORE,
        NBKEEPER_WARNING_CHANNEL="C0WARN",
    )
    emulator.advance(timedelta(hours=15, minutes=50))  # Tuesday 00:50 UTC
    ours = create(emulator_api, "created-in-slack")
    emulator.advance(60)
    go_idle(emulator, ours)
    DynamoStateStore(state_table).put_owner(
        Owner(project_id=PROJECT_ID, notebook_id=ours, user_id="UALICE", created_at=emulator.now())
    )
    emulator.advance(timedelta(minutes=69))  # Tuesday 02:00 UTC, 10:00 in Singapore
    emulator.seed_fleet(size=DEMO_FLEET)
    now_ms = int(emulator.now().timestamp() * 1000)
    expected = idle_in_the_fleet(emulator, now_ms)
    assert ours in expected and len(expected) >= 5, expected  # the fleet has idle notebooks

    summary = module.lambda_handler(at(emulator.now()), FakeLambdaContext())

    assert summary["failures"] == 0 and summary["notices"] == []
    records = DynamoStateStore(state_table).list_audit(PROJECT_ID, emulator.now())
    warned = {r.notebook_id for r in records if r.action == "warn" and r.outcome == "ok"}
    assert warned == expected
    assert {r.detail["warning"] for r in records if r.action == "warn"} == {"idle"}
    where = {body["channel"] for body in warning_posts(slack)}
    assert where == {"UALICE", "C0WARN"}
    assert (
        sum(1 for body in warning_posts(slack) if body["channel"] == "C0WARN") == len(expected) - 1
    )
    assert "Tue 10:30 +08" in warning_posts(slack)[0]["text"]  # the default 30 min lead


def test_without_anywhere_to_warn_the_keeper_says_so_at_cold_start_and_in_every_summary(
    state_table: Any,
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    module, _ = keeper_app(emulator, emulator_transport, monkeypatch)
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "nowhere to go" in error.getMessage()
    assert "NBKEEPER_WARNING_CHANNEL" in error.getMessage()
    unowned = create(emulator_api, "console-made")
    emulator.advance(60)
    go_idle(emulator, unowned)
    emulator.advance(timedelta(minutes=45))
    for _ in range(2):  # 10:06 and 10:26 (the 2 h lease ends at 11:00)
        emulator.advance(timedelta(minutes=20))
        summary = module.lambda_handler(at(emulator.now()), FakeLambdaContext())
        [notice] = summary["notices"]
        assert notice.startswith("warnings about notebooks without a known owner have nowhere")
        assert summary["failures"] == 1 and summary["warn"] == 0


def test_a_channel_the_bot_is_not_in_hands_the_warning_to_an_admin(
    state_table: Any,
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slack = RefusingSlack(not_in=frozenset({"C0WARN"}))
    module, _ = keeper_app(
        emulator,
        emulator_transport,
        monkeypatch,
        slack,
        NBKEEPER_WARNING_CHANNEL="C0WARN",
        SLACK_ADMINS="UADMIN",
    )
    unowned = create(emulator_api, "console-made")
    emulator.advance(60)
    go_idle(emulator, unowned)
    emulator.advance(timedelta(minutes=65))
    summary = module.lambda_handler(at(emulator.now()), FakeLambdaContext())
    assert summary["warn"] == 1 and summary["failures"] == 0
    assert [body["channel"] for body in warning_posts(slack)] == ["C0WARN", "UADMIN"]
    assert summary["notices"] == [
        "warnings cannot be posted to C0WARN (not_in_channel): invite the bot to C0WARN "
        "or grant it chat:write.public"
    ]
    # The warning reached someone who can press its buttons: the stop follows as usual, once
    # the default 30 min lead has passed.
    emulator.advance(timedelta(minutes=31))
    assert module.lambda_handler(at(emulator.now()), FakeLambdaContext())["stop"] == 1
