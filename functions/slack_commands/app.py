"""Slack webhook: POST /slack/commands and POST /slack/interactions (API Gateway HTTP API).

verify signature (401 and nothing else on failure) -> parse -> chat-ops domain -> queue -> ack.
The ack path makes no ModelArts call beyond one read-only lookup. Heavy modules (httpx, boto3,
the ModelArts client) are imported on first use, not at cold start.

Environment (validated at cold start, errors name the variable):
  COMMANDS_QUEUE_URL, STATE_TABLE, MODELARTS_* / HUAWEICLOUD_* (see nbkeeper.settings);
  SLACK_SIGNING_SECRET (local) or SLACK_SECRET (Secrets Manager JSON with "signing_secret");
  optional SLACK_ALLOWED_TEAMS, SLACK_ALLOWED_CHANNELS, SLACK_ALLOWED_USERS, SLACK_ADMINS
  (comma-separated ids), NOTEBOOK_DEFAULT_FLAVOR, NOTEBOOK_DEFAULT_IMAGE_ID,
  NOTEBOOK_DEFAULT_STORAGE_GB, NOTEBOOK_DEFAULT_HOURS, NBKEEPER_TIMEZONE, SLACK_API_URL.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import SecretStr, ValidationError, model_validator

from nbkeeper.chatops import (
    Access,
    ButtonAction,
    ChatConfig,
    Invocation,
    Outcome,
    explain_error,
    handle_action,
    handle_request,
)
from nbkeeper.commands import Command, Project, encode_command, message_group_id
from nbkeeper.modelarts.errors import ModelArtsError
from nbkeeper.settings import ModelArtsSettings, env, load_settings, secret_field
from nbkeeper.slack import grammar, render
from nbkeeper.slack.interaction import BlockActions
from nbkeeper.slack.verify import SignatureError, verify_request

logger = Logger()
app = APIGatewayHttpResolver()


class SlackCommandsSettings(ModelArtsSettings):
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
    slack_api_url: str = env(
        "SLACK_API_URL", "Slack Web API base URL", default="https://slack.com/api/"
    )
    allowed_teams: str = env("SLACK_ALLOWED_TEAMS", "comma-separated team ids", default="")
    allowed_channels: str = env("SLACK_ALLOWED_CHANNELS", "comma-separated ids", default="")
    allowed_users: str = env("SLACK_ALLOWED_USERS", "comma-separated user ids", default="")
    admins: str = env("SLACK_ADMINS", "comma-separated user ids of admins", default="")
    default_flavor: str = env(
        "NOTEBOOK_DEFAULT_FLAVOR", "flavor for `create`", default="modelarts.vm.cpu.2u"
    )
    default_image_id: str | None = env(
        "NOTEBOOK_DEFAULT_IMAGE_ID", "image UUID for `create`", default=None
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
        def ids(text: str) -> frozenset[str]:
            return frozenset(part.strip() for part in text.split(",") if part.strip())

        return ChatConfig(
            project=Project(region=self.region, project_id=self.project_id),
            access=Access(
                teams=ids(self.allowed_teams),
                channels=ids(self.allowed_channels),
                users=ids(self.allowed_users),
                admins=ids(self.admins),
            ),
            default_flavor=self.default_flavor,
            default_image_id=self.default_image_id,
            default_storage_gb=self.default_storage_gb,
            default_hours=self.default_hours,
            timezone=ZoneInfo(self.timezone),
        )


SETTINGS = load_settings(SlackCommandsSettings, os.environ)
CHAT_CONFIG = SETTINGS.chat_config()


@dataclass
class Seams:
    """Test and local-run seams; production uses the defaults."""

    modelarts_transport: Any = None
    modelarts_options: dict[str, Any] = field(default_factory=dict)
    slack_transport: Any = None
    clock: Any = time.time


seams = Seams()


# ---------------------------------------------------------------- collaborators (lazy)


@cache
def signing_secret() -> str:
    if SETTINGS.signing_secret is not None:
        return SETTINGS.signing_secret.get_secret_value()
    assert SETTINGS.slack_secret is not None
    return secret_field("SLACK_SECRET", SETTINGS.slack_secret, "signing_secret")


@cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs")


@cache
def state_table() -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(SETTINGS.state_table)


@cache
def event_loop() -> asyncio.AbstractEventLoop:
    """One loop per execution environment: the client (and its connections) live on it."""
    return asyncio.new_event_loop()


@cache
def modelarts_client() -> Any:
    from nbkeeper.settings import build_client

    return build_client(SETTINGS, transport=seams.modelarts_transport, **seams.modelarts_options)


def run_on_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    return event_loop().run_until_complete(coro)


def directory(now: datetime) -> Any:
    from nbkeeper.directory import ModelArtsDirectory
    from nbkeeper.store import DynamoStateStore

    store = DynamoStateStore(state_table())
    return ModelArtsDirectory(modelarts_client(), run_on_loop, store, SETTINGS.project_id, now)


def enqueue(command: Command) -> None:
    sqs().send_message(
        QueueUrl=SETTINGS.commands_queue_url,
        MessageBody=encode_command(command),
        MessageGroupId=message_group_id(command, SETTINGS.project_id),
        MessageDeduplicationId=command.command_id,
    )


def post_to_response_url(url: str, message: render.Message) -> None:
    import httpx

    from nbkeeper.slack.api import ALLOWED_RESPONSE_PREFIXES, SlackApi

    prefixes: tuple[str, ...] = ALLOWED_RESPONSE_PREFIXES
    if SETTINGS.slack_api_url != "https://slack.com/api/":  # local fake Slack
        prefixes = (*prefixes, SETTINGS.slack_api_url.removesuffix("api/"))
    with httpx.Client(transport=seams.slack_transport) as http:
        SlackApi(http, None, allowed_prefixes=prefixes).post_response_url(url, message)


# ---------------------------------------------------------------- edge helpers


def raw_body() -> bytes:
    """The exact bytes Slack signed, whether API Gateway base64-encoded them or not."""
    event = app.current_event.raw_event
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("body is not valid base64") from None
    return body.encode()


def verified_form() -> dict[str, str] | None:
    """The form fields, or None when the signature does not hold."""
    try:
        body = raw_body()
        verify_request(signing_secret(), app.current_event.headers or {}, body, seams.clock())
    except SignatureError as exc:
        logger.warning("rejected request", extra={"reason": str(exc)})
        return None
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _shape_error(exc: ValidationError) -> str:
    """Where the payload went wrong, without echoing its values (they may hold tokens)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['type']}" for e in exc.errors()
    )


