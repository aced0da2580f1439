"""Is anyone using a notebook? Ask its Jupyter Server, without that question counting as use.

`GET {server_base}/api/status` gives the server's `last_activity` (kernels, terminals, API use)
and does not itself count as activity. Only when that looks idle and kernels are running does the
prober also read `GET {server_base}/api/kernels?no_track_activity=1`, for a kernel that is busy
without producing messages (a long computation). Both calls send `Authorization: token <token>`;
the token never appears in a result, a log line or an error text.

When Jupyter cannot be read, the lease's `update_at` is used as a weaker fallback: it may show
that a person touched the notebook recently, but it is never taken as proof of idleness (the
keeper does not warn or stop on it). With neither, the result is `UnknownActivity`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from nbkeeper.modelarts.schemas import Notebook

logger = logging.getLogger(__name__)

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


def _needs_kernels(status: Mapping[str, Any], idle_after: datetime | None) -> bool:
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


def probe_limits(concurrency: int) -> httpx.Limits:
    """Connection limits for the prober's client: `concurrency` connections, only a few kept
    alive (a large idle keep-alive pool made passes several times slower in the benchmark)."""
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=min(20, concurrency))


class JupyterProber:
    """Probes Jupyter Servers over an injected `httpx.AsyncClient`, at most `concurrency` at once.

    `idle_after` (per call) is the moment from which activity counts as recent: when given,
    kernels are only listed for notebooks whose status looks idle, saving a call per active one.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        concurrency: int = 100,
        timeout: float = 5.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._http = http
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout = httpx.Timeout(timeout)
        self.calls = 0

    async def probe_many(
        self, notebooks: Iterable[Notebook], idle_after: datetime | None = None
    ) -> dict[str, ActivityResult]:
        """Probe every notebook concurrently (bounded); results by notebook id."""
        items = list(notebooks)
        results = await asyncio.gather(*(self.probe(nb, idle_after) for nb in items))
        return {nb.id: result for nb, result in zip(items, results, strict=True)}

    async def probe(self, notebook: Notebook, idle_after: datetime | None = None) -> ActivityResult:
        """One notebook's activity; never raises for transport or HTTP failures."""
        base = notebook.server_base
        token = notebook.token.get_secret_value() if notebook.token else None
        if not base or not token:
            return lease_fallback(notebook, "the notebook has no Jupyter URL or token")
        headers = {"Authorization": f"token {token}", "Accept": "application/json"}
        async with self._slots:
            try:
                status = await self._get_json(f"{base}/api/status", headers)
                if not isinstance(status, Mapping):
                    raise ProbeError("/api/status did not return a JSON object")
                kernels = None
                if _needs_kernels(status, idle_after):
                    reply = await self._get_json(
                        f"{base}/api/kernels", headers, {"no_track_activity": "1"}
                    )
                    if not isinstance(reply, list):
                        raise ProbeError("/api/kernels did not return a JSON array")
                    kernels = [k for k in reply if isinstance(k, Mapping)]
            except ProbeError as exc:
                return lease_fallback(notebook, f"Jupyter not readable: {exc}")
        return activity_from_replies(status, kernels)

    async def _get_json(
        self, url: str, headers: dict[str, str], params: dict[str, str] | None = None
    ) -> Any:
        path = httpx.URL(url).path
        self.calls += 1
        try:
            response = await self._http.get(
                url, headers=headers, params=params, timeout=self._timeout
            )
        except httpx.TimeoutException:
            raise ProbeError(f"{path} timed out") from None
        except httpx.HTTPError as exc:
            raise ProbeError(f"{path} failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ProbeError(f"{path} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise ProbeError(f"{path} did not return JSON") from None
