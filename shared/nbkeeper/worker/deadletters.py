"""Dead letters: the author of every message in the dead-letter queues is told, once.

The worker tells a command's author on its last receive (`nbkeeper.worker.delivery`). When the
invocation holding that last receive dies before running the record (its timeout, a crash, an
out-of-memory kill), nobody is told, and SQS moves the message to the dead-letter queue anyway.
So on a schedule the worker reads its dead-letter queues and, for each message not yet noted as
told (`ToldLedger`, the state table, by SQS message id: a message keeps its id when SQS moves it
to the DLQ, where a FIFO DLQ even takes it as the deduplication id; a redriven message gets a new
id, so a second failure is a new letter):

- a command that completed (its Idempotency record says so: an invocation ran it and reported
  its result, then died before SQS could delete it) is noted, and nothing is sent;
- any other message's author is told it was set aside (a create's notebook settled first, as on
  a last receive), then the message is noted with how they were told.

The messages are read, never deleted: the dead-letter queue stays the operator's record (its
alarm, redrive), and each is released (visible again) when the run ends. A message whose author
could not be reached (Slack unreachable or refusing) is not noted, so the next run tries again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from nbkeeper.commands import peek

logger = logging.getLogger(__name__)

# The `source` of the scheduler's event that runs the reader (template.yaml, DeadLetters).
DEAD_LETTER_SOURCE = "nbkeeper.dead-letters"
# Why the author is told (`nbkeeper.worker.reporting.last_receive_notice` words the rest).
CUT_SHORT = "its last attempt was cut short (the worker timed out or crashed) before it finished."
# SQS returns at most 10 messages a call; a run reads at most this many (the rest: next run).
MAX_LETTERS_PER_RUN = 1000


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # "commands" or "follow-ups"
    message_id: str
    body: str


class DeadLetters(Protocol):
    """The dead-letter queues, read without deleting (`SqsDeadLetters`)."""

    def read(self, limit: int) -> list[DeadLetter]: ...

    def release(self) -> None: ...


class ToldLedger(Protocol):
    """Which dead letters' authors were told (the state table: `DynamoCommandLog`)."""

    def told(self, message_id: str) -> bool: ...

    def note_told(self, message_id: str, how: str, at: datetime) -> None: ...


@dataclass
class DeadLetterReader:
    letters: DeadLetters
    ledger: ToldLedger
    # command id -> it completed (its Idempotency record is COMPLETED)
    completed: Callable[[str], bool]
    # (body, reason, attempts) -> how its author was told (`Delivery.tell_author`)
    tell_author: Callable[[str, str, int], str]
    attempts: int  # the queues' maxReceiveCount
    now: Callable[[], datetime]
    # Seconds left in the invocation; the reader stops telling below `reserve_s`.
    seconds_left: Callable[[], float] = lambda: float("inf")
    reserve_s: float = 30.0
    counts: Counter[str] = field(default_factory=Counter, init=False)  # this run's outcomes

    def run(self) -> dict[str, int]:
        """Read every dead letter (up to `MAX_LETTERS_PER_RUN`), tell whoever is owed a word,
        release them all. Returns counts by outcome (for the log and the handler's reply)."""
        self.counts = Counter({"read": 0})
        try:
            for letter in self.letters.read(MAX_LETTERS_PER_RUN):
                self.counts["read"] += 1
                if self.seconds_left() < self.reserve_s:
                    self.counts["left for the next run"] += 1
                    continue
                self._one(letter)
        finally:
            self.letters.release()
        if self.counts["read"] >= MAX_LETTERS_PER_RUN:
            logger.warning("dead-letter queues hold more than a run reads; redrive or purge them")
        logger.info("dead letters read", extra={"counts": dict(self.counts)})
        return dict(self.counts)

    def _one(self, letter: DeadLetter) -> None:
        try:
            if self.ledger.told(letter.message_id):
                self.counts["already told"] += 1
                return
            command_id = peek(letter.body, "command_id")
            if isinstance(command_id, str) and self.completed(command_id):
                how = "completed"
            else:
                how = self.tell_author(letter.body, CUT_SHORT, self.attempts)
                if how == "undelivered":  # Slack unreachable or refusing: the next run tries
                    logger.warning("could not tell a dead letter's author", extra=_ids(letter))
                    self.counts["undelivered, tried again next run"] += 1
                    return
            self.ledger.note_told(letter.message_id, how, self.now())
            self.counts[how] += 1
        except Exception:  # one letter never costs the others; the next run tries it again
            logger.exception("dead letter not handled", extra=_ids(letter))
            self.counts["failed, tried again next run"] += 1


class SqsDeadLetters:
    """`DeadLetters` over boto3's SQS client: receives hold each message `hold_s` seconds (so a
    run sees it once; FIFO order keeps the oldest first) and `release` makes them visible again
    at once, as if nobody had looked."""

    def __init__(self, sqs: Any, queues: Mapping[str, str], hold_s: int) -> None:
        self._sqs = sqs
        self._queues = queues
        self._hold_s = hold_s
        self._held: list[tuple[str, str, str]] = []  # (queue url, message id, receipt handle)

    def read(self, limit: int) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for name, url in self._queues.items():
            while len(found) < limit:
                reply = self._sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(10, limit - len(found)),
                    VisibilityTimeout=self._hold_s,
                    WaitTimeSeconds=0,
                )
                batch = reply.get("Messages", [])
                if not batch:
                    break
                for message in batch:
                    self._held.append((url, message["MessageId"], message["ReceiptHandle"]))
                    found.append(DeadLetter(name, message["MessageId"], message["Body"]))
        return found

    def release(self) -> None:
        held, self._held = self._held, []
        for url in {url for url, _, _ in held}:
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, (queue, _, handle) in enumerate(held)
                if queue == url
            ]
            for start in range(0, len(entries), 10):
                try:
                    self._sqs.change_message_visibility_batch(
                        QueueUrl=url, Entries=entries[start : start + 10]
                    )
                except Exception as exc:  # they come back after hold_s anyway
                    logger.warning("dead letters not released (%s)", type(exc).__name__)


def completed_in(persistence: Any, config: Any, key_prefix: str) -> Callable[[str], bool]:
    """Whether a command completed, by its record in Powertools' Idempotency table
    (`persistence`, configured as the worker's `idempotent_function` configures it)."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemNotFoundError,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import (
        STATUS_CONSTANTS,
    )

    def completed(command_id: str) -> bool:
        persistence.configure(config, key_prefix=key_prefix)
        try:
            record = persistence.get_record({"command_id": command_id})
        except IdempotencyItemNotFoundError:
            return False
        return record is not None and record.status == STATUS_CONSTANTS["COMPLETED"]

    return completed


def _ids(letter: DeadLetter) -> dict[str, str]:
    return {"queue": letter.queue, "message_id": letter.message_id}
