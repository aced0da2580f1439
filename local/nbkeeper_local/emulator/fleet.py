"""Seeded fleets: N notebooks across projects, owners, flavors, tags and activity patterns."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from nbkeeper.modelarts.schemas import HOUR_MS, Feature, LeaseType, NotebookStatus

from .catalogue import FLAVORS, IMAGES
from .jupyter import ActivityPattern, Kernel
from .machine import NotebookStore
from .records import Identity, NotebookRecord, Pending

S = NotebookStatus
MINUTE_MS = 60_000
DEMO_PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
OWNER_TAG = "owner"
TEAMS = ("vision", "nlp", "speech", "recsys", "platform")
WORDS = ("train", "explore", "eval", "finetune", "debug", "etl", "demo", "bench")

T = TypeVar("T")

DEFAULT_STATUS_WEIGHTS: Mapping[NotebookStatus, float] = {
    S.RUNNING: 0.6,
    S.STOPPED: 0.3,
    S.CREATING: 0.02,
    S.STARTING: 0.02,
    S.STOPPING: 0.02,
    S.START_FAILED: 0.02,
    S.CREATE_FAILED: 0.02,
}
DEFAULT_ACTIVITY_WEIGHTS: Mapping[ActivityPattern, float] = {
    ActivityPattern.IDLE: 0.5,
    ActivityPattern.ACTIVE: 0.3,
    ActivityPattern.BUSY: 0.15,
    ActivityPattern.UNREACHABLE: 0.05,
}


def user(index: int) -> Identity:
    """The i-th demo user (32-char lowercase hex id, as ModelArts user ids look)."""
    return Identity(user_id=f"{index + 1:032x}", user_name=f"user{index + 1:02d}")


@dataclass
class FleetSpec:
    """What to seed. Defaults give a plausible mixed fleet in one demo project."""

    size: int = 100
    projects: Sequence[str] = (DEMO_PROJECT_ID,)
    users: int = 20
    status_weights: Mapping[NotebookStatus, float] = field(
        default_factory=lambda: dict(DEFAULT_STATUS_WEIGHTS)
    )
    activity_weights: Mapping[ActivityPattern, float] = field(
        default_factory=lambda: dict(DEFAULT_ACTIVITY_WEIGHTS)
    )
    keep_tag_fraction: float = 0.05  # notebooks tagged nbkeeper.keep=true (opted out)
    seed: int = 0

    def __post_init__(self) -> None:
        # Accept plain strings (from JSON, e.g. the /_emulator/fleet route) as keys.
        self.status_weights = {NotebookStatus(k): v for k, v in self.status_weights.items()}
        self.activity_weights = {ActivityPattern(k): v for k, v in self.activity_weights.items()}
        self.projects = tuple(self.projects)


def _pick(rng: random.Random, weights: Mapping[T, float]) -> T:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def seed_fleet(store: NotebookStore, spec: FleetSpec) -> list[NotebookRecord]:
    """Add `spec.size` notebooks, created in the last 3 days, leases ending 10 min to 4 h ahead."""
    rng = random.Random(spec.seed)
    flavors = [f["id"] for f in FLAVORS if f["feature"] == "NOTEBOOK" and not f["sold_out"]]
    images = list(IMAGES)
    created: list[NotebookRecord] = []
    with store.lock:
        now = store.now_ms()
        starts = sorted(now - rng.randint(5 * MINUTE_MS, 72 * HOUR_MS) for _ in range(spec.size))
        for index, create_at in enumerate(starts):
            owner = user(rng.randrange(spec.users))
            status = _pick(rng, spec.status_weights)
            record = store._new_record(
                spec.projects[index % len(spec.projects)],
                name=f"{owner.user_name}-{rng.choice(WORDS)}-{index}",
                flavor=rng.choice(flavors),
                image_id=rng.choice(images),
                volume={
                    "category": "EVS",
                    "ownership": "MANAGED",
                    "capacity": rng.choice((5, 50, 100)),
                },
                feature=Feature.NOTEBOOK,
                workspace_id="0",
                user=owner,
                create_at=create_at,
                run_length_ms=2 * HOUR_MS,
                lease_type=LeaseType.TIMING,
                status=status,
            )
            record.tags = {OWNER_TAG: owner.user_name, "team": rng.choice(TEAMS)}
            if rng.random() < spec.keep_tag_fraction:
                record.tags["nbkeeper.keep"] = "true"
            record.lease_duration = (now - create_at) + rng.randint(10 * MINUTE_MS, 4 * HOUR_MS)
            record.lease_update_at = now - rng.randint(0, 2 * HOUR_MS)
            _settle_seeded(store, record, status, now, rng, spec)
            created.append(record)
    return created


def _settle_seeded(
    store: NotebookStore,
    record: NotebookRecord,
    status: NotebookStatus,
    now: int,
    rng: random.Random,
    spec: FleetSpec,
) -> None:
    if status is S.RUNNING:
        started = max(record.create_at, now - rng.randint(0, 8 * HOUR_MS))
        jupyter = record.jupyter
        jupyter.pattern = _pick(rng, spec.activity_weights)
        jupyter.started_ms = started
        jupyter.last_activity_ms = max(started, now - rng.randint(0, 6 * HOUR_MS))
        kernels = rng.randint(0, 2) if jupyter.pattern is ActivityPattern.IDLE else 1
        jupyter.kernels = [
            Kernel(id=store.new_id(), last_activity_ms=jupyter.last_activity_ms)
            for _ in range(kernels)
        ]
        store._arm_lease(record, now)
    elif status.is_transient:
        target = {S.CREATING: S.RUNNING, S.STARTING: S.RUNNING, S.STOPPING: S.STOPPED}[status]
        delay = {
            S.CREATING: store.timings.create_s,
            S.STARTING: store.timings.start_s,
            S.STOPPING: store.timings.stop_s,
        }[status]
        record.settle_gen += 1
        settle_at = now + int(delay * 1000 * rng.random())
        record.pending = Pending(target, settle_at)
        store._schedule(settle_at, "settle", record, record.settle_gen)
    elif status in (S.CREATE_FAILED, S.START_FAILED):
        record.fail_reason = "Insufficient resources in the pool, please try again later."
