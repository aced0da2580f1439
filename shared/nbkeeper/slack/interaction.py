"""The part of Slack's `block_actions` payload the interactions route reads.

The payload is signed by Slack, but its shape is still external data: a missing user, an empty
`actions` list or a field of the wrong type is a ValidationError here, never a crash in the handler.
Fields Slack adds over time are ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PayloadUser(_Part):
    id: str = Field(min_length=1)
    team_id: str | None = None


class PayloadRef(_Part):
    id: str | None = None


class PayloadContainer(_Part):
    message_ts: str | None = None
    channel_id: str | None = None


class PayloadAction(_Part):
    action_id: str = ""
    value: str = ""


class BlockActions(_Part):
    """One button click: who clicked, which button, where, and where to answer."""

    user: PayloadUser
    actions: list[PayloadAction] = Field(min_length=1)
    team: PayloadRef | None = None
    channel: PayloadRef | None = None
    container: PayloadContainer | None = None
    response_url: str | None = None

    @property
    def action(self) -> PayloadAction:
        """The clicked button (Slack sends one action per click)."""
        return self.actions[0]

    @property
    def team_id(self) -> str | None:
        return (self.team.id if self.team else None) or self.user.team_id

    @property
    def channel_id(self) -> str | None:
        return (self.channel.id if self.channel else None) or (
            self.container.channel_id if self.container else None
        )

    @property
    def message_ts(self) -> str | None:
        return self.container.message_ts if self.container else None
