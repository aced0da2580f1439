"""Saving a notebook as an image (`POST .../notebooks/{id}/create-image`): a transition of the
notebook store with an image attached. The notebook is SNAPSHOTTING for `Timings.snapshot_s`,
then RUNNING again; at the same moment the project's new DEDICATED image goes from CREATING to
ACTIVE, or CREATE_FAILED when `fail_next_save` scripted a failure (the notebook runs on).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from nbkeeper.modelarts.images import ImageCreateRequest
from nbkeeper.modelarts.schemas import NotebookStatus

from .catalogue import FLAVORS_BY_ID, ImageCatalogue
from .records import ApiError, FailOp, NotebookRecord, Pending, Timings, bad_request

S = NotebookStatus
DEFAULT_TAG = "latest"  # the emulator's choice for a save without a tag (the docs say none)


class NotebookStore(Protocol):
    """What a save needs of `machine.NotebookStore` (which imports this module)."""

    images: ImageCatalogue
    timings: Timings

    @property
    def lock(self) -> AbstractContextManager[Any]: ...
    def now_ms(self) -> int: ...
    def new_id(self) -> str: ...
    def _get(self, project_id: str, notebook_id: str) -> NotebookRecord: ...
    def _busy(self, record: NotebookRecord) -> ApiError: ...
    def _take_failure(self, op: FailOp) -> str | None: ...
    def _set_status(self, record: NotebookRecord, status: NotebookStatus, at_ms: int) -> None: ...
    def _arm_lease(self, record: NotebookRecord, at_ms: int) -> None: ...
    def _begin(
        self,
        record: NotebookRecord,
        transient: NotebookStatus,
        target: NotebookStatus,
        at_ms: int,
        delay_s: float,
        fail_reason: str | None = None,
    ) -> None: ...


def save_image(
    store: NotebookStore, project_id: str, notebook_id: str, request: ImageCreateRequest
) -> dict[str, Any]:
    """Begin saving a RUNNING notebook; the reply is the image (CREATING). Refused: a notebook
    between states (6357), not running (6327), `namespace/name:tag` taken (0103)."""
    with store.lock:
        now = store.now_ms()
        record = store._get(project_id, notebook_id)
        if record.status.is_transient:
            raise store._busy(record)
        if record.status is not S.RUNNING:
            raise bad_request(
                "6327",
                f"The notebook instance is not running (it is {record.status.value}); "
                "only a running instance can be saved as an image.",
            )
        tag = request.tag or DEFAULT_TAG
        if store.images.find_own(project_id, request.namespace, request.name, tag):
            raise bad_request(
                "0103",
                f"Duplicate names: the image {request.namespace}/{request.name}:{tag} "
                "already exists.",
            )
        flavor = FLAVORS_BY_ID.get(record.flavor, {})
        image = store.images.add_own(
            project_id,
            store.new_id(),
            request.name,
            tag,
            status="CREATING",
            arch=flavor.get("arch", "X86_64"),
            categories=(flavor.get("category", "CPU"),),
            created_ms=now,
            namespace=request.namespace,
            description=request.description or "",
        )
        failure = store._take_failure(FailOp.SAVE)
        store._begin(record, S.SNAPSHOTTING, S.RUNNING, now, store.timings.snapshot_s, failure)
        assert record.pending is not None
        record.pending.image_id = image["id"]
        return image


def settle_save(store: NotebookStore, record: NotebookRecord, pending: Pending, at_ms: int) -> None:
    """A save ended: the image ACTIVE (or CREATE_FAILED), the notebook RUNNING again. The
    container kept running, so Jupyter is not restarted; a lease that ended meanwhile stops the
    notebook now (auto-stop waits for the save, as for any other operation)."""
    assert pending.image_id is not None
    status = "CREATE_FAILED" if pending.fail_reason is not None else "ACTIVE"
    store.images.settle(record.project_id, pending.image_id, status, at_ms, pending.fail_reason)
    store._set_status(record, S.RUNNING, at_ms)
    store._arm_lease(record, at_ms)
