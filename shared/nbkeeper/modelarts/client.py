"""Async ModelArts notebook client (httpx).

One `AsyncModelArtsClient` per event loop. Every method takes and returns the pydantic models of
`nbkeeper.modelarts.schemas` and raises the typed errors of `nbkeeper.modelarts.errors`.

Retries: 429/502/503/504, connection errors and timeouts, with exponential backoff and full
jitter, honouring `Retry-After` (seconds or an HTTP date), bounded by attempts and by a total time
budget. A create (the one non-idempotent call) is retried only when the request provably did not
reach the service (connection refused, connect timeout) or the service refused it before
processing (429, 503); otherwise `AmbiguousCreateError` is raised and the caller must look the
notebook up by name.

Listing: `offset` is sent as a record offset (`offset = k * limit`). The docs also describe the
reply's `current` as a page number, so the loop does not trust the arithmetic alone: it stops on an
empty page or once `total` distinct notebooks are in, and de-duplicates by id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from nbkeeper.modelarts.auth import canonical_query
from nbkeeper.modelarts.errors import (
    AmbiguousCreateError,
    InvalidRequestError,
    ModelArtsError,
    ServerError,
    ThrottledError,
    TransportError,
    classify,
    describe_validation_error,
)
from nbkeeper.modelarts.schemas import (
    FlavorList,
    Lease,
    LeaseReq,
    LeaseType,
    ListNotebooksQuery,
    Notebook,
    NotebookCreateRequest,
    NotebookPage,
    NotebookUpdateRequest,
    TagsRequest,
    TagSummary,
)

logger = logging.getLogger("nbkeeper.modelarts")

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
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
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_PAGE_SIZE = 50
MAX_PAGES = 1000
USER_AGENT = "nbkeeper/0.1 (+httpx)"
_MAX_MESSAGE = 500
_SECRET_HEADER = re.compile(
    r"(?i)\b(x-security-token|x-auth-token|authorization)(\s*[:=]\s*)[^|\n\r,}\"]*"
)
_SECRET_FIELD = re.compile(
    r"(?i)(\"(?:token|sk|secret|secret_key|security_token|securitytoken|password)\"\s*:\s*\")[^\"]*"
)


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


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion from synchronous code (a Lambda handler)."""
    return asyncio.run(coro)


def redact(text: str) -> str:
    """Mask credential-looking values a service may echo back (e.g. APIG.0303's canonical request)."""
    text = _SECRET_HEADER.sub(r"\1\2***", text)
    return _SECRET_FIELD.sub(r"\1***", text)


def parse_error_body(text: str) -> tuple[str | None, str]:
    """(code, message) from a Huawei error body, accepting the variants the SDK accepts."""
    try:
        data = json.loads(text)
    except ValueError:
        return None, text.strip()
    if isinstance(data, dict):
        found = _find_error(data, depth=0)
        if found:
            return found
        return None, text.strip()
    return None, text.strip()


def _find_error(data: Mapping[str, Any], depth: int) -> tuple[str | None, str] | None:
    for code_key, msg_key in (
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ):
        if code_key in data and msg_key in data:
            code = data[code_key]
            return (str(code) if code is not None else None), str(data[msg_key] or "")
    if depth < 4:
        for value in data.values():
            if isinstance(value, dict):
                found = _find_error(value, depth + 1)
                if found:
                    return found
    for code_key in ("error_code", "errorCode"):
        code = data.get(code_key)
        if isinstance(code, str):
            return code, ""
    return None


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


def _http_date(text: str | None) -> float | None:
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
    when = _http_date(text)
    return None if when is None else max(when - now, 0.0)


