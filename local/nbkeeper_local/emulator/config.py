"""What an emulator is configured with: `nbkeeper emulator` flags and env vars, or tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from .loose import Looseness
from .records import Identity, Timings

# Documented demo credentials, used when HUAWEICLOUD_SDK_AK/SK are unset. Local use only.
DEMO_ACCESS_KEY = "NBKEEPERDEMOACCESSKEY"
DEMO_SECRET_KEY = "nbkeeper-demo-secret-key-local-only"
DEMO_AUTH_TOKEN = "nbkeeper-demo-iam-token"
DEMO_IDENTITY = Identity(user_id="5f3c9a0e7b2d4c1e8a6f0b9d3e2c1a7f", user_name="nbkeeper-admin")


@dataclass
class EmulatorConfig:
    """Everything `nbkeeper emulator` flags and env vars can set; tests build it directly.

    The defaults answer like the documentation: a missing notebook is ModelArts.6309 with HTTP
    400 (`not_found_status=404` for the other answer seen in the wild), `offset` is a record
    offset (`offset_reading="page"` reads it as a page number), replies are exact
    (`loose_rate` > 0: see loose.py).
    """

    access_key: str = DEMO_ACCESS_KEY
    secret_key: str = DEMO_SECRET_KEY
    auth_token: str | None = DEMO_AUTH_TOKEN
    identity: Identity = DEMO_IDENTITY
    timings: Timings = field(default_factory=Timings)
    latency_ms: float = 0.0
    jupyter_latency_ms: float | None = None  # None: same as latency_ms
    fault_rate: float = 0.0
    rate_limit: float | None = None  # requests per second over the ModelArts API
    rate_burst: float | None = None
    retry_after_s: int = 2
    seed: int = 0
    not_found_status: int = 400
    require_stop_before_delete: bool = False  # True: deleting a RUNNING notebook is 6304
    max_skew_s: int = 15 * 60
    offset_reading: str = "record"  # or "page"
    loose_rate: float = 0.0
    loose_kinds: tuple[Looseness, ...] | None = None  # None: every kind

    def __post_init__(self) -> None:
        if self.not_found_status not in (400, 404):
            raise ValueError("not_found_status must be 400 or 404")
        if self.offset_reading not in ("record", "page"):
            raise ValueError("offset_reading must be 'record' or 'page'")
