"""decide(): every rule, timezone/DST and holiday edges, caps, and hypothesis safety properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from nbkeeper.keeper.activity import Activity, ActivityResult, UnknownActivity
from nbkeeper.keeper.decide import Action, decide
from nbkeeper.keeper.policy import Policy, load_policy_text
from nbkeeper.modelarts.schemas import (
    HOUR_MS,
    LEASE_MAX_MS,
    LEASE_MIN_MS,
    Notebook,
    NotebookStatus,
)
from nbkeeper.records import PendingWarning, Reservation, WarningKind
from nbkeeper.timefmt import human

# Monday 23 Nov 2026, 10:00 UTC: a working hour under the default policy.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POLICY = load_policy_text("")
# The off-hours tests need an off-hours threshold shorter than the working-hours one (60 min);
# the shipped default is 60 too, so they name theirs.
SHORT_OFF_HOURS = "off_hours_idle_minutes: 15"
MIN = timedelta(minutes=1)


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def notebook(
    *,
    status: str = "RUNNING",
    started: datetime = NOW - timedelta(hours=3),
    ends_in: timedelta | None = timedelta(hours=1),
    enable: bool = True,
    tags: dict[str, str] | None = None,
    update_at: datetime | None = None,
) -> Notebook:
    lease: dict[str, Any] = {"create_at": ms(started), "enable": enable, "type": "TIMING"}
    if ends_in is not None:
        lease["duration"] = ms(NOW + ends_in) - ms(started)
    if update_at is not None:
        lease["update_at"] = ms(update_at)
    return Notebook.model_validate(
        {
            "id": "nb1",
            "name": "nb1",
            "status": status,
            "flavor": "modelarts.vm.gpu.t4",
            "lease": lease,
            "url": "https://nb.example/nb1/lab",
            "token": "tok",
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
    )


def idle_for(delta: timedelta) -> Activity:
    return Activity(last_activity=NOW - delta, kernels=1)


ACTIVE = Activity(last_activity=NOW - 5 * MIN, kernels=1, connections=1)
BUSY = Activity(last_activity=NOW - timedelta(hours=5), kernels=1, busy_kernels=1)
IDLE = idle_for(timedelta(minutes=90))


def reservation(until: datetime) -> Reservation:
    return Reservation(project_id="p", notebook_id="nb1", until=until, by_user="U1")


def warning(
    kind: WarningKind = "idle", warned_at: datetime = NOW - 20 * MIN, lead: timedelta = 15 * MIN
) -> PendingWarning:
    return PendingWarning(
        project_id="p",
        notebook_id="nb1",
        kind=kind,
        warned_at=warned_at,
        stop_after=warned_at + lead,
    )


# ---------------------------------------------------------------- keep and prolong


def test_active_with_lease_ending_soon_is_prolonged_by_extend_by() -> None:
    nb = notebook(ends_in=10 * MIN)
    decision = decide(nb, ACTIVE, None, None, POLICY, NOW)
    assert decision.action is Action.PROLONG
    assert decision.extend_ms == 2 * HOUR_MS
    assert nb.lease is not None and nb.lease.create_at is not None
    # Total lease duration as the service counts it: from create_at.
    assert decision.duration_ms == ms(NOW) - nb.lease.create_at + 2 * HOUR_MS
    assert decision.new_deadline == NOW + timedelta(hours=2)
    assert "active (last activity 5 min ago)" in decision.reason
    assert "prolonged 2 h" in decision.reason


def test_busy_kernel_counts_as_active_however_old_the_activity() -> None:
    decision = decide(notebook(ends_in=10 * MIN), BUSY, None, None, POLICY, NOW)
    assert decision.action is Action.PROLONG
    assert "1 busy kernel" in decision.reason


def test_active_with_plenty_of_lease_is_left_alone() -> None:
    decision = decide(notebook(ends_in=timedelta(hours=1)), ACTIVE, None, None, POLICY, NOW)
    assert decision.action is Action.NOOP
    assert "lease ends in 1 h" in decision.reason


def test_renew_before_boundary_is_inclusive() -> None:
    at_edge = decide(notebook(ends_in=20 * MIN), ACTIVE, None, None, POLICY, NOW)
    beyond = decide(notebook(ends_in=21 * MIN), ACTIVE, None, None, POLICY, NOW)
    assert at_edge.action is Action.PROLONG
    assert beyond.action is Action.NOOP


def test_idle_threshold_boundary() -> None:
    just_active = decide(notebook(), idle_for(59 * MIN), None, None, POLICY, NOW)
    just_idle = decide(notebook(), idle_for(60 * MIN), None, None, POLICY, NOW)
    assert just_active.action is Action.NOOP
    assert just_idle.action is Action.WARN


def test_lease_without_auto_stop_needs_no_prolonging() -> None:
    decision = decide(notebook(ends_in=5 * MIN, enable=False), ACTIVE, None, None, POLICY, NOW)
    assert decision.action is Action.NOOP
    assert "does not auto-stop" in decision.reason


def test_reserved_idle_notebook_is_prolonged_only_to_the_reservation_end() -> None:
    res = reservation(NOW + timedelta(minutes=90))
    decision = decide(notebook(ends_in=10 * MIN), IDLE, res, None, POLICY, NOW)
    assert decision.action is Action.PROLONG
    assert decision.extend_ms == 90 * 60_000
    assert decision.new_deadline == res.until
    assert "to the end of the reservation" in decision.reason
    assert "reserved until Mon 11:30 UTC by U1" in decision.reason


def test_reservation_ending_within_the_hour_still_gets_the_one_hour_minimum() -> None:
    res = reservation(NOW + 30 * MIN)
    decision = decide(notebook(ends_in=10 * MIN), IDLE, res, None, POLICY, NOW)
    assert decision.action is Action.PROLONG
    assert decision.extend_ms == LEASE_MIN_MS


def test_active_and_reserved_gets_the_full_extension() -> None:
    res = reservation(NOW + 30 * MIN)
    decision = decide(notebook(ends_in=10 * MIN), ACTIVE, res, None, POLICY, NOW)
    assert decision.extend_ms == 2 * HOUR_MS


def test_expired_reservation_is_not_honoured() -> None:
    res = reservation(NOW - MIN)
    decision = decide(notebook(ends_in=10 * MIN), IDLE, res, None, POLICY, NOW)
    assert decision.action is Action.WARN


def test_reserved_notebook_is_never_warned_even_off_hours() -> None:
    night = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    res = reservation(night + timedelta(hours=5))
    # The lease (built relative to NOW) has ended by `night`: the reservation prolongs it.
    decision = decide(notebook(), IDLE, res, warning(), POLICY, night)
    assert decision.action is Action.PROLONG
    assert decision.clear_warning


def test_opt_out_tag_keeps_an_idle_notebook_alive() -> None:
    nb = notebook(ends_in=10 * MIN, tags={"nbkeeper.keep": "TRUE"})
    decision = decide(nb, IDLE, None, None, POLICY, NOW)
    assert decision.action is Action.PROLONG
    assert "opted out by tag nbkeeper.keep=true" in decision.reason


def test_opt_out_tag_with_other_value_does_not_count() -> None:
    nb = notebook(tags={"nbkeeper.keep": "false"})
    assert decide(nb, IDLE, None, None, POLICY, NOW).action is Action.WARN


def test_extend_by_is_configurable_and_capped_at_72_hours() -> None:
    policy = load_policy_text("extend_by_hours: 72")
    decision = decide(notebook(ends_in=10 * MIN), ACTIVE, None, None, policy, NOW)
    assert decision.extend_ms == LEASE_MAX_MS


def test_runtime_cap_limits_the_extension() -> None:
    policy = load_policy_text("max_runtime_hours: 4.5")
    # Started 3 h ago: 1.5 h of room left.
    decision = decide(notebook(ends_in=10 * MIN), ACTIVE, None, None, policy, NOW)
    assert decision.action is Action.PROLONG
    assert decision.extend_ms == 90 * 60_000
    assert "runtime cap 4.5 h" in decision.reason


def test_runtime_cap_counts_from_the_jupyter_server_start() -> None:
    policy = load_policy_text("max_runtime_hours: 4")
    # Lease created 3 h ago, but the server (re)started 2.5 h ago: 1.5 h of room left.
    activity = Activity(last_activity=NOW, started=NOW - timedelta(minutes=150))
    decision = decide(notebook(ends_in=10 * MIN), activity, None, None, policy, NOW)
    assert decision.extend_ms == 90 * 60_000


def test_runtime_cap_reached_warns_once_and_never_stops() -> None:
    policy = load_policy_text("max_runtime_hours: 3.5")
    nb = notebook(ends_in=10 * MIN)
    first = decide(nb, ACTIVE, None, None, policy, NOW)
    assert first.action is Action.WARN
    assert first.warning_kind == "max_runtime"
    assert "runtime cap of 3.5 h is reached" in first.reason
    again = decide(nb, ACTIVE, None, warning("max_runtime"), policy, NOW)
    assert again.action is Action.NOOP


def test_prolong_clears_a_pending_idle_warning() -> None:
    decision = decide(notebook(ends_in=10 * MIN), ACTIVE, None, warning(), POLICY, NOW)
    assert decision.action is Action.PROLONG
    assert decision.clear_warning


def test_became_active_after_warning_clears_it_instead_of_stopping() -> None:
    decision = decide(notebook(), ACTIVE, None, warning(), POLICY, NOW)
    assert decision.action is Action.NOOP
    assert decision.clear_warning


# ---------------------------------------------------------------- warn and stop


def test_idle_notebook_is_warned_first() -> None:
    decision = decide(notebook(), IDLE, None, None, POLICY, NOW)
    assert decision.action is Action.WARN
    assert decision.warning_kind == "idle"
    assert decision.stop_after == NOW + 30 * MIN  # warning_lead_minutes
    assert decision.reason == (
        "idle (last activity 1 h 30 min ago): will stop at Mon 10:30 UTC unless used or reserved"
    )
    assert decision.cause == "idle (last activity 1 h 30 min ago)"  # the owner's message: no when


def test_warned_idle_notebook_waits_for_the_lead_time() -> None:
    pending = warning(warned_at=NOW - 10 * MIN)
    decision = decide(notebook(), IDLE, None, pending, POLICY, NOW)
    assert decision.action is Action.NOOP
    assert "stops at Mon 10:05" in decision.reason


def test_warned_idle_notebook_is_stopped_once_the_lead_time_passed() -> None:
    decision = decide(notebook(ends_in=timedelta(hours=1)), IDLE, None, warning(), POLICY, NOW)
    assert decision.action is Action.STOP
    assert decision.hours_saved == pytest.approx(1.0)
    assert "warned at Mon 09:40 UTC and still idle" in decision.reason


def test_stop_exactly_at_stop_after() -> None:
    pending = warning(warned_at=NOW - 15 * MIN)
    assert decide(notebook(), IDLE, None, pending, POLICY, NOW).action is Action.STOP


def test_max_runtime_warning_does_not_license_an_idle_stop() -> None:
    decision = decide(notebook(), IDLE, None, warning("max_runtime"), POLICY, NOW)
    assert decision.action is Action.WARN
    assert decision.warning_kind == "idle"


def test_off_hours_idle_is_warned_as_off_hours() -> None:
    evening = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)
    activity = Activity(last_activity=evening - 61 * MIN)
    decision = decide(notebook(), activity, None, None, POLICY, evening)
    assert decision.action is Action.WARN
    assert decision.warning_kind == "off_hours"
    assert decision.reason.startswith("outside working hours and idle")


def test_off_hours_but_active_is_kept() -> None:
    evening = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)
    activity = Activity(last_activity=evening - 10 * MIN)
    decision = decide(notebook(ends_in=10 * MIN), activity, None, None, POLICY, evening)
    assert decision.action is Action.PROLONG


def at_local(text: str, zone: str = "UTC") -> datetime:
    """A local wall-clock time (ISO, no offset) in `zone`, as a UTC datetime."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("UTC", "2026-11-23"),
        ("Europe/Berlin", "2026-11-23"),  # CET: 20:00 local = 19:00 UTC
        ("Europe/Berlin", "2026-07-06"),  # CEST: 20:00 local = 18:00 UTC
        ("Europe/Berlin", "2026-03-30"),  # the Monday after the spring change
        ("America/New_York", "2026-11-02"),  # the Monday after the autumn change
    ],
)
def test_idle_30_min_is_kept_at_1959_and_warned_at_2000_local(zone: str, day: str) -> None:
    """Left at 19:30: kept until working hours end, then the 15 min off-hours threshold."""
    policy = load_policy_text(f"timezone: {zone}\n{SHORT_OFF_HOURS}")
    before, after = at_local(f"{day}T19:59", zone), at_local(f"{day}T20:00", zone)
    kept = decide(notebook(), Activity(last_activity=before - 29 * MIN), None, None, policy, before)
    warned = decide(notebook(), Activity(last_activity=after - 30 * MIN), None, None, policy, after)
    assert kept.action is not Action.WARN and kept.reason.startswith("active")
    assert warned.action is Action.WARN and warned.warning_kind == "off_hours"
    assert warned.reason.startswith("outside working hours and idle (last activity 30 min ago)")


