"""What nbkeeper's buttons carry: action ids and the one codec for their values.

The lease keeper's warnings render [Keep 2h more] / [Stop now] with a `KeeperValue`; chat-ops
confirmations carry a `ConfirmValue`. Both are written and read here only, so the two sides
cannot drift apart, and anything a click sends that these models refuse (a forged or stale
value) is refused as a whole.

Buttons expire. Each value carries `at` (Unix seconds): a confirmation its issue time, and is
refused 15 minutes later (a Confirm clicked the next day must not run again); a keeper warning
the stop time it announced (the pass's time plus the lead), and is refused 24 hours after it.
Values written before buttons expired have no `at`: a confirmation or a Stop without one is
refused as expired (asking again costs one command), a Keep is still honoured (keeping a
notebook alive is the safe side, and a refused Keep on a warning posted just before the upgrade
would let the keeper stop a notebook its owner asked to keep).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

KEEP_ACTION = "keeper.keep"  # "Keep Nh more": a reservation of N hours from the click
STOP_ACTION = "keeper.stop"  # "Stop now"
CONFIRM_ACTION = "nbkeeper.confirm"
CANCEL_ACTION = "nbkeeper.cancel"
VALUE_MAX = 2000  # Slack's limit for a button value
CONFIRM_MAX_AGE = timedelta(minutes=15)
KEEPER_MAX_AGE = timedelta(hours=24)

V = TypeVar("V", bound="ButtonValue")


class ButtonValueError(ValueError):
    """A button value we did not write, or no longer understand."""


class ButtonValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_age: ClassVar[timedelta]

    at: int | None = Field(default=None, ge=0, le=2**40)  # Unix seconds; see the module doc

    @staticmethod
    def stamp(moment: datetime) -> int:
        return int(moment.timestamp())

    def expired(self, now: datetime) -> bool:
        """Older than `max_age`, or written before buttons carried their time."""
        return self.at is None or now.timestamp() - self.at > self.max_age.total_seconds()

    def encode(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def decode(cls: type[V], text: str) -> V:
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            raise ButtonValueError(f"not a {cls.__name__}") from None


class KeeperValue(ButtonValue):
    """A lease keeper warning's button: which notebook, and for Keep how many hours."""

    max_age = KEEPER_MAX_AGE

    project_id: str = Field(min_length=1, max_length=64)
    notebook_id: str = Field(min_length=1, max_length=128)
    hours: int | None = None  # Keep only; clamped to 1-72, the hours one lease may be asked for

    @field_validator("hours", mode="before")
    @classmethod
    def _no_null_hours(cls, value: Any) -> Any:
        if value is None:  # absent is fine (a Stop button); an explicit null is not ours
            raise ValueError("hours must be a number")
        return value

    @field_validator("hours")
    @classmethod
    def _clamped(cls, value: int | None) -> int | None:
        return None if value is None else max(1, min(value, 72))


class ConfirmValue(ButtonValue):
    """A confirmation's Confirm button: who asked, the notebook's owner then, and the command
    (without the fields the click itself supplies: id, time, requester)."""

    max_age = CONFIRM_MAX_AGE

    by: str = Field(min_length=1, max_length=64)
    owner: str | None = None  # re-checked on the click: an admin may have lost the role meanwhile
    cmd: dict[str, Any]
