"""Fault injection (by seeded rate or by script) and the gateway's token-bucket rate limit."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    THROTTLE = "throttle"  # 429, Retry-After, APIG.0308 body
    ERROR_500 = "error_500"  # 500, ModelArts.0010 body
    ERROR_503 = "error_503"  # 503, APIG.0203 body (backend unavailable / timeout)
    SLOW = "slow"  # the normal reply, after `slow_s` extra seconds
    DROP = "drop"  # the connection closes without any reply
    # The request is processed (a stop stops), then the connection closes without the reply:
    # what a client sees when the service took a change whose answer was lost on the way back.
    REPLY_LOST = "reply_lost"
    LOOSE = "loose"  # the normal reply, every notebook in it loose (see loose.py)


class ConnectionDroppedError(Exception):
    """Raised in-process when a DROP fault has no socket to abort (see `Emulator.asgi_transport`)."""


class Scope(StrEnum):
    API = "api"  # the ModelArts API (/v1/...)
    JUPYTER = "jupyter"  # the notebooks' Jupyter Servers (/jupyter/...)
    ANY = "any"


@dataclass
class FaultRule:
    """Scripted faults: the next `count` matching requests get `kind`."""

    kind: FaultKind
    count: int = 1
    method: str | None = None
    path_regex: str | None = None
    scope: Scope = Scope.API

    def matches(self, method: str, path: str, scope: Scope) -> bool:
        if self.scope is not Scope.ANY and self.scope is not scope:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None


class FaultInjector:
    """Decides, per request, whether a fault happens. Deterministic for a given seed."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._script: deque[FaultRule] = deque()
        self.rate = 0.0
        self.kinds: tuple[FaultKind, ...] = (
            FaultKind.THROTTLE,
            FaultKind.ERROR_500,
            FaultKind.ERROR_503,
        )
        self.retry_after_s = 2
        self.slow_s = 3.0
        self.injected: dict[FaultKind, int] = dict.fromkeys(FaultKind, 0)

    def set_rate(
        self, rate: float, kinds: tuple[FaultKind, ...] | None = None, seed: int | None = None
    ) -> None:
        """Fail this fraction of API requests with one of `kinds`, chosen by the seeded RNG."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be within [0, 1]")
        with self._lock:
            self.rate = rate
            if kinds:
                self.kinds = kinds
            if seed is not None:
                self._rng = random.Random(seed)

    def script(self, *rules: FaultRule) -> None:
        """Queue scripted faults; they are consumed in order by matching requests."""
        with self._lock:
            self._script.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self._script.clear()
            self.rate = 0.0

    @property
    def scripted_left(self) -> int:
        return sum(rule.count for rule in self._script)

    def decide(self, method: str, path: str, scope: Scope) -> FaultKind | None:
        with self._lock:
            for rule in self._script:
                if rule.count > 0 and rule.matches(method, path, scope):
                    rule.count -= 1
                    if rule.count == 0:
                        self._script.remove(rule)
                    self.injected[rule.kind] += 1
                    return rule.kind
            if self.rate and scope is Scope.API and self._rng.random() < self.rate:
                kind = self._rng.choice(self.kinds)
                self.injected[kind] += 1
                return kind
            return None


class TokenBucket:
    """`rate` requests per second with bursts of up to `burst`, on real (monotonic) time."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate limit must be > 0 requests per second")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._monotonic = monotonic
        self._tokens = self.burst
        self._last = monotonic()
        self._lock = threading.Lock()
        self.rejected = 0

    def take(self) -> float | None:
        """Take a token: None when allowed, else seconds until one is available."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            self.rejected += 1
            return (1.0 - self._tokens) / self.rate
