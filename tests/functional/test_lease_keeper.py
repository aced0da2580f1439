"""The real lease keeper handler over a scripted day: events/schedule.json, the emulator, moto.

Passes run every 15 minutes from 09:00 to 23:00 UTC on Monday 4 March 2024 (the emulator's start)
under the shipped default policy (Mon-Fri 08:00-20:00 UTC, idle 60 min, warning 15 min ahead,
prolong 2 h when 20 min are left):

- "worker" is used all day: prolonged again and again, never warned or stopped;
- "lunch" is used in the morning, idle from 12:00: warned at 13:00, stopped at 13:15;
- "evening" is used until 19:00: off-hours and idle at 20:00, warned, stopped at 20:15;
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

from nbkeeper.modelarts.retry import NO_RETRY
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.store import AuditRecord, DynamoStateStore, Owner, Reservation
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


@pytest.fixture
def app(
    table: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ModuleType, FakeSlack]:
    for key, value in {
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
    }.items():
        monkeypatch.setenv(key, value)
    module = load_app("lease_keeper")
    slack = FakeSlack()
    module.seams.modelarts_transport = emulator_transport
    module.seams.jupyter_transport = emulator_transport
    module.seams.slack_transport = httpx.MockTransport(slack)
    # The client's rate limiter and retries wait through this: tests never sleep.
    module.seams.modelarts_options = {"sleep": no_sleep, "retry": NO_RETRY}
    return module, slack


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
        ("13:15", "lunch", "stop"),
        ("20:00", "evening", "warn"),
        ("20:15", "evening", "stop"),
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
    summary = module.lambda_handler({}, FakeLambdaContext())
    at = datetime.fromisoformat(summary["at"])
    assert at > EMULATOR_START  # the host clock, not the emulator's
    assert summary["notebooks"] == 0


def test_bad_configuration_names_the_variable(
    table: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from nbkeeper.policy import PolicyError
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


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _name(record: AuditRecord, ids: dict[str, str]) -> str:
    return next(name for name, notebook_id in ids.items() if notebook_id == record.notebook_id)
