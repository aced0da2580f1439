"""pass_time: which clock a pass decides by, whatever the event's time says."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from nbkeeper.keeper.schedule import EVENT_TOLERANCE, ScheduleEvent, pass_time

WALL = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_an_event_on_time_decides_at_the_later_of_the_two(caplog: pytest.LogCaptureFixture) -> None:
    scheduled = WALL - timedelta(seconds=3)  # the scheduler's usual delay
    times = pass_time(scheduled, WALL)
    assert (times.at, times.now) == (scheduled, WALL)
    slightly_ahead = WALL + timedelta(seconds=20)  # skew within the tolerance
    assert pass_time(slightly_ahead, WALL).now == slightly_ahead
    assert caplog.records == []


def test_a_late_event_decides_at_the_wall_clock_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    late = WALL - timedelta(hours=3)  # a Lambda retry of the 07:30 event
    with caplog.at_level(logging.WARNING):
        times = pass_time(late, WALL)
    assert (times.at, times.now, times.lag) == (late, WALL, timedelta(hours=3))
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "3 h late" in record.getMessage()


def test_an_event_ahead_of_the_wall_clock_never_brings_a_stop_forward(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ahead = WALL + EVENT_TOLERANCE + timedelta(minutes=1)
    with caplog.at_level(logging.WARNING):
        times = pass_time(ahead, WALL)
    assert (times.at, times.now) == (ahead, WALL)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "ahead of the wall clock" in record.getMessage()


def test_without_a_time_the_wall_clock_names_and_decides_the_pass() -> None:
    assert pass_time(None, WALL).at == pass_time(None, WALL).now == WALL


def test_the_scheduler_placeholder_is_read_as_utc() -> None:
    event = ScheduleEvent.model_validate({"time": "2026-11-23T10:30:00", "source": "x"})
    assert event.time == WALL
    assert ScheduleEvent.model_validate({}).time is None
