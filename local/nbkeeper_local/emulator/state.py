"""Notebook store and state machine on a simulated clock.

Every transition is an event with a timestamp in a heap. Before any read or write the store
applies all events due by "now", in time order and at their own timestamps, so the state a
client sees does not depend on when (or whether) anyone looked in between: lazy, but consistent.
Indexes (by id, by status, cached sorted views) keep list/show fast for 10,000 notebooks.
"""

from __future__ import annotations

import heapq
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nbkeeper.modelarts.schemas import (
    LEASE_MIN_MS,
    EndpointsReq,
    Feature,
    LeaseType,
    ListNotebooksQuery,
    NotebookCreateRequest,
    NotebookStatus,
    NotebookUpdateRequest,
    SortDir,
    TagReq,
    VolumeCategory,
)

from .catalogue import FLAVORS_BY_ID, image_for
from .clock import SimClock
from .jupyter import ActivityPattern, JupyterState

S = NotebookStatus
DEFAULT_LIMIT = 10
SORT_KEYS = ("create_at", "name", "status", "flavor", "update_at")
MAX_CACHED_VIEWS = 64


class ApiError(Exception):
    """A Huawei-style error reply: HTTP status, `error_code` and `error_msg`."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, f"ModelArts.{code}", message)


@dataclass(frozen=True)
class Identity:
    """Who a credential belongs to (the `user` of the notebooks it creates)."""

    user_id: str
    user_name: str
    domain_id: str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
    domain_name: str = "nbkeeper-demo"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "name": self.user_name,
            "domain": {"id": self.domain_id, "name": self.domain_name},
        }


@dataclass
class Timings:
    """How long transient states last, in simulated seconds."""

    create_s: float = 10.0
    start_s: float = 5.0
    stop_s: float = 5.0
    delete_s: float = 2.0


class FailOp(StrEnum):
    CREATE = "create"
    START = "start"


@dataclass
class Pending:
    target: NotebookStatus
    at_ms: int
    fail_reason: str | None = None


@dataclass
class NotebookRecord:
    project_id: str
    id: str
    seq: int
    name: str
    status: NotebookStatus
    flavor: str
    image: dict[str, Any]
    volume: dict[str, Any]
    feature: Feature
    workspace_id: str
    user: Identity
    token: str
    create_at: int
    update_at: int
    lease_duration: int
    lease_type: LeaseType
    lease_update_at: int
    run_length_ms: int  # the last "run this long" a client asked for (create/renew/start)
    description: str = ""
    lease_enable: bool = True
    pool: dict[str, Any] | None = None
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    fail_reason: str | None = None
    ip: str = "192.168.0.10"
    pending: Pending | None = None
    settle_gen: int = 0
    lease_gen: int = 0
    jupyter: JupyterState = field(default_factory=JupyterState)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def deadline_ms(self) -> int:
        return self.create_at + self.lease_duration

    def lease_json(self) -> dict[str, Any]:
        return {
            "create_at": self.create_at,
            "duration": self.lease_duration,
            "enable": self.lease_enable,
            "type": self.lease_type.value,
            "update_at": self.lease_update_at,
        }

    def server_path(self) -> str:
        """Path of the Jupyter Server base (the `url` without `/lab`)."""
        return f"/jupyter/{self.project_id}/{self.id}"

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The NotebookResp body (token revealed: clients need it to reach Jupyter)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status.value,
            "fail_reason": self.fail_reason,
            "flavor": self.flavor,
            "image": self.image,
            "lease": self.lease_json(),
            "url": f"{base_url.rstrip('/')}{self.server_path()}/lab",
            "token": self.token,
            "endpoints": self.endpoints,
            "volume": self.volume,
            "pool": self.pool,
            "workspace_id": self.workspace_id,
            "feature": self.feature.value,
            "billing_items": ["STORAGE", "COMPUTE"],
            "user": self.user.to_json(),
            "user_id": self.user.user_id,
            "action_progress": self._progress(),
            "tags": [{"key": k, "value": v} for k, v in self.tags.items()],
            "ip": self.ip,
            "jupyter_version": "3.2.9",
            "is_need_credentials": False,
            "create_at": self.create_at,
            "update_at": self.update_at,
            **self.extra,
        }

    def _progress(self) -> list[dict[str, Any]]:
        if self.status not in (S.CREATING, S.STARTING):
            return []
        steps = ("storage", "compute", "network", "init")
        return [
            {
                "notebook_id": self.id,
                "step": index + 1,
                "status": "PROCESSING" if index == 0 else "WAITING",
                "step_description": step,
            }
            for index, step in enumerate(steps)
        ]


@dataclass
class Project:
    records: dict[str, NotebookRecord] = field(default_factory=dict)
    version: int = 0
    views: dict[tuple[Any, ...], tuple[int, list[NotebookRecord]]] = field(default_factory=dict)


@dataclass(order=True)
class _Event:
    at_ms: int
    seq: int
    kind: str = field(compare=False)
    project_id: str = field(compare=False)
    notebook_id: str = field(compare=False)
    gen: int = field(compare=False)


@dataclass
class ListResult:
    records: list[NotebookRecord]
    total: int
    offset: int
    limit: int

    def page_json(self, base_url: str) -> dict[str, Any]:
        """Page fields: offset is a record offset, `current` the page it falls in."""
        pages = (self.total + self.limit - 1) // self.limit
        return {
            "current": self.offset // self.limit,
            "pages": pages,
            "size": self.limit,
            "total": self.total,
            "data": [record.to_json(base_url) for record in self.records],
        }


class NotebookStore:
    """All projects' notebooks, their transitions and leases. Thread-safe (one lock)."""

    def __init__(
        self,
        clock: SimClock,
        timings: Timings | None = None,
        seed: int = 0,
        not_found_status: int = 404,
        require_stop_before_delete: bool = False,
    ) -> None:
        self.clock = clock
        self.timings = timings or Timings()
        self.not_found_status = not_found_status
        self.require_stop_before_delete = require_stop_before_delete
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.projects: dict[str, Project] = {}
        self._events: list[_Event] = []
        self._seq = 0
        self._failures: dict[FailOp, deque[str]] = {op: deque() for op in FailOp}

    # ------------------------------------------------------------ plumbing

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def project(self, project_id: str) -> Project:
        found = self.projects.get(project_id)
        if found is None:
            found = self.projects[project_id] = Project()
        return found

    def now_ms(self) -> int:
        """Apply everything due, then return the simulated now."""
        now = self.clock.now_ms()
        self._apply_due(now)
        return now

    def _schedule(self, at_ms: int, kind: str, record: NotebookRecord, gen: int) -> None:
        heapq.heappush(
            self._events, _Event(at_ms, self._next_seq(), kind, record.project_id, record.id, gen)
        )

    def _apply_due(self, now_ms: int) -> None:
        events = self._events
        while events and events[0].at_ms <= now_ms:
            event = heapq.heappop(events)
            record = self.projects[event.project_id].records.get(event.notebook_id)
            if record is None:
                continue
            if event.kind == "settle" and event.gen == record.settle_gen and record.pending:
                self._settle(record, event.at_ms)
            elif event.kind == "lease" and event.gen == record.lease_gen:
                self._expire(record, event.at_ms)

    def _set_status(self, record: NotebookRecord, status: NotebookStatus, at_ms: int) -> None:
        record.status = status
        record.update_at = at_ms
        self.project(record.project_id).version += 1

    def _begin(
        self,
        record: NotebookRecord,
        transient: NotebookStatus,
        target: NotebookStatus,
        at_ms: int,
        delay_s: float,
        fail_reason: str | None = None,
    ) -> None:
        self._set_status(record, transient, at_ms)
        record.fail_reason = None
        record.lease_gen += 1  # no auto-stop while an operation runs
        record.settle_gen += 1
        settle_at = at_ms + int(delay_s * 1000)
        record.pending = Pending(target, settle_at, fail_reason)
        self._schedule(settle_at, "settle", record, record.settle_gen)

    def _settle(self, record: NotebookRecord, at_ms: int) -> None:
        pending = record.pending
        assert pending is not None
        record.pending = None
        if pending.target is S.DELETED:
            del self.projects[record.project_id].records[record.id]
            self.project(record.project_id).version += 1
            return
        if pending.fail_reason is not None:
            failed = S.CREATE_FAILED if record.status is S.CREATING else S.START_FAILED
            self._set_status(record, failed, at_ms)
            record.fail_reason = pending.fail_reason
            return
        self._set_status(record, pending.target, at_ms)
        if pending.target is S.RUNNING:
            record.jupyter.restart(at_ms, self.rng)
            self._arm_lease(record, at_ms)

    def _arm_lease(self, record: NotebookRecord, at_ms: int) -> None:
        record.lease_gen += 1
        if record.lease_enable and record.status is S.RUNNING:
            self._schedule(max(record.deadline_ms, at_ms), "lease", record, record.lease_gen)

    def _expire(self, record: NotebookRecord, at_ms: int) -> None:
        """The lease ran out: the service stops the notebook by itself."""
        if record.status is not S.RUNNING:
            return
        self._begin(record, S.STOPPING, S.STOPPED, at_ms, self.timings.stop_s)

    def _get(self, project_id: str, notebook_id: str) -> NotebookRecord:
        record = self.project(project_id).records.get(notebook_id)
        if record is None:
            raise ApiError(
                self.not_found_status,
                "ModelArts.6309",
                f"Notebook instance {notebook_id} does not exist.",
            )
        return record

    # ------------------------------------------------------------ failure injection

    def fail_next(self, op: FailOp, count: int = 1, reason: str | None = None) -> None:
        """Make the next `count` creates (or starts) end in CREATE_FAILED (START_FAILED)."""
        text = reason or (
            "Insufficient resources in the pool, please try again later."
            if op is FailOp.START
            else "Failed to create the notebook instance: storage allocation failed."
        )
        with self.lock:
            self._failures[op].extend([text] * count)

    def _take_failure(self, op: FailOp) -> str | None:
        queue = self._failures[op]
        return queue.popleft() if queue else None

    # ------------------------------------------------------------ API operations

    def create(
        self, project_id: str, request: NotebookCreateRequest, user: Identity
    ) -> NotebookRecord:
        with self.lock:
            now = self.now_ms()
            flavor = request.flavor or "custom.flavor.spec.code"
            self._check_flavor(flavor)
            feature = request.feature or Feature.NOTEBOOK
            if feature is Feature.DEFAULT and any(
                r.feature is Feature.DEFAULT and r.user.user_id == user.user_id
                for r in self.project(project_id).records.values()
            ):
                raise bad_request(
                    "6302", "Only one free CodeLab (DEFAULT) instance is allowed per user."
                )
            lease = request.effective_lease
            run_length = lease.duration or LEASE_MIN_MS
            record = self._new_record(
                project_id,
                name=request.name,
                flavor=flavor,
                image_id=request.image_id,
                volume=request.volume.model_dump(mode="json", exclude_none=True),
                feature=feature,
                workspace_id=request.workspace_id or "0",
                user=user,
                create_at=now,
                run_length_ms=run_length,
                lease_type=lease.type or LeaseType.TIMING,
                status=S.CREATING,
            )
            record.description = request.description or ""
            if request.pool_id:
                record.pool = {"id": request.pool_id, "name": f"pool-{request.pool_id[:8]}"}
            record.endpoints = stored_endpoints(request.endpoints or [])
            self._begin(
                record,
                S.CREATING,
                S.RUNNING,
                now,
                self.timings.create_s,
                self._take_failure(FailOp.CREATE),
            )
            return record

    def _check_flavor(self, flavor: str) -> None:
        known = FLAVORS_BY_ID.get(flavor)
        if known is None and flavor != "custom.flavor.spec.code":
            raise bad_request("6323", f"Flavor {flavor} is not supported in this region.")
        if known is not None and known["sold_out"]:
            raise bad_request("6329", f"Flavor {flavor} is sold out.")

    def _new_record(
        self,
        project_id: str,
        *,
        name: str,
        flavor: str,
        image_id: str,
        volume: dict[str, Any],
        feature: Feature,
        workspace_id: str,
        user: Identity,
        create_at: int,
        run_length_ms: int,
        lease_type: LeaseType,
        status: NotebookStatus,
    ) -> NotebookRecord:
        volume = {
            "category": str(volume.get("category", "EVS")).upper(),
            "ownership": str(volume.get("ownership", "MANAGED")).upper(),
            "capacity": volume.get("capacity")
            or (50 if str(volume.get("category", "")).upper() == VolumeCategory.EFS else 5),
            "mount_path": "/home/ma-user/work/",
        }
        seq = self._next_seq()
        record = NotebookRecord(
            project_id=project_id,
            id=self.new_id(),
            seq=seq,
            name=name,
            status=status,
            flavor=flavor,
            image=image_for(image_id),
            volume=volume,
            feature=feature,
            workspace_id=workspace_id,
            user=user,
            token=f"{self.rng.getrandbits(128):032x}",
            create_at=create_at,
            update_at=create_at,
            lease_duration=run_length_ms,
            lease_type=lease_type,
            lease_update_at=create_at,
            run_length_ms=run_length_ms,
            ip=f"192.168.{(seq >> 8) % 256}.{seq % 256}",
        )
        project = self.project(project_id)
        project.records[record.id] = record
        project.version += 1
        return record

    def get(self, project_id: str, notebook_id: str) -> NotebookRecord:
        with self.lock:
            self.now_ms()
            return self._get(project_id, notebook_id)

    def update(
        self, project_id: str, notebook_id: str, request: NotebookUpdateRequest
    ) -> NotebookRecord:
        with self.lock:
            now = self.now_ms()
            record = self._get(project_id, notebook_id)
            if record.status is not S.STOPPED:
                raise bad_request(
                    "6347",
                    f"The notebook instance can be updated only when it is stopped (it is {record.status.value}).",
                )
            if request.flavor is not None:
                self._check_flavor(request.flavor)
            if request.storage_new_size is not None:
                current = int(record.volume.get("capacity", 0))
                if request.storage_new_size <= current:
                    raise bad_request(
                        "6331",
                        f"storage can only grow: the notebook has {current} GB; ask for more than that.",
                    )
                record.volume["capacity"] = request.storage_new_size
            if request.name is not None:
                record.name = request.name
            if request.description is not None:
                record.description = request.description
            if request.flavor is not None:
                record.flavor = request.flavor
            if request.image_id is not None:
                record.image = image_for(request.image_id)
            if request.endpoints is not None:
                record.endpoints = stored_endpoints(request.endpoints)
            record.update_at = now
            self.project(project_id).version += 1
            return record

    def delete(self, project_id: str, notebook_id: str) -> NotebookRecord:
        with self.lock:
            now = self.now_ms()
            record = self._get(project_id, notebook_id)
            if record.status.is_transient:
                raise self._busy(record)
            if self.require_stop_before_delete and record.status is S.RUNNING:
                raise bad_request("6304", "Stop the notebook instance before deleting it.")
            self._begin(record, S.DELETING, S.DELETED, now, self.timings.delete_s)
            return record

    def start(
        self,
        project_id: str,
        notebook_id: str,
        duration_ms: int | None = None,
        lease_type: LeaseType | None = None,
    ) -> NotebookRecord:
        with self.lock:
            now = self.now_ms()
            record = self._get(project_id, notebook_id)
            if record.status is S.RUNNING:
                raise bad_request("6305", "The notebook instance is already running.")
            if record.status is S.STARTING:
                raise bad_request("6306", "The notebook instance is starting.")
            if record.status not in (S.STOPPED, S.START_FAILED):
                raise self._busy(record)
            if duration_ms is not None:
                record.run_length_ms = duration_ms
            # Documented: duration is recomputed as (start time - create_at) + requested.
            record.lease_duration = (now - record.create_at) + record.run_length_ms
            record.lease_type = lease_type or record.lease_type
            record.lease_enable = True
            record.lease_update_at = now
            self._begin(
                record,
                S.STARTING,
                S.RUNNING,
                now,
                self.timings.start_s,
                self._take_failure(FailOp.START),
            )
            return record

    def stop(self, project_id: str, notebook_id: str) -> NotebookRecord:
        with self.lock:
            now = self.now_ms()
            record = self._get(project_id, notebook_id)
            if record.status is S.STOPPED:
                raise bad_request("6307", "The notebook instance has been stopped.")
            if record.status is S.STOPPING:
                raise bad_request("6308", "The notebook instance is stopping.")
            if record.status is not S.RUNNING:
                raise self._busy(record)
            self._begin(record, S.STOPPING, S.STOPPED, now, self.timings.stop_s)
            return record

    def _busy(self, record: NotebookRecord) -> ApiError:
        return bad_request(
            "6357",
            f"Another operation is in progress or the instance is already in the target state ({record.status.value}).",
        )

    def show_lease(self, project_id: str, notebook_id: str) -> NotebookRecord:
        with self.lock:
            self.now_ms()
            record = self._get(project_id, notebook_id)
            self._require_running(record)
            return record

    def _require_running(self, record: NotebookRecord) -> None:
        if record.status is not S.RUNNING:
            raise bad_request(
                "6327", f"The notebook instance is not running (it is {record.status.value})."
            )

    def renew_lease(
        self, project_id: str, notebook_id: str, duration_ms: int, lease_type: LeaseType
    ) -> NotebookRecord:
        """Run `duration_ms` more from now: duration becomes (now - create_at) + requested."""
        with self.lock:
            now = self.now_ms()
            record = self._get(project_id, notebook_id)
            self._require_running(record)
            record.run_length_ms = duration_ms
            record.lease_duration = (now - record.create_at) + duration_ms
            record.lease_type = lease_type
            record.lease_enable = True
            record.lease_update_at = now
            self._arm_lease(record, now)
            return record

    def add_tags(self, project_id: str, notebook_id: str, tags: Iterable[TagReq]) -> None:
        with self.lock:
            self.now_ms()
            record = self._get(project_id, notebook_id)
            for tag in tags:
                record.tags[tag.key] = tag.value or ""
            self.project(project_id).version += 1

    def remove_tags(self, project_id: str, notebook_id: str, tags: Iterable[TagReq]) -> None:
        with self.lock:
            self.now_ms()
            record = self._get(project_id, notebook_id)
            for tag in tags:
                if tag.key in record.tags and (
                    tag.value is None or record.tags[tag.key] == tag.value
                ):
                    del record.tags[tag.key]
            self.project(project_id).version += 1

    def tag_summary(self, project_id: str) -> dict[str, Any]:
        with self.lock:
            self.now_ms()
            keys: dict[str, set[str]] = {}
            for record in self.project(project_id).records.values():
                for key, value in record.tags.items():
                    keys.setdefault(key, set()).add(value)
            return {"tags": [{"key": k, "values": sorted(v)} for k, v in sorted(keys.items())]}

    def list_notebooks(
        self, project_id: str, query: ListNotebooksQuery, own_user_id: str | None
    ) -> ListResult:
        """Filter, sort and page. `own_user_id` set: only that user's notebooks (`/notebooks`)."""
        with self.lock:
            self.now_ms()
            limit = query.limit or DEFAULT_LIMIT
            offset = query.offset or 0
            owner = query.owner or own_user_id
            feature = query.feature or Feature.NOTEBOOK
            if query.id is not None:
                one = self.project(project_id).records.get(query.id)
                base = [one] if one is not None else []
                base = [r for r in base if r.feature is feature]
            else:
                base = self._view(project_id, query, owner, feature)
            predicate = _predicate(query, owner if query.id is not None else None)
            rows = base
            if predicate is not None and query.id is not None:
                rows = [r for r in base if predicate(r)]  # at most one row: nothing to cache
            elif predicate is not None:
                # Filtered results are cached too: a keeper pass pages through the same filter.
                project = self.project(project_id)
                key = (
                    "filtered",
                    owner,
                    feature,
                    query.model_dump_json(exclude={"limit", "offset"}),
                )
                cached = project.views.get(key)
                if cached is not None and cached[0] == project.version:
                    rows = cached[1]
                else:
                    rows = [r for r in base if predicate(r)]
                    self._remember(project, key, rows)
            return ListResult(rows[offset : offset + limit], len(rows), offset, limit)

    @staticmethod
    def _remember(project: Project, key: tuple[Any, ...], rows: list[NotebookRecord]) -> None:
        """Cache a view; every name lookup is its own key, so the cache is bounded."""
        if len(project.views) >= MAX_CACHED_VIEWS:
            project.views.clear()
        project.views[key] = (project.version, rows)

    def _view(
        self,
        project_id: str,
        query: ListNotebooksQuery,
        owner: str | None,
        feature: Feature,
    ) -> list[NotebookRecord]:
        """Cached sorted view for (owner, status, feature, sort); rebuilt when anything changed."""
        project = self.project(project_id)
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
        self._remember(project, cache_key, rows)
        return rows

    # ------------------------------------------------------------ control (tests, demo)

    def force_status(self, project_id: str, notebook_id: str, status: NotebookStatus) -> None:
        """Put a notebook straight into `status` (e.g. ERROR, FROZEN); pending work is dropped."""
        with self.lock:
            now = self.now_ms()
            record = self._get(project_id, notebook_id)
            record.pending = None
            record.settle_gen += 1
            self._set_status(record, status, now)
            if status is S.RUNNING:
                record.jupyter.restart(now, self.rng)
            self._arm_lease(record, now)

    def set_activity(
        self,
        project_id: str,
        notebook_id: str,
        *,
        pattern: ActivityPattern | None = None,
        last_activity_ms: int | None = None,
        kernels: list[dict[str, Any]] | None = None,
    ) -> JupyterState:
        """Set what the notebook's Jupyter Server reports (see jupyter.py)."""
        from .jupyter import ExecutionState, Kernel

        with self.lock:
            now = self.now_ms()
            state = self._get(project_id, notebook_id).jupyter
            if pattern is not None:
                state.pattern = pattern
            if last_activity_ms is not None:
                state.last_activity_ms = last_activity_ms
            if kernels is not None:
                state.kernels = [
                    Kernel(
                        id=str(spec.get("id") or self.new_id()),
                        name=str(spec.get("name", "python3")),
                        execution_state=ExecutionState(spec.get("execution_state", "idle")),
                        last_activity_ms=int(spec.get("last_activity_ms", now)),
                        connections=int(spec.get("connections", 1)),
                    )
                    for spec in kernels
                ]
            return state

    def counts(self) -> dict[str, dict[str, int]]:
        with self.lock:
            self.now_ms()
            result: dict[str, dict[str, int]] = {}
            for project_id, project in self.projects.items():
                per: dict[str, int] = {}
                for record in project.records.values():
                    per[record.status.value] = per.get(record.status.value, 0) + 1
                result[project_id] = per
            return result


def stored_endpoints(requested: Iterable[EndpointsReq]) -> list[dict[str, Any]]:
    """Endpoints as NotebookResp returns them (`service`, `key_pair_names`, `allowed_access_ips`),
    from a create or update body. The update API documents `dev_service` / `ssh_keys` for the
    same two fields, so either spelling is stored under the response's names."""
    return [
        {
            "service": (e.service or e.dev_service or "NOTEBOOK").upper(),
            "key_pair_names": list(e.key_pair_names or e.ssh_keys or []),
            "allowed_access_ips": list(e.allowed_access_ips or []),
        }
        for e in requested
    ]


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
