"""What people read: the keeper's Slack messages rendered as text (the local tools' view), with
every time in the policy's timezone and naming its zone, no clause said twice, plurals right and
no parentheses inside parentheses. Decisions come from the real `decide`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from nbkeeper.keeper.activity import Activity
from nbkeeper.keeper.decide import Decision, decide
from nbkeeper.keeper.messages import summary_message, warning_message
from nbkeeper.keeper.policy import load_policy_text
from nbkeeper.keeper.report import NotebookOutcome, PassReport, ProjectReport, WarningNotice
from nbkeeper.records import PendingWarning, ProjectRef
from nbkeeper.timefmt import local_time
from nbkeeper_local.slacktext import render
from tests.unit.test_decide import ACTIVE, BUSY, MIN, NOW, idle_for, notebook

POLICY = load_policy_text("timezone: Europe/Paris\nmax_runtime_hours: 4\n")
PROJECT = ProjectRef(region="cn-north-4", project_id="p1")
ZONE = r"(?:[A-Z]{3,5}|UTC[+-]\d\d:\d\d)"
TIME = re.compile(r"(?<![\d.:])\d{1,2}:\d\d(?![\d:])")


def unzoned_times(text: str) -> list[str]:
    """Every HH:MM in `text` that is not followed by a zone (grammar examples in backticks aside)."""
    return [
        m.group()
        for m in TIME.finditer(text)
        if not re.match(rf" {ZONE}\b|`", text[m.end() : m.end() + 10])
    ]


def nested_parentheses(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth > 1:
            return True
    return False


def warning_text(decision: Decision, **lease: timedelta) -> str:
    nb = notebook(started=NOW - timedelta(hours=2), **lease)
    return render(warning_message(WarningNotice(PROJECT, nb, decision, "U1", 2.5, "EUR"), POLICY))


def test_local_time_names_the_zone() -> None:
    moment = datetime(2026, 11, 23, 12, 15, tzinfo=UTC)
    assert local_time(moment, ZoneInfo("Europe/Paris")) == "Mon 13:15 CET"
    assert local_time(moment.replace(month=7, day=6), ZoneInfo("Europe/Paris")) == "Mon 14:15 CEST"
    assert local_time(moment, UTC) == "Mon 12:15 UTC"
    assert local_time(moment, timezone(timedelta(hours=-5))) == "Mon 07:15 UTC-05:00"
    assert local_time(moment, ZoneInfo("Asia/Tokyo"), date=True) == "Mon 23 Nov 21:15 JST"


def test_idle_warning_reads_once() -> None:
    nb = notebook(started=NOW - timedelta(hours=2))
    decision = decide(nb, idle_for(timedelta(minutes=90)), None, None, POLICY, NOW)
    assert warning_text(decision) == (
        "@U1 :warning: nb1 will be stopped at Mon 11:30 CET unless it is used or kept.\n"
        "Idle (last activity 1 h 30 min ago). It costs 2.50 EUR per hour.\n"
        "Notebook `nb1` in project `p1` · flavor modelarts.vm.gpu.t4\n"
        "[Keep 2h more] [Stop now]"
    )


def test_off_hours_warning() -> None:
    evening = NOW.replace(hour=19, minute=30)  # 20:30 in Paris, after working hours
    nb = notebook(started=NOW - timedelta(hours=2), ends_in=timedelta(hours=12))
    decision = decide(nb, idle_for(timedelta(0)), None, None, POLICY, evening)
    text = warning_text(decision, ends_in=timedelta(hours=12))
    assert text.splitlines()[:2] == [
        "@U1 :warning: nb1 will be stopped at Mon 21:00 CET unless it is used or kept.",
        "Outside working hours and idle (last activity 9 h 30 min ago). It costs 2.50 EUR per hour.",
    ]


def test_warning_when_the_lease_runs_out_first_says_that_moment() -> None:
    nb = notebook(started=NOW - timedelta(hours=2), ends_in=5 * MIN)
    decision = decide(nb, idle_for(timedelta(minutes=90)), None, None, POLICY, NOW)
    assert warning_text(decision, ends_in=5 * MIN).splitlines()[0] == (
        "@U1 :warning: nb1 stops at Mon 11:05 CET, when its lease runs out, unless it is used "
        "or kept."
    )


def test_runtime_cap_warning_offers_only_stop() -> None:
    nb = notebook(started=NOW - timedelta(hours=3, minutes=50), ends_in=10 * MIN)
    decision = decide(nb, BUSY, None, None, POLICY, NOW)
    text = warning_text(decision, ends_in=10 * MIN)
    assert text.splitlines()[:2] == [
        "@U1 :hourglass: nb1 reached its runtime cap: it stops at Mon 11:10 CET.",
        "Active (1 busy kernel), but the runtime cap of 4 h is reached. "
        "It costs 2.50 EUR per hour.",
    ]
    assert text.endswith("[Stop now]") and "Keep" not in text


def outcome(
    name: str, decision: Decision, status: str = "ok", note: str | None = None
) -> NotebookOutcome:
    return NotebookOutcome(
        project_id="p1",
        notebook_id=f"id-{name}",
        name=name,
        flavor="f",
        owner=None,
        decision=decision,
        status=status,  # type: ignore[arg-type]
        note=note,
        cost_saved=decision.hours_saved * 2.5,
    )


def pass_decisions() -> tuple[Decision, Decision, Decision]:
    nb = notebook(started=NOW - timedelta(hours=2))
    prolong = decide(
        notebook(started=NOW - timedelta(hours=2), ends_in=10 * MIN),
        ACTIVE,
        None,
        None,
        POLICY,
        NOW,
    )
    warn = decide(nb, idle_for(timedelta(minutes=90)), None, None, POLICY, NOW)
    pending = PendingWarning(
        project_id="p1",
        notebook_id="nb1",
        kind="idle",
        warned_at=NOW - 20 * MIN,
        stop_after=NOW - 5 * MIN,
    )
    stop = decide(nb, idle_for(timedelta(minutes=90)), None, pending, POLICY, NOW)
    return prolong, warn, stop


def test_pass_summary() -> None:
    prolong, warn, stop = pass_decisions()
    report = PassReport(
        at=NOW.replace(microsecond=123456),
        dry_run=False,
        currency="EUR",
        projects=[ProjectReport("cn-north-4", "p1", 3)],
        outcomes=[outcome("a", prolong), outcome("b", warn), outcome("c", stop)],
    )
    assert render(summary_message(report, POLICY)) == (
        "Lease keeper pass, Mon 11:00 CET\n"
        "================================\n"
        "3 running notebooks in 1 project: 1 prolonged, 1 warned, 1 stopped, 0 left alone. "
        "Saved about 1.0 h of lease (≈ 2.50 EUR).\n"
        "• c :octagonal_sign: stopped (saves 2.50 EUR): idle (last activity 1 h 30 min ago): "
        "warned at Mon 10:40 CET and still idle\n"
        "• b :warning: warned: idle (last activity 1 h 30 min ago): will stop at Mon 11:30 CET "
        "unless used or reserved"
    )


def test_dry_run_summary_with_a_failure_and_an_unswept_project() -> None:
    prolong, _, stop = pass_decisions()
    report = PassReport(
        at=NOW,
        dry_run=True,
        currency="EUR",
        projects=[
            ProjectReport("cn-north-4", "p1", 1),
            ProjectReport("cn-north-4", "p2", error="transport error: boom"),
        ],
        outcomes=[outcome("a", prolong), outcome("d", stop, "failed", "server error: boom")],
    )
    text = render(summary_message(report, POLICY))
    assert text.splitlines()[0] == "Lease keeper pass, Mon 11:00 CET (dry run: nothing was changed)"
    assert "2 running notebooks in 2 projects:" in text
    assert "project `p2` not swept: transport error: boom" in text
    assert text.endswith("1 action failed; it is retried on the next pass.")


def test_every_reason_names_its_zone_and_nests_no_parentheses() -> None:
    lease = Activity(
        last_activity=NOW - 5 * MIN, source="lease", note="Jupyter not readable: HTTP 502"
    )
    cases = [
        decide(notebook(ends_in=10 * MIN), ACTIVE, None, None, POLICY, NOW),
        decide(notebook(ends_in=10 * MIN), lease, None, None, POLICY, NOW),
        decide(notebook(), ACTIVE, None, None, POLICY, NOW),
        *pass_decisions(),
        decide(
            notebook(started=NOW - timedelta(hours=3, minutes=50), ends_in=10 * MIN),
            BUSY,
            None,
            None,
            POLICY,
            NOW,
        ),
    ]
    for decision in cases:
        assert TIME.search(decision.reason) or "ago" in decision.reason, decision.reason
        assert unzoned_times(decision.reason) == [], decision.reason
        assert not nested_parentheses(decision.reason), decision.reason
    assert cases[1].reason.startswith(
        "active (lease changed 5 min ago; Jupyter not readable: HTTP 502)"
    )


def test_the_checks_catch_what_they_look_for() -> None:
    assert unzoned_times("at Mon 13:15 and 14:00 CET, `until 18:00`") == ["13:15"]
    assert nested_parentheses("a (b (c))") and not nested_parentheses("a (b) (c)")
