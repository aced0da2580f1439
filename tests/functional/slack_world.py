"""A test world for the Slack flow: real handlers, moto (in-process), the emulator, fake Slack.

Signed requests are built from the events/ samples with slack_sdk's signature code; the worker
is driven by receiving from the moto queues and invoking its real `lambda_handler`.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from nbkeeper_local.emulator import Emulator
from nbkeeper_local.harness import (
    MAX_RECEIVE_COUNT,
    FakeLambdaContext,
    create_aws_resources,
    sqs_event,
)
from nbkeeper_local.harness import load_function as load_app
from tests.emulator_fixtures import (
    ACCESS_KEY,
    EMULATOR_BASE_URL,
    IMAGE_ID,
    PROJECT_ID,
    SECRET_KEY,
    no_sleep,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SECRET = "functional-test-signing-secret"
BOT_TOKEN = "xoxb-functional-test-token"
NOW = 1_800_000_000
ADMIN = "UADMIN"
MAX_RECEIVES = MAX_RECEIVE_COUNT


@dataclass
class FakeSlack:
    """httpx.MockTransport handler recording every post (response_url and Web API).

    views.open answers like Slack: `invalid_arguments` for a view slack_sdk's View model refuses
    (Block Kit's rules), `views_open_error` when a test sets it, else the view with an id."""

    posts: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    refuse_response_urls: bool = False
    views_open_error: str | None = None
    unreachable: bool = False  # every request fails to connect

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.unreachable:
            raise httpx.ConnectError("Slack unreachable", request=request)
        body = json.loads(request.content or b"{}")
        self.posts.append((str(request.url), body, request.headers.get("authorization")))
        if request.url.path.startswith("/api/"):
            reply: dict[str, Any] = {"ok": True}
            if request.url.path.endswith("conversations.open"):
                reply["channel"] = {"id": "D" + body["users"]}
            elif request.url.path.endswith("views.open"):
                reply = self._open_view(body)
            else:
                reply["ts"] = "1.0"
            return httpx.Response(200, json=reply)
        if self.refuse_response_urls:
            return httpx.Response(404, text="expired_url")
        return httpx.Response(200, text="ok")

    def texts(self) -> list[str]:
        return [body.get("text", "") for _, body, _ in self.posts if "text" in body]

    def dms(self) -> list[str]:
        return [b.get("text", "") for url, b, _ in self.posts if url.endswith("chat.postMessage")]

    def _open_view(self, body: dict[str, Any]) -> dict[str, Any]:
        from slack_sdk.errors import SlackObjectFormationError
        from slack_sdk.models.views import View

        if self.views_open_error:
            return {"ok": False, "error": self.views_open_error}
        if not body.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        try:
            View(**body["view"]).to_dict()
        except (SlackObjectFormationError, KeyError, TypeError):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {**body["view"], "id": f"V{len(self.opened()):04d}"}}

    def opened(self) -> list[dict[str, Any]]:
        """views.open calls (trigger_id and view), in order."""
        return [b for url, b, _ in self.posts if url.endswith("views.open")]


def _load(module: str) -> ModuleType:
    if module in sys.modules:
        return importlib.reload(sys.modules[module])
    return importlib.import_module(module)


def sign(event: dict[str, Any], body: bytes, *, timestamp: int = NOW, secret: str = SECRET) -> None:
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    event["headers"]["x-slack-request-timestamp"] = str(timestamp)
    event["headers"]["x-slack-signature"] = signature


def set_body(event: dict[str, Any], body: bytes) -> None:
    if event["isBase64Encoded"]:
        event["body"] = base64.b64encode(body).decode()
    else:
        event["body"] = body.decode()