def test_off_hours_idle_threshold_boundary() -> None:
    policy = load_policy_text(SHORT_OFF_HOURS)
    night = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    just_active = decide(
        notebook(), Activity(last_activity=night - 14 * MIN), None, None, policy, night
    )
    just_idle = decide(
        notebook(), Activity(last_activity=night - 15 * MIN), None, None, policy, night
    )
    assert just_active.action is not Action.WARN
    assert just_idle.action is Action.WARN and just_idle.warning_kind == "off_hours"


def test_off_hours_idle_minutes_is_configurable() -> None:
    longer = load_policy_text("off_hours_idle_minutes: 45")
    shorter = load_policy_text(SHORT_OFF_HOURS)
    night = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    activity = Activity(last_activity=night - 30 * MIN)
    assert decide(notebook(), activity, None, None, longer, night).action is not Action.WARN
    assert decide(notebook(), activity, None, None, shorter, night).action is Action.WARN


def test_busy_kernel_off_hours_is_kept_however_old_the_activity() -> None:
    night = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    decision = decide(notebook(), BUSY, None, None, POLICY, night)
    assert decision.action is not Action.WARN
    assert "1 busy kernel" in decision.reason


def test_holiday_uses_the_off_hours_threshold() -> None:
    policy = load_policy_text(f"holidays: [2026-11-23]\n{SHORT_OFF_HOURS}")
    decision = decide(notebook(), idle_for(20 * MIN), None, None, policy, NOW)
    assert decision.action is Action.WARN
    assert decision.reason.startswith("a holiday and idle (last activity 20 min ago)")


