"""One SQS batch through the worker: in order on the FIFO commands queue, freely on the follow-ups.

Lambda's event source delivers each queue's records in their own invocations, so one batch comes
from one queue. Commands (FIFO) go through Powertools' `SqsFifoPartialProcessor` with
`skip_group_on_error=True`: records run in order, and once a record fails, the later records of
its message group (one notebook, or one project's creates) fail unrun and come back after it. The
plain `BatchProcessor` would let a later `keep ... 8h` succeed and be deleted while the earlier
`keep ... 1h` is retried after it and undoes it. Follow-ups (standard queue, no order) keep the
plain processor: each is one look at one notebook.

A record held back for its group is reported like any failure: on its last receive its author is
told it was set aside (`on_held_back`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.exceptions import (
    SQSFifoMessageGroupCircuitBreakerError,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


class OrderedProcessor(SqsFifoPartialProcessor):
    """`SqsFifoPartialProcessor` that skips a failed record's group, and says so per record."""

    def __init__(self, on_held_back: Callable[[SQSRecord], None]) -> None:
        super().__init__(skip_group_on_error=True)
        # A batch whose records all failed is still a partial response (every id listed), not an
        # invocation error: one poison message must not count as a function failure.
        self.raise_on_entire_batch_failure = False
        self._on_held_back = on_held_back

    def failure_handler(self, record: Any, exception: Any) -> Any:
        if exception[0] is SQSFifoMessageGroupCircuitBreakerError:
            self._on_held_back(record)
        return super().failure_handler(record, exception)


class BatchRunner:
    """Picks the processor by the batch's queue: `.fifo` in the source ARN means in order."""

    def __init__(self, on_held_back: Callable[[SQSRecord], None]) -> None:
        self.ordered = OrderedProcessor(on_held_back)
        self.unordered = BatchProcessor(
            event_type=EventType.SQS, raise_on_entire_batch_failure=False
        )

    def processor_for(self, event: dict[str, Any]) -> BatchProcessor:
        records = event.get("Records") or [{}]
        arn = str(records[0].get("eventSourceARN", ""))
        return self.ordered if arn.endswith(".fifo") else self.unordered

    def run(
        self, event: dict[str, Any], record_handler: Callable[..., Any], context: Any
    ) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event,
            record_handler=record_handler,
            processor=self.processor_for(event),
            context=context,
        )
