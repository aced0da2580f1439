"""Notebook worker: SQS (commands FIFO queue + standard follow-up queue) -> ModelArts, exactly once.

Powertools BatchProcessor with partial batch failures: a failing record raises alone and SQS
delivers it again; after MAX_RECEIVE_COUNT receives it lands in the DLQ. On that last receive the
author is told (a DM or their response_url), so nobody waits for a result that will not come.
Powertools Idempotency (DynamoDB, IDEMPOTENCY_TABLE) keys each execution on `command_id`, so a
redelivered message never creates a second notebook or repeats an action.

The lease keeper's fan-out (`sweep-project`) runs here as a one-project keeper pass at the
command's `at`, built exactly as the keeper builds its own (nbkeeper.keeper_runtime) and under the
same policy: the file shipped in the layer with the SSM overlay. The policy is read at the first
sweep, not at cold start, so a bad overlay fails sweeps only, never people's commands.

Environment: COMMANDS_QUEUE_URL, FOLLOWUP_QUEUE_URL, STATE_TABLE, IDEMPOTENCY_TABLE,
MAX_RECEIVE_COUNT (the queues' redrive maxReceiveCount), MODELARTS_* / HUAWEICLOUD_*,
SLACK_BOT_TOKEN (local) or SLACK_SECRET (Secrets Manager JSON with "bot_token"), SLACK_API_URL;
for sweeps: POLICY_PATH, POLICY_PARAMETER, MODELARTS_RATE_LIMIT, MODELARTS_MAX_CONCURRENCY.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

import httpx
import pydantic
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import model_validator

from nbkeeper.chatops import explain_error
from nbkeeper.commands import (
    COMMAND_ADAPTER,
    CommandBase,
    FollowCommand,
    Requester,
    SweepProjectCommand,
    encode_command,
    parse_command,
    peek_requester,
)
from nbkeeper.keeper_runtime import (
    SLACK_API_URL,
    PassSettings,
    PolicySource,
    keeper_notifier,
    run_keeper_pass,
    slack_bot_token,
    sweep_target,
)
from nbkeeper.modelarts.client import run_sync
from nbkeeper.settings import build_client, env, load_settings
from nbkeeper.slack import render
from nbkeeper.slack.api import ALLOWED_RESPONSE_PREFIXES, DynamoLedger, Notifier, SlackApi
from nbkeeper.store import DynamoStateStore
from nbkeeper.worker import Result, Worker

logger = Logger()
# A batch in which every record failed is still a partial response (all ids listed), not an
# invocation error: one poison message alone must not count as a function failure.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class WorkerSettings(PassSettings):
    commands_queue_url: str = env("COMMANDS_QUEUE_URL", "set it to the commands FIFO queue URL")
    followup_queue_url: str = env(
        "FOLLOWUP_QUEUE_URL", "set it to the standard follow-up queue URL"
    )
    idempotency_table: str = env("IDEMPOTENCY_TABLE", "set it to the idempotency table name")
    max_receive_count: int = env(
        "MAX_RECEIVE_COUNT", "the queues' redrive maxReceiveCount", default=3, ge=1, le=1000
    )

    # Replaces PassSettings' check: the worker reports every result, so it needs a token.
    @model_validator(mode="after")
    def _at_most_one_slack_token_source(self) -> WorkerSettings:
        if (self.bot_token is None) == (self.slack_secret is None):
            raise ValueError("set exactly one of SLACK_BOT_TOKEN (local) or SLACK_SECRET")
        return self


SETTINGS = load_settings(WorkerSettings, os.environ)
POLICY = PolicySource(SETTINGS.policy_path, SETTINGS.policy_parameter)  # read at the first sweep
persistence = DynamoDBPersistenceLayer(table_name=SETTINGS.idempotency_table)
idempotency_config = IdempotencyConfig(
    event_key_jmespath="command_id",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,  # longer than any redelivery (FIFO dedup is 5 minutes)
)


@dataclass
class Seams:
    """Test and local-run seams; production uses the defaults."""

    modelarts_transport: Any = None
    modelarts_options: dict[str, Any] = field(default_factory=dict)
    jupyter_transport: Any = None  # sweeps probe notebooks' Jupyter servers
    slack_transport: Any = None
    max_followup_delay: int = 900  # SQS's maximum; tests set 0 (moto delays in real time)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # the demo's sim time


seams = Seams()


class PoisonMessageError(Exception):
    """A message that cannot be read as a command; it fails every receive and ends in the DLQ."""


# ---------------------------------------------------------------- collaborators


@cache
def bot_token() -> str:
    token = slack_bot_token(SETTINGS)
    assert token is not None  # WorkerSettings requires a token source
    return token


@cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs")


@cache
def state_table() -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(SETTINGS.state_table)


@cache
def notifier() -> Notifier:
    prefixes: tuple[str, ...] = ALLOWED_RESPONSE_PREFIXES
    if SETTINGS.slack_api_url != SLACK_API_URL:  # local fake Slack
        prefixes = (*prefixes, SETTINGS.slack_api_url.removesuffix("api/"))
    http = httpx.Client(transport=seams.slack_transport)
    api = SlackApi(http, bot_token(), base_url=SETTINGS.slack_api_url, allowed_prefixes=prefixes)
    return Notifier(api, DynamoLedger(state_table()))


class SlackReporter:
    def report(self, command: CommandBase, message: render.Message, now: datetime) -> str:
        return tell(command.requested_by, command.requested_at, message, now)


def tell(requester: Requester, issued_at: datetime, message: render.Message, now: datetime) -> str:
    return notifier().deliver(
        user_id=requester.user_id,
        response_url=requester.response_url,
        issued_at=issued_at,
        message=message,
        now=now,
        already_used=requester.response_url_posts,
    )


async def sweep(command: SweepProjectCommand, now: datetime) -> Result:
    """The keeper's fan-out: one keeper pass over the command's project at its `at`."""
    policy = POLICY.current()
    report = await run_keeper_pass(
        SETTINGS,
        os.environ,
        [sweep_target(command, SETTINGS)],
        policy,
        command.at,
        store=DynamoStateStore(state_table()),
        notifier=keeper_notifier(
            policy, bot_token(), SETTINGS.slack_api_url, seams.slack_transport
        ),
        dry_run=command.dry_run,
        modelarts_transport=seams.modelarts_transport,
        modelarts_options=seams.modelarts_options,
        jupyter_transport=seams.jupyter_transport,
    )
    summary = report.summary()
    logger.info("lease keeper sweep", extra={"summary": summary})
    project = sweep_target(command, SETTINGS).project_id
    errors = "; ".join(p.error or "" for p in report.project_errors)
    if errors:
        # Not raised: the next scheduled pass sweeps the project again, at its own time.
        return Result("failed", None, f"project {project}: {errors}")
    counts = ", ".join(f"{summary[key]} {key}" for key in ("prolong", "warn", "stop"))
    return Result("done", None, f"project {project}: {summary['notebooks']} notebooks, {counts}")


class SqsFollowUps:
    def schedule(self, command: FollowCommand, delay_seconds: int) -> None:
        sqs().send_message(
            QueueUrl=SETTINGS.followup_queue_url,
            MessageBody=encode_command(command),
            DelaySeconds=max(0, min(delay_seconds, seams.max_followup_delay)),
        )


# ---------------------------------------------------------------- processing


def _execute(command: dict[str, Any]) -> dict[str, Any]:
    """Run one command (the dict form is what Idempotency hashes and stores)."""
    parsed = COMMAND_ADAPTER.validate_python(command)
    now = seams.now()

    async def run() -> dict[str, Any]:
        async with build_client(
            SETTINGS, transport=seams.modelarts_transport, **seams.modelarts_options
        ) as client:
            worker = Worker(
                client=client,
                store=DynamoStateStore(state_table()),
                followups=SqsFollowUps(),
                reporter=SlackReporter(),
                default_project_id=SETTINGS.project_id,
                sweeper=sweep,
            )
            return (await worker.execute(parsed, now)).as_dict()

    return run_sync(run())


execute = cast(
    Callable[..., dict[str, Any]],
    idempotent_function(
        _execute,
        data_keyword_argument="command",
        config=idempotency_config,
        persistence_store=persistence,
    ),
)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    try:
        command = parse_command(record.body)
    except pydantic.ValidationError as exc:
        reason = f"the message is not a valid command ({explain_error(exc)})"
        last_receive(record, reason)
        raise PoisonMessageError(reason) from None
    logger.append_keys(command_id=command.command_id, command_type=command.type)
    try:
        result: dict[str, Any] = execute(command=command.model_dump(mode="json"))
        return result
    except Exception as exc:
        last_receive(record, explain_error(exc), exc)
        raise


def last_receive(record: SQSRecord, reason: str, exc: BaseException | None = None) -> None:
    """Log the failure (with its traceback: the promised details); on the final receive before
    the DLQ, tell the author their request failed."""
    receives = int(record.attributes.approximate_receive_count or 1)
    logger.warning("record failed", extra={"receive": receives, "reason": reason}, exc_info=exc)
    if receives < SETTINGS.max_receive_count:
        return
    if _peek(record.body, "type") == "sweep-project":
        logger.error("lease keeper sweep failed on its last receive; see the DLQ")
        return  # nobody asked: the keeper sent it, and its next pass sweeps again
    requester = peek_requester(record.body)
    if requester is None:
        logger.error("poison message without a readable author; see the DLQ")
        return
    now = seams.now()
    message = render.done(
        f"Your nbkeeper request failed after {receives} attempts: {reason} "
        "It was set aside for an admin (dead-letter queue); nothing more will happen.",
        ok=False,
    )
    try:
        issued = datetime.fromisoformat(str(_peek(record.body, "requested_at")))
    except (TypeError, ValueError):
        issued = now
    tell(requester, issued, message, now)


def _peek(body: str, key: str) -> Any:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