def unauthorized() -> Response[str]:
    return Response(status_code=401, content_type="text/plain", body="")


def reply(message: render.Message) -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=json.dumps(message))


def queue_outcome(outcome: Outcome) -> render.Message:
    if outcome.command is None:
        return outcome.reply
    try:
        enqueue(outcome.command)
    except Exception:  # boto errors vary; the person gets a clear answer, the log the details
        logger.exception("could not queue the command")
        return render.problem("I could not queue that just now; please try again in a minute.")
    logger.info(
        "queued",
        extra={"command_id": outcome.command.command_id, "type": outcome.command.type},
    )
    return outcome.reply


# ---------------------------------------------------------------- routes


@app.post("/slack/commands")
def slash_command() -> Response[str]:
    form = verified_form()
    if form is None:
        return unauthorized()
    now = datetime.fromtimestamp(seams.clock(), UTC)
    user_id = form.get("user_id", "")
    if not user_id:
        return reply(render.problem("Slack did not say who you are; nothing was done."))
    trigger = form.get("trigger_id") or uuid.uuid4().hex
    inv = Invocation(
        user_id=user_id,
        team_id=form.get("team_id"),
        channel_id=form.get("channel_id"),
        response_url=form.get("response_url"),
        command_id="sc." + hashlib.sha256(trigger.encode()).hexdigest()[:32],
        now=now,
    )
    try:
        request = grammar.parse(form.get("text", ""))
    except grammar.ParseError as exc:
        return reply(render.problem(str(exc)))
    try:
        outcome = handle_request(request, inv, CHAT_CONFIG, directory(now))
    except ModelArtsError as exc:
        return reply(render.problem(explain_error(exc)))
    return reply(queue_outcome(outcome))


@app.post("/slack/interactions")
def interaction() -> Response[str]:
    form = verified_form()
    if form is None:
        return unauthorized()
    try:
        payload = BlockActions.model_validate_json(form.get("payload", ""))
    except ValidationError as exc:
        logger.warning("unreadable interaction payload", extra={"reason": _shape_error(exc)})
        return Response(status_code=400, content_type="text/plain", body="unreadable payload")
    now = datetime.fromtimestamp(seams.clock(), UTC)
    response_url = payload.response_url
    action = payload.action
    click = f"{payload.message_ts}|{payload.user.id}|{action.value}"
    inv = Invocation(
        user_id=payload.user.id,
        team_id=payload.team_id,
        channel_id=payload.channel_id,
        response_url=response_url,
        command_id="ia." + hashlib.sha256(click.encode()).hexdigest()[:32],
        now=now,
        response_url_posts=1 if response_url else 0,
    )
    button = ButtonAction(action.action_id, action.value)
    try:
        outcome = handle_action(button, inv, CHAT_CONFIG, directory(now))
    except ModelArtsError as exc:
        outcome = Outcome(render.problem(explain_error(exc)))
    message = queue_outcome(outcome)
    if response_url:
        post_to_response_url(response_url, message)
    return Response(status_code=200, content_type="text/plain", body="")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
