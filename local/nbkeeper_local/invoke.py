"""`nbkeeper invoke [FUNCTION] EVENT`: one real handler on one events/ file, without Docker.

`sam local invoke -e` needs Docker; this runs `functions/<FUNCTION>/app.py` in the local world
(the ModelArts emulator seeded with a fleet, moto for SQS and DynamoDB, a fake Slack) and prints
what came back as a person would read it. Slack samples carry a placeholder signature, so they
are re-signed with the local signing secret, and every response_url in the event is pointed at
the fake Slack, so nothing leaves the machine. FUNCTION may be left out: the event's file name
says it (schedule* -> lease_keeper, slack_* -> slack_commands, sqs_* and worker_* ->
notebook_worker).

With a slash command that queues work, the worker then runs on the queue (`--no-follow` to
skip) and the Slack messages it sends are printed too. The handlers' JSON logs and metrics go to
a file whose path is printed; `--verbose` shows them instead.

`nbkeeper resign FILE --secret S` only re-signs a Slack sample (for `sam local invoke -e`, or a
curl to a deployed stage) and prints the event.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbkeeper.tags import OWNER_TAG
from nbkeeper_local.harness import (
    FUNCTIONS,
    LOCAL_SIGNING_SECRET,
    FakeLambdaContext,
    FakeSlack,
    HandlerOutput,
    LocalWorld,
    demo_policy,
    event_body,
    handler_output,
    load_function,
    local_world,
    pass_line,
    resign,
    slack_lines,
    with_response_url,
    worker_round,
)
from nbkeeper_local.slacktext import indent, render

BY_PREFIX = {
    "schedule": "lease_keeper",
    "slack_": "slack_commands",
    "sqs_": "notebook_worker",
    "worker_": "notebook_worker",  # the worker's other event: the dead-letter schedule
}
SAMPLE_NOTEBOOK = "exp-42"  # the notebook the events/ samples act on
MAX_ROUNDS = 40  # worker rounds when following a command (each moves time 30 s)


class InvokeError(Exception):
    """The function or event cannot be invoked; the message says why."""


def function_for(event_path: Path, name: str | None) -> str:
    """The handler folder: `name` (hyphens allowed), else guessed from the file name."""
    folders = sorted(p.name for p in FUNCTIONS.iterdir() if (p / "app.py").exists())
    if name:
        folder = name.replace("-", "_")
        if folder not in folders:
            raise InvokeError(f"no function {name!r}; choose one of {', '.join(folders)}")
        return folder
    for prefix, folder in BY_PREFIX.items():
        if event_path.name.startswith(prefix):
            return folder
    raise InvokeError(
        f"cannot tell the function from {event_path.name}; name it: "
        f"nbkeeper invoke <{'|'.join(folders)}> {event_path}"
    )


def read_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text())
    except OSError as exc:
        raise InvokeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InvokeError(f"{path} is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise InvokeError(f"{path}: an event is a JSON object")
    return event


def is_http(event: Mapping[str, Any]) -> bool:
    return "routeKey" in event or "requestContext" in event


def slack_form(event: dict[str, Any]) -> dict[str, Any]:
    """The slash command form, or the interaction payload, of a Slack event."""
    from urllib.parse import parse_qs

    form = {k: v[0] for k, v in parse_qs(event_body(event).decode()).items()}
    if "payload" in form:
        payload: dict[str, Any] = json.loads(form["payload"])
        return payload
    return form


def event_time(event: Mapping[str, Any]) -> datetime:
    """The schedule event's `time` (the keeper decides as of it), else now."""
    raw = event.get("time")
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


# ---------------------------------------------------------------------- the local world


def seed(emulator: Any, fleet: int, owner: str | None) -> None:
    """A fleet, plus the samples' notebook (owned by the event's user) for commands to act on."""
    from nbkeeper.modelarts.schemas import NotebookStatus
    from nbkeeper_local.emulator.fleet import FleetSpec

    if fleet:
        emulator.seed_fleet(size=fleet)
    if owner:
        [record] = emulator.seed_fleet(
            FleetSpec(size=1, status_weights={NotebookStatus.RUNNING: 1.0}, seed=42)
        )
        record.name = SAMPLE_NOTEBOOK
        record.tags[OWNER_TAG] = owner


