"""Local ModelArts notebook API emulator (never deployed). See docs/emulator.md."""

from .clock import SimClock
from .core import (
    DEMO_ACCESS_KEY,
    DEMO_AUTH_TOKEN,
    DEMO_IDENTITY,
    DEMO_SECRET_KEY,
    ConnectionDroppedError,
    Emulator,
    EmulatorConfig,
)
from .faults import FaultKind, FaultRule, Scope
from .fleet import DEMO_PROJECT_ID, FleetSpec
from .jupyter import ActivityPattern
from .state import ApiError, Identity, Timings

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
    "Scope",
    "SimClock",
    "Timings",
]
