"""Simulated clock for the emulator: real time, scaled, or stepped by a test or the demo.

Notebook state (transitions, leases, Jupyter activity) follows this clock. Network-ish concerns
(latency, rate limiting, signature date checks) follow the host's real time instead, because
clients sign and pace themselves with real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class SimClock:
    """A clock whose speed can change at run time.

    `speed=1.0` runs in real time, `speed=60` makes a minute pass every second, and `speed=0`
    freezes it: only `advance`/`set` move it (the stepped mode tests use). `source` is the real
    time source in seconds (injectable so even scaled mode can be tested without waiting).
    """

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 0.0,
        source: Callable[[], float] = time.time,
    ) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        self._source = source
        self._lock = threading.Lock()
        self._anchor_real = source()
        self._anchor_sim_ms = to_ms(start) if start is not None else int(self._anchor_real * 1000)
        self._speed = speed

    @classmethod
    def stepped(cls, start: datetime | None = None) -> SimClock:
        return cls(start=start, speed=0.0)

    @classmethod
    def real(cls) -> SimClock:
        return cls(speed=1.0)

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        with self._lock:
            elapsed = (self._source() - self._anchor_real) * self._speed
            return self._anchor_sim_ms + int(elapsed * 1000)

    def now(self) -> datetime:
        return from_ms(self.now_ms())

    def _rebase(self, sim_ms: int) -> None:
        self._anchor_real = self._source()
        self._anchor_sim_ms = sim_ms

    def set_speed(self, speed: float) -> None:
        """Change speed from now on (0 = stepped, 1 = real time)."""
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        current = self.now_ms()
        with self._lock:
            self._rebase(current)
            self._speed = speed

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by `delta` (a timedelta or seconds); never backwards."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        current = self.now_ms()
        with self._lock:
            self._rebase(current + round(seconds * 1000))
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Jump to `moment`, which must not be in the clock's past."""
        target = to_ms(moment)
        current = self.now_ms()
        if target < current:
            raise ValueError(f"the clock only moves forward (now {from_ms(current).isoformat()})")
        with self._lock:
            self._rebase(target)
        return self.now()

    def __repr__(self) -> str:
        return f"SimClock(now={self.now().isoformat()}, speed={self._speed})"
