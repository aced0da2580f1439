"""Listing: filter, sort and page a project's notebooks, with cached sorted views.

A keeper pass pages through one filter thousands of notebooks long, so sorted views (and
filtered ones) are cached per project and rebuilt only when something in the project changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbkeeper.modelarts.schemas import Feature, ListNotebooksQuery, SortDir

from .records import NotebookRecord, Project, bad_request

DEFAULT_LIMIT = 10
SORT_KEYS = ("create_at", "name", "status", "flavor", "update_at")
MAX_CACHED_VIEWS = 64


@dataclass
class ListResult:
    records: list[NotebookRecord]
    total: int
    limit: int
    current: int  # the page the records fall in

    def page_json(self, base_url: str) -> dict[str, Any]:
        pages = (self.total + self.limit - 1) // self.limit
        return {
            "current": self.current,
            "pages": pages,
            "size": self.limit,
            "total": self.total,
            "data": [record.to_json(base_url) for record in self.records],
        }


def select(
    project: Project,
    query: ListNotebooksQuery,
    own_user_id: str | None,
    offset_is_page: bool = False,
) -> ListResult:
    """Filter, sort and page. `own_user_id` set: only that user's notebooks (`/notebooks`).

    `offset` is a record offset (documented), or a page number when `offset_is_page`.
    """
    limit = query.limit or DEFAULT_LIMIT
    offset = query.offset or 0
    start = offset * limit if offset_is_page else offset
    owner = query.owner or own_user_id
    feature = query.feature or Feature.NOTEBOOK
    if query.id is not None:
        one = project.records.get(query.id)
        base = [one] if one is not None and one.feature is feature else []
    else:
        base = _view(project, query, owner, feature)
    predicate = _predicate(query, owner if query.id is not None else None)
    rows = base
    if predicate is not None and query.id is not None:
        rows = [r for r in base if predicate(r)]  # at most one row: nothing to cache
    elif predicate is not None:
        # Filtered results are cached too: a keeper pass pages through the same filter.
        key = ("filtered", owner, feature, query.model_dump_json(exclude={"limit", "offset"}))
        cached = project.views.get(key)
        if cached is not None and cached[0] == project.version:
            rows = cached[1]
        else:
            rows = [r for r in base if predicate(r)]
            _remember(project, key, rows)
    current = offset if offset_is_page else offset // limit
    return ListResult(rows[start : start + limit], len(rows), limit, current)


def _remember(project: Project, key: tuple[Any, ...], rows: list[NotebookRecord]) -> None:
    """Cache a view; every name lookup is its own key, so the cache is bounded."""
    if len(project.views) >= MAX_CACHED_VIEWS:
        project.views.clear()
    project.views[key] = (project.version, rows)


def _view(
    project: Project,
    query: ListNotebooksQuery,
    owner: str | None,
    feature: Feature,
) -> list[NotebookRecord]:
    """Cached sorted view for (owner, status, feature, sort); rebuilt when anything changed."""
    keys = _sort_keys(query.sort_key)
    descending = (query.sort_dir or SortDir.DESC) is SortDir.DESC
    cache_key = (owner, query.status, feature, keys, descending)
    cached = project.views.get(cache_key)
    if cached is not None and cached[0] == project.version:
        return cached[1]
    rows = [
        r
        for r in project.records.values()
        if r.feature is feature
        and (query.status is None or r.status is query.status)
        and (owner is None or r.user.user_id == owner)
    ]
    rows.sort(key=lambda r: (*(_sort_value(r, k) for k in keys), r.seq), reverse=descending)
    _remember(project, cache_key, rows)
    return rows


def _sort_keys(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ("create_at",)
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    unknown = [k for k in keys if k not in SORT_KEYS]
    if unknown:
        raise bad_request(
            "0104", f"sort_key {','.join(unknown)} is not supported; use {', '.join(SORT_KEYS)}"
        )
    return keys or ("create_at",)


def _sort_value(record: NotebookRecord, key: str) -> Any:
    if key == "status":
        return record.status.value
    value = getattr(record, key)
    return value


def _parse_tags(raw: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for item in raw.split(","):
        if not item:
            continue
        key, sep, value = item.partition("|")
        pairs.append((key, value if sep else None))
    return pairs


def _predicate(
    query: ListNotebooksQuery, owner: str | None
) -> Callable[[NotebookRecord], bool] | None:
    """The filters the cached views do not cover, as one function (None: nothing to check)."""
    checks: list[Callable[[NotebookRecord], bool]] = []
    if query.id is not None and query.status is not None:
        status = query.status
        checks.append(lambda r: r.status is status)
    if owner is not None:
        checks.append(lambda r: r.user.user_id == owner)
    if query.name:
        needle = query.name.lower()
        checks.append(lambda r: needle in r.name.lower())
    if query.description:
        text = query.description.lower()
        checks.append(lambda r: text in r.description.lower())
    simple: list[tuple[str | None, Callable[[NotebookRecord], Any]]] = [
        (query.flavor, lambda r: r.flavor),
        (query.image_id, lambda r: r.image.get("id")),
        (query.workspace_id, lambda r: r.workspace_id),
        (query.pool_id, lambda r: (r.pool or {}).get("id")),
        (query.pool_name, lambda r: (r.pool or {}).get("name")),
        (query.swr_path, lambda r: r.image.get("swr_path")),
        (query.ip, lambda r: r.ip),
        (query.username, lambda r: r.user.user_name),
    ]
    for wanted, getter in simple:
        if wanted is not None:
            checks.append(lambda r, w=wanted, g=getter: g(r) == w)  # type: ignore[misc]
    if query.tags:
        pairs = _parse_tags(query.tags)
        checks.append(
            lambda r: all(k in r.tags and (v is None or r.tags[k] == v) for k, v in pairs)
        )
    if not checks:
        return None
    return lambda r: all(check(r) for check in checks)
