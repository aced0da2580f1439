"""`make serve`: the Slack routes on 127.0.0.1, through the real webhook handler.

POST /slack/commands and /slack/interactions become API Gateway (HTTP API, payload 2.0) events
for `functions/slack_commands`; a background loop hands queued commands to the real worker; the
lease keeper runs every `--keeper-every` seconds. ModelArts is the emulator, AWS is a moto server,
and Slack's Web API is a fake: what it is sent is printed as a person would see it in Slack, text
and buttons. Point a real Slack app at it through a tunnel, or paste the printed curl commands
(they ask for `Accept: text/plain`, so the reply comes back as text too). The handlers' JSON logs
and metrics go to a file whose path is printed; `--verbose` shows them instead.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbkeeper.slack.verify import compute_signature
from nbkeeper_local.emulator.core import Emulator
from nbkeeper_local.emulator.server import is_loopback
from nbkeeper_local.harness import (
    DEMO_ADMIN,
    LOCAL_SIGNING_SECRET,
    FakeLambdaContext,
    HandlerOutput,
    LocalWorld,
    demo_policy,
    handler_output,
    load_function,
    local_world,
    pass_line,
    slack_lines,
    worker_round,
)
from nbkeeper_local.slacktext import render

ROUTES = ("/slack/commands", "/slack/interactions")
MAX_BODY = 64 * 1024


@dataclass
class Runtime:
    """The loaded handlers; one lock, since a Lambda execution environment runs one at a time."""

    world: LocalWorld
    commands: ModuleType
    worker: ModuleType
    keeper: ModuleType
    logs: HandlerOutput
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, module: ModuleType, event: dict[str, Any], name: str) -> Any:
        with self.lock, self.logs.captured():
            return module.lambda_handler(event, FakeLambdaContext(name))

    def drain_queues(self) -> int:
        """One worker round over both queues (what the SQS event sources would deliver)."""
        urls = [self.world.env["COMMANDS_QUEUE_URL"], self.world.env["FOLLOWUP_QUEUE_URL"]]
        return worker_round(
            self.world.boto3_client("sqs"),
            urls,
            lambda event: self.invoke(self.worker, event, "notebook-worker"),
        )

    def read_dead_letters(self) -> dict[str, int]:
        """The worker's scheduled dead-letter reader (template.yaml: every 5 minutes)."""
        from nbkeeper.worker.deadletters import DEAD_LETTER_SOURCE

        counts: dict[str, int] = self.invoke(
            self.worker, {"source": DEAD_LETTER_SOURCE}, "notebook-worker"
        )
        return counts

    def keeper_pass(self) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        summary: dict[str, Any] = self.invoke(
            self.keeper, {"source": "nbkeeper.serve", "time": now}, "lease-keeper"
        )
        return summary


