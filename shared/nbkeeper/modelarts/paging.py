"""Every notebook of a listing, page by page, whatever the service makes of `offset`.

Conservative requests: `limit` is always the caller's documented page size (10, 20 or 50, default
50), never the length of a short page. Robust reading:

- The docs call `offset` the start offset, but describe the reply's `current` as a page number,
  so `offset` may be read as a record offset or as a page number. When the first page holds more
  than one record, a probe at `offset=1` tells which: as a record offset it overlaps the first
  page; as a page number it does not. Every later request follows the reading found.
- The service may serve fewer records than `limit` (a cap): later offsets step by the number of
  records the first page held, while `limit` stays as it was.
- The loop stops on an empty page, once `total` records are in, or after `max_pages` requests;
  records are de-duplicated by id (pages shift when notebooks come and go while we read).
- Records that cannot be read (`NotebookPage.unreadable`) count towards `total`, go to
  `on_unreadable` once each, and are never yielded.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum

from nbkeeper.modelarts.schemas import (
    ListNotebooksQuery,
    Notebook,
    NotebookPage,
    UnreadableNotebook,
)

logger = logging.getLogger("nbkeeper.modelarts")

DEFAULT_PAGE_SIZE = 50
MAX_PAGES = 1000

FetchPage = Callable[[ListNotebooksQuery], Awaitable[NotebookPage]]
OnUnreadable = Callable[[UnreadableNotebook], None]


class OffsetReading(StrEnum):
    RECORD = "record"  # offset = index of the first record (the documented reading)
    PAGE = "page"  # offset = page number


def log_unreadable(record: UnreadableNotebook) -> None:
    """The default `on_unreadable`: one warning naming the notebook (or its position)."""
    logger.warning(
        "skipped an unreadable notebook record: %s",
        record,
        extra={
            "notebook_id": record.notebook_id,
            "position": record.position,
            "reason": record.reason,
        },
    )


class _Tally:
    """What the listing has seen: readable ids, unreadable records, and how many in all."""

    def __init__(self, on_unreadable: OnUnreadable) -> None:
        self._on_unreadable = on_unreadable
        self._ids: set[str] = set()
        self._anonymous: set[int] = set()  # positions of unreadable records without an id

    @property
    def count(self) -> int:
        return len(self._ids) + len(self._anonymous)

    def take(self, page: NotebookPage, first_position: int) -> tuple[list[Notebook], int]:
        """The page's notebooks not seen before, and how many of its records were new."""
        fresh: list[Notebook] = []
        for notebook in page.data:
            if notebook.id not in self._ids:
                self._ids.add(notebook.id)
                fresh.append(notebook)
        new = len(fresh)
        for record in page.unreadable:
            position = first_position + record.index
            if record.notebook_id is not None:
                if record.notebook_id in self._ids:
                    continue
                self._ids.add(record.notebook_id)
            elif position in self._anonymous:
                continue
            else:
                self._anonymous.add(position)
            new += 1
            self._on_unreadable(record.model_copy(update={"position": position}))
        return fresh, new


def _records(page: NotebookPage) -> int:
    return len(page.data) + len(page.unreadable)


def _ids(page: NotebookPage) -> set[str]:
    return {n.id for n in page.data} | {
        r.notebook_id for r in page.unreadable if r.notebook_id is not None
    }


async def iter_all(
    fetch: FetchPage,
    query: ListNotebooksQuery,
    *,
    page_concurrency: int,
    max_pages: int,
    on_unreadable: OnUnreadable,
) -> AsyncIterator[Notebook]:
    """Every readable notebook matching `query`, in service order, each once (see module doc)."""
    walk = _Walk(fetch, query, max_pages, _Tally(on_unreadable))
    for notebook in await walk.opening():
        yield notebook
    if walk.total is not None:
        async for batch in walk.counted_pages(page_concurrency):
            for notebook in batch:
                yield notebook
    # Sequential tail: the total is unknown, or records moved between pages while we read.
    while walk.wants_more():
        for notebook in await walk.next_page():
            yield notebook
    walk.report_short()


class _Walk:
    """The state of one listing: pages asked for, the offset reading found, records seen."""

    def __init__(
        self, fetch: FetchPage, query: ListNotebooksQuery, max_pages: int, tally: _Tally
    ) -> None:
        self._fetch = fetch
        self._query = query
        self._limit = query.limit or DEFAULT_PAGE_SIZE
        self._max_pages = max_pages
        self._tally = tally
        self.requests = 0
        self.total: int | None = None
        self.reading = OffsetReading.RECORD
        self.stride = 0  # records per page as the service serves them
        self.next_index = 1  # the next page to ask for, in pages of `stride` records
        self.finished = False

    async def _page_at(self, offset: int) -> NotebookPage:
        self.requests += 1
        return await self._fetch(
            self._query.model_copy(update={"limit": self._limit, "offset": offset})
        )

    def _offset_of(self, index: int) -> int:
        return index * self.stride if self.reading is OffsetReading.RECORD else index

    def _done(self) -> bool:
        return self.total is not None and self._tally.count >= self.total

    def wants_more(self) -> bool:
        return not (self.finished or self._done() or self.requests >= self._max_pages)

    async def opening(self) -> list[Notebook]:
        """The first page, then (when it held several records) the probe at `offset=1`."""
        first = await self._page_at(0)
        self.total = first.total
        self.stride = _records(first)
        fresh, _ = self._tally.take(first, 0)
        if self.stride == 0:
            self.finished = True
        if self.stride <= 1 or not self.wants_more():
            return fresh  # one record per page: both readings agree
        probe = await self._page_at(1)
        if not _records(probe):
            self.finished = True
            return fresh
        probe_ids = _ids(probe)
        if probe_ids and not (probe_ids & _ids(first)):
            self.reading = OffsetReading.PAGE  # page 1, not records 1.., came back
            self.next_index = 2
        start = 1 if self.reading is OffsetReading.RECORD else self.stride
        more, _ = self._tally.take(probe, start)
        return fresh + more

    async def counted_pages(self, concurrency: int) -> AsyncIterator[list[Notebook]]:
        """With a known total: every page still needed, fetched concurrently and handed on in
        order as soon as each has arrived (the keeper probes and acts while later pages load)."""
        if not self.wants_more() or self.total is None:
            return
        pages_needed = math.ceil(self.total / self.stride)
        last = min(pages_needed, self.next_index + self._max_pages - self.requests)
        indices = list(range(self.next_index, last))
        self.next_index = max(self.next_index, last)
        gate = asyncio.Semaphore(concurrency)

        async def fetch(offset: int) -> NotebookPage:
            async with gate:
                return await self._page_at(offset)

        tasks = [asyncio.ensure_future(fetch(self._offset_of(index))) for index in indices]
        try:
            for index, task in zip(indices, tasks, strict=True):
                page = await task
                if not _records(page):
                    self.finished = True
                    return
                yield self._tally.take(page, index * self.stride)[0]
        finally:  # a failure, an empty page or a consumer that stops early: cancel the rest
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def next_page(self) -> list[Notebook]:
        page = await self._page_at(self._offset_of(self.next_index))
        fresh, new = self._tally.take(page, self.next_index * self.stride)
        self.next_index += 1
        if not new:
            self.finished = True
        return fresh

    def report_short(self) -> None:
        if self.total is not None and self._tally.count < self.total:
            logger.warning(
                "notebook listing ended with %d of %d notebooks",
                self._tally.count,
                self.total,
                extra={"listed": self._tally.count, "total": self.total},
            )
