"""Emulated notebooks as records, and the Huawei-style error a request can end in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nbkeeper.modelarts.schemas import (
    EndpointsReq,
    Feature,
    LeaseType,
    NotebookStatus,
    VolumeCategory,
)

from .catalogue import image_for
from .jupyter import JupyterState

S = NotebookStatus


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
    snapshot_s: float = 20.0  # saving a notebook as an image (SNAPSHOTTING)


class FailOp(StrEnum):
    CREATE = "create"
    START = "start"
    SAVE = "save"  # the image ends CREATE_FAILED, the notebook RUNNING again


@dataclass
class Pending:
    target: NotebookStatus
    at_ms: int
    fail_reason: str | None = None
    image_id: str | None = None  # a save (SNAPSHOTTING): the image it makes


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


def new_record(
    project_id: str,
    seq: int,
    notebook_id: str,
    token: str,
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
    """A record as a create (or a seeded fleet) makes it; storage defaults as documented."""
    category = str(volume.get("category", "EVS")).upper()
    stored_volume = {
        "category": category,
        "ownership": str(volume.get("ownership", "MANAGED")).upper(),
        "capacity": volume.get("capacity") or (50 if category == VolumeCategory.EFS else 5),
        "mount_path": "/home/ma-user/work/",
    }
    return NotebookRecord(
        project_id=project_id,
        id=notebook_id,
        seq=seq,
        name=name,
        status=status,
        flavor=flavor,
        image=image_for(image_id),
        volume=stored_volume,
        feature=feature,
        workspace_id=workspace_id,
        user=user,
        token=token,
        create_at=create_at,
        update_at=create_at,
        lease_duration=run_length_ms,
        lease_type=lease_type,
        lease_update_at=create_at,
        run_length_ms=run_length_ms,
        ip=f"192.168.{(seq >> 8) % 256}.{seq % 256}",
    )
