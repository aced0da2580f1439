"""Lease keeper: EventBridge Scheduler -> one pass over every configured project.

Parses the event (its `time` is "now", so a replay decides the same way; else the clock), builds
the collaborators at the edge (nbkeeper.keeper_runtime: ModelArts clients, Jupyter prober, Slack
notifier; here: the DynamoDB state store and the SQS fan-out) and runs the pass. Returns the pass
summary and emits it as metrics.

Environment: MODELARTS_* / HUAWEICLOUD_* (see nbkeeper.settings), STATE_TABLE,
COMMANDS_QUEUE_URL (fan-out; optional), POLICY_PATH (default: the policy.yaml shipped in the
layer), POLICY_PARAMETER (SSM parameter with a YAML overlay; optional), SLACK_BOT_TOKEN (local) or
SLACK_SECRET (Secrets Manager JSON with "bot_token"), SLACK_API_URL, MODELARTS_RATE_LIMIT (req/s
over all projects), MODELARTS_MAX_CONCURRENCY.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from nbkeeper.commands import SweepProjectCommand, encode_command, message_group_id
from nbkeeper.keeper import PassReport
from nbkeeper.keeper_runtime import (
    PassSettings,
    PolicySource,
    default_projects,
    keeper_notifier,
    run_keeper_pass,
    slack_bot_token,
)
from nbkeeper.modelarts.client import run_sync
from nbkeeper.settings import env, load_settings
from nbkeeper.store import DynamoStateStore

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "nbkeeper"))


class KeeperSettings(PassSettings):
    commands_queue_url: str | None = env(
        "COMMANDS_QUEUE_URL",
        "optional: the commands FIFO queue URL; large fleets fan out there, one message a project",
        default=None,
    )


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


@dataclass
class Seams:
    """Test and local-run seams; production uses the defaults."""

    modelarts_transport: Any = None
    modelarts_options: dict[str, Any] | None = None
    jupyter_transport: Any = None
    slack_transport: Any = None


seams = Seams()

# Cold start: configuration and policy are validated once; a mistake names the variable or key.
SETTINGS = load_settings(KeeperSettings, os.environ)
POLICY = PolicySource(SETTINGS.policy_path, SETTINGS.policy_parameter)
POLICY.current()


@cache
def state_table() -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(SETTINGS.state_table)


@cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def enqueue(command: SweepProjectCommand) -> None:
    assert SETTINGS.commands_queue_url is not None
    sqs().send_message(
        QueueUrl=SETTINGS.commands_queue_url,
        MessageBody=encode_command(command),
        MessageGroupId=message_group_id(command, SETTINGS.project_id),
        MessageDeduplicationId=command.command_id,
    )


def emit(report: PassReport) -> None:
    summary = report.summary()
    for name, key in (
        ("NotebooksSeen", "notebooks"),
        ("Prolonged", "prolong"),
        ("Warned", "warn"),
        ("Stopped", "stop"),
        ("ActionFailures", "failures"),
        ("ProjectErrors", "project_errors"),
        ("ProjectsFannedOut", "fanned_out"),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=summary[key])
    metrics.add_metric(name="HoursSaved", unit=MetricUnit.Count, value=summary["hours_saved"])
    metrics.add_metric(name="CostSaved", unit=MetricUnit.NoUnit, value=summary["cost_saved"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ScheduleEvent.model_validate(event if isinstance(event, dict) else {})
    policy = POLICY.current()
    token = slack_bot_token(SETTINGS)
    report = run_sync(
        run_keeper_pass(
            SETTINGS,
            os.environ,
            default_projects(policy, SETTINGS),
            policy,
            parsed.now(),
            store=DynamoStateStore(state_table()),
            notifier=keeper_notifier(policy, token, SETTINGS.slack_api_url, seams.slack_transport),
            dry_run=parsed.dry_run,
            enqueue=enqueue if SETTINGS.commands_queue_url else None,
            modelarts_transport=seams.modelarts_transport,
            modelarts_options=seams.modelarts_options,
            jupyter_transport=seams.jupyter_transport,
        )
    )
    emit(report)
    summary = report.summary()
    logger.info("lease keeper pass", extra={"summary": summary})
    for failure in report.failures:
        logger.warning(
            "action failed",
            extra={"notebook_id": failure.notebook_id, "outcome": failure.outcome},
        )
    return summary