class World:
    def __init__(
        self,
        emulator: Emulator,
        monkeypatch: pytest.MonkeyPatch,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.emulator = emulator
        self.slack = FakeSlack()
        self.sqs = boto3.client("sqs")
        resources = create_aws_resources()  # the template's queues and tables, in moto
        self.dlq_url = resources["COMMANDS_DLQ_URL"]
        self.queue_url = resources["COMMANDS_QUEUE_URL"]
        self.followup_url = resources["FOLLOWUP_QUEUE_URL"]
        env = {
            **resources,
            "MODELARTS_REGION": "ap-southeast-3",
            "MODELARTS_PROJECT_ID": PROJECT_ID,
            "MODELARTS_ENDPOINT": EMULATOR_BASE_URL,
            "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": SECRET_KEY,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_ADMINS": ADMIN,
            "SLACK_ALLOWED_USERS": "U0001,U0002",
            "NOTEBOOK_DEFAULT_IMAGE": IMAGE_ID,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "test",
            **(extra_env or {}),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        self.commands = load_app("slack_commands")
        self.worker = load_app("notebook_worker")

        transport = emulator.asgi_transport()
        slack_transport = httpx.MockTransport(self.slack)
        self.worker.seams.jupyter_transport = transport  # sweep-project probes notebooks
        for module in (self.commands, self.worker):
            module.seams.modelarts_transport = transport
            module.seams.modelarts_options = {"sleep": no_sleep}
            module.seams.slack_transport = slack_transport
        self.commands.seams.clock = lambda: NOW
        self.worker.seams.max_followup_delay = 0
        self._trigger = 0

    # ------------------------------------------------------------ Slack side

    def command_event(
        self, text: str, user: str = "U0001", *, base64_body: bool = True
    ) -> dict[str, Any]:
        event = json.loads((EVENTS / "slack_command_help.json").read_text())
        form = dict(urllib.parse.parse_qsl(base64.b64decode(event["body"]).decode()))
        self._trigger += 1
        form.update(
            text=text,
            user_id=user,
            trigger_id=f"{self._trigger}.trigger",
            response_url=f"https://hooks.slack.com/commands/T0001/{self._trigger}/x",
        )
        body = urllib.parse.urlencode(form).encode()
        event["isBase64Encoded"] = base64_body
        set_body(event, body)
        sign(event, body)
        return event

    def slash(self, text: str, user: str = "U0001") -> dict[str, Any]:
        """Send a signed slash command; returns the ephemeral reply (JSON)."""
        response = self.commands.lambda_handler(self.command_event(text, user), FakeLambdaContext())
        assert response["statusCode"] == 200, response
        reply: dict[str, Any] = json.loads(response["body"])
        return reply

    def click(
        self, message: dict[str, Any], action_id: str, user: str = "U0001", *, at: int = NOW
    ) -> int:
        """Click a button of `message` (as Slack would post it to the interactions route)."""
        event = json.loads((EVENTS / "slack_interaction_confirm.json").read_text())
        form = dict(urllib.parse.parse_qsl(base64.b64decode(event["body"]).decode()))
        payload = json.loads(form["payload"])
        button = next(
            e
            for block in message["blocks"]
            if block["type"] == "actions"
            for e in block["elements"]
            if e["action_id"] == action_id
        )
        payload["user"]["id"] = user
        payload["actions"][0].update(action_id=action_id, value=button["value"])
        return self.interact(payload, at=at)

    def interact(self, payload: dict[str, Any], *, at: int = NOW) -> int:
        """Post a signed interaction at `at` (the handler's clock is set to it)."""
        status: int = self.interaction(payload, at=at)["statusCode"]
        return status

    def interaction(self, payload: dict[str, Any], *, at: int = NOW) -> dict[str, Any]:
        """Post a signed interaction at `at`; the handler's whole response."""
        event = json.loads((EVENTS / "slack_interaction_confirm.json").read_text())
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        set_body(event, body)
        sign(event, body, timestamp=at)
        self.commands.seams.clock = lambda: at
        response: dict[str, Any] = self.commands.lambda_handler(event, FakeLambdaContext())
        return response

    # ------------------------------------------------------------ queue side

    def receive(self, url: str) -> list[dict[str, Any]]:
        reply = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30
        )
        return list(reply.get("Messages", []))

    def run_worker(self, url: str | None = None) -> int:
        """Receive one batch and run the worker on it; failures become visible again."""
        url = url or self.queue_url
        messages = self.receive(url)
        if not messages:
            return 0
        result = self.worker.lambda_handler(sqs_event(url, messages), FakeLambdaContext())
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)

    def settle(self, advance_s: float = 600, rounds: int = 10) -> None:
        """Drain commands, let simulated time pass, drain follow-ups, until both queues are quiet."""
        for _ in range(rounds):
            worked = self.run_worker(self.queue_url)
            self.emulator.advance(advance_s)
            worked += self.run_worker(self.followup_url)
            if not worked:
                return

    def emulator_api_create(self, name: str) -> None:
        """A notebook made outside nbkeeper (no owner tag), e.g. in the console."""
        from tests.emulator_fixtures import CREATE_BODY, NOTEBOOKS

        self._emulator_call("POST", NOTEBOOKS, json={**CREATE_BODY, "name": name})

    def _emulator_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import asyncio

        from nbkeeper.modelarts.auth import Credentials, SignerAuth

        async def go() -> httpx.Response:
            auth = SignerAuth(Credentials(ACCESS_KEY, SECRET_KEY), PROJECT_ID)
            async with httpx.AsyncClient(
                transport=self.emulator.asgi_transport(), base_url=EMULATOR_BASE_URL, auth=auth
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def notebooks(self) -> list[dict[str, Any]]:
        from tests.emulator_fixtures import NOTEBOOKS

        async def go() -> list[dict[str, Any]]:
            from nbkeeper.modelarts.auth import Credentials, SignerAuth

            auth = SignerAuth(Credentials(ACCESS_KEY, SECRET_KEY), PROJECT_ID)
            async with httpx.AsyncClient(
                transport=self.emulator.asgi_transport(), base_url=EMULATOR_BASE_URL, auth=auth
            ) as client:
                reply = await client.get(f"{NOTEBOOKS}/all", params={"limit": 50})
                data: list[dict[str, Any]] = reply.json()["data"]
                return data

        import asyncio

        return asyncio.run(go())


def create_running(world: World, name: str = "exp-1", user: str = "U0001") -> str:
    """`/nb create NAME` through the webhook and the worker until RUNNING; its id."""
    reply = world.slash(f"create {name}", user)
    assert "Queued" in reply["text"], reply
    world.settle()
    (notebook,) = [n for n in world.notebooks() if n["name"] == name]
    assert notebook["status"] == "RUNNING"
    return str(notebook["id"])


@pytest.fixture
def world(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, aws: None) -> World:
    return World(emulator, monkeypatch)
