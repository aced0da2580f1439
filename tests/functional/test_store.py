"""DynamoStateStore against moto, checked for the same behaviour as the in-memory fake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.memory import MemoryStateStore
from nbkeeper.records import AuditRecord, Owner, PendingWarning, Reservation, StateStore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> StateStore:
    if request.param == "memory":
        return MemoryStateStore()
    return DynamoStateStore(request.getfixturevalue("state_table"))


def test_project_state_holds_owner_reservation_and_warning(store: StateStore) -> None:
    store.put_owner(Owner(project_id="p1", notebook_id="nb1", user_id="U1", created_at=NOW))
    store.put_reservation(
        Reservation(
            project_id="p1", notebook_id="nb1", until=NOW + timedelta(hours=2), by_user="U1"
        )
    )
    store.put_warning(
        PendingWarning(
            project_id="p1",
            notebook_id="nb2",
            kind="idle",
            warned_at=NOW,
            stop_after=NOW + timedelta(minutes=15),
        )
    )
    store.put_owner(Owner(project_id="p2", notebook_id="other", user_id="U2", created_at=NOW))

    state = store.load_project("p1", NOW)

    assert set(state.owners) == {"nb1"}
    assert state.owners["nb1"].user_id == "U1"
    assert state.reservations["nb1"].until == NOW + timedelta(hours=2)
    assert state.warnings["nb2"].kind == "idle"


def test_expired_reservation_is_ignored_before_ttl_deletes_it(store: StateStore) -> None:
    store.put_reservation(
        Reservation(
            project_id="p1", notebook_id="nb1", until=NOW - timedelta(seconds=1), by_user="U1"
        )
    )
    assert store.load_project("p1", NOW).reservations == {}


def test_deleted_reservation_and_warning_are_gone(store: StateStore) -> None:
    store.put_reservation(
        Reservation(
            project_id="p1", notebook_id="nb1", until=NOW + timedelta(hours=1), by_user="U1"
        )
    )
    store.put_warning(
        PendingWarning(
            project_id="p1", notebook_id="nb1", kind="off_hours", warned_at=NOW, stop_after=NOW
        )
    )
    store.delete_reservation("p1", "nb1")
    store.delete_warning("p1", "nb1")
    state = store.load_project("p1", NOW)
    assert state.reservations == {} and state.warnings == {}


def test_owner_lookup(store: StateStore) -> None:
    assert store.get_owner("p1", "nb1") is None
    store.put_owner(
        Owner(project_id="p1", notebook_id="nb1", user_id="U9", notebook_name="x", created_at=NOW)
    )
    owner = store.get_owner("p1", "nb1")
    assert owner is not None and owner.user_id == "U9" and owner.notebook_name == "x"


def test_audit_is_listed_by_day(store: StateStore) -> None:
    records = [
        AuditRecord(project_id="p1", notebook_id=f"nb{i}", action="stop", reason="idle", at=NOW)
        for i in range(30)
    ]
    store.record_audit(records)
    store.record_audit(
        [
            AuditRecord(
                project_id="p1",
                notebook_id="late",
                action="stop",
                reason="x",
                at=NOW + timedelta(days=1),
            )
        ]
    )
    listed = store.list_audit("p1", NOW)
    assert sorted(r.notebook_id for r in listed) == sorted(f"nb{i}" for i in range(30))
