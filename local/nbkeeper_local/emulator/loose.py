"""Loose replies: what the real ModelArts may answer that the emulator otherwise never does.

At `rate`, a notebook is *loose*. Which notebooks, and how, follows from a hash of (seed,
notebook id), so the same notebooks are loose in every reply whatever the order of requests
(pages fetched concurrently included): deterministic for a seed. A loose notebook gets one of:

- `unknown_values`: enum-like fields carry values nobody documented (feature, lease type, volume
  category and ownership, endpoints' service, image type and arch).
- `nulls`: null for the lists and objects that say nothing the notebook needs to be understood
  (endpoints, volume, image, pool, action_progress, billing_items, and tags when it has none).
- `extra_fields`: fields nobody documented, at the top and inside lease and volume.
- `broken`: in list pages only, a record no client can read as a notebook; its `id` stays
  readable. Elsewhere (show, start, ...) such a notebook gets `extra_fields` instead.

Pages with loose replies on also answer `"data": null` when empty and carry an extra field.
A scripted or random `FaultKind.LOOSE` makes every notebook of one reply loose.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]

NULLABLE = ("endpoints", "volume", "image", "pool", "action_progress", "billing_items")
UNKNOWN_PREFIX = "FUTURE_"
EXTRA_FIELD = "x_emulator_extra"
# Each makes the record unreadable as a notebook, and none touches the id.
BREAKAGES: tuple[JSON, ...] = (
    {"lease": "until tomorrow"},
    {"create_at": "yesterday"},
    {"lease": {"duration": "long"}},
    {"status": 42},
)


class Looseness(StrEnum):
    UNKNOWN_VALUES = "unknown_values"
    NULLS = "nulls"
    EXTRA_FIELDS = "extra_fields"
    BROKEN = "broken"


class LooseReplies:
    """Decides and applies loose replies. Thread-safe; see the module docstring."""

    def __init__(
        self, rate: float = 0.0, seed: int = 0, kinds: tuple[Looseness, ...] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._choices: dict[str, tuple[bool, Looseness, int]] = {}
        self.rate = 0.0
        self.seed = seed
        self.kinds: tuple[Looseness, ...] = tuple(Looseness)
        self.set(rate, kinds=kinds)
        self.applied: Counter[Looseness] = Counter()
        # Ids of the notebooks served as unreadable records: what a client must report.
        self.broken_ids: set[str] = set()

    def set(
        self, rate: float, seed: int | None = None, kinds: tuple[Looseness, ...] | None = None
    ) -> None:
        """Loosen this fraction of notebooks, each in one of `kinds` (default: every kind)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("loose reply rate must be within [0, 1]")
        with self._lock:
            self.rate = rate
            if seed is not None:
                self.seed = seed
            if kinds:
                self.kinds = tuple(Looseness(k) for k in kinds)
            self._choices.clear()

    @property
    def active(self) -> bool:
        return self.rate > 0

    def looseness(self, notebook_id: str, every: bool = False) -> Looseness | None:
        """How `notebook_id` is loose (None: not at all). `every`: loose whatever the rate."""
        with self._lock:
            choice = self._choices.get(notebook_id)
            if choice is None:
                rng = random.Random(f"{self.seed}:{notebook_id}")
                choice = (rng.random() < self.rate, rng.choice(self.kinds), rng.getrandbits(8))
                self._choices[notebook_id] = choice
        hit, kind, _ = choice
        return kind if hit or every else None

    def _variant(self, notebook_id: str) -> int:
        return self._choices[notebook_id][2]

    def notebook(self, body: JSON, *, in_list: bool = False, every: bool = False) -> JSON:
        """A NotebookResp body, loosened when its notebook is loose."""
        notebook_id = body.get("id")
        if not isinstance(notebook_id, str):
            return body
        kind = self.looseness(notebook_id, every)
        if kind is None:
            return body
        if kind is Looseness.BROKEN and not in_list:
            kind = Looseness.EXTRA_FIELDS
        with self._lock:
            self.applied[kind] += 1
            if kind is Looseness.BROKEN:
                self.broken_ids.add(notebook_id)
        variant = self._variant(notebook_id)
        if kind is Looseness.UNKNOWN_VALUES:
            return _unknown_values(body)
        if kind is Looseness.NULLS:
            return _nulls(body)
        if kind is Looseness.EXTRA_FIELDS:
            return _extra_fields(body, variant)
        return {**body, **BREAKAGES[variant % len(BREAKAGES)]}

    def page(self, body: JSON, every: bool = False) -> JSON:
        """A list page: each notebook loosened on its own; an empty page's `data` is null."""
        if not (self.active or every):
            return body
        records = [self.notebook(record, in_list=True, every=every) for record in body["data"]]
        return {**body, "data": records or None, EXTRA_FIELD: {"page": body.get("current")}}

    def lease(self, body: JSON, notebook_id: str, every: bool = False) -> JSON:
        """A Lease body: an unknown type, or an extra field, when its notebook is loose."""
        kind = self.looseness(notebook_id, every)
        if kind is Looseness.UNKNOWN_VALUES:
            return {**body, "type": UNKNOWN_PREFIX + str(body.get("type"))}
        if kind in (Looseness.EXTRA_FIELDS, Looseness.BROKEN):
            return {**body, EXTRA_FIELD: True}
        return body

    def snapshot(self) -> JSON:
        with self._lock:
            return {
                "rate": self.rate,
                "seed": self.seed,
                "kinds": [k.value for k in self.kinds],
                "applied": {k.value: v for k, v in self.applied.items() if v},
                "broken_ids": len(self.broken_ids),
            }


def _unknown(value: Any) -> Any:
    return UNKNOWN_PREFIX + value if isinstance(value, str) else value


def _unknown_values(body: JSON) -> JSON:
    out = {**body, "feature": _unknown(body.get("feature") or "NOTEBOOK")}
    if isinstance(body.get("lease"), dict):
        out["lease"] = {**body["lease"], "type": _unknown(body["lease"].get("type") or "TIMING")}
    if isinstance(body.get("volume"), dict):
        volume = body["volume"]
        out["volume"] = {
            **volume,
            "category": _unknown(volume.get("category")),
            "ownership": _unknown(volume.get("ownership")),
        }
    if isinstance(body.get("image"), dict):
        image = body["image"]
        out["image"] = {**image, "type": _unknown(image.get("type")), "arch": "RISCV64"}
    endpoints = body.get("endpoints") or [{"service": "NOTEBOOK"}]
    out["endpoints"] = [{**e, "service": _unknown(e.get("service"))} for e in endpoints]
    return out


def _nulls(body: JSON) -> JSON:
    out = {**body, **dict.fromkeys(NULLABLE)}
    if not body.get("tags"):
        out["tags"] = None
    return out


def _extra_fields(body: JSON, variant: int) -> JSON:
    out = {**body, EXTRA_FIELD: {"variant": variant, "items": [1, "two", None]}}
    out["is_need_credentials"] = bool(variant % 2)
    for name in ("lease", "volume"):
        if isinstance(body.get(name), dict):
            out[name] = {**body[name], EXTRA_FIELD: variant}
    return out
