"""The lease keeper's trigger (what EventBridge Scheduler sends) and which clock a pass uses.

An event's `time` can be hours old: Lambda retries a failed async invocation with the original
event for up to 6 hours, and redriven events carry their first time. A pass that trusted it
would promise "stops at 10:20" at 10:30 and then stop with none of the promised lead time, or
never prolong a busy notebook whose lease is running out now. So `pass_time` keeps the event's
time for ids and audit only; leases, warnings and deadlines are computed from the wall clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, field_validator

from nbkeeper.timefmt import human, iso

logger = logging.getLogger(__name__)

# How far an event's time may be from the wall clock and still count as "on time" (the
# scheduler's own delay, clock skew between services).
EVENT_TOLERANCE = timedelta(minutes=2)


class ScheduleEvent(BaseModel):
    """The scheduler's input: `time` (Scheduler's <aws.scheduler.scheduled-time>), optional
    `dry_run` for operators. Other fields (EventBridge envelope) are ignored."""

    model_config = ConfigDict(extra="ignore")

    time: datetime | None = None
    dry_run: bool | None = None

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # the scheduler's placeholder is UTC
        return value


@dataclass(frozen=True)
class PassTime:
    """When a pass happens: `now` drives every decision (lease arithmetic, warning and stop
    times); `at` is the event's time, kept for ids (fan-out messages) and audit records."""

    at: datetime
    now: datetime

    @property
    def lag(self) -> timedelta:
        """How late the event is (negative: ahead of the wall clock)."""
        return self.now - self.at


def pass_time(
    event_time: datetime | None, wall: datetime, tolerance: timedelta = EVENT_TOLERANCE
) -> PassTime:
    """The pass's times for an event stamped `event_time`, received at `wall`.

    On time (within `tolerance`): the later of the two. Late: the wall clock, logged as a
    warning (a retry or a redrive). Ahead of the wall clock by more than `tolerance`: the wall
    clock too, logged as an error (a clock is wrong; trusting it would bring every stop forward).
    Without a time: the wall clock.
    """
    if event_time is None:
        return PassTime(at=wall, now=wall)
    skew = event_time - wall
    extra = {"event_time": iso(event_time), "wall_clock": iso(wall)}
    if skew < -tolerance:
        logger.warning(
            "schedule event is %s late (a retry or a redrive): deciding as of the wall clock",
            human(-skew),
            extra=extra,
        )
        return PassTime(at=event_time, now=wall)
    if skew > tolerance:
        logger.error(
            "schedule event time is %s ahead of the wall clock: deciding as of the wall clock",
            human(skew),
            extra=extra,
        )
        return PassTime(at=event_time, now=wall)
    return PassTime(at=event_time, now=max(event_time, wall))
