"""Lease keeper: EventBridge Scheduler -> one pass over every configured project.

Parses the event (its `time` is "now", so a replay decides the same way; else the clock), builds
the collaborators at the edge (ModelArts clients, Jupyter prober, DynamoDB state store, Slack
notifier, SQS fan-out) and calls `nbkeeper.keeper.run_pass`. Returns the pass summary and emits
it as metrics.

Environment: MODELARTS_* / HUAWEICLOUD_* (see nbkeeper.settings), STATE_TABLE,
COMMANDS_QUEUE_URL (fan-out; optional), POLICY_PATH (default: policy.yaml next to this file),
POLICY_PARAMETER (SSM parameter with a YAML overlay; optional), SLACK_BOT_TOKEN (local) or
SLACK_SECRET (Secrets Manager JSON with "bot_token"), SLACK_API_URL, MODELARTS_RATE_LIMIT (req/s
over all projects), MODELARTS_MAX_CONCURRENCY.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from nbkeeper.activity import JupyterProber, probe_limits
from nbkeeper.commands import SweepProjectCommand, encode_command, message_group_id
from nbkeeper.keeper import KeeperClient, KeeperNotifier, NullNotifier, PassReport, run_pass
from nbkeeper.modelarts.client import run_sync
from nbkeeper.modelarts.regions import endpoint_for
from nbkeeper.policy import Policy, PolicyError, ProjectRef, load_policy
from nbkeeper.settings import ModelArtsSettings, build_client, env, load_settings
from nbkeeper.slack.api import SlackApi
from nbkeeper.slack.keeper_messages import SlackKeeperNotifier
from nbkeeper.store import DynamoStateStore

HERE = Path(__file__).resolve().parent

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "nbkeeper"))


class KeeperSettings(ModelArtsSettings):
    state_table: str = env("STATE_TABLE", "set it to the state DynamoDB table name")
    commands_queue_url: str | None = env(
        "COMMANDS_QUEUE_URL",
        "optional: the commands FIFO queue URL; large fleets fan out there, one message a project",
        default=None,
    )
    policy_path: str = env(
        "POLICY_PATH", "path of the policy YAML file", default=str(HERE / "policy.yaml")
    )
    policy_parameter: str | None = env(
        "POLICY_PARAMETER", "optional: SSM parameter holding a YAML policy overlay", default=None
    )
    bot_token: SecretStr | None = env(
        "SLACK_BOT_TOKEN", "optional: Slack bot token (local runs)", default=None
    )
    slack_secret: str | None = env(
        "SLACK_SECRET", 'optional: Secrets Manager secret holding {"bot_token": ...}', default=None
    )
    slack_api_url: str = env(
        "SLACK_API_URL", "Slack Web API base URL", default="https://slack.com/api/"
    )
    rate_limit: float = env(
        "MODELARTS_RATE_LIMIT",
        "ModelArts requests per second this function may make (over all projects)",
        default=20.0,
        gt=0,
        le=1000,
    )
    max_concurrency: int = env(
        "MODELARTS_MAX_CONCURRENCY",
        "ModelArts requests in flight per project",
        default=20,
        ge=1,
        le=200,
    )

    @model_validator(mode="after")
    def _one_slack_token_source(self) -> KeeperSettings:
        if self.bot_token is not None and self.slack_secret is not None:
            raise ValueError("set at most one of SLACK_BOT_TOKEN (local) or SLACK_SECRET")
        return self


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
POLICY = load_policy(SETTINGS.policy_path, SETTINGS.policy_parameter)


def current_policy() -> Policy:
    """The policy with the latest SSM overlay (cached by Powertools); the last good one on error."""
    global POLICY
    if SETTINGS.policy_parameter:
        try:
            POLICY = load_policy(SETTINGS.policy_path, SETTINGS.policy_parameter)
        except PolicyError as exc:
            logger.error(
                "policy overlay rejected; keeping the previous policy", extra={"error": str(exc)}
            )
    return POLICY


def projects(policy: Policy) -> list[ProjectRef]:
    return policy.projects or [ProjectRef(region=SETTINGS.region, project_id=SETTINGS.project_id)]


@cache
def state_table() -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(SETTINGS.state_table)


@cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs")


@cache
def bot_token() -> str | None:
    if SETTINGS.bot_token is not None:
        return SETTINGS.bot_token.get_secret_value()
    if SETTINGS.slack_secret is None:
        return None
    from aws_lambda_powertools.utilities.parameters import get_secret

    return str(get_secret(SETTINGS.slack_secret, transform="json", max_age=300)["bot_token"])


def notifier(policy: Policy) -> KeeperNotifier:
    token = bot_token()
    if token is None:
        return NullNotifier()
    api = SlackApi(
        httpx.Client(transport=seams.slack_transport), token, base_url=SETTINGS.slack_api_url
    )
    return SlackKeeperNotifier(api.post_message, policy)


def enqueue(command: SweepProjectCommand) -> None:
    assert SETTINGS.commands_queue_url is not None
    sqs().send_message(
        QueueUrl=SETTINGS.commands_queue_url,
        MessageBody=encode_command(command),
        MessageGroupId=message_group_id(command, SETTINGS.project_id),
        MessageDeduplicationId=command.command_id,
    )


def settings_for(project: ProjectRef) -> ModelArtsSettings:
    if project.region == SETTINGS.region:
        return SETTINGS.model_copy(update={"project_id": project.project_id})
    endpoint = endpoint_for(project.region, os.environ)
    return SETTINGS.model_copy(
        update={"region": project.region, "project_id": project.project_id, "endpoint": endpoint}
    )


async def run(policy: Policy, now: datetime, dry_run: bool | None) -> PassReport:
    targets = projects(policy)
    # The API limit is per account: the clients share the configured rate.
    rate = SETTINGS.rate_limit / max(1, min(len(targets), policy.max_projects_per_pass))
    async with AsyncExitStack() as stack:
        clients: dict[ProjectRef, KeeperClient] = {}

        def client_for(project: ProjectRef) -> KeeperClient:
            if project not in clients:
                clients[project] = build_client(
                    settings_for(project),
                    transport=seams.modelarts_transport,
                    rate_limit=rate,
                    max_concurrency=SETTINGS.max_concurrency,
                    **(seams.modelarts_options or {}),
                )
            return clients[project]

        http = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=seams.jupyter_transport,
                limits=probe_limits(policy.probe_concurrency),
            )
        )
        try:
            return await run_pass(
                targets,
                client_for,
                JupyterProber(
                    http,
                    concurrency=policy.probe_concurrency,
                    timeout=policy.probe_timeout_seconds,
                ),
                DynamoStateStore(state_table()),
                notifier(policy),
                policy,
                now,
                dry_run=dry_run,
                enqueue=enqueue if SETTINGS.commands_queue_url else None,
            )
        finally:
            for client in clients.values():
                await client.aclose()  # type: ignore[attr-defined]


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
    now = parsed.now()
    policy = current_policy()
    report = run_sync(run(policy, now, parsed.dry_run))
    emit(report)
    summary = report.summary()
    logger.info("lease keeper pass", extra={"summary": summary})
    for failure in report.failures:
        logger.warning(
            "action failed",
            extra={"notebook_id": failure.notebook_id, "outcome": failure.outcome},
        )
    return summary
