"""Simulated Jupyter Server activity behind each emulated notebook's `url`.

Mirrors the parts of Jupyter Server's REST API the lease keeper reads (api-facts.md, section D):
`/api/status` (does not count as activity) and `/api/kernels` (counts, unless the URL carries
`no_track_activity`). What a notebook reports follows its `ActivityPattern` and the simulated clock.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .clock import from_ms


class ActivityPattern(StrEnum):
    """How a notebook's user behaves, as its Jupyter Server would show it."""

    IDLE = "idle"  # nothing happens: last_activity stays where it was
    ACTIVE = "active"  # someone is typing: last_activity follows the clock, kernels idle
    BUSY = "busy"  # a long computation: one kernel busy, activity follows the clock
    UNREACHABLE = "unreachable"  # the Jupyter API answers 503 (proxy up, server down)


class ExecutionState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    STARTING = "starting"
    DEAD = "dead"


@dataclass
class Kernel:
    id: str
    last_activity_ms: int
    name: str = "python3"
    execution_state: ExecutionState = ExecutionState.IDLE
    connections: int = 1


@dataclass
class JupyterState:
    """Per-notebook Jupyter Server state; times are epoch ms on the simulated clock."""

    started_ms: int = 0
    last_activity_ms: int = 0
    pattern: ActivityPattern = ActivityPattern.IDLE
    kernels: list[Kernel] = field(default_factory=list)
    api_requests: int = 0  # authenticated Jupyter API calls seen (tracked or not)

    def restart(self, now_ms: int, rng: random.Random) -> None:
        """The server (re)starts with the notebook: fresh start time, no kernels."""
        self.started_ms = now_ms
        self.last_activity_ms = now_ms
        self.kernels = []
        if self.pattern in (ActivityPattern.ACTIVE, ActivityPattern.BUSY):
            self.kernels.append(
                Kernel(id=str(uuid.UUID(int=rng.getrandbits(128))), last_activity_ms=now_ms)
            )

    def configure(
        self,
        now_ms: int,
        new_id: Callable[[], str],
        pattern: ActivityPattern | None = None,
        last_activity_ms: int | None = None,
        kernels: list[dict[str, Any]] | None = None,
    ) -> None:
        """Set what the server reports. Kernel dicts: id, name, execution_state,
        last_activity_ms, connections (all optional)."""
        if pattern is not None:
            self.pattern = pattern
        if last_activity_ms is not None:
            self.last_activity_ms = last_activity_ms
        if kernels is not None:
            self.kernels = [
                Kernel(
                    id=str(spec.get("id") or new_id()),
                    name=str(spec.get("name", "python3")),
                    execution_state=ExecutionState(spec.get("execution_state", "idle")),
                    last_activity_ms=int(spec.get("last_activity_ms", now_ms)),
                    connections=int(spec.get("connections", 1)),
                )
                for spec in kernels
            ]

    def effective_last_activity(self, now_ms: int) -> int:
        if self.pattern in (ActivityPattern.ACTIVE, ActivityPattern.BUSY):
            return max(now_ms, self.started_ms)
        latest = max(self.started_ms, self.last_activity_ms)
        return max([latest, *(k.last_activity_ms for k in self.kernels)])

    def kernel_views(self, now_ms: int) -> list[dict[str, Any]]:
        views = []
        for index, kernel in enumerate(self.kernels):
            state = kernel.execution_state
            last = kernel.last_activity_ms
            if self.pattern is ActivityPattern.BUSY and index == 0:
                state, last = ExecutionState.BUSY, now_ms
            elif self.pattern is ActivityPattern.ACTIVE:
                last = now_ms
            views.append(
                {
                    "id": kernel.id,
                    "name": kernel.name,
                    "last_activity": iso_z(last),
                    "execution_state": state.value,
                    "connections": kernel.connections,
                }
            )
        return views

    def status_view(self, now_ms: int) -> dict[str, Any]:
        """The `/api/status` model (keys sorted, as Jupyter Server sends them)."""
        return {
            "connections": sum(k.connections for k in self.kernels),
            "kernels": len(self.kernels),
            "last_activity": iso_z(self.effective_last_activity(now_ms)),
            "started": iso_z(self.started_ms),
        }

    def track(self, now_ms: int) -> None:
        """An authenticated API request that counts as activity."""
        self.last_activity_ms = max(self.last_activity_ms, now_ms)


def iso_z(ms: int) -> str:
    """UTC ISO-8601 ending in Z, microseconds only when non-zero (Jupyter's `isoformat`)."""
    text = from_ms(ms).replace(tzinfo=None).isoformat()
    return text + "Z"
