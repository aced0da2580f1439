"""`nbkeeper status --state-table NAME`: the operator's read-only view of the state table (moto)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.records import AuditRecord, Owner, PendingWarning, Reservation
from nbkeeper_local import status

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
P1, P2 = "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "ffffeeeeddddccccbbbbaaaa99998888"


@pytest.fixture
def filled(state_table: Any) -> Any:
    store = DynamoStateStore(state_table)
    store.put_owner(
        Owner(
            project_id=P1,
            notebook_id="nb-1",
            user_id="U0ALICE",
            notebook_name="alice-train",
            created_at=NOW - timedelta(hours=5),
        )
    )
    store.put_warning(
        PendingWarning(
            project_id=P1,
            notebook_id="nb-1",
            kind="idle",
            warned_at=NOW - timedelta(minutes=5),
            stop_after=NOW + timedelta(minutes=10),
            channel="U0ALICE",
            message_ts="1.2",
        )
    )
    store.put_reservation(
        Reservation(
            project_id=P1,
            notebook_id="nb-2",
            until=NOW + timedelta(hours=3),
            by_user="U0BOB",
            note="training",
        )
    )
    store.put_reservation(  # ended: a pass ignores it, so does status
        Reservation(
            project_id=P1, notebook_id="nb-3", until=NOW - timedelta(hours=1), by_user="U0BOB"
        )
    )
    records = [
        AuditRecord(
            project_id=P1,
            notebook_id="nb-2",
            notebook_name="bob-etl",
            action="prolong",
            reason="reserved until Mon 17:00",
            at=NOW - timedelta(minutes=m),
        )
        for m in (5, 10)
    ]
    records.append(
        AuditRecord(
            project_id=P1,
            notebook_id="nb-1",
            notebook_name="alice-train",
            action="warn",
            reason="idle",
            at=NOW - timedelta(days=1),
            dry_run=True,
            outcome="dry-run",
        )
    )
    records.append(  # two days ago: not today's or yesterday's
        AuditRecord(
            project_id=P1,
            notebook_id="nb-9",
            action="stop",
            reason="old",
            at=NOW - timedelta(days=2),
        )
    )
    store.record_audit(records)
    store.put_owner(Owner(project_id=P2, notebook_id="nb-7", user_id="U0CAROL", created_at=NOW))
    return state_table


def run(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = status.run(argv, environ=environ or {}, now=NOW, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_table_view_of_one_project(filled: Any) -> None:
    before = filled.scan()["Items"]
    code, out, err = run(["--state-table", "state", "--project", P1, "--timezone", "Europe/Paris"])
    assert (code, err) == (0, "")
    assert out.startswith("nbkeeper state in DynamoDB table state as of Mon 23 Nov 15:00 CET")
    assert "Pending warnings (1)" in out
    warning = next(line for line in out.splitlines() if "idle" in line and "nb-1" in line)
    assert warning.split()[:3] == ["alice-train", "nb-1", "idle"]
    assert "Mon 23 Nov 15:10 CET" in warning and "U0ALICE" in warning
    assert "Reservations (1)" in out  # the ended one is left out
    assert "bob-etl" in out and "training" in out and "nb-3" not in out
    assert "Owners (1)" in out
    assert "Latest audit records, today and yesterday (3)" in out
    audit = out.split("Latest audit records")[1].splitlines()[2:]
    assert [line.split()[5] for line in audit] == ["prolong", "prolong", "warn"]  # newest first
    assert "warn (dry run)" in out and "nb-9" not in out
    assert P2 not in out
    assert filled.scan()["Items"] == before  # read-only


def test_limit_says_how_many_there_are(filled: Any) -> None:
    _, out, _ = run(["--state-table", "state", "--project", P1, "--limit", "1"])
    assert "Latest audit records, today and yesterday (1 of 3)" in out


def test_json_view_and_project_discovery(filled: Any) -> None:
    code, out, _ = run(["--state-table", "state", "--json"])
    assert code == 0
    document = json.loads(out)
    assert document["at"] == "2026-11-23T14:00:00Z"
    projects = {p["project_id"]: p for p in document["projects"]}
    assert set(projects) == {P1, P2}  # no project named: every one in the table
    p1 = projects[P1]
    assert p1["warnings"] == [
        {
            "notebook_id": "nb-1",
            "notebook_name": "alice-train",
            "kind": "idle",
            "warned_at": "2026-11-23T13:55:00Z",
            "stop_after": "2026-11-23T14:10:00Z",
            "channel": "U0ALICE",
        }
    ]
    assert [r["notebook_id"] for r in p1["reservations"]] == ["nb-2"]
    assert p1["audit_total"] == 3 and p1["audit"][0]["action"] == "prolong"
    assert projects[P2]["owners"][0]["user_id"] == "U0CAROL"


def test_project_from_the_environment(filled: Any) -> None:
    _, out, _ = run(["--state-table", "state"], {"MODELARTS_PROJECT_ID": P2})
    assert f"Project {P2}" in out and P1 not in out
    assert "Pending warnings (0): none" in out


def test_an_empty_table_and_a_missing_one(state_table: Any) -> None:
    code, out, _ = run(["--state-table", "state"])
    assert code == 0 and "No project has state in this table yet." in out
    code, out, err = run(["--state-table", "no-such-table", "--project", P1])
    assert (code, out) == (2, "")
    assert "--state-table no-such-table: cannot read it" in err
    assert "ResourceNotFoundException" in err
