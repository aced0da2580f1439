"""Notebook worker: SQS (commands FIFO queue + standard follow-up queue) -> ModelArts, exactly once.

Powertools batch processing with partial failures (`nbkeeper.worker.batch`: FIFO commands in
order, a failure holds back the rest of its group; `nbkeeper.worker.delivery`: a failing record
raises and SQS delivers it again; on its last receive the author is told). Powertools
Idempotency (DynamoDB) keys each execution on `command_id`, so a redelivered message never
creates a second notebook or repeats an action. `sweep-project` (the keeper's fan-out) runs here
as a one-project keeper pass under the same policy, read at the first sweep: a bad overlay fails
sweeps only, never people's commands. A scheduled event (`DEAD_LETTER_SOURCE`) runs the
dead-letter reader (`nbkeeper.worker.deadletters`): authors whose last receive died are told.

Time: each record runs under a deadline inside the invocation's remaining time, and the worker's
ModelArts client has its own, smaller retry budget. Environment: `nbkeeper.worker.config`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from nbkeeper.assembly import PolicySource
from nbkeeper.commands import SweepProjectCommand
from nbkeeper.settings import load_settings
from nbkeeper.wiring import Wiring
from nbkeeper.worker.batch import BatchRunner
from nbkeeper.worker.config import WorkerSettings
from nbkeeper.worker.deadletters import DEAD_LETTER_SOURCE, completed_in
from nbkeeper.worker.delivery import Delivery
from nbkeeper.worker.ports import Result
from nbkeeper.worker.sweep import sweep_result, sweep_target

logger = Logger()
SETTINGS = load_settings(WorkerSettings, os.environ)
POLICY = PolicySource(SETTINGS.policy_path, SETTINGS.policy_parameter)  # read at the first sweep
wiring = Wiring(SETTINGS)
seams = wiring.seams
persistence = DynamoDBPersistenceLayer(table_name=SETTINGS.idempotency_table)
idempotency_config = IdempotencyConfig(
    event_key_jmespath="command_id",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,  # longer than any redelivery (FIFO dedup is 5 minutes)
)
# A fixed key prefix (not the function's name): the dead-letter reader looks records up by it.
IDEMPOTENCY_KEY_PREFIX = "nbkeeper.command"


async def sweep(command: SweepProjectCommand, now: datetime) -> Result:
    project = sweep_target(command, SETTINGS)
    report = await wiring.keeper_pass(
        [project], POLICY.current(), command.at, dry_run=command.dry_run
    )
    logger.info("lease keeper sweep", extra={"summary": report.summary()})
    return sweep_result(report, project)


def _execute(command: dict[str, Any], budget: float | None = None) -> dict[str, Any]:
    """Run one command (the dict form is what Idempotency hashes and stores)."""
    return wiring.execute(command, sweep, budget)


execute = cast(
    Callable[..., dict[str, Any]],
    idempotent_function(
        _execute,
        data_keyword_argument="command",
        config=idempotency_config,
        persistence_store=persistence,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    ),
)
delivery = Delivery(
    lambda command, budget: execute(command=command, budget=budget),
    wiring.tell,
    SETTINGS.max_receive_count,
    seams.now,
    budget=SETTINGS.run_budget,
    annotate=lambda c: logger.append_keys(command_id=c.command_id, command_type=c.type),
    account_for_create=wiring.account_for_create,
    note_told=wiring.note_told,
)


def receives(record: SQSRecord) -> int:
    return int(record.attributes.approximate_receive_count or 1)


batches = BatchRunner(
    lambda record: delivery.held_back(record.body, receives(record), record.message_id)
)
completed = completed_in(persistence, idempotency_config, IDEMPOTENCY_KEY_PREFIX)


def record_handler(
    record: SQSRecord, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    left = lambda_context.get_remaining_time_in_millis() / 1000 if lambda_context else None
    return delivery.handle(record.body, receives(record), left, record.message_id)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext
) -> PartialItemFailureResponse | dict[str, int]:
    idempotency_config.register_lambda_context(context)
    if event.get("source") == DEAD_LETTER_SOURCE:
        return wiring.dead_letter_reader(delivery, completed, context).run()
    return batches.run(event, record_handler, context)
