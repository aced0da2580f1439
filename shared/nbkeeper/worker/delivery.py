"""One SQS record through the worker: read it, run it, and on its last receive tell the author.

A record that fails raises, so Powertools' batch processor reports it and SQS delivers it again;
after `max_receive_count` receives it lands in the DLQ. On that last receive the author is told
(a DM or their response_url), so nobody waits for a result that will not come, and the message
is noted as told: the dead-letter reader (`nbkeeper.worker.deadletters`) tells the authors of
the others, whose last receive died with its invocation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from nbkeeper.commands import (
    Command,
    CreateCommand,
    Requester,
    parse_command,
    peek,
    peek_requester,
)
from nbkeeper.explain import explain_error
from nbkeeper.slack.render import Message
from nbkeeper.worker.followups import origin_id
from nbkeeper.worker.ports import OutOfTimeError, RetryLaterError
from nbkeeper.worker.reporting import HELD_BACK, last_receive_notice

logger = logging.getLogger(__name__)

# (requester, when they asked, message, now, command id) -> how it was delivered
Tell = Callable[[Requester, datetime, Message, datetime, str | None], str]
# (SQS message id, how its author was told): the dead-letter reader will not tell them again
NoteTold = Callable[[str, str], None]


class PoisonMessageError(Exception):
    """A message that cannot be read as a command; it fails every receive and ends in the DLQ."""


@dataclass
class Delivery:
    """Runs records; `execute` takes a command's JSON form (what Idempotency hashes)."""

    execute: Callable[[dict[str, Any], float | None], dict[str, Any]]  # (command, seconds)
    tell: Tell
    max_receive_count: int
    now: Callable[[], datetime]
    # Seconds a record may run with this many left in the invocation; None: do not start it.
    budget: Callable[[float], float | None] = lambda seconds_left: seconds_left
    annotate: Callable[[Command], None] = lambda command: None  # e.g. the logger's keys
    # On a create's last receive: what it left behind, settled (recorded as theirs, or stopped).
    account_for_create: Callable[[CreateCommand], str] | None = None
    note_told: NoteTold = lambda message_id, how: None

    def handle(
        self, body: str, receives: int, seconds_left: float | None = None, message_id: str = ""
    ) -> dict[str, Any]:
        """Run one record; `seconds_left` in the invocation (None: no deadline)."""
        try:
            command: Command = parse_command(body)
        except pydantic.ValidationError as exc:
            reason = f"the message is not a valid command ({explain_error(exc)})"
            self.failed(body, receives, reason, message_id=message_id)
            raise PoisonMessageError(reason) from None
        self.annotate(command)
        budget = None if seconds_left is None else self.budget(seconds_left)
        try:
            if seconds_left is not None and budget is None:
                raise OutOfTimeError()
            return self.execute(command.model_dump(mode="json"), budget)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, RetryLaterError) else explain_error(exc)
            self.failed(body, receives, reason, exc, message_id)
            raise

    def held_back(self, body: str, receives: int, message_id: str = "") -> None:
        """A record not run because an earlier one of its FIFO group failed in this batch."""
        self.failed(body, receives, HELD_BACK, message_id=message_id)

    def failed(
        self,
        body: str,
        receives: int,
        reason: str,
        exc: BaseException | None = None,
        message_id: str = "",
    ) -> None:
        """Log the failure (with its traceback: the promised details); on the final receive
        before the DLQ, tell the author their request failed, and note it as told."""
        logger.warning("record failed", extra={"receive": receives, "reason": reason}, exc_info=exc)
        if receives < self.max_receive_count:
            return
        how = self.tell_author(body, reason, receives)
        if not message_id:
            return
        try:
            self.note_told(message_id, how)
        except Exception as exc:  # the reader may tell them a second time: better than never
            logger.warning("could not note the author as told (%s)", type(exc).__name__)

    def tell_author(self, body: str, reason: str, attempts: int) -> str:
        """Tell whoever sent `body` that it failed for `reason` and was set aside; returns how
        they were told ("response_url", "dm", "undelivered") or why nobody was ("no author")."""
        if peek(body, "type") == "sweep-project":
            logger.error("lease keeper sweep failed on its last receive; see the DLQ")
            return "no author"  # nobody asked: the keeper sent it, and its next pass sweeps again
        requester = peek_requester(body)
        if requester is None:
            logger.error("poison message without a readable author; see the DLQ")
            return "no author"
        now = self.now()
        try:
            issued = datetime.fromisoformat(str(peek(body, "requested_at")))
        except (TypeError, ValueError):
            issued = now
        try:
            command: Command | None = parse_command(body)
        except pydantic.ValidationError:
            command = None
        aftermath = ""
        if isinstance(command, CreateCommand) and self.account_for_create is not None:
            aftermath = self.account_for_create(command)
        # The response_url the webhook kept is filed under the id of the command a follow-up
        # continues.
        command_id = origin_id(command) if command else peek(body, "command_id")
        notice = last_receive_notice(attempts, reason, aftermath, command)
        return self.tell(
            requester, issued, notice, now, command_id if isinstance(command_id, str) else None
        )