def test_off_hours_warning_is_cleared_when_working_hours_begin() -> None:
    """Warned at 07:50 (quiet 20 min, off hours); at 08:05 the 60 min threshold applies again."""
    policy = load_policy_text(SHORT_OFF_HOURS)
    morning = datetime(2026, 11, 23, 8, 5, tzinfo=UTC)
    pending = warning("off_hours", warned_at=morning - 15 * MIN)
    activity = Activity(last_activity=morning - 35 * MIN)
    decision = decide(notebook(), activity, None, pending, policy, morning)
    assert decision.action is not Action.STOP
    assert decision.clear_warning


def test_holiday_idle_is_warned_as_off_hours() -> None:
    policy = load_policy_text("holidays: [2026-11-23]")
    decision = decide(notebook(), IDLE, None, None, policy, NOW)
    assert decision.warning_kind == "off_hours"
    assert decision.reason.startswith("a holiday and idle")


def test_weekend_idle_is_warned_as_off_hours() -> None:
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    activity = Activity(last_activity=saturday - timedelta(hours=2))
    assert decide(notebook(), activity, None, None, POLICY, saturday).warning_kind == "off_hours"


@pytest.mark.parametrize(
    ("moment", "kind"),
    [
        # Berlin, the Monday after the spring DST change: 08:00 CEST = 06:00 UTC.
        (datetime(2026, 3, 30, 5, 59, tzinfo=UTC), "off_hours"),
        (datetime(2026, 3, 30, 6, 0, tzinfo=UTC), "idle"),
        # The Monday after the autumn change: 08:00 CET = 07:00 UTC.
        (datetime(2026, 10, 26, 6, 59, tzinfo=UTC), "off_hours"),
        (datetime(2026, 10, 26, 7, 0, tzinfo=UTC), "idle"),
        # End of day: 20:00 CET = 19:00 UTC in winter.
        (datetime(2026, 11, 23, 18, 59, tzinfo=UTC), "idle"),
        (datetime(2026, 11, 23, 19, 0, tzinfo=UTC), "off_hours"),
    ],
)
def test_warning_kind_follows_local_working_hours_across_dst(moment: datetime, kind: str) -> None:
    policy = load_policy_text("timezone: Europe/Berlin")
    activity = Activity(last_activity=moment - timedelta(hours=2))
    assert decide(notebook(), activity, None, None, policy, moment).warning_kind == kind


