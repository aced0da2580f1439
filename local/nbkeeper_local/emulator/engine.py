"""The emulated ModelArts service: state, simulated time, faults and the control surface."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nbkeeper.modelarts.schemas import NotebookStatus

from .catalogue import ImageCatalogue
from .clock import SimClock
from .config import EmulatorConfig
from .faults import FaultInjector, FaultKind, FaultRule, Scope, TokenBucket
from .fleet import DEMO_PROJECT_ID, FleetSpec, seed_fleet
from .jupyter import ActivityPattern, JupyterState
from .loose import Looseness, LooseReplies
from .machine import NotebookStore
from .records import FailOp, Identity, NotebookRecord

if TYPE_CHECKING:
    from starlette.types import Scope as AsgiScope


class EmulatorEngine:
    """The emulated service without its HTTP face: configuration, notebooks, faults, control.

    `Emulator` (core.py) adds the ASGI app; the app's handlers see this class only, so the app
    module does not depend on the one that builds it.

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
        self.images = ImageCatalogue()
        self.store = NotebookStore(
            self.clock,
            timings=self.config.timings,
            seed=self.config.seed,
            not_found_status=self.config.not_found_status,
            require_stop_before_delete=self.config.require_stop_before_delete,
            offset_is_page=self.config.offset_reading == "page",
            images=self.images,
        )
        self.faults = FaultInjector(seed=self.config.seed)
        self.faults.retry_after_s = self.config.retry_after_s
        self.faults.set_rate(self.config.fault_rate)
        self.loose = LooseReplies(
            self.config.loose_rate, seed=self.config.seed, kinds=self.config.loose_kinds
        )
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

    def set_loose_rate(
        self, rate: float, seed: int | None = None, kinds: tuple[Looseness, ...] | None = None
    ) -> None:
        """Make this fraction of notebooks loose in every reply (see loose.py); 0 switches off.

        `kinds` narrows how they are loose (default: every kind)."""
        self.loose.set(rate, seed, kinds)

    def fail_next_create(self, count: int = 1, reason: str | None = None) -> None:
        self.store.fail_next(FailOp.CREATE, count, reason)

    def fail_next_start(self, count: int = 1, reason: str | None = None) -> None:
        self.store.fail_next(FailOp.START, count, reason)

    def fail_next_save(self, count: int = 1, reason: str | None = None) -> None:
        """The next `count` saves as images end CREATE_FAILED (the notebook runs on)."""
        self.store.fail_next(FailOp.SAVE, count, reason)

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
            "loose_replies": self.loose.snapshot(),
            "not_found_status": self.config.not_found_status,
            "offset_reading": self.config.offset_reading,
            "scripted_faults_left": self.faults.scripted_left,
            "faults_injected": {k.value: v for k, v in self.faults.injected.items() if v},
            "stats": stats,
        }
