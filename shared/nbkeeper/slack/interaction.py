"""The parts of Slack's interaction payloads the interactions route reads: `block_actions`
(a button), `view_submission` (the create form submitted) and `block_suggestion` (type-ahead for
the form's external selects). `PayloadKind` reads the type first; other types (`view_closed`,
...) are acknowledged and ignored.

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


class PayloadKind(_Part):
    """Just the payload's type, to choose the model that reads the rest."""

    type: str = ""


class SelectedOption(_Part):
    value: str = ""


class StateValue(_Part):
    """One input's state: `value` (text, number), `selected_option` (a select) or
    `selected_options` (checkboxes)."""

    type: str = ""
    value: str | None = None
    selected_option: SelectedOption | None = None
    selected_options: list[SelectedOption] = Field(default_factory=list)


class ViewState(_Part):
    values: dict[str, dict[str, StateValue]] = Field(default_factory=dict)


class ViewPayload(_Part):
    id: str = Field(min_length=1)
    callback_id: str = ""
    private_metadata: str = ""
    state: ViewState = Field(default_factory=ViewState)


class ViewSubmission(_Part):
    """A modal's Submit: who, which view (its id names the submission) and what it holds."""

    user: PayloadUser
    view: ViewPayload
    team: PayloadRef | None = None

    @property
    def team_id(self) -> str | None:
        return (self.team.id if self.team else None) or self.user.team_id


class BlockSuggestion(_Part):
    """An external select asking for options: which element, and what has been typed so far."""

    user: PayloadUser
    action_id: str = ""
    value: str = ""
    team: PayloadRef | None = None
    view: ViewPayload | None = None

    @property
    def team_id(self) -> str | None:
        return (self.team.id if self.team else None) or self.user.team_id
