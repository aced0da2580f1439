"""Local ModelArts notebook API emulator (never deployed). See docs/emulator.md."""

from .clock import SimClock
from .config import (
    DEMO_ACCESS_KEY,
    DEMO_AUTH_TOKEN,
    DEMO_IDENTITY,
    DEMO_SECRET_KEY,
    EmulatorConfig,
)
from .core import Emulator
from .faults import ConnectionDroppedError, FaultKind, FaultRule, Scope
from .fleet import DEMO_PROJECT_ID, FleetSpec
from .jupyter import ActivityPattern
from .loose import Looseness
from .records import ApiError, Identity, Timings

__all__ = [
    "DEMO_ACCESS_KEY",
    "DEMO_AUTH_TOKEN",
    "DEMO_IDENTITY",
    "DEMO_PROJECT_ID",
    "DEMO_SECRET_KEY",
    "ActivityPattern",
    "ApiError",
    "ConnectionDroppedError",
    "Emulator",
    "EmulatorConfig",
    "FaultKind",
    "FaultRule",
    "FleetSpec",
    "Identity",
    "Looseness",
    "Scope",
    "SimClock",
    "Timings",
]
