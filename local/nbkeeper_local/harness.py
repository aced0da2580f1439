"""A whole nbkeeper world on loopback: the ModelArts emulator, a moto server with the template's
queues and tables, and a fake Slack that records what it is sent.

`make demo`, `make serve` and the end-to-end tests run the real handlers inside it; the handlers
see only environment variables, exactly as in Lambda.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

import httpx

from nbkeeper.settings import DEFAULT_POLICY_PATH
from nbkeeper.slack.verify import compute_signature
from nbkeeper.timefmt import local_time
from nbkeeper_local.emulator.catalogue import DEFAULT_IMAGE_NAME
from nbkeeper_local.emulator.config import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from nbkeeper_local.emulator.core import Emulator
from nbkeeper_local.emulator.fleet import DEMO_PROJECT_ID
from nbkeeper_local.emulator.server import serve_in_thread
from nbkeeper_local.slacktext import indent, render

AWS_REGION = "eu-west-1"
MODELARTS_REGION = "ap-southeast-3"
LOCAL_SIGNING_SECRET = "local-demo-signing-secret"  # local only; never a real Slack secret
LOCAL_BOT_TOKEN = "xoxb-local-demo-bot-token"  # local only
MAX_RECEIVE_COUNT = 5  # the template's maxReceiveCount
DEMO_ADMIN = "U0CAROL"
PRICES = {
    "modelarts.vm.cpu.2u": 0.35,
    "modelarts.vm.cpu.8u": 1.4,
    "modelarts.vm.gpu.t4": 2.9,
}
DEMO_POLICY = {
    "timezone": "UTC",
    "prices": PRICES,
    "default_price_per_hour": 0.5,
    "currency": "USD",
    "summary_channel": "C0NOTEBOOKS",
    "warning_channel": "C0NOTEBOOKS",
    "admins": [DEMO_ADMIN],
}
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"


@dataclass
class SlackPost:
    path: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class FakeSlack:
    """Records response_url posts and Web API calls; answers like Slack does."""

    url: str = ""
    posts: list[SlackPost] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def response_url(self, name: str) -> str:
        return f"{self.url}/commands/{name}"

    def take(self) -> list[SlackPost]:
        with self.lock:
            taken, self.posts = self.posts, []
        return taken


def _slack_handler(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                body: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw).items()}
            else:
                body = json.loads(raw or "{}")
            path = urlsplit(self.path).path
            with slack.lock:
                slack.posts.append(SlackPost(path, body, self.headers.get("Authorization")))
            reply: dict[str, Any] = {"ok": True}
            if path.endswith("/conversations.open"):
                reply["channel"] = {"id": "D" + str(body.get("users", "U")).upper()[:10]}
            elif path.endswith("/chat.postMessage"):
                reply.update(channel=body.get("channel"), ts=f"{len(slack.posts)}.000100")
            data = json.dumps(reply).encode() if "/api/" in path else b"ok"
            self.send_response(200)
            self.send_header(
                "Content-Type", "application/json" if "/api/" in path else "text/plain"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    slack = FakeSlack()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _slack_handler(slack))
    slack.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-slack", daemon=True)
    thread.start()
    try:
        yield slack
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class LocalWorld:
    emulator: Emulator
    emulator_url: str
    moto_url: str
    slack: FakeSlack
    env: dict[str, str]
    project_id: str = DEMO_PROJECT_ID

    def boto3_resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(  # type: ignore[call-overload]
            service, region_name=AWS_REGION, endpoint_url=self.moto_url
        )

    def boto3_client(self, service: str) -> Any:
        import boto3

        return boto3.client(  # type: ignore[call-overload]
            service, region_name=AWS_REGION, endpoint_url=self.moto_url
        )


def create_aws_resources(endpoint_url: str | None = None) -> dict[str, str]:
    """The template's queues and tables, in moto (a server at `endpoint_url`, or in-process under
    `mock_aws` when None). Returns the functions' environment for them."""
    import boto3

    sqs = boto3.client("sqs", region_name=AWS_REGION, endpoint_url=endpoint_url)
    dynamodb = boto3.client("dynamodb", region_name=AWS_REGION, endpoint_url=endpoint_url)
    dlq = sqs.create_queue(QueueName="commands-dlq.fifo", Attributes={"FifoQueue": "true"})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])
    commands = sqs.create_queue(
        QueueName="commands.fifo",
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
                    "maxReceiveCount": MAX_RECEIVE_COUNT,
                }
            ),
        },
    )
    followup_dlq = sqs.create_queue(QueueName="followup-dlq")["QueueUrl"]
    followup_dlq_arn = sqs.get_queue_attributes(QueueUrl=followup_dlq, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    followup = sqs.create_queue(
        QueueName="followup",
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": followup_dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )
    for name, key, ttl in (
        ("state", ["pk", "sk"], "expires_at"),
        ("idempotency", ["id"], "expiration"),
    ):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"}
                for i, k in enumerate(key)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in key],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )
    return {
        "COMMANDS_QUEUE_URL": commands["QueueUrl"],
        "COMMANDS_DLQ_URL": dlq["QueueUrl"],
        "FOLLOWUP_QUEUE_URL": followup["QueueUrl"],
        "FOLLOWUP_DLQ_URL": followup_dlq,
        "STATE_TABLE": "state",
        "IDEMPOTENCY_TABLE": "idempotency",
        "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
    }