def local_event(folder: str, event: dict[str, Any], slack: FakeSlack) -> dict[str, Any]:
    """The event as the local world needs it: Slack re-signed, response_urls kept local."""
    if folder == "slack_commands" and is_http(event):
        body = with_response_url(event, slack.response_url("T0001/invoke/1"))
        return resign(event, LOCAL_SIGNING_SECRET, body=body)
    if folder == "notebook_worker":
        event = json.loads(json.dumps(event))
        for record in event.get("Records", []):
            try:
                command = json.loads(record["body"])
                command["requested_by"]["response_url"] = slack.response_url("T0001/invoke/q")
                record["body"] = json.dumps(command)
            except (KeyError, TypeError, ValueError):
                pass  # not a command: the worker reports it as it would
    return event


def describe_response(folder: str, result: Any, zone: tzinfo = UTC) -> tuple[str, bool]:
    """The handler's result as text, and whether it is a success."""
    if isinstance(result, Mapping) and "statusCode" in result:
        status = int(result["statusCode"])
        raw = result.get("body") or ""
        if result.get("isBase64Encoded"):
            import base64

            raw = base64.b64decode(raw).decode("utf-8", "replace")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            kind = str(body.get("response_type") or "reply")
            text = f"HTTP {status}, {kind} reply:\n\n{indent(render(body))}"
        else:
            text = f"HTTP {status}" + (f":\n\n{indent(raw)}" if raw else ", empty body")
        return text, status < 400
    if folder == "notebook_worker" and isinstance(result, Mapping) and "read" in result:
        outcomes = ", ".join(f"{k} {v}" for k, v in result.items() if k != "read")
        return f"dead letters read: {result['read']}" + (f" ({outcomes})" if outcomes else ""), True
    if folder == "notebook_worker" and isinstance(result, Mapping):
        failures = [f.get("itemIdentifier") for f in result.get("batchItemFailures", [])]
        if not failures:
            return "every message handled (no batchItemFailures)", True
        return f"batchItemFailures (redelivered by SQS): {', '.join(map(str, failures))}", False
    if folder == "lease_keeper" and isinstance(result, Mapping):
        return pass_line(result, zone), not result.get("project_errors")
    return json.dumps(result, indent=2, default=str), True


def follow(world: LocalWorld, worker: ModuleType, logs: HandlerOutput, emulator: Any) -> list[str]:
    """Run the worker on what was queued, as the SQS event source would; time moves 30 s a
    round. Returns the Slack messages it sent."""
    sqs = world.boto3_client("sqs")
    urls = [world.env["COMMANDS_QUEUE_URL"], world.env["FOLLOWUP_QUEUE_URL"]]
    lines: list[str] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        with logs.captured():
            result: dict[str, Any] = worker.lambda_handler(
                event, FakeLambdaContext("notebook-worker")
            )
        return result

    for _ in range(MAX_ROUNDS):
        handled = worker_round(sqs, urls, invoke)
        lines += slack_lines(world.slack)
        if not handled:
            break
        emulator.advance(timedelta(seconds=30))
    return lines