class AsyncModelArtsClient:
    """ModelArts notebook API v1 over one `httpx.AsyncClient`. Use `async with` or `aclose()`."""

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        auth: httpx.Auth,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
        rate_limit: float | None = None,
        rate_burst: float = 1.0,
        max_concurrency: int = 10,
        page_concurrency: int = 4,
        max_pages: int = MAX_PAGES,
    ) -> None:
        if not project_id:
            raise ValueError("project_id is required")
        if max_concurrency < 1 or page_concurrency < 1 or max_pages < 1:
            raise ValueError("max_concurrency, page_concurrency and max_pages must be at least 1")
        base = httpx.URL(endpoint)
        if base.scheme not in {"http", "https"} or not base.host:
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self.endpoint = str(base)
        self.project_id = project_id
        self._base = base.copy_with(query=None, fragment=None)
        self._base_path = base.raw_path.split(b"?", 1)[0].decode("ascii").rstrip("/")
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clock = clock
        self._limiter = (
            RateLimiter(rate_limit, rate_burst, clock=clock, sleep=sleep) if rate_limit else None
        )
        self._slots = asyncio.Semaphore(max_concurrency)
        self._page_concurrency = page_concurrency
        self._max_pages = max_pages
        self._http = httpx.AsyncClient(
            auth=auth,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"AsyncModelArtsClient(endpoint={self.endpoint!r}, project_id={self.project_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ notebooks

    async def create_notebook(self, request: NotebookCreateRequest | Mapping[str, Any]) -> Notebook:
        """Create a notebook (asynchronous on the service side: status is usually CREATING).

        Never retried blindly: raises `AmbiguousCreateError` when it may have happened.
        """
        body = _coerce(NotebookCreateRequest, request).to_body()
        response = await self._call("POST", [], body=body, idempotent=False)
        return self._parse(Notebook, response)

    async def list_page(
        self, query: ListNotebooksQuery | None = None, all_users: bool = False
    ) -> NotebookPage:
        """One page of `GET /notebooks` (or `/notebooks/all` for every user's notebooks)."""
        params = (query or ListNotebooksQuery()).to_params()
        response = await self._call("GET", ["all"] if all_users else [], params=params)
        return self._parse(NotebookPage, response)

    async def iter_notebooks(
        self,
        query: ListNotebooksQuery | None = None,
        all_users: bool = False,
        *,
        on_unreadable: Callable[[Any], None] | None = None,
    ) -> AsyncIterator[Notebook]:
        """Every notebook matching `query`: first page, then the rest concurrently (bounded).

        `on_unreadable` is accepted, not yet called (per-record parsing lands with issue 9).
        """
        base = query or ListNotebooksQuery()
        limit = base.limit or DEFAULT_PAGE_SIZE
        start = base.offset or 0
        seen = _Dedup()
        first = await self.list_page(_page_query(base, limit, start), all_users)
        for notebook in seen.fresh(first.data):
            yield notebook
        if not first.data:
            return
        total = first.total
        step = limit
        if total is not None and 0 < len(first.data) < min(limit, total - start):
            # A first page shorter than asked for while more exist: the service caps page size.
            step = len(first.data)
        index = 1
        exhausted = False
        if total is not None:
            pages_needed = math.ceil(max(total - start, 0) / step)
            indices = list(range(1, min(pages_needed, self._max_pages)))
            index += len(indices)
            for page in await self._fetch_pages(base, step, start, indices, all_users):
                exhausted = not page.data
                if exhausted:
                    break
                for notebook in seen.fresh(page.data):
                    yield notebook
        # Sequential tail: the total is unknown, or records moved between pages while we read.
        while not exhausted and index < self._max_pages and (total is None or len(seen) < total):
            page = await self.list_page(_page_query(base, step, start + index * step), all_users)
            index += 1
            new = seen.fresh(page.data)
            if not new:
                break
            for notebook in new:
                yield notebook
        if total is not None and len(seen) < total:
            logger.warning(
                "notebook listing ended with %d of %d notebooks",
                len(seen),
                total,
                extra={"listed": len(seen), "total": total},
            )

    async def list_notebooks(
        self, query: ListNotebooksQuery | None = None, all_users: bool = False
    ) -> list[Notebook]:
        """Every notebook matching `query`, de-duplicated by id, in service order."""
        return [notebook async for notebook in self.iter_notebooks(query, all_users)]

    async def show_notebook(self, notebook_id: str) -> Notebook:
        response = await self._call("GET", [_checked_id(notebook_id)])
        return self._parse(Notebook, response)

    async def update_notebook(
        self, notebook_id: str, request: NotebookUpdateRequest | Mapping[str, Any]
    ) -> Notebook:
        """Change name, description, flavor, image or storage (the notebook must be STOPPED)."""
        body = _coerce(NotebookUpdateRequest, request).to_body()
        response = await self._call("PUT", [_checked_id(notebook_id)], body=body)
        # The documented example reply carries no id; the caller's id is the truth.
        return self._parse(Notebook, response, defaults={"id": notebook_id})

    async def delete_notebook(self, notebook_id: str) -> Notebook | None:
        """Delete; returns the notebook (status DELETING) or None when the reply is 204."""
        response = await self._call("DELETE", [_checked_id(notebook_id)])
        if not response.content:
            return None
        return self._parse(Notebook, response, defaults={"id": notebook_id})

    async def start_notebook(
        self,
        notebook_id: str,
        duration_ms: int | None = None,
        lease_type: LeaseType | str | None = None,
    ) -> Notebook:
        """Start a STOPPED notebook, optionally with a new lease (1 h to 72 h)."""
        lease = _coerce(LeaseReq, {"duration": duration_ms, "type": lease_type})
        params: list[tuple[str, str]] = []
        if lease.duration is not None:
            params.append(("duration", str(lease.duration)))
        if lease.type is not None:
            params.append(("type", lease.type.value))
        response = await self._call("POST", [_checked_id(notebook_id), "start"], params=params)
        return self._parse(Notebook, response, defaults={"id": notebook_id})

    async def stop_notebook(self, notebook_id: str) -> Notebook:
        response = await self._call("POST", [_checked_id(notebook_id), "stop"])
        return self._parse(Notebook, response, defaults={"id": notebook_id})

    async def renew_lease(self, notebook_id: str, duration_ms: int) -> Lease | None:
        """Run for `duration_ms` from now (TIMING). None when the service answers 204."""
        lease = _coerce(LeaseReq, {"duration": duration_ms, "type": LeaseType.TIMING})
        response = await self._call(
            "PATCH", [_checked_id(notebook_id), "lease"], body=lease.to_body()
        )
        if not response.content:
            return None
        return self._parse(Lease, response)

    async def show_lease(self, notebook_id: str) -> Lease:
        response = await self._call("GET", [_checked_id(notebook_id), "lease"])
        return self._parse(Lease, response)

    # ------------------------------------------------------------------ tags and flavors

    async def add_tags(
        self,
        notebook_id: str,
        tags: TagsRequest | Mapping[str, str],
        workspace_id: str | None = None,
    ) -> None:
        """Add or overwrite tags."""
        body = _tags_body(tags)
        params = [("workspace_id", workspace_id)] if workspace_id else []
        await self._call(
            "POST", [_checked_id(notebook_id), "tags", "create"], params=params, body=body
        )

    async def delete_tags(
        self,
        notebook_id: str,
        tags: TagsRequest | Mapping[str, str | None],
        workspace_id: str | None = None,
    ) -> None:
        """Remove tags (a missing tag is not an error)."""
        body = _tags_body(tags)
        params = [("workspace_id", workspace_id)] if workspace_id else []
        await self._call(
            "DELETE", [_checked_id(notebook_id), "tags", "delete"], params=params, body=body
        )

    async def tag_summary(self, workspace_id: str | None = None) -> TagSummary:
        """Every tag key in use on notebooks, with its values."""
        params = [("workspace_id", workspace_id)] if workspace_id else []
        response = await self._call("GET", ["tags"], params=params)
        return self._parse(TagSummary, response)

    async def list_flavors(
        self,
        notebook_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> FlavorList:
        """Flavors for new notebooks, or those `notebook_id` can switch to."""
        params = [(k, str(v)) for k, v in (("limit", limit), ("offset", offset)) if v is not None]
        segments = [_checked_id(notebook_id), "flavors"] if notebook_id is not None else ["flavors"]
        response = await self._call("GET", segments, params=params)
        return self._parse(FlavorList, response)

    # ------------------------------------------------------------------ plumbing

    async def _fetch_pages(
        self,
        base: ListNotebooksQuery,
        step: int,
        start: int,
        indices: list[int],
        all_users: bool,
    ) -> list[NotebookPage]:
        gate = asyncio.Semaphore(self._page_concurrency)

        async def fetch(index: int) -> NotebookPage:
            async with gate:
                query = base.model_copy(update={"limit": step, "offset": start + index * step})
                return await self.list_page(query, all_users)

        tasks = [asyncio.ensure_future(fetch(index)) for index in indices]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _url(self, segments: Iterable[str], params: Iterable[tuple[str, str]]) -> httpx.URL:
        path = f"{self._base_path}/v1/{quote(self.project_id, safe='')}/notebooks" + "".join(
            "/" + quote(segment, safe="") for segment in segments
        )
        # Sorted and encoded exactly as signed, as the official SDK sends it.
        query = canonical_query(params)
        raw = path + ("?" + query if query else "")
        return self._base.copy_with(raw_path=raw.encode("ascii"))

    async def _call(
        self,
        method: str,
        segments: list[str],
        *,
        params: Iterable[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        url = self._url(segments, params)
        path = url.raw_path.split(b"?", 1)[0].decode("ascii")
        content: bytes | None = None
        headers: dict[str, str] = {}
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json;charset=UTF-8"
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            fields: dict[str, Any] = {"method": method, "path": path, "attempt": attempt}
            if self._limiter is not None:
                await self._limiter.acquire()
            try:
                async with self._slots:
                    response = await self._http.request(
                        method, url, content=content, headers=headers
                    )
            except httpx.TransportError as exc:
                failure = _transport_failure(exc, method, path, idempotent, fields)
            else:
                fields.update(status=response.status_code, request_id=_request_id(response))
                if response.status_code < 400:
                    logger.debug("modelarts request ok", extra=fields)
                    return response
                await response.aread()
                failure = _response_failure(response, method, path, idempotent, fields)
            retry_after = failure.retry_after if isinstance(failure, ThrottledError) else None
            delay = self._retry.delay(attempt - 1, self._rng, retry_after)
            elapsed = self._clock() - started
            if attempt >= self._retry.max_attempts or elapsed + delay > self._retry.total_budget:
                fields["elapsed"] = round(elapsed, 3)
                logger.warning("modelarts request gave up", extra=fields)
                failure.message = f"{failure.message} (gave up after {attempt} attempt(s))"
                raise failure
            fields["delay"] = round(delay, 3)
            logger.info("modelarts request retrying", extra=fields)
            await self._sleep(delay)

    def _parse(
        self,
        model: type[M],
        response: httpx.Response,
        defaults: Mapping[str, Any] | None = None,
    ) -> M:
        request_id = _request_id(response)
        try:
            data = response.json()
        except ValueError:
            raise ServerError(
                f"ModelArts answered HTTP {response.status_code} with a body that is not JSON",
                status_code=response.status_code,
                request_id=request_id,
            ) from None
        if defaults and isinstance(data, dict):
            data = {**defaults, **data}
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            # The messages name fields and rules, never the values (which may hold the token).
            raise ServerError(
                f"ModelArts sent an unexpected {model.__name__}: {describe_validation_error(exc)}",
                status_code=response.status_code,
                request_id=request_id,
            ) from None


def _coerce(model: type[M], value: M | Mapping[str, Any]) -> M:
    """Validate a mapping into `model` before any network call; errors name field and rule."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        raise InvalidRequestError(describe_validation_error(exc)) from exc


class _Dedup:
    """Ids seen so far; `fresh` keeps the first occurrence of each notebook."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def fresh(self, notebooks: Iterable[Notebook]) -> list[Notebook]:
        new = []
        for notebook in notebooks:
            if notebook.id not in self._ids:
                self._ids.add(notebook.id)
                new.append(notebook)
        return new


def _page_query(base: ListNotebooksQuery, limit: int, offset: int) -> ListNotebooksQuery:
    return base.model_copy(update={"limit": limit, "offset": offset})


def _transport_failure(
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


def _response_failure(
    response: httpx.Response,
    method: str,
    path: str,
    idempotent: bool,
    fields: dict[str, Any],
) -> ModelArtsError:
    """The error to retry with, or raise at once (not retryable, or an ambiguous create)."""
    status = response.status_code
    failure = _error_from(response, fields.get("request_id"))
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


def _checked_id(notebook_id: str) -> str:
    if not isinstance(notebook_id, str) or not notebook_id.strip():
        raise InvalidRequestError("notebook id is empty; give the notebook's id")
    return notebook_id


def _tags_body(tags: TagsRequest | Mapping[str, str] | Mapping[str, str | None]) -> dict[str, Any]:
    if isinstance(tags, TagsRequest):
        return tags.to_body()
    items = [{"key": key, "value": value} for key, value in tags.items()]
    return _coerce(TagsRequest, {"tags": items}).to_body()


def _request_id(response: httpx.Response) -> str | None:
    value: str | None = response.headers.get("X-Request-Id")
    return value


def _error_from(response: httpx.Response, request_id: str | None) -> ModelArtsError:
    code, message = parse_error_body(response.text)
    message = redact(message)[:_MAX_MESSAGE] or f"HTTP {response.status_code}"
    return classify(
        response.status_code,
        code,
        message,
        request_id,
        # An HTTP-date Retry-After is counted from the reply's own Date when it has one, so a
        # skewed local clock does not stretch or skip the wait.
        parse_retry_after(
            response.headers.get("Retry-After"), _http_date(response.headers.get("Date"))
        ),
    )