@contextmanager
def local_world(
    emulator: Emulator, *, set_environ: bool = True, extra_env: dict[str, str] | None = None
) -> Iterator[LocalWorld]:
    """Start everything on 127.0.0.1; with `set_environ`, export the functions' environment."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    # moto's backends live in the process: start from empty even if an earlier world ran here.
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    saved = dict(os.environ)
    try:
        with serve_in_thread(emulator) as emulator_url, fake_slack() as slack:
            env = {
                "AWS_DEFAULT_REGION": AWS_REGION,
                "AWS_REGION": AWS_REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_ENDPOINT_URL": moto_url,
                "MODELARTS_REGION": MODELARTS_REGION,
                "MODELARTS_PROJECT_ID": DEMO_PROJECT_ID,
                "MODELARTS_ENDPOINT": emulator_url,
                "HUAWEICLOUD_SDK_AK": DEMO_ACCESS_KEY,
                "HUAWEICLOUD_SDK_SK": DEMO_SECRET_KEY,
                "SLACK_SIGNING_SECRET": LOCAL_SIGNING_SECRET,
                "SLACK_BOT_TOKEN": LOCAL_BOT_TOKEN,
                "SLACK_API_URL": f"{slack.url}/api/",
                "POWERTOOLS_SERVICE_NAME": "nbkeeper-local",
                "POWERTOOLS_METRICS_NAMESPACE": "nbkeeper",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
                "NOTEBOOK_DEFAULT_IMAGE": DEFAULT_IMAGE_NAME,
                **(extra_env or {}),
            }
            os.environ.update(env)  # boto3 below needs the fake credentials too
            env.update(create_aws_resources(moto_url))
            if set_environ:
                os.environ.update(env)
            else:
                os.environ.clear()
                os.environ.update(saved)
            yield LocalWorld(emulator, emulator_url, moto_url, slack, env)
    finally:
        if set_environ:
            os.environ.clear()
            os.environ.update(saved)
        moto.stop()


# ---------------------------------------------------------------------- Lambda side


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "nbkeeper-local"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "local-request"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{AWS_REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_function(folder: str) -> ModuleType:
    """Import functions/<folder>/app.py (every handler is app.py) under a unique name, with the
    current environment, as a Lambda cold start would."""
    name = f"nbkeeper_function_{folder}"
    spec = importlib.util.spec_from_file_location(name, FUNCTIONS / folder / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"functions/{folder}/app.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _signed(
    event: dict[str, Any], body: bytes, secret: str, at: float | None = None
) -> dict[str, Any]:
    timestamp = str(int(time.time() if at is None else at))
    event["isBase64Encoded"] = True
    event["body"] = base64.b64encode(body).decode()
    event["headers"]["x-slack-request-timestamp"] = timestamp
    event["headers"]["x-slack-signature"] = compute_signature(secret, timestamp, body)
    return event


def slash_command_event(
    text: str,
    user_id: str,
    response_url: str,
    *,
    secret: str = LOCAL_SIGNING_SECRET,
    team_id: str = "T0DEMO",
    channel_id: str = "C0NOTEBOOKS",
    at: float | None = None,
) -> dict[str, Any]:
    """An API Gateway (HTTP API, payload 2.0) event for `/nb <text>`, signed like Slack signs."""
    event: dict[str, Any] = json.loads((EVENTS / "slack_command_help.json").read_text())
    form = {
        "token": "deprecated",
        "team_id": team_id,
        "team_domain": "demo",
        "channel_id": channel_id,
        "channel_name": "notebooks",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": "/nb",
        "text": text,
        "response_url": response_url,
        "trigger_id": f"{time.time_ns()}.trigger",
        "api_app_id": "A0DEMO",
    }
    return _signed(event, urllib.parse.urlencode(form).encode(), secret, at)


def interaction_event(
    user_id: str,
    action_id: str,
    value: str,
    response_url: str,
    *,
    secret: str = LOCAL_SIGNING_SECRET,
    team_id: str = "T0DEMO",
    at: float | None = None,
) -> dict[str, Any]:
    """A signed `block_actions` interaction: `user_id` pressed the button `action_id`."""
    event: dict[str, Any] = json.loads((EVENTS / "slack_interaction_confirm.json").read_text())
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "team": {"id": team_id, "domain": "demo"},
        "api_app_id": "A0DEMO",
        "trigger_id": f"{time.time_ns()}.trigger",
        "container": {"type": "message", "channel_id": "C0NOTEBOOKS", "is_ephemeral": True},
        "channel": {"id": "C0NOTEBOOKS", "name": "notebooks"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": action_id,
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return _signed(event, body, secret, at)


def sqs_event(queue_url: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Received SQS messages shaped as the event Lambda's SQS event source delivers."""
    arn = f"arn:aws:sqs:{AWS_REGION}:123456789012:" + queue_url.rsplit("/", 1)[-1]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": AWS_REGION,
            }
            for m in messages
        ]
    }