def test_reason_times_are_local() -> None:
    policy = load_policy_text("timezone: Asia/Shanghai")
    decision = decide(notebook(), IDLE, None, None, policy, NOW)
    assert "will stop at Mon 18:30" in decision.reason  # 10:30 UTC = 18:30 CST


# ---------------------------------------------------------------- never act on these


@pytest.mark.parametrize(
    "status", [s.value for s in NotebookStatus if s is not NotebookStatus.RUNNING]
)
def test_only_running_notebooks_are_considered(status: str) -> None:
    decision = decide(
        notebook(status=status, ends_in=5 * MIN), ACTIVE, None, warning(), POLICY, NOW
    )
    assert decision.action is Action.NOOP


def test_transient_reason_says_so() -> None:
    decision = decide(notebook(status="STARTING"), IDLE, None, None, POLICY, NOW)
    assert decision.reason == "STARTING: transient state, left alone"


def test_a_notebook_being_saved_as_an_image_is_neither_stopped_nor_prolonged() -> None:
    """SNAPSHOTTING is transient: the save ends by itself (RUNNING again) and the rules apply
    then. Running, the same notebook would be prolonged (busy, lease ending) or stopped (idle,
    warning due); saving, it is left alone and its warning kept for after the save."""
    saving = notebook(status="SNAPSHOTTING", ends_in=5 * MIN)
    for activity, wanted in ((BUSY, Action.PROLONG), (IDLE, Action.STOP)):
        assert decide(notebook(ends_in=5 * MIN), activity, None, warning(), POLICY, NOW).action is (
            wanted
        )
        decision = decide(
            saving, activity, reservation(NOW + timedelta(hours=3)), warning(), POLICY, NOW
        )
        assert decision.action is Action.NOOP
        assert decision.reason == "SNAPSHOTTING: transient state, left alone"
        assert (decision.extend_ms, decision.clear_warning) == (None, False)


def test_unknown_activity_is_never_warned_or_stopped() -> None:
    unknown = UnknownActivity(reason="Jupyter not readable: /api/status answered HTTP 502")
    decision = decide(notebook(), unknown, None, warning(), POLICY, NOW)
    assert decision.action is Action.NOOP
    assert "HTTP 502" in decision.reason


