"""The simulated clock: stepped, scaled and real modes, never backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nbkeeper_local.emulator import SimClock

START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


class Source:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_stepped_clock_moves_only_when_advanced() -> None:
    source = Source()
    clock = SimClock(START, speed=0, source=source)
    source.now += 100
    assert clock.now() == START
    clock.advance(timedelta(minutes=5))
    assert clock.now() == START + timedelta(minutes=5)


def test_scaled_clock_runs_faster_than_real_time() -> None:
    source = Source()
    clock = SimClock(START, speed=60, source=source)
    source.now += 2
    assert clock.now() == START + timedelta(minutes=2)


def test_speed_change_keeps_the_current_time() -> None:
    source = Source()
    clock = SimClock(START, speed=10, source=source)
    source.now += 1
    clock.set_speed(0)
    source.now += 50
    assert clock.now() == START + timedelta(seconds=10)


def test_clock_never_goes_back() -> None:
    clock = SimClock.stepped(START)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="forward"):
        clock.set(START - timedelta(seconds=1))


def test_set_jumps_forward() -> None:
    clock = SimClock.stepped(START)
    clock.set(START + timedelta(days=1))
    assert clock.now_ms() == int((START + timedelta(days=1)).timestamp() * 1000)
