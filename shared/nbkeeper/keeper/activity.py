"""Is anyone using a notebook? Ask its Jupyter Server, without that question counting as use.

`GET {server_base}/api/status` gives the server's `last_activity` (kernels, terminals, API use)
and does not itself count as activity. Only when that looks idle and kernels are running does the
prober also read `GET {server_base}/api/kernels?no_track_activity=1`, for a kernel that is busy
without producing messages (a long computation). Both calls send `Authorization: token <token>`;
the token never appears in a result, a log line or an error text.

When Jupyter cannot be read, the lease's `update_at` is used as a weaker fallback: it may show
that a person touched the notebook recently, but it is never taken as proof of idleness (the
keeper does not warn or stop on it). With neither, the result is `UnknownActivity`.

This module is the domain side (what activity is, how replies become it); the HTTP side that
asks the servers is `nbkeeper.jupyter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from nbkeeper.modelarts.schemas import Notebook

IDLE_KERNEL_STATES = frozenset({"idle", "dead"})
ActivitySource = Literal["jupyter", "lease"]


@dataclass(frozen=True)
class Activity:
    """What the notebook's server says about its use."""

    last_activity: datetime | None
    kernels: int = 0
    busy_kernels: int = 0
    connections: int = 0
    source: ActivitySource = "jupyter"
    note: str | None = None  # why Jupyter could not be read, when source == "lease"
    started: datetime | None = None  # when the Jupyter Server (so the current run) started

    @property
    def from_jupyter(self) -> bool:
        return self.source == "jupyter"


@dataclass(frozen=True)
class UnknownActivity:
    """Activity could not be read; the keeper never warns about or stops such a notebook."""

    reason: str


ActivityResult = Activity | UnknownActivity


class Prober(Protocol):
    """Reads activity for many notebooks at once (the keeper's view of the prober)."""

    async def probe(
        self, notebook: Notebook, idle_after: datetime | None = None
    ) -> ActivityResult: ...


class ProbeError(Exception):
    """One Jupyter call failed; the message is safe to show (no token, no URL query)."""


def parse_jupyter_time(value: Any) -> datetime | None:
    """Jupyter's ISO-8601 UTC timestamps (`...Z`, microseconds optional) as aware datetimes."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def activity_from_replies(
    status: Mapping[str, Any], kernels: list[Mapping[str, Any]] | None
) -> Activity:
    """Combine `/api/status` and (optionally) `/api/kernels` replies into an `Activity`."""
    last = parse_jupyter_time(status.get("last_activity"))
    kernel_count = _int(status.get("kernels"))
    connections = _int(status.get("connections"))
    busy = 0
    if kernels is not None:
        kernel_count = len(kernels)
        for kernel in kernels:
            state = str(kernel.get("execution_state") or "").lower()
            # starting/restarting/busy and states we do not know all count as busy: safer.
            if state not in IDLE_KERNEL_STATES:
                busy += 1
            last = _latest(last, parse_jupyter_time(kernel.get("last_activity")))
    return Activity(
        last_activity=last,
        kernels=kernel_count,
        busy_kernels=busy,
        connections=connections,
        started=parse_jupyter_time(status.get("started")),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def needs_kernels(status: Mapping[str, Any], idle_after: datetime | None) -> bool:
    """Whether kernels must be listed: some may run and the status alone looks idle."""
    if "kernels" in status and _int(status.get("kernels")) == 0:
        return False
    last = parse_jupyter_time(status.get("last_activity"))
    return idle_after is None or last is None or last < idle_after


def lease_fallback(notebook: Notebook, why: str) -> ActivityResult:
    """The weaker signal: the lease's last change, or Unknown when there is none."""
    update_at = notebook.lease.update_at if notebook.lease else None
    if update_at is None:
        return UnknownActivity(reason=why)
    return Activity(
        last_activity=datetime.fromtimestamp(update_at / 1000, tz=UTC), source="lease", note=why
    )
