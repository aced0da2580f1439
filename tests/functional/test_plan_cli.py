"""`nbkeeper plan` against the emulator served on 127.0.0.1: decisions printed, nothing changed."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.records import PendingWarning, Reservation
from nbkeeper_local.cli import main as cli_main
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import ACCESS_KEY, PROJECT_ID, SECRET_KEY


@pytest.fixture
def fleet(emulator: Emulator, emulator_http: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for key, value in {
        "MODELARTS_REGION": "cn-north-4",
        "MODELARTS_PROJECT_ID": PROJECT_ID,
        "MODELARTS_ENDPOINT": emulator_http,
        "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
        "HUAWEICLOUD_SDK_SK": SECRET_KEY,
    }.items():
        monkeypatch.setenv(key, value)
    records = emulator.seed_fleet(
        size=4,
        status_weights={NotebookStatus.RUNNING: 1.0},
        activity_weights={ActivityPattern.IDLE: 1.0},
        keep_tag_fraction=0.0,
    )
    ids = [r.id for r in records]
    emulator.set_activity(ids[0], pattern=ActivityPattern.BUSY)
    emulator.set_activity(
        ids[1],
        pattern=ActivityPattern.IDLE,
        last_activity=emulator.now() - timedelta(hours=3),
        kernels=[],
    )
    emulator.set_activity(ids[2], pattern=ActivityPattern.UNREACHABLE)
    # Lease of the busy notebook: ends in 10 minutes.
    record = emulator.find(ids[0])
    record.lease_duration = int((emulator.now() + timedelta(minutes=10)).timestamp() * 1000) - (
        record.create_at
    )
    return ids


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, Any]]:
    assert cli_main(["plan", "--json", *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    return {row["notebook_id"]: row for row in rows}


def test_json_plan_has_one_object_per_notebook(
    fleet: list[str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.find(fleet[0]).lease_duration
    at = emulator.now().isoformat()
    rows = plan_json(capsys, "--at", at)
    assert set(rows) == set(fleet)
    busy, idle, down = rows[fleet[0]], rows[fleet[1]], rows[fleet[2]]
    assert busy["action"] == "prolong"
    assert busy["duration"] > busy["extend_ms"] == 2 * 3_600_000
    assert busy["reason"].startswith("active")
    assert idle["action"] == "warn"
    assert "idle" in idle["reason"]
    assert down["action"] == "noop"
    assert all({"notebook_id", "action", "reason"} <= set(r) for r in rows.values())
    # A plan changes nothing.
    assert emulator.find(fleet[0]).lease_duration == before
    assert all(emulator.find(i).status is NotebookStatus.RUNNING for i in fleet)


def test_at_moves_now_to_off_hours(
    fleet: list[str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.find(fleet[1]).lease_duration += 24 * 3_600_000  # still running at 21:00
    evening = emulator.now().replace(hour=21).isoformat()
    rows = plan_json(capsys, "--at", evening)
    assert rows[fleet[1]]["warning"] == "off_hours"


def test_policy_file_is_used(
    fleet: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], emulator: Emulator
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("idle_threshold_minutes: 600\nextend_by_hours: 4\n")
    rows = plan_json(capsys, "--policy", str(policy), "--at", emulator.now().isoformat())
    assert rows[fleet[1]]["action"] == "noop"  # 3 h idle is not idle under a 10 h threshold
    assert rows[fleet[0]]["extend_ms"] == 4 * 3_600_000


def test_table_output(fleet: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["plan"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Planned against ModelArts at http://127.0.0.1:")
    assert lines[1].startswith("nbkeeper state: NOT read (no --state-table)")
    assert lines[2].split()[:4] == ["ACTION", "NOTEBOOK", "ID", "DETAIL"]
    assert "running notebooks at" in out and "nothing was changed" in out


def test_json_says_state_was_not_read(fleet: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rows = plan_json(capsys)
    assert {row["state_read"] for row in rows.values()} == {False}


def test_state_table_turns_a_due_warning_into_stop_and_honours_reservations(
    fleet: list[str],
    emulator: Emulator,
    state_table: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = emulator.now()
    store = DynamoStateStore(state_table)
    store.put_warning(
        PendingWarning(
            project_id=PROJECT_ID,
            notebook_id=fleet[1],
            kind="idle",
            warned_at=now - timedelta(minutes=20),
            stop_after=now - timedelta(minutes=5),
        )
    )
    store.put_reservation(
        Reservation(
            project_id=PROJECT_ID,
            notebook_id=fleet[3],
            until=now + timedelta(hours=3),
            by_user="U1",
        )
    )
    items = state_table.scan()["Items"]
    at = now.isoformat()

    blind = plan_json(capsys, "--at", at)
    assert blind[fleet[1]]["action"] == "warn"
    assert not blind[fleet[3]]["reason"].startswith("reserved")

    rows = plan_json(capsys, "--at", at, "--state-table", state_table.name)
    assert rows[fleet[1]]["action"] == "stop"
    assert "warned at" in rows[fleet[1]]["reason"]
    assert rows[fleet[3]]["reason"].startswith("reserved until")
    assert {row["state_read"] for row in rows.values()} == {True}
    # Read-only: the dry run's audit records and warnings are not written to the table.
    assert state_table.scan()["Items"] == items

    assert cli_main(["plan", "--at", at, "--state-table", state_table.name]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "nbkeeper state: read from DynamoDB table state (reservations, warnings, owners)"
    )


def test_an_unreadable_state_table_is_named(
    fleet: list[str], state_table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["plan", "--state-table", "no-such-table"]) == 2
    err = capsys.readouterr().err
    assert "--state-table no-such-table: cannot read it" in err
    assert "ResourceNotFoundException" in err


def test_bad_policy_and_settings_are_named(
    fleet: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("extend_by: 3\n")
    assert cli_main(["plan", "--policy", str(bad)]) == 2
    assert "extend_by: unknown key" in capsys.readouterr().err
    assert cli_main(["plan", "--at", "yesterday"]) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err
    monkeypatch.delenv("MODELARTS_PROJECT_ID")
    assert cli_main(["plan"]) == 2
    assert "MODELARTS_PROJECT_ID is not set" in capsys.readouterr().err


# ---------------------------------------------------------------------- a safe --at


def notes(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("NOTE: ")]


def test_at_before_the_data_says_so_and_marks_the_notebooks(
    fleet: list[str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = (emulator.now() - timedelta(days=2)).isoformat()
    assert cli_main(["plan", "--at", earlier]) == 0
    out = capsys.readouterr().out
    [note] = notes(out)
    assert "--at Sat 02 Mar 09:00 UTC is before the data read: all 4 notebooks were" in note
    assert "(the latest at Mon 04 Mar 09:00 UTC)" in note
    assert "marked *" in note
    table = out.split("REASON\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(table) == 4
    assert all(line.split()[1].startswith("*") for line in table)

    rows = plan_json(capsys, "--at", earlier)
    assert {row["data_after_at"] for row in rows.values()} == {True}


def test_json_keeps_notes_on_stderr(
    fleet: list[str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = (emulator.now() - timedelta(days=2)).isoformat()
    assert cli_main(["plan", "--json", "--at", earlier]) == 0
    captured = capsys.readouterr()
    assert all(json.loads(line) for line in captured.out.splitlines())
    assert len(notes(captured.err)) == 1


def test_at_past_the_end_of_leases_shows_them_as_run_out(
    fleet: list[str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    later = emulator.now() + timedelta(hours=6)  # every seeded lease ends within 4 h
    before = emulator.find(fleet[0]).lease_duration
    assert cli_main(["plan", "--at", later.isoformat()]) == 0
    out = capsys.readouterr().out
    [note] = notes(out)
    assert "--at Mon 04 Mar 15:00 UTC is past the end of 4 leases" in note
    assert "shown as `noop` (lease ran out)" in note

    rows = plan_json(capsys, "--at", later.isoformat())
    # Without the check the busy notebook would be "prolonged" though its lease ended at 09:10.
    busy = rows[fleet[0]]
    assert busy["action"] == "noop"
    assert busy["reason"].startswith("lease ran out at Mon 04 Mar 09:10 UTC, before --at")
    assert {row["action"] for row in rows.values()} == {"noop"}
    assert emulator.find(fleet[0]).lease_duration == before


def test_at_within_the_data_has_no_notes(
    fleet: list[str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["plan", "--at", emulator.now().isoformat()]) == 0
    assert notes(capsys.readouterr().out) == []


def test_at_in_another_offset_says_the_policy_timezone_decides(
    fleet: list[str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    at = emulator.now().astimezone(timezone(timedelta(hours=1))).isoformat()
    assert cli_main(["plan", "--at", at]) == 0
    [note] = notes(capsys.readouterr().out)
    assert "times are shown in the policy's timezone, UTC" in note
