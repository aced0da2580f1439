"""Retry policy, client-side rate limit and `Retry-After` for the ModelArts client.

Retried: 429/502/503/504, connection errors and timeouts, with exponential backoff and full
jitter, honouring `Retry-After` (seconds or an HTTP date), bounded by attempts and by a total time
budget. A create (the one non-idempotent call) is retried only when the request provably did not
reach the service (connection refused, connect timeout) or the service refused it before
processing (429, 503); otherwise `AmbiguousCreateError` is raised and the caller must look the
notebook up by name.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from nbkeeper.modelarts.errors import (
    AmbiguousCreateError,
    ModelArtsError,
    ThrottledError,
    TransportError,
)

logger = logging.getLogger("nbkeeper.modelarts")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A create answered with these was turned away before processing: sending it again is safe.
# 502/504 mean a gateway may have forwarded it, so a create answered with them is ambiguous.
CREATE_SAFE_STATUSES = frozenset({429, 503})
# The request never left this process: safe to send again, even a create.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Programming or configuration errors: retrying cannot help.
_NOT_RETRYABLE = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Full-jitter backoff: uniform(0, min(cap, base * 2**n))."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    total_budget: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.total_budget < 0:
            raise ValueError("delays and the total budget must not be negative")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Delay before retry `retry_number` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(retry_number, 62))
        return rng.uniform(0.0, ceiling)

    def delay(self, retry_number: int, rng: random.Random, retry_after: float | None) -> float:
        """The server's `Retry-After` when it gave one, else the jittered backoff."""
        if retry_after is not None:
            return max(retry_after, 0.0)
        return self.backoff(retry_number, rng)


NO_RETRY = RetryPolicy(max_attempts=1)


class RateLimiter:
    """Token bucket: on average at most `rate` requests per second, bursts up to `burst`.

    Each caller reserves a token without awaiting (atomic under asyncio), so concurrent callers
    queue in order and each sleeps only for its own reservation.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (requests per second)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token now; return how long the caller must wait before using it."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + max(now - self._updated, 0.0) * self.rate)
        self._updated = max(now, self._updated)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait, or None when absent or unreadable.

    Accepts both RFC 7231 forms: delay-seconds, or an HTTP date (IMF-fixdate, and the obsolete
    RFC 850 and asctime forms), counted from `now` (epoch seconds; the wall clock when None). A
    date already past means 0 seconds.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, time.time() if now is None else now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def http_date(text: str | None) -> float | None:
    """An HTTP date as epoch seconds (a date without a zone is GMT, as RFC 7231 says)."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _seconds_until(text: str, now: float) -> float | None:
    when = http_date(text)
    return None if when is None else max(when - now, 0.0)


def transport_failure(
    exc: httpx.TransportError,
    method: str,
    path: str,
    idempotent: bool,
    fields: dict[str, Any],
) -> ModelArtsError:
    """The error to retry with, or raise at once (not retryable, or an ambiguous create)."""
    name = type(exc).__name__
    fields.update(status=None, request_id=None, error=name)
    if isinstance(exc, _NOT_RETRYABLE):
        raise TransportError(f"{method} {path} could not be sent: {name}: {exc}") from exc
    if not idempotent and not isinstance(exc, _NOT_SENT):
        logger.warning("modelarts request ambiguous", extra=fields)
        raise AmbiguousCreateError(
            f"{method} {path}: the connection failed after the request was sent ({name}); "
            "the notebook may exist now: look it up by name before creating it again"
        ) from exc
    failure = TransportError(f"{method} {path} failed: {name}: {exc}")
    failure.__cause__ = exc
    return failure


def response_failure(
    failure: ModelArtsError,
    status: int,
    method: str,
    path: str,
    idempotent: bool,
    fields: dict[str, Any],
) -> ModelArtsError:
    """`failure` (from an error reply) to retry with, or raise it at once (not retryable, or an
    ambiguous create)."""
    fields["error_code"] = failure.error_code
    throttled = isinstance(failure, ThrottledError)
    if not (throttled or status in RETRY_STATUSES):
        logger.info("modelarts request failed", extra=fields)
        raise failure
    if not idempotent and not throttled and status not in CREATE_SAFE_STATUSES:
        logger.warning("modelarts request ambiguous", extra=fields)
        raise AmbiguousCreateError(
            f"{method} {path}: the gateway answered HTTP {status} after the request was sent; "
            "the notebook may exist now: look it up by name before creating it again",
            status_code=status,
            error_code=failure.error_code,
            request_id=failure.request_id,
        )
    return failure
