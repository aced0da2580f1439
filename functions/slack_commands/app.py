"""Slack webhook: POST /slack/commands and POST /slack/interactions (API Gateway HTTP API).

Settings (below, each variable with its meaning) are validated at cold start; each route hands
the raw request to `nbkeeper.chatops.webhook.SlackWebhook` and maps its reply. Collaborators
(boto3, httpx, the ModelArts client) are built on first use by `nbkeeper.wiring`.
"""

from __future__ import annotations

import os
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import SecretStr, model_validator

from nbkeeper.chatops.access import Access, ChatConfig
from nbkeeper.chatops.webhook import HttpReply, SlackWebhook
from nbkeeper.records import ProjectRef
from nbkeeper.settings import ModelArtsSettings, PolicySettings, env, load_settings
from nbkeeper.slack.api import SLACK_API
from nbkeeper.wiring import Wiring

logger = Logger()
app = APIGatewayHttpResolver()


class SlackCommandsSettings(ModelArtsSettings, PolicySettings):  # the policy: flavor prices
    commands_queue_url: str = env("COMMANDS_QUEUE_URL", "set it to the commands FIFO queue URL")
    state_table: str = env("STATE_TABLE", "set it to the state DynamoDB table name")
    signing_secret: SecretStr | None = env(
        "SLACK_SIGNING_SECRET", "the Slack app's signing secret (local runs)", default=None
    )
    slack_secret: str | None = env(
        "SLACK_SECRET",
        'a Secrets Manager secret holding {"signing_secret": ..., "bot_token": ...}',
        default=None,
    )
    bot_token: SecretStr | None = env(
        "SLACK_BOT_TOKEN", "bot token (local runs; opens the create form)", default=None
    )
    slack_api_url: str = env("SLACK_API_URL", "Slack Web API base URL", default=SLACK_API)
    allowed_teams: str = env("SLACK_ALLOWED_TEAMS", "comma-separated team ids", default="")
    allowed_channels: str = env("SLACK_ALLOWED_CHANNELS", "comma-separated ids", default="")
    allowed_users: str = env("SLACK_ALLOWED_USERS", "comma-separated user ids", default="")
    admins: str = env("SLACK_ADMINS", "comma-separated user ids of admins", default="")
    default_flavor: str = env(
        "NOTEBOOK_DEFAULT_FLAVOR", "flavor for `create`", default="modelarts.vm.cpu.2u"
    )
    default_image: str | None = env(
        "NOTEBOOK_DEFAULT_IMAGE", "image name or UUID for `create`", default=None
    )
    default_storage_gb: int = env(
        "NOTEBOOK_DEFAULT_STORAGE_GB", "EVS GB for `create` (1-4096)", default=5, ge=1, le=4096
    )
    default_hours: int = env(
        "NOTEBOOK_DEFAULT_HOURS", "lease hours for create/start (1-72)", default=2, ge=1, le=72
    )
    timezone: str = env("NBKEEPER_TIMEZONE", "IANA timezone for `keep until`", default="UTC")

    @model_validator(mode="after")
    def _one_signing_secret_source(self) -> SlackCommandsSettings:
        if (self.signing_secret is None) == (self.slack_secret is None):
            raise ValueError(
                "set exactly one of SLACK_SIGNING_SECRET (local) or SLACK_SECRET (Secrets Manager)"
            )
        ZoneInfo(self.timezone)  # fails here, at cold start, on a typo
        return self

    def chat_config(self) -> ChatConfig:
        return ChatConfig(
            project=ProjectRef(region=self.region, project_id=self.project_id),
            access=Access.from_lists(
                self.allowed_teams, self.allowed_channels, self.allowed_users, self.admins
            ),
            default_flavor=self.default_flavor,
            default_image=self.default_image,
            default_storage_gb=self.default_storage_gb,
            default_hours=self.default_hours,
            timezone=ZoneInfo(self.timezone),
        )


SETTINGS = load_settings(SlackCommandsSettings, os.environ)
wiring = Wiring(SETTINGS)
seams = wiring.seams

webhook = SlackWebhook(
    config=SETTINGS.chat_config(),
    signing_secret=lambda: wiring.signing_secret,
    directory=wiring.directory,
    enqueue=wiring.enqueue,
    post_response=wiring.post_response,
    clock=lambda: seams.clock(),
    catalog=wiring.catalog,
    slack=wiring,
)


def respond(reply: HttpReply) -> Response[str]:
    return Response(status_code=reply.status, content_type=reply.content_type, body=reply.body)


@app.post("/slack/commands")
def slash_command() -> Response[str]:
    event = app.current_event
    return respond(webhook.slash_command(event.headers or {}, event.body, event.is_base64_encoded))


@app.post("/slack/interactions")  # also the Options Load URL (the form's type-ahead)
def interaction() -> Response[str]:
    event = app.current_event
    return respond(webhook.interaction(event.headers or {}, event.body, event.is_base64_encoded))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
