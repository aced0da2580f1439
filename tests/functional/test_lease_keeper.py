"""The real lease keeper handler over a scripted day: events/schedule.json, the emulator, moto.

Passes run every 15 minutes from 09:00 to 23:00 UTC on Monday 4 March 2024 (the emulator's start)
under the shipped default policy (Mon-Fri 08:00-20:00 UTC, idle 60 min in and out of working
hours, warning 30 min ahead, prolong 2 h when 20 min are left):

- "worker" is used all day: prolonged again and again, never warned or stopped;
- "lunch" is used in the morning, idle from 12:00: warned at 13:00, stopped at 13:30;
- "evening" is used until 19:00: off-hours and idle 60 min at 20:00, warned, stopped at 20:30;
- "reserved" is idle all day but reserved until 22:00: prolonged (the last time exactly to 22:00),
  never warned before; at 22:00 it is warned and its lease, no longer prolonged, runs out.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.modelarts.retry import NO_RETRY
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.records import AuditRecord, Owner, Reservation
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import (
    ACCESS_KEY,
    EMULATOR_BASE_URL,
    EMULATOR_START,
    IMAGE_ID,
    PROJECT_ID,
    SECRET_KEY,
    no_sleep,
)
from tests.functional.slack_world import FakeLambdaContext, FakeSlack, load_app

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "events" / "schedule.json").read_text())
BOT_TOKEN = "xoxb-lease-keeper-test-token"
OWNERS = {"worker": "UWORK", "lunch": "ULUNCH", "evening": "UEVE", "reserved": "URES"}


@pytest.fixture
def table(state_table: Any) -> Any:
    return state_table


KEEPER_ENV = {
    "MODELARTS_REGION": "cn-north-4",
    "MODELARTS_PROJECT_ID": PROJECT_ID,
    "MODELARTS_ENDPOINT": EMULATOR_BASE_URL,
    "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
    "HUAWEICLOUD_SDK_SK": SECRET_KEY,
    "STATE_TABLE": "state",
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "nbkeeper",
    "POWERTOOLS_SERVICE_NAME": "lease-keeper",
}


def keeper_app(
    emulator: Emulator,
    transport: httpx.AsyncBaseTransport,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack | None = None,
    **changes: str | None,
) -> tuple[ModuleType, FakeSlack]:
    """The keeper handler, cold-started with KEEPER_ENV plus `changes` (None: unset)."""
    for key, value in {**KEEPER_ENV, **changes}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    module = load_app("lease_keeper")
    slack = slack or FakeSlack()
    module.seams.modelarts_transport = transport
    module.seams.jupyter_transport = transport
    module.seams.slack_transport = httpx.MockTransport(slack)
    # The client's rate limiter and retries wait through this: tests never sleep.
    module.seams.modelarts_options = {"sleep": no_sleep, "retry": NO_RETRY}
    # The wall clock is the emulator's: tests move time without sleeping.
    module.seams.clock = lambda: emulator.now().timestamp()
    return module, slack


@pytest.fixture
def app(
    table: Any,
    emulator: Emulator,
    emulator_transport: httpx.AsyncBaseTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ModuleType, FakeSlack]:
    return keeper_app(emulator, emulator_transport, monkeypatch)


def create(emulator_api: Any, name: str) -> str:
    reply = emulator_api(
        "POST",
        f"/v1/{PROJECT_ID}/notebooks",
        json={
            "name": name,
            "image_id": IMAGE_ID,
            "flavor": "modelarts.vm.cpu.2u",
            "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 5},
            "duration": 2 * 3_600_000,
        },
    )
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["id"])


def go_idle(emulator: Emulator, notebook_id: str) -> None:
    now_ms = int(emulator.now().timestamp() * 1000)
    emulator.set_activity(
        notebook_id,
        pattern=ActivityPattern.IDLE,
        last_activity=emulator.now(),
        kernels=[{"execution_state": "idle", "last_activity_ms": now_ms}],
    )


def test_scripted_day(
    app: tuple[ModuleType, FakeSlack], table: Any, emulator: Emulator, emulator_api: Any
) -> None:
    module, slack = app
    ids = {name: create(emulator_api, name) for name in OWNERS}
    emulator.advance(60)
    for name, notebook_id in ids.items():
        assert emulator.find(notebook_id).status is NotebookStatus.RUNNING
        emulator.set_activity(
            notebook_id,
            pattern=ActivityPattern.IDLE if name == "reserved" else ActivityPattern.ACTIVE,
        )
    store = DynamoStateStore(table)
    for name, user in OWNERS.items():
        store.put_owner(
            Owner(
                project_id=PROJECT_ID,
                notebook_id=ids[name],
                user_id=user,
                created_at=emulator.now(),
            )
        )
    reserved_until = EMULATOR_START.replace(hour=22)
    store.put_reservation(
        Reservation(
            project_id=PROJECT_ID, notebook_id=ids["reserved"], until=reserved_until, by_user="URES"
        )
    )

    summaries: list[dict[str, Any]] = []
    end = EMULATOR_START.replace(hour=23)
    while emulator.now() < end:
        current = emulator.now()
        quarter = current.replace(minute=current.minute // 15 * 15, second=0, microsecond=0)
        now = emulator.advance(quarter + timedelta(minutes=15) - current)
        if now.hour == 12 and now.minute == 0:
            go_idle(emulator, ids["lunch"])
        if now.hour == 19 and now.minute == 0:
            go_idle(emulator, ids["evening"])
        event = {**EVENT, "time": now.isoformat().replace("+00:00", "Z")}
        summary = module.lambda_handler(event, FakeLambdaContext())
        assert summary["at"] == event["time"]  # "now" is the event's time
        assert summary["failures"] == 0 and summary["project_errors"] == 0
        summaries.append(summary)

    audit = store.list_audit(PROJECT_ID, EMULATOR_START)
    trail = [(_hhmm(r.at), _name(r, ids), r.action) for r in audit if r.action != "prolong"]
    assert trail == [
        ("13:00", "lunch", "warn"),
        ("13:30", "lunch", "stop"),
        ("20:00", "evening", "warn"),
        ("20:30", "evening", "stop"),
        ("22:00", "reserved", "warn"),
    ]
    prolonged = {_name(r, ids) for r in audit if r.action == "prolong"}
    assert prolonged == {"worker", "lunch", "evening", "reserved"}
    # The worker was kept alive the whole day, lease after lease.
    assert emulator.find(ids["worker"]).status is NotebookStatus.RUNNING
    assert sum(1 for r in audit if r.action == "prolong" and _name(r, ids) == "worker") >= 6
    for name in ("lunch", "evening", "reserved"):
        assert emulator.find(ids[name]).status is NotebookStatus.STOPPED, name
    # The reserved notebook was never prolonged past its reservation (nor warned before it).
    for record in audit:
        if _name(record, ids) == "reserved" and record.action == "prolong":
            new_deadline = record.at + timedelta(milliseconds=record.detail["extend_ms"])
            assert new_deadline <= max(reserved_until, record.at + timedelta(hours=1))
    warn_kinds = {_name(r, ids): r.detail["warning"] for r in audit if r.action == "warn"}
    assert warn_kinds == {"lunch": "idle", "evening": "off_hours", "reserved": "off_hours"}
    assert all(r.reason and r.actor == "lease-keeper" and r.outcome == "ok" for r in audit)

    # Warnings went to the owners by DM, with the two buttons; the bot token was sent, never shown.
    warnings = [
        (body["channel"], body)
        for url, body, _ in slack.posts
        if url.endswith("chat.postMessage")
        and body.get("blocks", [{}])[-1].get("type") == "actions"
    ]
    assert [channel for channel, _ in warnings] == ["ULUNCH", "UEVE", "URES"]
    action_ids = [e["action_id"] for e in warnings[0][1]["blocks"][-1]["elements"]]
    assert action_ids == ["keeper.keep", "keeper.stop"]
    assert all(auth == f"Bearer {BOT_TOKEN}" for _, _, auth in slack.posts)
    assert BOT_TOKEN not in json.dumps([body for _, body, _ in slack.posts])
    assert sum(s["stop"] for s in summaries) == 2
    assert sum(s["hours_saved"] for s in summaries) > 0


def test_replaying_an_event_decides_the_same(
    app: tuple[ModuleType, FakeSlack], emulator: Emulator, emulator_api: Any
) -> None:
    module, _ = app
    create(emulator_api, "solo")
    emulator.advance(60)
    event = {**EVENT, "time": emulator.now().isoformat(), "dry_run": True}
    first = module.lambda_handler(event, FakeLambdaContext())
    again = module.lambda_handler(event, FakeLambdaContext())
    assert first == again
    assert first["dry_run"] is True
    assert first["notebooks"] == 1


def test_event_without_time_uses_the_clock(
    app: tuple[ModuleType, FakeSlack], emulator: Emulator
) -> None:
    module, _ = app
    emulator.advance(timedelta(minutes=7))
    summary = module.lambda_handler({}, FakeLambdaContext())
    # The wall clock: seams.clock, the emulator's here (the host's in Lambda).
    assert datetime.fromisoformat(summary["at"]) == EMULATOR_START + timedelta(minutes=7)
    assert summary["at"] == summary["decided_at"]
    assert summary["notebooks"] == 0


def test_bad_configuration_names_the_variable(
    table: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from nbkeeper.keeper.policy import PolicyError
    from nbkeeper.settings import SettingsError

    monkeypatch.setenv("MODELARTS_REGION", "cn-north-4")
    monkeypatch.setenv("MODELARTS_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", ACCESS_KEY)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SECRET_KEY)
    monkeypatch.delenv("STATE_TABLE", raising=False)
    with pytest.raises(SettingsError, match="STATE_TABLE is not set"):
        load_app("lease_keeper")
    monkeypatch.setenv("STATE_TABLE", "state")
    bad = tmp_path / "policy.yaml"
    bad.write_text("idle_threshold_minutes: soon\n")
    monkeypatch.setenv("POLICY_PATH", str(bad))
    with pytest.raises(PolicyError, match="idle_threshold_minutes"):
        load_app("lease_keeper")


def at(moment: datetime) -> dict[str, Any]:
    """The schedule event for a pass at `moment`."""
    return {**EVENT, "time": moment.isoformat().replace("+00:00", "Z")}


def warning_posts(slack: FakeSlack) -> list[dict[str, Any]]:
    """chat.postMessage bodies that are keeper warnings (they end with the buttons)."""
    return [
        body
        for url, body, _ in slack.posts
        if url.endswith("chat.postMessage")
        and body.get("blocks", [{}])[-1].get("type") == "actions"
    ]


def two_notebooks(emulator: Emulator, emulator_api: Any, table: Any) -> dict[str, str]:
    """ "busy" (a busy kernel) and "idle" (quiet since 09:01), both owned, 2 h leases."""
    ids = {name: create(emulator_api, name) for name in ("busy", "idle")}
    emulator.advance(60)
    emulator.set_activity(ids["busy"], pattern=ActivityPattern.BUSY)
    go_idle(emulator, ids["idle"])
    store = DynamoStateStore(table)
    for name, notebook_id in ids.items():
        store.put_owner(
            Owner(
                project_id=PROJECT_ID,
                notebook_id=notebook_id,
                user_id=OWNERS.get(name, "UIDLE"),
                created_at=emulator.now(),
            )
        )
    return ids


def test_a_state_table_outage_lets_no_lease_run_out_and_never_warns_or_stops(
    app: tuple[ModuleType, FakeSlack], table: Any, emulator: Emulator, emulator_api: Any
) -> None:
    """The idle notebook is reserved for the evening, and the outage hides that: its lease
    must not run out either (the keeper chaos suite saw a reserved notebook stopped so)."""
    module, slack = app
    ids = two_notebooks(emulator, emulator_api, table)
    DynamoStateStore(table).put_reservation(
        Reservation(
            project_id=PROJECT_ID,
            notebook_id=ids["idle"],
            until=EMULATOR_START.replace(hour=20),
            by_user="UIDLE",
        )
    )
    emulator.advance(timedelta(minutes=105))  # 10:46: both leases end within 20 minutes
    lease_ends = {name: emulator.find(i).deadline_ms for name, i in ids.items()}
    table.delete()  # the state table is gone: no reservations, warnings or owners
    summary = module.lambda_handler(at(emulator.now()), FakeLambdaContext())
    assert emulator.find(ids["busy"]).deadline_ms > lease_ends["busy"]
    assert emulator.find(ids["idle"]).deadline_ms > lease_ends["idle"]
    assert summary["prolong"] == 2
    assert summary["warn"] == summary["stop"] == 0
    assert summary["project_errors"] == 1
    assert warning_posts(slack) == []
    emulator.advance(timedelta(minutes=30))  # past both old lease ends
    for notebook_id in ids.values():
        assert emulator.find(notebook_id).status is NotebookStatus.RUNNING


class KeepPressedDuringThePass(httpx.AsyncBaseTransport):
    """The Jupyter transport; when `notebook_id` is probed (after the pass read the state), its
    owner presses [Keep 2h more] and the worker records the reservation."""

    def __init__(self, inner: httpx.AsyncBaseTransport, notebook_id: str, keep: Any) -> None:
        self.inner, self.notebook_id, self.keep = inner, notebook_id, keep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.notebook_id in request.url.path and self.keep is not None:
            self.keep()
            self.keep = None
        return await self.inner.handle_async_request(request)


def test_keep_pressed_during_a_pass_prevents_the_stop(
    app: tuple[ModuleType, FakeSlack],
    table: Any,
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
) -> None:
    module, _ = app
    ids = two_notebooks(emulator, emulator_api, table)
    emulator.advance(timedelta(minutes=70))  # 10:11, quiet for 70 min
    store = DynamoStateStore(table)
    first = module.lambda_handler(at(emulator.now()), FakeLambdaContext())
    assert first["warn"] == 1  # "idle" is warned: stop due at 10:41 (the 30 min lead)
    emulator.advance(timedelta(minutes=31))

    def keep() -> None:
        store.put_reservation(
            Reservation(
                project_id=PROJECT_ID,
                notebook_id=ids["idle"],
                until=emulator.now() + timedelta(hours=2),
                by_user="UIDLE",
            )
        )

    module.seams.jupyter_transport = KeepPressedDuringThePass(emulator_transport, ids["idle"], keep)
    reads: list[dict[str, Any]] = []
    client = module.wiring.state_table.meta.client
    client.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda params, **_: reads.append(params)
    )
    second = module.lambda_handler(at(emulator.now()), FakeLambdaContext())
    assert second["stop"] == 0
    emulator.advance(60)
    assert emulator.find(ids["idle"]).status is NotebookStatus.RUNNING
    [stop] = [r for r in store.list_audit(PROJECT_ID, emulator.now()) if r.action == "stop"]
    assert stop.outcome == "skipped: reserved during the pass"
    assert reads and all(params.get("ConsistentRead") is True for params in reads)


def test_a_late_event_warns_with_the_promised_lead_time(
    app: tuple[ModuleType, FakeSlack], table: Any, emulator: Emulator, emulator_api: Any
) -> None:
    """An event 25 minutes late (a Lambda retry) at 10:10: the warning promises 10:40 (the
    30 min lead), from the wall clock, and the stop waits for it (before the 2 h lease ends)."""
    module, slack = app
    ids = two_notebooks(emulator, emulator_api, table)
    emulator.advance(timedelta(minutes=69))  # 10:10, "idle" quiet since 09:01
    wall = emulator.now()
    late = module.lambda_handler(at(wall - timedelta(minutes=25)), FakeLambdaContext())
    assert late["warn"] == 1
    assert late["at"] == "2024-03-04T09:45:00Z"  # the event's time names the pass
    assert late["decided_at"] == "2024-03-04T10:10:00Z"  # the wall clock decided it
    [warning] = warning_posts(slack)
    assert "will be stopped at Mon 10:40" in warning["text"]
    pending = DynamoStateStore(table).load_project(PROJECT_ID, wall).warnings[ids["idle"]]
    assert (pending.warned_at, pending.stop_after) == (wall, wall + timedelta(minutes=30))
    [record] = [
        r for r in DynamoStateStore(table).list_audit(PROJECT_ID, wall) if r.action == "warn"
    ]
    assert record.at == wall - timedelta(minutes=25)  # audit keeps the event's time ...
    assert record.detail["decided_at"] == "2024-03-04T10:10:00Z"  # ... and says when it decided

    emulator.advance(timedelta(minutes=5))  # 10:15: the next pass, on time
    assert module.lambda_handler(at(emulator.now()), FakeLambdaContext())["stop"] == 0
    emulator.advance(timedelta(minutes=25))  # 10:40: the promised time
    assert module.lambda_handler(at(emulator.now()), FakeLambdaContext())["stop"] == 1


def test_consistently_late_events_still_prolong_a_busy_notebook(
    app: tuple[ModuleType, FakeSlack], table: Any, emulator: Emulator, emulator_api: Any
) -> None:
    """Every event 40 minutes late: at 10:45 the busy notebook's lease ends in 15 minutes (by
    the event's time it had 55), so it is prolonged now rather than left to run out."""
    module, _ = app
    ids = two_notebooks(emulator, emulator_api, table)
    emulator.advance(timedelta(minutes=104))  # 10:45
    lease_end = emulator.find(ids["busy"]).deadline_ms
    summary = module.lambda_handler(at(emulator.now() - timedelta(minutes=40)), FakeLambdaContext())
    assert summary["prolong"] == 1
    assert emulator.find(ids["busy"]).deadline_ms >= lease_end + 100 * 60_000
    emulator.advance(timedelta(minutes=20))  # 11:05: past the old lease end
    assert emulator.find(ids["busy"]).status is NotebookStatus.RUNNING