def test_lease_fallback_shows_recent_use_but_never_idleness() -> None:
    recent = Activity(last_activity=NOW - 5 * MIN, source="lease", note="Jupyter not readable")
    stale = Activity(last_activity=NOW - timedelta(hours=5), source="lease", note="timed out")
    assert decide(notebook(ends_in=5 * MIN), recent, None, None, POLICY, NOW).action is (
        Action.PROLONG
    )
    decision = decide(notebook(), stale, None, warning(), POLICY, NOW)
    assert decision.action is Action.NOOP
    assert "not stopped on the lease alone" in decision.reason


# ---------------------------------------------------------------- state not readable


@pytest.mark.parametrize(
    "activity",
    [IDLE, UnknownActivity(reason="Jupyter not readable"), idle_for(timedelta(hours=5))],
    ids=["idle", "unknown", "long idle"],
)
def test_without_state_a_lease_about_to_end_is_bridged_by_the_shortest_renewal(
    activity: ActivityResult,
) -> None:
    """The state table is down: a reservation may keep this notebook, and nobody can tell."""
    decision = decide(notebook(ends_in=10 * MIN), activity, None, None, POLICY, NOW, state=False)
    assert decision.action is Action.PROLONG
    assert decision.extend_ms == LEASE_MIN_MS
    assert decision.new_deadline == NOW + timedelta(hours=1)
    assert "state is not readable" in decision.reason


def test_without_state_a_lease_not_yet_due_is_left_alone_and_nothing_is_warned() -> None:
    decision = decide(notebook(ends_in=30 * MIN), IDLE, None, None, POLICY, NOW, state=False)
    assert decision.action is Action.NOOP
    assert "state is not readable" in decision.reason


def test_without_state_a_due_warning_does_not_stop() -> None:
    due = warning(warned_at=NOW - 40 * MIN)
    decision = decide(notebook(ends_in=10 * MIN), IDLE, None, due, POLICY, NOW, state=False)
    assert decision.action is Action.PROLONG
    later = decide(notebook(ends_in=timedelta(hours=1)), IDLE, None, due, POLICY, NOW, state=False)
    assert later.action is Action.NOOP


def test_without_state_active_notebooks_keep_the_full_extension() -> None:
    decision = decide(notebook(ends_in=10 * MIN), ACTIVE, None, None, POLICY, NOW, state=False)
    assert decision.extend_ms == 2 * HOUR_MS


def test_without_state_the_bridge_outlasts_renew_before() -> None:
    """With renew_before of an hour or more, a 1 h bridge would be due again at once."""
    policy = load_policy_text("renew_before_minutes: 90\nextend_by_hours: 3")
    decision = decide(notebook(ends_in=10 * MIN), IDLE, None, None, policy, NOW, state=False)
    assert decision.extend_ms == 3 * HOUR_MS


def test_without_state_the_runtime_cap_still_holds() -> None:
    policy = load_policy_text("max_runtime_hours: 4")
    started = NOW - timedelta(hours=3, minutes=30)  # 30 min of room: less than a renewal
    nb = notebook(ends_in=10 * MIN, started=started)
    decision = decide(nb, IDLE, None, None, policy, NOW, state=False)
    assert decision.action is Action.NOOP
    assert "runtime cap" in decision.reason


def test_without_state_a_lease_without_an_end_needs_nothing() -> None:
    nb = notebook(ends_in=5 * MIN, enable=False)
    assert decide(nb, IDLE, None, None, POLICY, NOW, state=False).action is Action.NOOP


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(notebook(), IDLE, None, None, POLICY, NOW.replace(tzinfo=None))


def test_human_durations() -> None:
    assert human(timedelta(minutes=125)) == "2 h 5 min"
    assert human(timedelta(hours=3)) == "3 h"
    assert human(timedelta(seconds=59)) == "0 min"
    assert human(timedelta(minutes=-5)) == "0 min"


# ---------------------------------------------------------------- properties

TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Sydney"]


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    extend = draw(st.integers(min_value=1, max_value=72))
    renew_before = draw(st.integers(min_value=1, max_value=min(extend * 60 - 1, 180)))
    cap = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=200)))
    return Policy.model_validate(
        {
            "timezone": draw(st.sampled_from(TIMEZONES)),
            "idle_threshold_minutes": draw(st.integers(min_value=1, max_value=240)),
            "off_hours_idle_minutes": draw(st.integers(min_value=1, max_value=240)),
            "warning_lead_minutes": draw(st.integers(min_value=0, max_value=60)),
            "renew_before_minutes": renew_before,
            "extend_by_hours": extend,
            "max_runtime_hours": cap,
            "holidays": draw(st.lists(st.dates(), max_size=3)),
        }
    )


moments = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2028, 12, 31),
    timezones=st.just(UTC),
)


