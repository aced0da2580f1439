"""Everything nbkeeper writes where people or operators can read it, captured for searching.

- log records from every logger (nbkeeper's at DEBUG, the handlers' Powertools loggers at DEBUG,
  third-party libraries at INFO: their DEBUG output, raw request bodies, is never enabled in
  Lambda), formatted as they would be printed, with their extra fields and tracebacks;
- what the handlers print (Powertools JSON lines, EMF metrics) while they run;
- every SQS message body any client sends (a botocore hook), the DLQs and the tables at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

LEDGER = "response_url items (30 minutes, state table)"
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string is itself worth seeing
            text = f"{record.msg!r} % {record.args!r}"
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        parts = [f"{record.name} {record.levelname} {text}"]
        if extras:
            parts.append(json.dumps(extras, default=str))
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        self.sink.append(" ".join(parts))


@dataclass
class Capture:
    logs: list[str] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    queue_bodies: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    slack: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # The state table's response_url items (COMMAND#{id} / RESPURL): where the webhook keeps a
    # command's response_url for its 30 minutes instead of the queue body (docs/queue-messages.md).
    # Searched for every secret but the response_url itself.
    ledger: list[str] = field(default_factory=list)

    def sources(self) -> dict[str, list[str]]:
        return {
            "log lines": self.logs,
            "printed output": self.printed,
            "queue and DLQ bodies": self.queue_bodies,
            "webhook replies": self.replies,
            "Slack messages": self.slack,
            "audit and table records": self.stored,
            "exception texts": self.errors,
            LEDGER: self.ledger,
        }

    def search(
        self, secrets: dict[str, str], allowed: dict[str, str] | None = None
    ) -> dict[tuple[str, str], list[str]]:
        """(secret name, source) -> matching excerpts. Values are regexes; `allowed` maps a
        source to the one secret name that belongs there (not searched for in it)."""
        found: dict[tuple[str, str], list[str]] = {}
        for name, pattern in secrets.items():
            regex = re.compile(pattern)
            for source, items in self.sources().items():
                if (allowed or {}).get(source) == name:
                    continue
                for item in items:
                    match = regex.search(item)
                    if match:
                        start = max(0, match.start() - 60)
                        excerpt = item[start : match.end() + 40].replace("\n", " ")
                        found.setdefault((name, source), []).append(excerpt)
        return found


@contextlib.contextmanager
def capturing(capture: Capture) -> Iterator[None]:
    """Route every logger into `capture` (and keep them from printing twice)."""
    handler = _Collect(capture.logs)
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    nbkeeper = logging.getLogger("nbkeeper")
    nbkeeper_level = nbkeeper.level
    nbkeeper.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
        nbkeeper.setLevel(nbkeeper_level)


def attach(module: ModuleType, capture: Capture) -> None:
    """A handler module's Powertools logger also writes into `capture` (formatted as printed)."""
    powertools = getattr(module, "logger", None)
    inner = getattr(powertools, "_logger", None)
    if inner is None:
        return
    handler = _Powertools(capture.logs, getattr(powertools, "registered_formatter", None))
    inner.addHandler(handler)
    inner.setLevel(logging.DEBUG)


class _Powertools(logging.Handler):
    def __init__(self, sink: list[str], formatter: Any) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(self.format(record))


class PrintedLines(io.StringIO):
    """A stream whose lines land in `capture.printed` at each flush: the demo's `HandlerOutput`
    stream (what the handlers print: Powertools JSON lines, EMF metrics)."""

    def __init__(self, capture: Capture) -> None:
        super().__init__()
        self.capture = capture

    def flush(self) -> None:
        text = self.getvalue()
        if text:
            self.capture.printed += text.splitlines()
            self.seek(0)
            self.truncate()
        super().flush()


@contextlib.contextmanager
def printed(capture: Capture) -> Iterator[None]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            yield
        finally:
            capture.printed += [line for line in (out.getvalue() + err.getvalue()).splitlines()]


def record_queue_bodies(client: Any, capture: Capture) -> None:
    """Every SendMessage through `client` (a boto3 SQS client) lands in `capture`."""

    def hook(params: dict[str, Any], **kwargs: Any) -> None:
        capture.queue_bodies.append(str(params.get("MessageBody", "")))

    client.meta.events.register("provide-client-params.sqs.SendMessage", hook)


def scan_tables(capture: Capture, names: list[str]) -> None:
    """Every item of the tables: response_url items into `capture.ledger`, the rest into
    `capture.stored`."""
    import boto3

    client = boto3.client("dynamodb")
    for name in names:
        kwargs: dict[str, Any] = {"TableName": name}
        while True:
            page = client.scan(**kwargs)
            for item in page.get("Items", []):
                ledger = item.get("sk", {}).get("S") == "RESPURL" and str(
                    item.get("pk", {}).get("S")
                ).startswith("COMMAND#")
                (capture.ledger if ledger else capture.stored).append(json.dumps(item))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