def test_without_a_slack_token_nobody_is_warned_so_nothing_is_stopped(
    table: Any,
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, slack = keeper_app(emulator, emulator_transport, monkeypatch, SLACK_BOT_TOKEN=None)
    ids = two_notebooks(emulator, emulator_api, table)
    emulator.advance(timedelta(minutes=70))  # "idle" has been quiet for 70 minutes
    for _ in range(3):  # long past any warning's lead time
        summary = module.lambda_handler(at(emulator.now()), FakeLambdaContext())
        assert summary["warn"] == summary["stop"] == 0
        assert summary["failures"] == 1  # the warning that could not be sent, every pass
        emulator.advance(timedelta(minutes=16))
    assert emulator.find(ids["idle"]).status is NotebookStatus.RUNNING
    assert DynamoStateStore(table).load_project(PROJECT_ID, emulator.now()).warnings == {}
    [record, *_] = [r for r in DynamoStateStore(table).list_audit(PROJECT_ID, emulator.now())]
    assert record.outcome == (
        "failed: warning not delivered: no Slack bot token configured, nobody can be warned"
    )
    assert slack.posts == []


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _name(record: AuditRecord, ids: dict[str, str]) -> str:
    return next(name for name, notebook_id in ids.items() if notebook_id == record.notebook_id)
