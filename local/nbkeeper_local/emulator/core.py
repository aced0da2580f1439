"""The `Emulator`: configuration, state, and the control surface tests and the demo drive."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from nbkeeper.modelarts.schemas import NotebookStatus

from .clock import SimClock
from .faults import FaultInjector, FaultKind, FaultRule, Scope, TokenBucket
from .fleet import DEMO_PROJECT_ID, FleetSpec, seed_fleet
from .jupyter import ActivityPattern, JupyterState
from .state import FailOp, Identity, NotebookRecord, NotebookStore, Timings

if TYPE_CHECKING:
    from starlette.types import ASGIApp
    from starlette.types import Scope as AsgiScope

# Documented demo credentials, used when HUAWEICLOUD_SDK_AK/SK are unset. Local use only.
DEMO_ACCESS_KEY = "NBKEEPERDEMOACCESSKEY"
DEMO_SECRET_KEY = "nbkeeper-demo-secret-key-local-only"
DEMO_AUTH_TOKEN = "nbkeeper-demo-iam-token"
DEMO_IDENTITY = Identity(user_id="5f3c9a0e7b2d4c1e8a6f0b9d3e2c1a7f", user_name="nbkeeper-admin")


@dataclass
class EmulatorConfig:
    """Everything `nbkeeper emulator` flags and env vars can set; tests build it directly."""

    access_key: str = DEMO_ACCESS_KEY
    secret_key: str = DEMO_SECRET_KEY
    auth_token: str | None = DEMO_AUTH_TOKEN
    identity: Identity = DEMO_IDENTITY
    timings: Timings = field(default_factory=Timings)
    latency_ms: float = 0.0
    jupyter_latency_ms: float | None = None  # None: same as latency_ms
    fault_rate: float = 0.0
    rate_limit: float | None = None  # requests per second over the ModelArts API
    rate_burst: float | None = None
    retry_after_s: int = 2
    seed: int = 0
    not_found_status: int = 404  # the real service sometimes answers 400; set it to check
    require_stop_before_delete: bool = False  # True: deleting a RUNNING notebook is 6304
    max_skew_s: int = 15 * 60


class ConnectionDroppedError(Exception):
    """Raised in-process when a DROP fault has no socket to abort (see `asgi_transport`)."""


class Emulator:
    """A local ModelArts notebook service with simulated time, faults and Jupyter activity.

    `clock` defaults to real time; tests pass `SimClock.stepped(start)` and call `advance`.
    `realtime` (signature date check), `monotonic` (rate limit) and `sleep` (latency, slow
    replies) are injectable so unit tests never wait.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: SimClock | None = None,
        realtime: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or SimClock.real()
        self.realtime = realtime
        self.monotonic = monotonic
        self.sleep = sleep
        self.store = NotebookStore(
            self.clock,
            timings=self.config.timings,
            seed=self.config.seed,
            not_found_status=self.config.not_found_status,
            require_stop_before_delete=self.config.require_stop_before_delete,
        )
        self.faults = FaultInjector(seed=self.config.seed)
        self.faults.retry_after_s = self.config.retry_after_s
        self.faults.set_rate(self.config.fault_rate)
        self.limiter: TokenBucket | None = None
        if self.config.rate_limit:
            self.set_rate_limit(self.config.rate_limit, self.config.rate_burst)
        self.keys: dict[str, tuple[str, Identity]] = {
            self.config.access_key: (self.config.secret_key, self.config.identity)
        }
        self.tokens: dict[str, Identity] = {}
        if self.config.auth_token:
            self.tokens[self.config.auth_token] = self.config.identity
        self.stats: MutableMapping[str, int] = Counter()
        self._stats_lock = threading.Lock()
        self._request_seq = 0
        # Set by the uvicorn runner: aborts the socket of the request in `scope`.
        self.drop_hook: Callable[[AsgiScope], bool] | None = None
        self._app: ASGIApp | None = None

    # ------------------------------------------------------------ the ASGI app

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            from .app import create_app

            self._app = create_app(self)
        return self._app

    def asgi_transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport to the emulator in-process; DROP faults become RemoteProtocolError."""
        return _DroppingASGITransport(self.app)

    def next_request_id(self) -> str:
        with self._stats_lock:
            self._request_seq += 1
            return f"{self._request_seq:032x}"

    def count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    # ------------------------------------------------------------ control: time

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, delta: timedelta | float) -> datetime:
        """Step the simulated clock (seconds or timedelta); due transitions apply on next access."""
        moved = self.clock.advance(delta)
        with self.store.lock:
            self.store.now_ms()
        return moved

    def set_clock_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)

    # ------------------------------------------------------------ control: network behaviour

    def set_latency(self, ms: float, jupyter_ms: float | None = None) -> None:
        self.config.latency_ms = ms
        self.config.jupyter_latency_ms = jupyter_ms

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        """Token bucket over the ModelArts API (`rate` req/s); None switches it off."""
        self.limiter = TokenBucket(rate, burst, monotonic=self.monotonic) if rate else None

    def inject(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        scope: Scope = Scope.API,
    ) -> None:
        """Script a fault for the next `count` requests matching method and path regex."""
        self.faults.script(FaultRule(kind, count, method, path, scope))

    def set_fault_rate(
        self, rate: float, kinds: tuple[FaultKind, ...] | None = None, seed: int | None = None
    ) -> None:
        self.faults.set_rate(rate, kinds, seed)

    def fail_next_create(self, count: int = 1, reason: str | None = None) -> None:
        self.store.fail_next(FailOp.CREATE, count, reason)

    def fail_next_start(self, count: int = 1, reason: str | None = None) -> None:
        self.store.fail_next(FailOp.START, count, reason)

    # ------------------------------------------------------------ control: identities

    def add_credentials(self, access_key: str, secret_key: str, identity: Identity) -> None:
        self.keys[access_key] = (secret_key, identity)

    def add_token(self, token: str, identity: Identity) -> None:
        self.tokens[token] = identity

    # ------------------------------------------------------------ control: notebooks

    def seed_fleet(self, spec: FleetSpec | None = None, **kwargs: Any) -> list[NotebookRecord]:
        """Seed notebooks (`FleetSpec` or its fields as keywords, e.g. `size=10_000`)."""
        return seed_fleet(self.store, spec or FleetSpec(**kwargs))

    def notebook(self, notebook_id: str, project_id: str = DEMO_PROJECT_ID) -> NotebookRecord:
        return self.store.get(project_id, notebook_id)

    def find(self, notebook_id: str) -> NotebookRecord:
        """The notebook with this id in whichever project holds it."""
        with self.store.lock:
            self.store.now_ms()
            for project in self.store.projects.values():
                if notebook_id in project.records:
                    return project.records[notebook_id]
        raise KeyError(notebook_id)

    def set_activity(
        self,
        notebook_id: str,
        *,
        pattern: ActivityPattern | None = None,
        last_activity: datetime | None = None,
        kernels: list[dict[str, Any]] | None = None,
    ) -> JupyterState:
        """What the notebook's Jupyter Server reports. Kernel dicts: name, execution_state,
        last_activity_ms, connections."""
        record = self.find(notebook_id)
        return self.store.set_activity(
            record.project_id,
            notebook_id,
            pattern=pattern,
            last_activity_ms=None
            if last_activity is None
            else int(last_activity.timestamp() * 1000),
            kernels=kernels,
        )

    def force_status(self, notebook_id: str, status: NotebookStatus) -> None:
        record = self.find(notebook_id)
        self.store.force_status(record.project_id, notebook_id, status)

    def snapshot(self) -> dict[str, Any]:
        """Clock, notebook counts per project and status, settings and request counters."""
        with self._stats_lock:
            stats = dict(self.stats)
        return {
            "clock": {
                "now": self.clock.now().isoformat(),
                "now_ms": self.clock.now_ms(),
                "speed": self.clock.speed,
            },
            "notebooks": self.store.counts(),
            "latency_ms": self.config.latency_ms,
            "jupyter_latency_ms": self.config.jupyter_latency_ms,
            "rate_limit": None
            if self.limiter is None
            else {"rate": self.limiter.rate, "burst": self.limiter.burst},
            "fault_rate": self.faults.rate,
            "scripted_faults_left": self.faults.scripted_left,
            "faults_injected": {k.value: v for k, v in self.faults.injected.items() if v},
            "stats": stats,
        }


class _DroppingASGITransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDroppedError:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
