"""The lease keeper's trigger: what EventBridge Scheduler sends."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict


class ScheduleEvent(BaseModel):
    """The scheduler's input: `time` (Scheduler's <aws.scheduler.scheduled-time>), optional
    `dry_run` for operators. Other fields (EventBridge envelope) are ignored."""

    model_config = ConfigDict(extra="ignore")

    time: datetime | None = None
    dry_run: bool | None = None

    def now(self) -> datetime:
        if self.time is None:
            return datetime.now(UTC)
        return self.time if self.time.tzinfo else self.time.replace(tzinfo=UTC)