def queued_count(world: LocalWorld) -> int:
    sqs = world.boto3_client("sqs")
    reply = sqs.get_queue_attributes(
        QueueUrl=world.env["COMMANDS_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )
    return int(reply["Attributes"]["ApproximateNumberOfMessages"])


def invoke(
    folder: str,
    event: dict[str, Any],
    *,
    fleet: int = 12,
    follow_up: bool = True,
    verbose: bool = False,
    timezone: str = "UTC",
    say: Callable[[str], None] = print,
) -> bool:
    """Run `folder`'s handler on `event` in a fresh local world and tell what happened;
    True when the handler answered with success."""
    from nbkeeper_local.emulator.clock import SimClock
    from nbkeeper_local.emulator.core import Emulator

    slack_event = folder == "slack_commands" and is_http(event)
    form = slack_form(event) if slack_event else {}
    user = form.get("user_id") or (form.get("user") or {}).get("id")
    creates = str(form.get("text", "")).startswith("create")
    emulator = Emulator(clock=SimClock.stepped(event_time(event)))
    seed(emulator, fleet, None if creates else (user or "U0001"))
    extra = {"NBKEEPER_TIMEZONE": timezone, "POWERTOOLS_LOG_LEVEL": "INFO"}
    with (
        demo_policy(timezone) as policy_path,
        handler_output("invoke", verbose) as logs,
        local_world(emulator, extra_env=extra | {"POLICY_PATH": str(policy_path)}) as world,
    ):
        with logs.captured():
            module = load_function(folder)
            worker = load_function("notebook_worker") if slack_event and follow_up else None
        # The worker and the keeper run on the emulator's time (the worker's moves 30 s a round,
        # with follow-ups due at once); the webhook checks signatures against the real clock,
        # as it was signed.
        for handler in (worker, module if folder in ("notebook_worker", "lease_keeper") else None):
            if handler is not None:
                handler.seams.max_followup_delay = 0
                handler.seams.clock = lambda: emulator.now().timestamp()
        local = local_event(folder, event, world.slack)
        signed = " (re-signed with the local signing secret)" if slack_event else ""
        say(
            f"{folder} <- {describe_event(folder, event)}{signed}\n"
            f"  local world: emulator with {fleet} notebooks"
            + ("" if creates else f" and {SAMPLE_NOTEBOOK}")
            + ", moto (SQS, DynamoDB), fake Slack; nothing leaves this machine\n"
        )
        started = time.monotonic()
        with logs.captured():
            result = module.lambda_handler(local, FakeLambdaContext(folder.replace("_", "-")))
        text, ok = describe_response(folder, result, ZoneInfo(timezone))
        say(f"{text}\n")
        for line in slack_lines(world.slack):
            say(line + "\n")
        if slack_event and worker is not None and queued_count(world):
            say("The worker runs what was queued:\n")
            for line in follow(world, worker, logs, emulator) or ["(nothing sent to Slack)"]:
                say(line + "\n")
        say(f"Took {time.monotonic() - started:.1f} s; {logs.where()}.")
    return ok


def describe_event(folder: str, event: dict[str, Any]) -> str:
    if folder == "slack_commands" and is_http(event):
        form = slack_form(event)
        if "text" in form:
            return f"{form.get('command', '/nb')} {form['text']} (from {form.get('user_id')})"
        actions = form.get("actions") or [{}]
        return f"button {actions[0].get('action_id')} (pressed by {form.get('user', {}).get('id')})"
    if folder == "notebook_worker" and "Records" not in event:
        return "the dead-letter schedule (the worker reads its dead-letter queues)"
    if folder == "notebook_worker":
        return f"{len(event.get('Records', []))} queued command(s)"
    return f"schedule event at {event.get('time', 'now')}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nbkeeper invoke",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("args", nargs="+", metavar="[FUNCTION] EVENT")
    parser.add_argument("--fleet", type=int, default=12, help="notebooks to seed (default: 12)")
    parser.add_argument(
        "--no-follow", action="store_true", help="do not run the worker on what a command queued"
    )
    parser.add_argument(
        "--timezone",
        default=os.environ.get("NBKEEPER_TIMEZONE", "UTC"),
        help="IANA timezone of the policy and of `keep until` (default: NBKEEPER_TIMEZONE or UTC)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the handlers' logs")
    args = parser.parse_args(argv)
    if len(args.args) > 2:
        parser.error("give at most a FUNCTION and an EVENT file")
    name, path = (None, args.args[0]) if len(args.args) == 1 else args.args
    try:
        ZoneInfo(args.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        parser.error(f"--timezone {args.timezone!r} is not an IANA timezone (e.g. Europe/Paris)")
    try:
        event_path = Path(path)
        folder = function_for(event_path, name)
        event = read_event(event_path)
        ok = invoke(
            folder,
            event,
            fleet=args.fleet,
            follow_up=not args.no_follow,
            verbose=args.verbose,
            timezone=args.timezone,
        )
    except InvokeError as exc:
        print(f"nbkeeper invoke: {exc}", file=sys.stderr)
        return 2
    return 0 if ok else 1
