"""The savings simulator on small hand-made months, and the usage model's invariants.

Each hand-made trace says when someone works (minutes since the month's start, which is a Monday
00:00 UTC), so the expected stops, costs and interruptions can be worked out by hand.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import bench_savings, savings_sim
from bench.bench_savings import NO_CONTROL, ORACLE, Row, measure_fleet
from bench.savings_model import HORIZON, KINDS, Hold, Run, Session, Trace, make_fleet
from bench.savings_nbkeeper import policy_with
from bench.savings_sim import (
    COME_BACK_MINUTES,
    Culler,
    LeaseOnly,
    Nbkeeper,
    NoControl,
    Oracle,
    Schedule,
    Strategy,
    Timeline,
    simulate,
)

H = 60  # minutes
MON = 0  # Monday 00:00 UTC; working hours of the shipped policy: Mon-Fri 08:00-20:00 UTC
SEED = 1
DEFAULT = Nbkeeper("nbkeeper default", policy_with({}))


def trace(
    *sessions: Session,
    runs: tuple[Run, ...] = (),
    holds: tuple[Hold, ...] = (),
    lease_hours: int = 8,
    reaction: str = "ignorer",
    zone: str = "UTC",
) -> Trace:
    return Trace(
        notebook_id="nb-1",
        owner="office-1",
        kind="office",
        zone=zone,
        flavor="modelarts.vm.gpu.t4",
        lease_hours=lease_hours,
        reaction=reaction,  # type: ignore[arg-type]
        sessions=sessions,
        runs=runs,
        holds=holds,
    )


def at(day: int, hour: float) -> int:
    return MON + day * 24 * H + int(hour * H)


def month(t: Trace, strategy: Strategy) -> savings_sim.Outcome:
    return simulate(Timeline(t), strategy, SEED)


# A morning's work, then the user leaves for good without stopping the notebook.
LEFT_RUNNING = trace(Session(at(0, 9), at(0, 10)))


# ---------------------------------------------------------------- the baselines


def test_oracle_saves_everything_and_never_stopping_saves_nothing() -> None:
    never = NoControl(name="never stops")
    rows = measure_fleet(
        [LEFT_RUNNING], [NoControl(name=NO_CONTROL), never, Oracle(name=ORACLE)], SEED
    )
    by_name = {row.name: row for row in rows}
    assert by_name[NO_CONTROL].hours == pytest.approx((HORIZON - at(0, 9)) / 60)
    assert by_name[ORACLE].hours == pytest.approx(1.0)
    assert by_name[ORACLE].share == pytest.approx(1.0)
    assert by_name["never stops"].share == pytest.approx(0.0)
    assert by_name[ORACLE].interrupted == 0
    assert by_name[ORACLE].cost == pytest.approx(1.2)  # one hour of a T4 at the bench's price


def test_a_stop_by_the_owner_is_not_an_interruption() -> None:
    tidy = trace(Session(at(0, 9), at(0, 10), stop_after=True), Session(at(0, 10.5), at(0, 11)))
    out = month(tidy, NoControl())
    assert out.stops == Counter({"owner": 1})
    assert not out.interruptions
    assert out.starts == 2


def test_oracle_fills_gaps_shorter_than_the_come_back_window_only() -> None:
    short_gap = trace(Session(at(0, 9), at(0, 10)), Session(at(0, 10.5), at(0, 11)))
    long_gap = trace(Session(at(0, 9), at(0, 10)), Session(at(0, 12), at(0, 13)))
    assert month(short_gap, Oracle()).run_minutes == 2 * H
    out = month(long_gap, Oracle())
    assert out.run_minutes == 2 * H
    assert out.stops == Counter({"strategy": 2}) and not out.interruptions


# ---------------------------------------------------------------- interruptions


def test_culler_interrupts_the_user_who_comes_back_after_a_break() -> None:
    # Work 09:00-10:00, a 20-minute break, work 10:20-11:00, gone for good.
    t = trace(Session(at(0, 9), at(0, 10)), Session(at(0, 10 + 20 / 60), at(0, 11)))
    out = month(t, Culler("culler 10", 10))
    # Quiet since 10:00: at 10:15 (15 > 10 min) it is culled; the user is back at 10:20.
    assert out.interruptions == Counter({"came back": 1})
    # Restarted at 10:20, quiet since 11:00, culled at 11:15: nobody comes back, no interruption.
    assert out.stops == Counter({"strategy": 2})
    assert out.run_minutes == (75) + (55)


def test_a_silent_run_is_lost_to_the_culler_but_kept_by_nbkeeper() -> None:
    run = Run(at(0, 9.5), at(0, 15.5), expected_end=at(0, 15.5), chatty=False)
    t = trace(Session(at(0, 9), at(0, 10)), runs=(run,), lease_hours=2)
    culled = month(t, Culler("culler 60", 60))
    # Quiet since 10:00; checked every 30 min, culled at 11:30 (90 > 60), 2 h into the run.
    assert culled.interruptions == Counter({"busy kernel": 1})
    assert culled.lost_busy_minutes == 2 * H
    kept = month(t, DEFAULT)
    assert not kept.interruptions and kept.lost_busy_minutes == 0
    assert kept.prolongs >= 1  # the 2 h lease would have ended at 11:00
    # Idle from 15:30 (in working hours, 60 min): warned at 16:30, stopped at 17:00 (lead 30).
    assert kept.run_minutes == at(0, 17) - at(0, 9)
    assert kept.warnings == 1


def test_a_chatty_run_is_activity_for_the_culler() -> None:
    run = Run(at(0, 9.5), at(0, 15.5), expected_end=at(0, 15.5), chatty=True)
    t = trace(Session(at(0, 9), at(0, 10)), runs=(run,))
    out = month(t, Culler("culler 60", 60))
    assert not out.interruptions
    assert out.run_minutes == at(0, 17) - at(0, 9)  # quiet since 15:30, 90 min at 17:00


def test_schedule_stops_whoever_works_past_the_end_of_the_period() -> None:
    t = trace(Session(at(0, 19), at(0, 20.5)))
    out = month(t, Schedule("schedule UTC", "UTC"))
    assert out.interruptions == Counter({"working": 1})
    # Restarted at 20:00 by the user still working; outside the period, left running after.
    assert out.starts == 2


def test_lease_only_runs_out_under_someone_who_does_not_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = trace(Session(at(0, 9), at(0, 12)), lease_hours=2)
    monkeypatch.setattr(savings_sim, "NOTICE_CHANCE", 0.0)
    missed = month(t, LeaseOnly())
    assert missed.interruptions == Counter({"working": 1})  # at 11:00, mid-session
    assert missed.run_minutes == at(0, 13) - at(0, 9)  # restarted at 11:00 with 2 h more
    monkeypatch.setattr(savings_sim, "NOTICE_CHANCE", 1.0)
    noticed = month(t, LeaseOnly())
    assert not noticed.interruptions
    assert noticed.run_minutes == at(0, 12.5) - at(0, 9)  # prolonged at 10:30 by 2 h


def test_stop_just_before_the_user_comes_back_counts_only_inside_the_window() -> None:
    back_soon = trace(Session(at(0, 9), at(0, 10)), Session(at(0, 11.75), at(0, 12.25)))
    out = month(back_soon, DEFAULT)  # warned 11:00, stopped 11:30, back 11:45: 15 min before
    assert out.interruptions == Counter({"came back": 1})
    later = at(0, 11.5) + COME_BACK_MINUTES
    back_late = trace(Session(at(0, 9), at(0, 10)), Session(later, later + H))
    assert not month(back_late, DEFAULT).interruptions


# ---------------------------------------------------------------- nbkeeper's rules, end to end


def test_nbkeeper_warns_after_the_threshold_and_stops_after_the_lead() -> None:
    out = month(LEFT_RUNNING, DEFAULT)
    # Quiet since 10:00; at 11:00 idle 60 min (not < 60): warned, stopped 30 min later at 11:30.
    assert out.run_minutes == at(0, 11.5) - at(0, 9)
    assert out.warnings == 1 and out.stops == Counter({"strategy": 1})


def test_nbkeeper_off_hours_threshold_applies_after_working_hours() -> None:
    # Off-hours thresholds named here (the shipped 60 equals the working-hours one), lead 15.
    evening = trace(Session(at(0, 19), at(0, 19.5)))
    shorter = Nbkeeper(
        "off 15", policy_with({"off_hours_idle_minutes": 15, "warning_lead_minutes": 15})
    )
    out = month(evening, shorter)
    # Quiet 30 min at 20:00 > 15: warned, stopped at 20:15.
    assert out.run_minutes == at(0, 20.25) - at(0, 19)
    longer = Nbkeeper(
        "off 60", policy_with({"off_hours_idle_minutes": 60, "warning_lead_minutes": 15})
    )
    assert month(evening, longer).run_minutes == at(0, 20.75) - at(0, 19)


def test_owner_pressing_keep_avoids_the_interruption(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(savings_sim, "SEES_WARNING_AT_WORK", 1.0)
    # Warned 11:00, stopped 11:30 unless kept, back 11:45.
    back = (Session(at(0, 9), at(0, 10)), Session(at(0, 11.75), at(0, 12.25)))
    kept = month(trace(*back, reaction="keeper"), DEFAULT)
    assert kept.keeps == 1 and not kept.interruptions
    ignored = month(trace(*back, reaction="ignorer"), DEFAULT)
    assert ignored.keeps == 0 and ignored.interruptions == Counter({"came back": 1})


def test_tidy_owner_presses_stop_now_when_not_coming_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(savings_sim, "SEES_WARNING_AT_WORK", 1.0)
    out = month(trace(Session(at(0, 9), at(0, 10)), reaction="tidy"), DEFAULT)
    # Pressed within the lead time, so no later than the keeper's own stop at 11:30.
    assert out.stop_nows == 1 and out.stops == Counter({"owner": 1})
    assert at(0, 11) - at(0, 9) < out.run_minutes <= at(0, 11.5) - at(0, 9)


def test_demo_owner_reservation_keeps_the_notebook_up_for_the_demo() -> None:
    demo = trace(
        Session(at(0, 9), at(0, 9.5)),
        Session(at(0, 14), at(0, 15), stop_after=True),
        holds=(Hold(at(0, 9.5), at(0, 14), reserve_until=at(0, 15)),),
    )
    assert not month(demo, DEFAULT).interruptions
    assert month(demo, Culler("culler 60", 60)).interruptions == Counter({"demo hold": 1})
    assert month(demo, Oracle()).run_minutes == at(0, 15) - at(0, 9)


# ---------------------------------------------------------------- the generated fleet


@pytest.fixture(scope="module")
def fleet() -> list[Trace]:
    return make_fleet(7, 20)


def test_fleet_is_determined_by_its_seed(fleet: list[Trace]) -> None:
    assert make_fleet(7, 20) == fleet
    assert make_fleet(8, 20) != fleet


def test_fleet_traces_are_well_formed(fleet: list[Trace]) -> None:
    assert {t.kind for t in fleet} == set(KINDS)
    for t in fleet:
        previous_end = 0
        for s in t.sessions:
            assert previous_end <= s.start < s.end <= HORIZON
            assert s.start % 5 == 0 and s.end % 5 == 0
            previous_end = s.end
        for run in t.runs:  # started by someone working in the notebook
            assert any(s.start <= run.start < s.end for s in t.sessions)
            assert run.end > run.start
        for hold in t.holds:  # right after the warm-up, before the demo
            assert any(s.end == hold.start for s in t.sessions)
            assert any(s.start == hold.end for s in t.sessions)


def test_no_strategy_runs_a_notebook_longer_than_no_control(fleet: list[Trace]) -> None:
    listed: list[Strategy] = [LeaseOnly(), Schedule("s", None), Culler("c", 10), DEFAULT]
    for t in fleet:
        timeline = Timeline(t)
        ceiling = simulate(timeline, NoControl(), SEED).run_minutes
        for strategy in listed:
            assert simulate(timeline, strategy, SEED).run_minutes <= ceiling, (t.kind, strategy)


def test_oracle_runs_exactly_the_need_and_never_interrupts(fleet: list[Trace]) -> None:
    for t in fleet:
        timeline = Timeline(t)
        out = simulate(timeline, Oracle(), SEED)
        assert out.run_minutes == sum(timeline.need) * 5
        assert not out.interruptions and out.lost_busy_minutes == 0


def test_measure_is_reproducible(fleet: list[Trace]) -> None:
    listed: list[Strategy] = [
        NoControl(name=NO_CONTROL),
        Culler("c", 60),
        DEFAULT,
        Oracle(name=ORACLE),
    ]
    first = measure_fleet(fleet[::2], listed, SEED)
    again = measure_fleet(fleet[::2], listed, SEED)
    assert [(r.cost, r.interruptions) for r in first] == [(r.cost, r.interruptions) for r in again]
    assert first[0].share == 0.0 and first[-1].share == pytest.approx(1.0)
    assert bench_savings.suggestion({"one": first}) == ("nbkeeper default", [])


def row(name: str, cost: float, interrupted: int) -> Row:
    return Row(name, "nbkeeper", 10, cost=cost, interruptions=Counter({"came back": interrupted}))


def test_suggestion_needs_fewer_interruptions_cheaply_in_every_month() -> None:
    value = bench_savings.INTERRUPTION_VALUE
    seed_a = [
        row("nbkeeper default", 100, 10),
        row("nbkeeper off-hours 15", 100 + 5 * (value - 1), 5),  # under the value: qualifies
        row(
            "nbkeeper off-hours 15, lead 15", 100 + 2 * value * 0.5, 8
        ),  # qualifies, interrupts more
        row("nbkeeper idle 120", 100 + 9 * (value + 1), 1),  # too dear per interruption
    ]
    assert bench_savings.suggestion({"a": seed_a}) == (
        "nbkeeper off-hours 15",
        ["nbkeeper off-hours 15", "nbkeeper off-hours 15, lead 15"],
    )
    seed_b = [
        row("nbkeeper default", 100, 10),
        row("nbkeeper off-hours 15", 90, 11),  # cheaper, but interrupts more on this seed
        row("nbkeeper off-hours 15, lead 15", 101, 9),
        row("nbkeeper idle 120", 100, 10),
    ]
    assert bench_savings.suggestion({"a": seed_a, "b": seed_b}) == (
        "nbkeeper off-hours 15, lead 15",
        ["nbkeeper off-hours 15, lead 15"],
    )


def test_frontier_keeps_only_strategies_nothing_beats_on_both_axes() -> None:
    rows = [
        row("no control", 100, 0),
        row("a", 50, 10),
        row("b", 50, 12),  # as cheap as a, more interruptions: beaten
        row("c", 40, 30),
        row("d", 45, 40),  # dearer than c, more interruptions: beaten
        row("oracle", 30, 0),  # not a real strategy: neither on the frontier nor beating anyone
    ]
    for r, share in zip(rows, (0.0, 0.5, 0.5, 0.6, 0.55, 1.0), strict=True):
        r.share = share
    assert [r.name for r in bench_savings.frontier(rows)] == ["no control", "a", "c"]


def test_plot_writes_the_same_png_for_the_same_figures(tmp_path: Path) -> None:
    rows = [row("no control", 100, 0), row("nbkeeper default", 60, 5), row("oracle", 50, 0)]
    rows[1].share, rows[2].share = 0.8, 1.0
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    bench_savings.plot(rows, first, SEED)
    bench_savings.plot(rows, second, SEED)
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()
