"""Notebook store and state machine on a simulated clock.

Every transition is an event with a timestamp in a heap. Before any read or write the store
applies all events due by "now", in time order and at their own timestamps, so the state a
client sees does not depend on when (or whether) anyone looked in between: lazy, but consistent.
Listing (filters, sorting, cached views) is in `listing.py`; saving a notebook as an image, a
transition with an image attached, in `saving.py`.
"""

from __future__ import annotations

import heapq
import random
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nbkeeper.modelarts.schemas import (
    LEASE_MIN_MS,
    Feature,
    LeaseType,
    ListNotebooksQuery,
    NotebookCreateRequest,
    NotebookStatus,
    NotebookUpdateRequest,
    TagReq,
)

from .catalogue import FLAVORS_BY_ID, ImageCatalogue
from .clock import SimClock
from .jupyter import ActivityPattern, JupyterState
from .listing import ListResult, select
from .records import (
    ApiError,
    FailOp,
    Identity,
    NotebookRecord,
    Pending,
    Project,
    Timings,
    bad_request,
    new_record,
    stored_endpoints,
)
from .saving import settle_save

S = NotebookStatus


@dataclass(order=True)
class _Event:
    at_ms: int
    seq: int
    kind: str = field(compare=False)
    project_id: str = field(compare=False)
    notebook_id: str = field(compare=False)
    gen: int = field(compare=False)


class NotebookStore:
    """All projects' notebooks, their transitions and leases. Thread-safe (one lock)."""

    def __init__(
        self,
        clock: SimClock,
        timings: Timings | None = None,
        seed: int = 0,
        not_found_status: int = 400,
        require_stop_before_delete: bool = False,
        offset_is_page: bool = False,
        images: ImageCatalogue | None = None,
    ) -> None:
        self.clock = clock
        self.images = images or ImageCatalogue()
        self.timings = timings or Timings()
        self.not_found_status = not_found_status
        self.offset_is_page = offset_is_page
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
        if pending.image_id is not None:
            settle_save(self, record, pending, at_ms)
            return
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
        text = (
            reason
            or {
                FailOp.START: "Insufficient resources in the pool, please try again later.",
                FailOp.CREATE: "Failed to create the notebook instance: storage allocation failed.",
                FailOp.SAVE: "Failed to save the image: pushing to SWR timed out.",
            }[op]
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
            record.image = self.images.notebook_image(project_id, request.image_id)
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

    def _new_record(self, project_id: str, **fields: Any) -> NotebookRecord:
        """A new record in `project_id` (fields: see `records.new_record`)."""
        seq = self._next_seq()
        record = new_record(
            project_id, seq, self.new_id(), f"{self.rng.getrandbits(128):032x}", **fields
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
                record.image = self.images.notebook_image(project_id, request.image_id)
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

    def images_listed(self, project_id: str, image_type: str) -> list[dict[str, Any]]:
        """The images of one type, after every save due by now has settled."""
        with self.lock:
            self.now_ms()
            return self.images.listed(project_id, image_type)

    def image(self, project_id: str, image_id: str) -> dict[str, Any] | None:
        with self.lock:
            self.now_ms()
            return self.images.get(project_id, image_id)

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
        """Filter, sort and page (see `listing.select`)."""
        with self.lock:
            self.now_ms()
            return select(self.project(project_id), query, own_user_id, self.offset_is_page)

    # ------------------------------------------------------------ control (tests, demo)

    def force_status(self, project_id: str, notebook_id: str, status: NotebookStatus) -> None:
        """Put a notebook straight into `status` (e.g. ERROR, FROZEN); pending work is dropped."""
        with self.lock:
            now = self.now_ms()
            record = self._get(project_id, notebook_id)
            if record.pending is not None and record.pending.image_id is not None:
                self.images.settle(
                    project_id, record.pending.image_id, "CREATE_FAILED", now, "interrupted"
                )
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
        """Set what the notebook's Jupyter Server reports (see `JupyterState.configure`)."""
        with self.lock:
            now = self.now_ms()
            state = self._get(project_id, notebook_id).jupyter
            state.configure(now, self.new_id, pattern, last_activity_ms, kernels)
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