def receive_batch(sqs: Any, queue_url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Receive up to 10 messages; returns them and the SQS event Lambda would deliver."""
    reply = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30
    )
    messages: list[dict[str, Any]] = list(reply.get("Messages", []))
    return sqs_event(queue_url, messages), messages


def worker_round(
    sqs: Any, queue_urls: Iterable[str], invoke: Callable[[dict[str, Any]], dict[str, Any]]
) -> int:
    """One round of the SQS event source: a batch from each queue to the worker (`invoke`), then
    delete what it did not report as failed (those become visible again, as in Lambda).
    Returns how many messages were handled."""
    handled = 0
    for url in queue_urls:
        event, messages = receive_batch(sqs, url)
        if not messages:
            continue
        handled += len(messages)
        result = invoke(event)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return handled


@contextmanager
def demo_policy(timezone: str = "UTC") -> Iterator[Path]:
    """The shipped keeper policy with demo prices, channels and admin, in `timezone`, as a
    temporary file."""
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory(prefix="nbkeeper-policy-") as folder:
        policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
        path = Path(folder) / "policy.yaml"
        path.write_text(yaml.safe_dump(policy | DEMO_POLICY | {"timezone": timezone}))
        yield path


def event_body(event: dict[str, Any]) -> bytes:
    """The raw body of an API Gateway event (base64 or not)."""
    raw = event.get("body") or ""
    return base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()


def resign(
    event: dict[str, Any], secret: str, at: float | None = None, *, body: bytes | None = None
) -> dict[str, Any]:
    """Sign an API Gateway event's body now (as Slack would have), whatever it carried before;
    `body` replaces the body first."""
    body = event_body(event) if body is None else body
    event = json.loads(json.dumps(event))
    return _signed(event, body, secret, at)


def fresh_button_value(value: Any) -> Any:
    """One of our button values as if the button had just been posted (buttons expire: a
    committed sample's time is long past), like re-signing a sample for a fresh request."""
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return value
    if not isinstance(data, dict) or not ({"by", "cmd"} <= data.keys() or "notebook_id" in data):
        return value
    return json.dumps({**data, "at": int(time.time())}, separators=(",", ":"))


def with_response_url(event: dict[str, Any], response_url: str) -> bytes:
    """A Slack event's form body with its response_url (the slash command's, or the
    interaction payload's) pointed at `response_url`, so replies stay on this machine, and its
    button values issued now (`fresh_button_value`)."""
    form = {
        k: v[0] for k, v in parse_qs(event_body(event).decode(), keep_blank_values=True).items()
    }
    if "payload" in form:
        payload = json.loads(form["payload"])
        if "response_url" in payload:
            payload["response_url"] = response_url
        for action in payload.get("actions") or []:
            action["value"] = fresh_button_value(action.get("value"))
        form["payload"] = json.dumps(payload)
    elif "response_url" in form:
        form["response_url"] = response_url
    return urllib.parse.urlencode(form).encode()


@dataclass
class HandlerOutput:
    """Where the handlers' own output goes in local runs: Powertools' JSON log lines and the
    CloudWatch metrics blobs are for machines, so they go to `stream` (a file whose path is
    printed), or with `capture` False (--verbose) to the terminal as they come."""

    stream: TextIO
    path: Path | None = None
    capture: bool = True

    @contextmanager
    def captured(self) -> Iterator[None]:
        """Run handler code (imports included) with its output going to `stream`."""
        if not self.capture:
            yield
            return
        with contextlib.redirect_stdout(self.stream), contextlib.redirect_stderr(self.stream):
            _follow_stdout()
            try:
                yield
            finally:
                _follow_stdout()  # also a handler that an import in here bound to our file
                self.stream.flush()

    def where(self) -> str:
        if not self.capture:
            return "handler logs: shown as they come (--verbose)"
        if self.path is None:
            return "handler logs: kept in memory"
        return f"handler logs and metrics: {self.path} (--verbose shows them here)"


class _CurrentStdout:
    """Writes to whatever `sys.stdout` is at the time (a redirect, pytest's capture)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _follow_stdout() -> None:
    """Powertools' Logger keeps the stream it found at its first import: make its handlers
    follow `sys.stdout` instead, so a redirect (our log file) applies to them too."""
    service = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined"))
    for handler in service.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler.stream, _CurrentStdout
        ):
            handler.stream = _CurrentStdout()


@contextmanager
def handler_output(name: str, verbose: bool = False) -> Iterator[HandlerOutput]:
    """A `HandlerOutput` writing to <tmp>/nbkeeper-<name>.log (replaced each run), or stdout."""
    if verbose:
        yield HandlerOutput(sys.stdout, capture=False)
        return
    import tempfile

    path = Path(tempfile.gettempdir()) / f"nbkeeper-{name}.log"
    with path.open("w", encoding="utf-8") as stream:
        yield HandlerOutput(stream, path)


# ---------------------------------------------------------------------- what people see


def pass_line(summary: Mapping[str, Any], zone: tzinfo = UTC) -> str:
    """A lease keeper pass summary in one sentence, its time in `zone`."""
    notebooks = int(summary.get("notebooks", 0))
    mode = ", a dry run" if summary.get("dry_run") else ""
    at = str(summary.get("at"))
    with contextlib.suppress(ValueError):
        at = local_time(datetime.fromisoformat(at.replace("Z", "+00:00")), zone, date=True)
    line = (
        f"pass at {at}{mode}: {notebooks} running notebook"
        f"{'' if notebooks == 1 else 's'}, {summary.get('prolong', 0)} prolonged, "
        f"{summary.get('warn', 0)} warned, {summary.get('stop', 0)} stopped, "
        f"{summary.get('noop', 0)} left alone"
    )
    for key, noun, what in (
        ("failures", "action", "failed"),
        ("project_errors", "project", "not swept"),
    ):
        n = int(summary.get(key) or 0)
        if n:
            line += f"; {n} {noun}{'' if n == 1 else 's'} {what}"
    return line + "."


def slack_where(post: SlackPost) -> str:
    """Where a message went, as a person would say it."""
    if post.path.startswith("/commands/"):
        return "reply to the person who asked (response_url)"
    channel = str(post.body.get("channel", ""))
    if channel.startswith("U") or channel.startswith("D"):  # the fake opens D<user> for DMs
        return f"DM to {channel.removeprefix('D')}"
    return f"post to {channel}"


def slack_lines(slack: FakeSlack) -> list[str]:
    """What reached Slack since the last call, each message rendered in full."""
    lines = []
    for post in slack.take():
        if post.path.endswith("/conversations.open"):
            continue
        lines.append(f"Slack, {slack_where(post)}:\n{indent(render(post.body))}")
    return lines
