"""Async ModelArts notebook client (httpx).

One `AsyncModelArtsClient` per event loop. Every method takes and returns the pydantic models of
`nbkeeper.modelarts.schemas` and raises the typed errors of `nbkeeper.modelarts.errors`.
Retries and the client-side rate limit: `nbkeeper.modelarts.retry`. Listing every notebook:
`nbkeeper.modelarts.paging`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from nbkeeper.modelarts.auth import canonical_query
from nbkeeper.modelarts.errors import (
    InvalidRequestError,
    ModelArtsError,
    ServerError,
    ThrottledError,
    describe_validation_error,
    error_from_reply,
)
from nbkeeper.modelarts.paging import MAX_PAGES, OnUnreadable, iter_all, log_unreadable
from nbkeeper.modelarts.retry import (
    Clock,
    RateLimiter,
    RetryPolicy,
    Sleep,
    http_date,
    parse_retry_after,
    response_failure,
    transport_failure,
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

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "nbkeeper/0.1 (+httpx)"


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion from synchronous code (a Lambda handler)."""
    return asyncio.run(coro)


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
        """One page of `GET /notebooks` (or `/notebooks/all` for every user's notebooks).

        Records that cannot be read are in the page's `unreadable`, not in `data`.
        """
        params = (query or ListNotebooksQuery()).to_params()
        response = await self._call("GET", ["all"] if all_users else [], params=params)
        return self._parse(NotebookPage, response)

    async def iter_notebooks(
        self,
        query: ListNotebooksQuery | None = None,
        all_users: bool = False,
        *,
        on_unreadable: OnUnreadable | None = None,
    ) -> AsyncIterator[Notebook]:
        """Every readable notebook matching `query`, each once, in service order.

        Pages of `query.limit` (10, 20 or 50; default 50): the first alone, the rest concurrently
        (bounded). Each record that cannot be read goes to `on_unreadable` once (default: a
        warning naming it) and is not yielded. `query.offset` must be unset: the listing starts
        at the beginning (read one page with `list_page`).
        """
        base = query or ListNotebooksQuery()
        if base.offset:
            raise InvalidRequestError(
                "iter_notebooks lists from the start: leave offset unset (list_page reads one page)"
            )
        async for notebook in iter_all(
            lambda page_query: self.list_page(page_query, all_users),
            base,
            page_concurrency=self._page_concurrency,
            max_pages=self._max_pages,
            on_unreadable=on_unreadable or log_unreadable,
        ):
            yield notebook

    async def list_notebooks(
        self,
        query: ListNotebooksQuery | None = None,
        all_users: bool = False,
        *,
        on_unreadable: OnUnreadable | None = None,
    ) -> list[Notebook]:
        """Every readable notebook matching `query`, de-duplicated by id, in service order."""
        return [
            notebook
            async for notebook in self.iter_notebooks(query, all_users, on_unreadable=on_unreadable)
        ]

    async def show_notebook(self, notebook_id: str) -> Notebook:
        response = await self._call("GET", [_checked_id(notebook_id)])
        return self._parse(Notebook, response, defaults={"id": notebook_id})

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

    async def read(
        self,
        model: type[M],
        resource: str,
        segments: list[str],
        params: Iterable[tuple[str, str]] = (),
    ) -> M:
        """A read-only GET under `/v1/{project_id}/{resource}` (images: `nbkeeper.modelarts.images`)."""
        response = await self._call("GET", segments, params=params, resource=resource)
        return self._parse(model, response)

    async def send(
        self,
        model: type[M],
        method: str,
        segments: list[str],
        body: Mapping[str, Any],
        *,
        resource: str = "notebooks",
    ) -> M:
        """A change under `/v1/{project_id}/{resource}` that is never retried blindly (saving an
        image: `nbkeeper.modelarts.images`); `AmbiguousCreateError` when it may have happened."""
        response = await self._call(
            method, segments, body=body, idempotent=False, resource=resource
        )
        return self._parse(model, response)

    # ------------------------------------------------------------------ plumbing

    def _url(
        self, segments: Iterable[str], params: Iterable[tuple[str, str]], resource: str
    ) -> httpx.URL:
        root = f"{self._base_path}/v1/{quote(self.project_id, safe='')}/{quote(resource, safe='')}"
        path = root + "".join("/" + quote(segment, safe="") for segment in segments)
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
        resource: str = "notebooks",
    ) -> httpx.Response:
        url = self._url(segments, params, resource)
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
                failure = transport_failure(exc, method, path, idempotent, fields)
            else:
                fields.update(status=response.status_code, request_id=_request_id(response))
                if response.status_code < 400:
                    logger.debug("modelarts request ok", extra=fields)
                    return response
                await response.aread()
                failure = response_failure(
                    _error_from(response, fields["request_id"]),
                    response.status_code,
                    method,
                    path,
                    idempotent,
                    fields,
                )
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
            # What the caller knows (the id it asked about) fills a field missing or null.
            data = {**data, **{k: v for k, v in defaults.items() if data.get(k) is None}}
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
    return error_from_reply(
        response.status_code,
        response.text,
        request_id,
        # An HTTP-date Retry-After is counted from the reply's own Date when it has one, so a
        # skewed local clock does not stretch or skip the wait.
        parse_retry_after(
            response.headers.get("Retry-After"), http_date(response.headers.get("Date"))
        ),
    )
