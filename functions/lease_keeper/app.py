"""Lease keeper: EventBridge Scheduler -> one pass over every configured project.

Parses the event (its `time` names the pass, for ids and audit; decisions use the wall clock,
as events can arrive hours late), runs the pass assembled by `nbkeeper.wiring` (ModelArts
clients, Jupyter prober, Slack notifier, the DynamoDB state store, the SQS fan-out) and returns
the pass summary, also emitted as metrics.

Environment: MODELARTS_* / HUAWEICLOUD_* (see nbkeeper.settings), STATE_TABLE,
COMMANDS_QUEUE_URL (fan-out; optional), POLICY_PATH (default: the policy.yaml shipped in the
layer), POLICY_PARAMETER (SSM parameter with a YAML overlay; optional), SLACK_BOT_TOKEN (local) or
SLACK_SECRET (Secrets Manager JSON with "bot_token"), SLACK_API_URL, MODELARTS_RATE_LIMIT (req/s
over all projects), MODELARTS_MAX_CONCURRENCY, and the deploy's answers NBKEEPER_TIMEZONE,
NBKEEPER_WARNING_CHANNEL, SLACK_ADMINS (see PassSettings).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from nbkeeper.assembly import PassSettings, PolicySource, default_projects
from nbkeeper.keeper.report import pass_metrics
from nbkeeper.keeper.schedule import ScheduleEvent
from nbkeeper.modelarts.client import run_sync
from nbkeeper.settings import env, load_settings
from nbkeeper.wiring import Wiring

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "nbkeeper"))


class KeeperSettings(PassSettings):
    commands_queue_url: str | None = env(
        "COMMANDS_QUEUE_URL",
        "optional: the commands FIFO queue URL; large fleets fan out there, one message a project",
        default=None,
    )


# Cold start: configuration and policy are validated once; a mistake names the variable or key.
SETTINGS = load_settings(KeeperSettings, os.environ)
POLICY = PolicySource(SETTINGS.policy_path, SETTINGS.policy_parameter)
for problem in SETTINGS.keeper_problems(POLICY.current()):  # loud; every summary repeats it
    logger.error("lease keeper cannot warn everyone: %s", problem)
wiring = Wiring(SETTINGS)
seams = wiring.seams


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ScheduleEvent.model_validate(event if isinstance(event, dict) else {})
    policy = POLICY.current()
    report = run_sync(
        wiring.keeper_pass(
            default_projects(policy, SETTINGS),
            policy,
            parsed.time,
            dry_run=parsed.dry_run,
            enqueue=wiring.enqueue if SETTINGS.commands_queue_url else None,
        )
    )
    for name, value in pass_metrics(report).items():
        unit = MetricUnit.NoUnit if name == "CostSaved" else MetricUnit.Count
        metrics.add_metric(name=name, unit=unit, value=value)
    summary = report.summary()
    logger.info("lease keeper pass", extra={"summary": summary})
    for failure in report.failures:
        logger.warning(
            "action failed",
            extra={"notebook_id": failure.notebook_id, "outcome": failure.outcome},
        )
    return summary
