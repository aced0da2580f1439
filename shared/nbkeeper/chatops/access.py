"""Who may use nbkeeper, where, and what one Slack request carries (the webhook's middleware:
checked before any listener, like Bolt's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from nbkeeper.commands import Command, Requester
from nbkeeper.records import ProjectRef
from nbkeeper.slack.render import Message


@dataclass(frozen=True)
class Access:
    """Who may use nbkeeper. An empty set means "no restriction" for teams, channels, users."""

    teams: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()

    @classmethod
    def from_lists(cls, teams: str, channels: str, users: str, admins: str) -> Access:
        """From comma-separated id lists, as the deploy's parameters hold them."""

        def ids(text: str) -> frozenset[str]:
            return frozenset(part.strip() for part in text.split(",") if part.strip())

        return cls(teams=ids(teams), channels=ids(channels), users=ids(users), admins=ids(admins))

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def refusal(
        self,
        team_id: str | None,
        channel_id: str | None,
        user_id: str,
        *,
        check_channel: bool = True,
    ) -> str | None:
        """Why this person may not use nbkeeper here, or None.

        `check_channel=False` for buttons nbkeeper itself posted outside its channels (the lease
        keeper's warnings are DMs, which are never on the channel list)."""
        if self.teams and team_id not in self.teams:
            return "nbkeeper is not enabled for this workspace."
        if self.users and user_id not in self.users and user_id not in self.admins:
            return "you are not on nbkeeper's list of users; ask an admin to add you."
        if check_channel and self.channels and channel_id not in self.channels:
            return "nbkeeper does not take commands in this channel; use one of its channels."
        return None


@dataclass(frozen=True)
class ChatConfig:
    project: ProjectRef
    access: Access = field(default_factory=Access)
    default_flavor: str = "modelarts.vm.cpu.2u"
    default_image: str | None = None  # a name or an id (resolved like image=)
    default_storage_gb: int = 5
    default_hours: int = 2
    timezone: tzinfo = UTC


@dataclass(frozen=True)
class Invocation:
    """One Slack request: who, where, where to answer, and when."""

    user_id: str
    team_id: str | None
    channel_id: str | None
    response_url: str | None
    command_id: str
    now: datetime
    response_url_posts: int = 0  # posts already made to response_url (by the webhook itself)

    def requester(self, access: Access) -> Requester:
        return Requester(
            user_id=self.user_id,
            team_id=self.team_id,
            channel_id=self.channel_id,
            response_url=self.response_url,
            is_admin=access.is_admin(self.user_id),
            response_url_posts=self.response_url_posts,
        )


@dataclass(frozen=True)
class ChatReply:
    """What to answer now, and what (if anything) to queue; for a problem with one part of the
    request, which (`about`: a CreateRequest field, so the create form shows it there)."""

    reply: Message
    command: Command | None = None
    about: str | None = None


def command_base(inv: Invocation, config: ChatConfig) -> dict[str, Any]:
    """The fields every command made from this request shares."""
    return {
        "command_id": inv.command_id,
        "requested_at": inv.now,
        "requested_by": inv.requester(config.access),
        "project": config.project,
    }