def api_gateway_event(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """What API Gateway's HTTP API sends Lambda for a form POST (base64 body, lowercase headers)."""
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },
            "requestId": f"local-{time.time_ns()}",
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def make_handler(runtime: Runtime) -> type[BaseHTTPRequestHandler]:
    class SlackRoutes(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            status = args[1] if len(args) > 1 else ""
            print(f"  http {self.command} {self.path} -> {status}", flush=True)

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path not in ROUTES:
                self._reply(404, {"error": f"no route {path}; use {' or '.join(ROUTES)}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, {"error": "request body too large"})
                return
            body = self.rfile.read(length)
            event = api_gateway_event(path, dict(self.headers.items()), body)
            response = runtime.invoke(runtime.commands, event, "slack-commands")
            raw = response.get("body") or ""
            data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
            headers = dict(response.get("headers") or {})
            if "text/plain" in (self.headers.get("Accept") or ""):
                # A person with curl (Slack never asks for this): the reply as Slack shows it.
                data = as_text(data)
                headers["Content-Type"] = "text/plain; charset=utf-8"
            self.send_response(int(response.get("statusCode", 500)))
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return SlackRoutes


def as_text(data: bytes) -> bytes:
    """A Slack JSON reply rendered as text (other bodies as they are), newline-terminated."""
    try:
        body = json.loads(data or b"null")
    except ValueError:
        return data
    if isinstance(body, dict):
        return (render(body) + "\n").encode()
    return data if data else b"(empty reply: the result comes to the response_url)\n"


def curl_examples(base_url: str, response_url: str, secret: str = LOCAL_SIGNING_SECRET) -> str:
    """Ready-to-paste curl commands: signed now (valid 5 minutes), and a form that re-signs."""
    lines = ["Signed requests, valid for 5 minutes (Slack's window):", ""]
    for user, text in (("U0ALICE", "help"), ("U0ALICE", "create alice-exp"), ("U0ALICE", "list")):
        form = urllib.parse.urlencode(
            {
                "team_id": "T0DEMO",
                "channel_id": "C0NOTEBOOKS",
                "user_id": user,
                "command": "/nb",
                "text": text,
                "response_url": response_url,
            }
        )
        timestamp = str(int(time.time()))
        signature = compute_signature(secret, timestamp, form.encode())
        lines.append(
            f"curl -s {base_url}/slack/commands -H 'Accept: text/plain' "
            f"-H 'X-Slack-Request-Timestamp: {timestamp}' "
            f"-H 'X-Slack-Signature: {signature}' --data '{form}'"
        )
    lines += [
        "",
        "Any command, signed at the moment you run it (needs openssl):",
        "",
        f"SECRET='{secret}'  # the local signing secret (never a real one)",
        "body='team_id=T0DEMO&channel_id=C0NOTEBOOKS&user_id=U0ALICE&command=%2Fnb"
        f"&response_url={urllib.parse.quote(response_url, safe='')}&text=status+alice-exp'",
        'ts=$(date +%s); sig="v0=$(printf \'v0:%s:%s\' "$ts" "$body" '
        '| openssl dgst -sha256 -hmac "$SECRET" | sed \'s/^.* //\')"',
        f"curl -s {base_url}/slack/commands -H 'Accept: text/plain' "
        '-H "X-Slack-Request-Timestamp: $ts" -H "X-Slack-Signature: $sig" --data "$body"',
        "",
        "(Without `Accept: text/plain` the reply is the JSON Slack receives.)",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def serving(
    emulator: Emulator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    logs: HandlerOutput | None = None,
    timezone: str = "UTC",
) -> Iterator[tuple[str, Runtime]]:
    """Start the world and the HTTP server; yields (base URL, runtime). Handler output goes to
    `logs` (default: kept in memory)."""
    if not is_loopback(host):
        raise ValueError(f"refusing to serve on non-loopback address {host}")
    logs = logs or HandlerOutput(io.StringIO())
    with (
        demo_policy(timezone) as policy_path,
        local_world(
            emulator,
            extra_env={
                "POLICY_PATH": str(policy_path),
                "SLACK_ADMINS": DEMO_ADMIN,
                "NBKEEPER_TIMEZONE": timezone,
            },
        ) as world,
    ):
        with logs.captured():
            commands = load_function("slack_commands")
            worker = load_function("notebook_worker")
            keeper = load_function("lease_keeper")
        runtime = Runtime(world, commands, worker, keeper, logs)
        runtime.worker.seams.max_followup_delay = 5
        server = ThreadingHTTPServer((host, port), make_handler(runtime))
        thread = threading.Thread(target=server.serve_forever, name="slack-routes", daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}", runtime
        finally:
            server.shutdown()
            server.server_close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nbkeeper serve",
        description=__doc__,
        formatter_class=lambda prog: argparse.ArgumentDefaultsHelpFormatter(prog, width=100),
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8787, help="port for the Slack routes")
    parser.add_argument("--fleet", type=int, default=12, help="notebooks to seed in the emulator")
    parser.add_argument(
        "--keeper-every", type=float, default=300, help="seconds between lease keeper passes"
    )
    parser.add_argument(
        "--for-seconds", type=float, default=0, help="stop after this long (0: run until Ctrl-C)"
    )
    parser.add_argument(
        "--timezone",
        default="UTC",
        help="IANA timezone of the policy (working hours, times in messages) and of `keep until`",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the handlers' JSON logs and metrics here"
    )
    args = parser.parse_args(argv)
    try:
        zone = ZoneInfo(args.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        parser.error(f"--timezone {args.timezone!r} is not an IANA timezone (e.g. Europe/Paris)")

    emulator = Emulator()
    if args.fleet:
        emulator.seed_fleet(size=args.fleet)
    with (
        handler_output("serve", args.verbose) as logs,
        serving(emulator, args.host, args.port, logs=logs, timezone=args.timezone) as (
            base_url,
            runtime,
        ),
    ):
        world = runtime.world
        print(f"nbkeeper serve: Slack routes at {base_url}{ROUTES[0]} and {base_url}{ROUTES[1]}")
        print(
            f"  emulator {world.emulator_url} · moto {world.moto_url} · fake Slack {world.slack.url}"
        )
        print(f"  timezone {args.timezone}; {logs.where()}")
        print("  signing secret: the local one below; what Slack would show is printed here\n")
        print(curl_examples(base_url, world.slack.response_url("T0DEMO/1/local")))
        print("\nCtrl-C to stop.\n", flush=True)
        started = time.monotonic()
        next_pass = started
        try:
            while not args.for_seconds or time.monotonic() - started < args.for_seconds:
                if time.monotonic() >= next_pass:
                    summary = runtime.keeper_pass()
                    print(f"keeper {pass_line(summary, zone)}", flush=True)
                    runtime.read_dead_letters()  # on the keeper's beat, as in the template
                    next_pass = time.monotonic() + args.keeper_every
                runtime.drain_queues()
                for line in slack_lines(world.slack):
                    print(line, flush=True)
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nstopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