@st.composite
def situations(draw: st.DrawFn) -> dict[str, Any]:
    now = draw(moments)
    started = now - timedelta(minutes=draw(st.integers(min_value=0, max_value=100 * 60)))
    ends_in = timedelta(
        minutes=draw(
            st.one_of(
                st.integers(min_value=-30, max_value=200), st.integers(min_value=0, max_value=4320)
            )
        )
    )
    # Mostly running and readable: a stop needs many things at once (running, readable, idle,
    # unreserved, a due warning), and the properties are about those cases.
    status = draw(
        st.one_of(
            st.just("RUNNING"),
            st.just("RUNNING"),
            st.sampled_from([s.value for s in NotebookStatus]),
        )
    )
    tags = draw(st.sampled_from([{}, {"nbkeeper.keep": "true"}, {"other": "x"}]))
    known = st.builds(
        Activity,
        last_activity=st.one_of(
            st.none(),
            st.integers(min_value=0, max_value=48 * 60).map(lambda m: now - timedelta(minutes=m)),
        ),
        kernels=st.integers(min_value=0, max_value=3),
        busy_kernels=st.integers(min_value=0, max_value=2),
        source=st.sampled_from(["jupyter", "jupyter", "lease"]),
        started=st.one_of(
            st.none(),
            st.integers(min_value=0, max_value=100 * 60).map(lambda m: now - timedelta(minutes=m)),
        ),
    )
    activity: ActivityResult = draw(
        st.one_of(known, known, st.builds(UnknownActivity, reason=st.just("unreadable")))
    )
    res = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.integers(min_value=-120, max_value=80 * 60).map(
                lambda m: reservation(now + timedelta(minutes=m))
            ),
        )
    )
    warn = draw(
        st.one_of(
            st.builds(
                lambda kind, ago, lead: warning(kind, now - timedelta(minutes=ago), lead),
                st.sampled_from(["idle", "off_hours", "max_runtime"]),
                # Mostly recent (a stop needs a warning due within the hour), sometimes old.
                st.one_of(
                    st.integers(min_value=0, max_value=90), st.integers(min_value=0, max_value=600)
                ),
                st.integers(min_value=0, max_value=60).map(lambda m: timedelta(minutes=m)),
            ),
            st.none(),
        )
    )
    lease: dict[str, Any] | None = {
        "create_at": ms(started),
        "duration": ms(now + ends_in) - ms(started),
        "enable": draw(st.booleans()),
    }
    # Leases without an end, as the service and third-party clients report them.
    shape = draw(st.sampled_from(["timed", "timed", "timed", "-1", "none", "0", "absent"]))
    if shape == "absent":
        lease = None
    elif shape != "timed":
        assert lease is not None
        lease["duration"] = {"-1": -1, "none": None, "0": 0}[shape]
    if lease is not None and draw(st.booleans()):
        # The lease's last change (a start, a renewal): before or after a pending warning.
        changed = draw(
            st.one_of(
                st.integers(min_value=90, max_value=600), st.integers(min_value=0, max_value=600)
            )
        )
        lease["update_at"] = ms(now - timedelta(minutes=changed))
    nb = Notebook.model_validate(
        {
            "id": "nb1",
            "status": status,
            "lease": lease,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
    )
    return {"notebook": nb, "activity": activity, "reservation": res, "warning": warn, "now": now}


def _threshold(policy: Policy, now: datetime) -> timedelta:
    """The idle threshold that applies at `now`, from the policy's own fields."""
    if policy.is_working_time(now):
        return timedelta(minutes=policy.idle_threshold_minutes)
    return timedelta(minutes=policy.off_hours_idle_minutes)


def _active(activity: ActivityResult, policy: Policy, now: datetime) -> bool:
    """Active by the applicable threshold: a busy kernel, or recent enough activity."""
    return isinstance(activity, Activity) and (
        activity.busy_kernels > 0
        or (
            activity.last_activity is not None
            and now - activity.last_activity < _threshold(policy, now)
        )
    )


def _protected(case: dict[str, Any], policy: Policy) -> bool:
    nb: Notebook = case["notebook"]
    activity: ActivityResult = case["activity"]
    now: datetime = case["now"]
    res: Reservation | None = case["reservation"]
    active = _active(activity, policy, now)
    return (
        active
        or (res is not None and res.active(now))
        or nb.tag("nbkeeper.keep") == "true"
        or nb.status is not NotebookStatus.RUNNING
        or isinstance(activity, UnknownActivity)
        or (isinstance(activity, Activity) and activity.source == "lease")
    )


@settings(max_examples=400, deadline=None)
@given(case=situations(), policy=policies())
def test_never_stops_a_protected_notebook(case: dict[str, Any], policy: Policy) -> None:
    decision = decide(policy=policy, **case)
    if _protected(case, policy):
        assert decision.action is not Action.STOP, decision.reason
        assert decision.warning_kind != "idle" and decision.warning_kind != "off_hours"


@settings(max_examples=300, deadline=None)
@given(case=situations(), policy=policies(), other=st.integers(min_value=1, max_value=240))
def test_the_off_hours_threshold_never_changes_a_working_hours_decision(
    case: dict[str, Any], policy: Policy, other: int
) -> None:
    if not policy.is_working_time(case["now"]):
        return
    changed = policy.model_copy(update={"off_hours_idle_minutes": other})
    assert decide(policy=changed, **case) == decide(policy=policy, **case)


@settings(max_examples=400, deadline=None)
@given(case=situations(), policy=policies())
def test_never_prolongs_past_a_cap(case: dict[str, Any], policy: Policy) -> None:
    decision = decide(policy=policy, **case)
    if decision.action is not Action.PROLONG:
        return
    now: datetime = case["now"]
    nb: Notebook = case["notebook"]
    assert decision.extend_ms is not None and decision.new_deadline is not None
    assert LEASE_MIN_MS <= decision.extend_ms <= LEASE_MAX_MS
    assert decision.new_deadline <= now + timedelta(milliseconds=LEASE_MAX_MS)
    assert nb.lease is not None and nb.lease.create_at is not None
    assert decision.duration_ms == ms(now) - nb.lease.create_at + decision.extend_ms
    activity = case["activity"]
    if policy.max_runtime is not None:
        started = datetime.fromtimestamp(nb.lease.create_at / 1000, tz=UTC)
        if isinstance(activity, Activity) and activity.source == "jupyter" and activity.started:
            started = activity.started
        assert decision.new_deadline <= started + policy.max_runtime + timedelta(milliseconds=1)
    res: Reservation | None = case["reservation"]
    only_reserved = (
        res is not None
        and res.active(now)
        and nb.tag("nbkeeper.keep") != "true"
        and not _active(activity, policy, now)
    )
    if only_reserved:
        assert res is not None
        # A lease that already outlives the reservation is never renewed ...
        assert nb.lease.deadline_ms is not None
        assert res.until > datetime.fromtimestamp(nb.lease.deadline_ms / 1000, tz=UTC)
        # ... otherwise ModelArts' 1 h minimum renewal is the only way past the reservation's end.
        assert decision.new_deadline <= max(
            res.until, now + timedelta(milliseconds=LEASE_MIN_MS)
        ) + timedelta(milliseconds=1)


@settings(max_examples=300, deadline=None)
@given(case=situations(), policy=policies())
def test_every_decision_has_a_reason_and_stop_only_after_a_due_warning(
    case: dict[str, Any], policy: Policy
) -> None:
    decision = decide(policy=policy, **case)
    assert decision.reason
    if decision.action is Action.STOP:
        warn: PendingWarning | None = case["warning"]
        assert warn is not None and warn.kind in ("idle", "off_hours")
        assert case["now"] >= warn.stop_after
    if decision.action is Action.WARN:
        assert decision.stop_after is not None and decision.warning_kind is not None


@settings(max_examples=300, deadline=None)
@given(case=situations(), policy=policies())
def test_a_stop_follows_only_a_warning_sent_in_the_current_run(
    case: dict[str, Any], policy: Policy
) -> None:
    decision = decide(policy=policy, **case)
    if decision.action is not Action.STOP:
        return
    warn: PendingWarning = case["warning"]
    nb: Notebook = case["notebook"]
    activity: ActivityResult = case["activity"]
    if isinstance(activity, Activity) and activity.started is not None:
        assert warn.warned_at >= activity.started  # sent after the Jupyter Server started
    if nb.lease is not None and nb.lease.update_at is not None:
        assert ms(warn.warned_at) >= nb.lease.update_at  # nobody started or renewed it since
    assert case["now"] - warn.stop_after <= timedelta(hours=1)  # not long overdue


def _no_end(nb: Notebook) -> bool:
    lease = nb.lease
    return (
        lease is None
        or lease.enable is False
        or lease.duration is None
        or lease.duration <= 0
        or lease.create_at is None
    )


@settings(max_examples=400, deadline=None)
@given(case=situations(), policy=policies())
def test_a_lease_without_an_end_never_has_a_deadline(case: dict[str, Any], policy: Policy) -> None:
    """`enable: false`, a negative, zero or missing duration, or no lease: no auto-stop. Nothing
    to prolong, no deadline in the past, and every such lease decides alike."""
    nb: Notebook = case["notebook"]
    if not _no_end(nb):
        return
    now: datetime = case["now"]
    decision = decide(policy=policy, **case)
    assert decision.action is not Action.PROLONG
    assert decision.hours_saved == 0
    if decision.stop_after is not None:
        assert decision.stop_after >= now
    if decision.action is Action.WARN and decision.warning_kind != "max_runtime":
        assert decision.stop_after == now + policy.warning_lead
    if nb.lease is not None:
        for variant in ({"enable": False}, {"duration": -1}, {"duration": None}):
            other = nb.model_copy(update={"lease": nb.lease.model_copy(update=variant)})
            assert decide(policy=policy, **{**case, "notebook": other}) == decision


def test_the_generated_situations_reach_every_action() -> None:
    """Guards the properties above against being vacuous.

    A search per action (STOP is rare, about 1 in 100): a fixed sample reached or missed it
    depending on which modules happened to be loaded, as Hypothesis draws constants from them.
    """
    search = settings(
        max_examples=5000, deadline=None, database=None, derandomize=True, phases=[Phase.generate]
    )
    for action in Action:
        find(  # raises NoSuchExample if the generators never reach `action`
            st.tuples(situations(), policies()),
            lambda pair, wanted=action: decide(policy=pair[1], **pair[0]).action is wanted,
            settings=search,
        )


def test_reservation_the_lease_already_outlives_is_not_prolonged_past_its_end() -> None:
    # The lease ends within renew_before, but after the reservation: a renewal (1 h at least)
    # would keep an idle notebook running past the end of its reservation.
    res = reservation(NOW + 10 * MIN)
    decision = decide(notebook(ends_in=15 * MIN), IDLE, res, None, POLICY, NOW)
    assert decision.action is Action.NOOP
    assert "after the reservation" in decision.reason


def test_a_warning_from_before_the_current_run_does_not_stop_it() -> None:
    # Warned, then stopped by its owner and started again: the old warning reached nobody
    # about this run, so the keeper warns afresh instead of stopping at once.
    restarted = Activity(last_activity=NOW - 90 * MIN, kernels=1, started=NOW - timedelta(hours=2))
    old = warning(warned_at=NOW - timedelta(hours=3))
    decision = decide(notebook(), restarted, None, old, POLICY, NOW)
    assert decision.action is Action.WARN


def test_a_restart_jupyter_does_not_report_gets_a_fresh_warning_not_a_stop() -> None:
    # Jupyter does not report `started`. Warned 30 min ago (due 15 min ago), then stopped by its
    # owner and started again 10 min ago: the start set a new lease (update_at).
    silent = Activity(last_activity=NOW - 90 * MIN, kernels=1)
    old = warning(warned_at=NOW - 30 * MIN)
    restarted = notebook(update_at=NOW - 10 * MIN)
    decision = decide(restarted, silent, None, old, POLICY, NOW)
    assert decision.action is Action.WARN
    assert decision.stop_after == NOW + POLICY.warning_lead
    # The same warning, the lease unchanged since: the stop is due.
    unchanged = notebook(update_at=NOW - timedelta(hours=2))
    assert decide(unchanged, silent, None, old, POLICY, NOW).action is Action.STOP


def test_a_long_overdue_warning_is_from_an_earlier_run() -> None:
    # Warned yesterday; the notebook was stopped by hand and started today, and neither Jupyter
    # nor the lease says when: a warning a day overdue told nobody about this run.
    silent = Activity(last_activity=NOW - 90 * MIN, kernels=1)
    yesterday = warning(warned_at=NOW - timedelta(days=1))
    decision = decide(notebook(), silent, None, yesterday, POLICY, NOW)
    assert decision.action is Action.WARN
    within_the_hour = warning(warned_at=NOW - 70 * MIN)  # due 55 min ago
    assert decide(notebook(), silent, None, within_the_hour, POLICY, NOW).action is Action.STOP


def _lease_notebook(lease: dict[str, Any] | None) -> Notebook:
    return Notebook.model_validate(
        {"id": "nb1", "name": "nb1", "status": "RUNNING", "lease": lease, "tags": []}
    )


NO_END = {
    "enable false": {
        "create_at": ms(NOW - timedelta(hours=3)),
        "duration": HOUR_MS,
        "enable": False,
    },
    "duration -1": {"create_at": ms(NOW - timedelta(hours=3)), "duration": -1, "enable": True},
    "no duration": {"create_at": ms(NOW - timedelta(hours=3)), "enable": True},
    "duration 0": {"create_at": ms(NOW - timedelta(hours=3)), "duration": 0, "enable": True},
    "no lease": None,
}


@pytest.mark.parametrize("lease", list(NO_END.values()), ids=list(NO_END))
def test_a_lease_without_an_end_means_no_auto_stop(lease: dict[str, Any] | None) -> None:
    nb = _lease_notebook(lease)
    kept = decide(nb, ACTIVE, None, None, POLICY, NOW)
    assert kept.action is Action.NOOP and "does not auto-stop" in kept.reason
    warned = decide(nb, IDLE, None, None, POLICY, NOW)
    assert warned.action is Action.WARN
    assert warned.stop_after == NOW + POLICY.warning_lead
    assert "will stop at Mon 10:30" in warned.reason  # not "now": there is no deadline
    stopped = decide(nb, IDLE, None, warning(), POLICY, NOW)
    assert stopped.action is Action.STOP and stopped.hours_saved == 0
